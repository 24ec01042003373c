"""GenAI client metrics and our own, through the OTel metrics API (no-ops when no MeterProvider is set)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import metrics

from otel_agent_trace import semconv as sc
from otel_agent_trace.model.records import Finding, ToolCall, Turn


class AgentMetrics:
    """Records through the metrics API, and skips building attributes for instruments that go nowhere.

    Without a MeterProvider every instrument is a no-op, yet each turn would still build four attribute
    dicts. The check is repeated until a real provider shows up, because the application may set the
    global one after instrumenting, and the API's placeholder instruments then start recording. (Asking
    ``get_meter_provider()`` per turn costs more than the dicts: it reads the environment.)
    """

    def __init__(self, meter_provider: Any = None) -> None:
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
        self._noop = isinstance(self._duration, metrics.NoOpHistogram)  # an explicit no-op provider

    def _check(self) -> bool:
        """Whether instruments record now; called only while they did not."""
        if self._noop:
            return False
        # The API's placeholder instrument has no real one until a provider is set. If that attribute is
        # missing (another API version), metrics are recorded as before: the check fails safe.
        self._live = getattr(self._duration, "_real_instrument", True) is not None
        return self._live

    def turn(self, turn: Turn) -> None:
        if not (self._live or self._check()):
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
        if not (self._live or self._check()):
            return
        if call.end_ns and call.start_ns:
            self._tool_duration.record((call.end_ns - call.start_ns) / 1e9,
                                       {sc.TOOL_NAME: call.name, sc.TOOL_IS_ERROR: call.is_error})

    def findings(self, findings: Sequence[Finding]) -> None:
        if not (self._live or self._check()):
            return
        for finding in findings:
            self._findings.add(1, {sc.FINDING_KIND: finding.kind, sc.FINDING_SEVERITY: finding.severity})
