"""Shared fixtures: a real SDK tracing pipeline with an in-memory exporter, the fake Messages API (the
pytest plugin's ``fake_anthropic``), and the instrumentation installed for one test and removed after it.

Tests that need the instrumentation's settings or provider themselves use these; tests of a whole run use
the plugin's ``agent_trace`` (see tests/test_pytest_plugin.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.pytest_plugin import FakeAnthropic


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def settings() -> Settings:
    """Settings for the test's instrumentation; tests override fields before ``instrumented`` runs."""
    return Settings.from_env({"OTEL_AGENT_TRACE_DETECTORS": os.environ.get("OTEL_AGENT_TRACE_DETECTORS", "true")})


@pytest.fixture
def instrumented(provider: TracerProvider, settings: Settings) -> Iterator[AnthropicAgentInstrumentor]:
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=settings)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def api(fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    """The pytest plugin's fake Messages API, under the name these tests have always used."""
    return fake_anthropic
