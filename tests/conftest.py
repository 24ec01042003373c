"""Shared fixtures: a real SDK tracing pipeline with an in-memory exporter, the fake Messages API, and
the instrumentation installed for one test and removed after it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.fake_api import FakeMessagesAPI


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
def api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as server:
        yield server
