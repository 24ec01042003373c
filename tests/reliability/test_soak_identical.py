"""Soak: the same request sent again and again (an eval harness re-running one task, a retry loop) must
cost the same per call at the end as at the start and hold bounded memory. 2,000 calls in CI, 20,000
under ``OTEL_AGENT_TRACE_SOAK=1``.

Cost is measured as work, not time: the number of lines of this package that one call executes (a line
tracer over a few calls), and the objects the garbage collector tracks. Both are exact on a shared machine
where timings are not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, tool_reply
from tests.reliability.support import CountingExporter, package_lines_per_call, scaled, tracked_objects

CALLS = scaled(2_000, 20_000)
SAMPLED_CALLS = 20  # calls traced line by line at the start and at the end

# A turn in the middle of a conversation: the task, one tool call and its result.
REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 256,
    "messages": [
        {"role": "user", "content": "Run the eval task: fix the failing test in tests/test_a.py."},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_prev", "name": "read_file", "input": {"path": "src/a.py"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_prev", "content": "def a():\n    return 1\n"}]},
    ],
}


@pytest.fixture(scope="module")
def soak_client() -> Iterator[tuple[anthropic.Anthropic, FakeMessagesAPI, CountingExporter]]:
    exporter = CountingExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider,
                            settings=Settings.from_env({"OTEL_AGENT_TRACE_DETECTORS": "true"}))
    reply = tool_reply({"id": "toolu_same", "name": "read_file", "input": {"path": "src/a.py"}}, text="reading")
    try:
        with FakeMessagesAPI(lambda request: reply) as api:
            client = anthropic.Anthropic(api_key="sk-ant-test-key-000000", base_url=api.base_url, max_retries=0)
            yield client, api, exporter
            client.close()
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


@pytest.fixture(scope="module")
def soak_run(soak_client: tuple[anthropic.Anthropic, FakeMessagesAPI, CountingExporter]) -> dict[str, Any]:
    """Runs the soak once: work and tracked objects after the first quarter and at the end."""
    client, api, exporter = soak_client
    quarter = CALLS // 4
    for _ in range(quarter):
        client.messages.create(**REQUEST)
    early_lines = package_lines_per_call(lambda: client.messages.create(**REQUEST), SAMPLED_CALLS)
    early_objects = tracked_objects(api)
    for _ in range(CALLS - quarter - 2 * SAMPLED_CALLS):
        client.messages.create(**REQUEST)
    late_lines = package_lines_per_call(lambda: client.messages.create(**REQUEST), SAMPLED_CALLS)
    late_objects = tracked_objects(api)
    return {"early_lines": early_lines, "late_lines": late_lines, "early_objects": early_objects,
            "late_objects": late_objects, "spans": exporter.spans}


def test_identical_requests_cost_the_same_work_at_the_end(soak_run: dict[str, Any]) -> None:
    """The last calls of the soak execute no more of our code than the calls after the first quarter."""
    assert soak_run["late_lines"] <= soak_run["early_lines"] * 1.05 + 20, soak_run


def test_identical_requests_hold_bounded_memory(soak_run: dict[str, Any]) -> None:
    """Objects tracked by the garbage collector do not grow between the first quarter and the end."""
    early, late = soak_run["early_objects"], soak_run["late_objects"]
    assert late.total - early.total <= 2_000, late.grown_since(early)


def test_identical_requests_are_all_traced(soak_run: dict[str, Any]) -> None:
    """Every call of the soak is exported as at least one span (no call goes untraced under load)."""
    assert soak_run["spans"] >= CALLS, soak_run
