"""GenAI client metrics and our own, through the OTel metrics API (no-ops when no MeterProvider is set)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import metrics

from . import semconv as sc
from .records import Finding, ToolCall, Turn


def _is_noop(provider: Any) -> bool:
    """The API's no-op provider, or the placeholder it hands out until the application sets one (checked by
    name: if that name ever changes, metrics are simply recorded as before)."""
    return isinstance(provider, metrics.NoOpMeterProvider) or type(provider).__name__ == "_ProxyMeterProvider"


class AgentMetrics:
    """Records through the metrics API, and skips building attributes for instruments that go nowhere.

    Without a MeterProvider every instrument is a no-op, yet each turn would still build four attribute
    dicts. The check is repeated until a real provider shows up, because the application may set the
    global one after instrumenting, and the API's placeholder instruments then start recording.
    """

    def __init__(self, meter_provider: Any = None) -> None:
        self._provider = meter_provider
        self._live = False
        meter = metrics.get_meter(sc.INSTRUMENTATION_SCOPE, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION, unit="s", description="Duration of GenAI client operations")
        self._tokens = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE, unit="{token}", description="Tokens used per GenAI client operation")
        self._tool_duration = meter.create_histogram(
            sc.METRIC_TOOL_DURATION, unit="s", description="Duration of agent tool executions")
        self._findings = meter.create_counter(
            sc.METRIC_FINDINGS, unit="{finding}", description="Agent failure-detector findings")

    def _enabled(self) -> bool:
        if not self._live:
            provider = self._provider if self._provider is not None else metrics.get_meter_provider()
            self._live = not _is_noop(provider)
        return self._live

    def turn(self, turn: Turn) -> None:
        if not self._enabled():
            return
        attributes = {sc.OPERATION_NAME: sc.OP_CHAT, sc.REQUEST_MODEL: turn.model or ""}
        if turn.error_type:
            attributes = {**attributes, sc.ERROR_TYPE: turn.error_type}
        if turn.end_ns and turn.start_ns:
            self._duration.record((turn.end_ns - turn.start_ns) / 1e9, attributes)
        usage = turn.usage
        for token_type, value in (("input", usage.context_tokens), ("output", usage.output_tokens),
                                  ("cache_read", usage.cache_read_input_tokens),
                                  ("cache_write", usage.cache_creation_input_tokens)):
            if value:
                self._tokens.record(value, {**attributes, sc.TOKEN_TYPE: token_type})

    def tool(self, call: ToolCall) -> None:
        if not self._enabled():
            return
        if call.end_ns and call.start_ns:
            self._tool_duration.record((call.end_ns - call.start_ns) / 1e9,
                                       {sc.TOOL_NAME: call.name, sc.TOOL_IS_ERROR: call.is_error})

    def findings(self, findings: Sequence[Finding]) -> None:
        if not self._enabled():
            return
        for finding in findings:
            self._findings.add(1, {sc.FINDING_KIND: finding.kind, sc.FINDING_SEVERITY: finding.severity})
