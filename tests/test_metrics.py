"""Metrics: GenAI client duration and token usage, tool duration, findings by kind."""

from __future__ import annotations

import anthropic
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing import demo_agent as demo
from otel_agent_trace.testing.fake_api import FakeMessagesAPI


@pytest.fixture
def reader():
    return InMemoryMetricReader()


def _points(reader):
    data = reader.get_metrics_data()
    found: dict[str, list] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def test_failing_run_records_durations_tokens_and_findings(provider, settings, reader):
    """A traced run records one duration per turn, tokens by type, tool durations, and findings by kind."""
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, meter_provider=MeterProvider(metric_readers=[reader]),
                            settings=settings)
    demo.workspace.set(demo.make_workspace())
    try:
        with FakeMessagesAPI(demo.scripted_model) as api, pytest.raises(RuntimeError):
            demo.run_agent(anthropic.Anthropic(api_key="k", base_url=api.base_url), demo.FAILING_TASK, max_turns=11)
    finally:
        instrumentor.uninstrument()
    points = _points(reader)
    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.count == 11
    token_types = {p.attributes["gen_ai.token.type"] for p in points["gen_ai.client.token.usage"]}
    assert {"input", "output", "cache_write"} <= token_types
    assert sum(p.count for p in points["agent_trace.tool.duration"]) == 10
    kinds = {p.attributes["agent_trace.finding.kind"]: p.value for p in points["agent_trace.findings"]}
    assert kinds["tool_loop"] >= 1 and kinds["no_end_turn"] == 1


def test_no_meter_provider_means_no_metrics_cost(api, provider, settings):
    """Without a MeterProvider the API's no-op instruments are used and calls still work."""
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=settings)
    try:
        message = anthropic.Anthropic(api_key="k", base_url=api.base_url).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    finally:
        instrumentor.uninstrument()
    assert message.stop_reason == "end_turn"


def test_meter_provider_set_after_instrumenting_receives_metrics(tmp_path):
    """A global MeterProvider set after instrument() still gets the turn metrics (no-op skipping is not sticky)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import anthropic
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from otel_agent_trace.testing.fake_api import FakeMessagesAPI
        from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor

        AnthropicAgentInstrumentor().instrument(tracer_provider=TracerProvider())
        with FakeMessagesAPI() as api:
            client = anthropic.Anthropic(api_key="k", base_url=api.base_url)
            request = dict(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
            client.messages.create(**request)  # no provider yet: nothing to record
            reader = InMemoryMetricReader()
            metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
            client.messages.create(**{**request, "messages": [{"role": "user", "content": "again"}]})
        names = [m.name for r in reader.get_metrics_data().resource_metrics for s in r.scope_metrics
                 for m in s.metrics]
        print(",".join(sorted(names)))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "gen_ai.client.operation.duration" in out.stdout.split(",")
