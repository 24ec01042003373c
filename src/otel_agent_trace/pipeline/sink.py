"""The one sink: Turn, ToolCall and session-end records in; detectors, rollups, spans, metrics and JSONL out.

Live capture (``recorder``, ``sessions``) and imported transcripts (``replay``) differ only in where the
records come from and when spans start: live, a chat span starts with its request and a tool span when
the response asks for the tool (or when the tool runs); on import, each starts at its recorded time just
before the sink finishes it. Everything a record decides — findings, rollups, attributes, status, the
JSONL line — is decided here, once.
"""

from __future__ import annotations

import functools
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from otel_agent_trace import semconv as sc
from otel_agent_trace.config import Settings
from otel_agent_trace.model.records import Finding, Session, ToolCall, ToolResult, Turn
from otel_agent_trace.pipeline import content as content_capture
from otel_agent_trace.pipeline.spans import (
    Rollup,
    attach_findings,
    failure_description,
    session_span_name,
    session_start_attributes,
    tool_attributes,
    tool_span_name,
    turn_response_attributes,
    turn_span_name,
)


class SessionLedger:
    """What the sink keeps for one session while it runs: its span, detector state and running totals."""

    def __init__(self, session_id: str, agent_name: str, span: Span, parent_id: str | None,
                 analyzer: Any | None) -> None:
        self.id = session_id
        self.agent_name = agent_name
        self.span = span
        self.parent_id = parent_id
        self.analyzer = analyzer
        self.lock = threading.RLock()
        self.rollup = Rollup()
        self.final_findings: Sequence[Finding] = ()  # what the detectors said when the session ended


class RecordSink:
    """Turns records into telemetry. Never raises for a record's content; callers guard the rest."""

    def __init__(self, tracer: trace.Tracer, settings: Settings, *, metrics: Any = None, jsonl: Any = None) -> None:
        self.tracer = tracer
        self.settings = settings
        self.metrics = metrics
        self.jsonl = jsonl
        self.content = content_capture.ContentEncoder(settings.max_content_chars)
        self._thresholds = None
        if settings.detectors:
            from otel_agent_trace.detectors import thresholds_from_env

            self._thresholds = thresholds_from_env(**settings.thresholds)

    # -- sessions ----------------------------------------------------------------------------------
    def session_span(self, session_id: str, agent_name: str, parent_id: str | None,
                     context: otel_context.Context | None, start_ns: int | None) -> Span:
        return self.tracer.start_span(session_span_name(agent_name), context=context, kind=SpanKind.INTERNAL,
                                      attributes=session_start_attributes(session_id, agent_name, parent_id),
                                      start_time=start_ns)

    def analyzer(self, session_id: str) -> Any | None:
        if self._thresholds is None:
            return None
        from otel_agent_trace.detectors import SessionAnalyzer

        return SessionAnalyzer(session_id, self._thresholds)

    def end_session(self, ledger: SessionLedger, end_reason: str, end_ns: int | None, *,
                    error: str | None = None, timestamp: int | None = None) -> None:
        """Final detectors, rollups and status on the session span, then end it; the JSONL end line."""
        span = ledger.span
        with ledger.lock:
            findings = ledger.analyzer.finish(end_reason) if ledger.analyzer is not None else []
            if findings:
                ledger.rollup.add_findings(findings)
                ledger.final_findings = findings
            attributes = ledger.rollup.attributes(end_reason)
        if findings:
            attach_findings(span, findings, timestamp=timestamp)
            self._count(findings)
        span.set_attributes(attributes)
        failed = failure_description(end_reason)
        if failed:
            span.set_status(Status(StatusCode.ERROR, error or failed))
        span.end(end_time=end_ns)
        if self.jsonl is not None:
            self.jsonl.end(Session(id=ledger.id, agent_name=ledger.agent_name, end_reason=end_reason,
                                   parent_id=ledger.parent_id, findings=list(findings)))

    # -- turns -------------------------------------------------------------------------------------
    def turn_span(self, ledger: SessionLedger, model: str | None, attributes: dict[str, Any], start_ns: int) -> Span:
        return self.tracer.start_span(turn_span_name(model), context=trace.set_span_in_context(ledger.span),
                                      kind=SpanKind.CLIENT, attributes=attributes, start_time=start_ns)

    def turn(self, ledger: SessionLedger, turn: Turn, span: Span, error: BaseException | None = None, *,
             usage_reported_by: str | None = None) -> bool:
        """Finish a turn's span. Returns whether it counted as a turn: a call that failed (``error``, or a
        recorded ``error_type``) is a failed attempt — an error span with no rollup, detectors or JSONL line.
        ``usage_reported_by``: another library's span carries this call's ``gen_ai.usage.*``, so ours
        leaves it out (backends sum usage over every chat span) and names that library instead."""
        failed = error is not None or turn.failed_attempt
        saved = 0.0 if failed else self.settings.cache_saving_usd(turn.model, turn.usage.cache_read_input_tokens)
        findings: list[Finding] = []
        with ledger.lock:
            if failed:
                if ledger.analyzer is not None:
                    ledger.analyzer.observe_failed_attempt(turn)
            else:
                ledger.rollup.add_turn(turn, saved)
                if ledger.analyzer is not None:
                    findings = ledger.analyzer.observe_turn(turn)
                    ledger.rollup.add_findings(findings)
        attributes = turn_response_attributes(turn, saved)
        if failed:
            attributes[sc.TURN_FAILED_ATTEMPT] = True
        if usage_reported_by is not None:
            attributes = {k: v for k, v in attributes.items() if not k.startswith(sc.USAGE_PREFIX)}
            attributes[sc.USAGE_REPORTED_BY] = usage_reported_by
        if self.settings.capture_content and turn.content is not None:
            attributes[sc.OUTPUT_MESSAGES] = self.content.output_messages(turn.content, turn.stop_reason)
        if turn.first_chunk_ns:
            attributes[sc.LANGFUSE_COMPLETION_START] = iso_time(turn.first_chunk_ns)
        span.set_attributes(attributes)
        if error is not None:
            record_error(span, error, turn.end_ns)
        if findings:
            attach_findings(span, findings, timestamp=turn.end_ns)
            self._count(findings)
        if turn.error_type:
            span.set_status(Status(StatusCode.ERROR, turn.error_type))
        span.end(end_time=max(turn.end_ns, turn.start_ns))
        if self.metrics is not None:
            self.metrics.turn(turn)
        if not failed and self.jsonl is not None:
            self.jsonl.turn(turn, findings)
        return not failed

    # -- tools -------------------------------------------------------------------------------------
    def tool_span(self, name: str, parent: otel_context.Context | None, start_ns: int,
                  attributes: dict[str, Any] | None = None) -> Span:
        return self.tracer.start_span(tool_span_name(name), context=parent, kind=SpanKind.INTERNAL,
                                      attributes=attributes, start_time=start_ns)

    def tool(self, ledger: SessionLedger | None, call: ToolCall, span: Span) -> None:
        """Detectors, attributes, status and end for one finished tool call."""
        attributes = tool_attributes(call, ledger.id if ledger is not None else call.session)
        if self.settings.capture_content:
            limit = self.settings.max_content_chars
            attributes[sc.TOOL_CALL_ARGUMENTS] = content_capture.to_attribute(call.input, limit)
            attributes[sc.TOOL_CALL_RESULT] = content_capture.cap(content_capture.redact(call.result), limit)
        span.set_attributes(attributes)
        findings: list[Finding] = []
        if ledger is not None:
            with ledger.lock:
                ledger.rollup.tool_calls += 1
                if ledger.analyzer is not None:
                    findings = ledger.analyzer.observe_tool(call)
                    ledger.rollup.add_findings(findings)
        if findings:
            attach_findings(span, findings, timestamp=call.end_ns)
            self._count(findings)
        if call.is_error:
            span.set_status(Status(StatusCode.ERROR, call.error_type or "tool reported an error"))
        span.end(end_time=max(call.end_ns, call.start_ns))
        if self.metrics is not None:
            self.metrics.tool(call)

    def unanswered_tool(self, ledger: SessionLedger, span: Span, end_ns: int | None) -> None:
        """A tool a response asked for whose result never came back (the run ended first): its span ends
        with the session, and it counts among the session's tool calls like any other."""
        with ledger.lock:
            ledger.rollup.tool_calls += 1
        span.end(end_time=end_ns)

    def unsent_tool_calls(self, calls: Sequence[ToolCall]) -> None:
        """Tool calls that ran but whose results no request carried (the run ended first): their JSONL
        line is written from the calls themselves, so the file holds every tool call the run made."""
        if self.jsonl is None or not calls:
            return
        results = [ToolResult(call.tool_use_id, call.result, call.is_error) for call in calls]
        self.jsonl.tool_results(calls[0].session, calls[0].turn_index, results, calls)

    def _count(self, findings: Sequence[Finding]) -> None:
        if self.metrics is not None:
            self.metrics.findings(findings)


def replay_session(sink: RecordSink, session: Session, parent: Span | None = None) -> tuple[Span, int, int]:
    """Feed a finished session's records through the sink in the order the live path sees them, so each
    finding lands on the span it would have live. Returns the session span (for sub-agents), the number
    of spans and the number of findings."""
    from otel_agent_trace.detectors import session_events
    from otel_agent_trace.pipeline.spans import inferred_tool_start_attributes, turn_request_attributes

    start = min((t.start_ns for t in session.turns), default=time.time_ns())
    end = max([start, *(max(t.end_ns, t.start_ns) for t in session.turns), *(c.end_ns for c in session.tool_calls)])
    context = trace.set_span_in_context(parent) if parent is not None else None
    span = sink.session_span(session.id, session.agent_name, session.parent_id, context, start)
    ledger = SessionLedger(session.id, session.agent_name, span, session.parent_id, sink.analyzer(session.id))
    turn_spans: dict[int, Span] = {}
    spans = 1
    for event in session_events(session):
        if isinstance(event, Turn):
            attributes = turn_request_attributes(event, session.id, sc.PROVIDER_ANTHROPIC)
            turn_span = sink.turn_span(ledger, event.model, attributes, event.start_ns)
            turn_spans[event.index] = turn_span
            sink.turn(ledger, event, turn_span)
        else:
            parent_span = turn_spans.get(event.turn_index, span)
            sink.tool(ledger, event, sink.tool_span(event.name, trace.set_span_in_context(parent_span),
                                                    event.start_ns))
        spans += 1
    # Tools a response asked for whose result never came (the run ended first): live, their spans start
    # with the response and end with the session, so replay does the same.
    for turn, use in session.unanswered_tool_uses():
        if turn.index in turn_spans:
            tool_span = sink.tool_span(use.name, trace.set_span_in_context(turn_spans[turn.index]), turn.end_ns,
                                       inferred_tool_start_attributes(use, turn.index, session.id, "imported"))
            sink.unanswered_tool(ledger, tool_span, max(end, turn.end_ns))
            spans += 1
    sink.end_session(ledger, session.end_reason or "abandoned", end, timestamp=end)
    findings = ledger.analyzer.findings if ledger.analyzer is not None else []
    session.findings = list(findings)
    return span, spans, len(findings)


#: Characters of an exception's message kept on its span event: tool errors quote tool output, which must not
#: leave the process wholesale when content capture is off.
ERROR_MESSAGE_CHARS = 200


def record_error(span: Span, error: BaseException, timestamp: int | None = None) -> None:
    """An ``exception`` event like ``Span.record_exception``, with the message redacted and capped and the
    stack trace made of frames plus that message (not the chained exceptions' full text): exceptions from
    tools and clients quote inputs and outputs, and those may hold keys."""
    message = content_capture.cap(content_capture.redact(safe_str(error, "(unprintable exception)"),
                                                         ERROR_MESSAGE_CHARS), ERROR_MESSAGE_CHARS)
    frames = content_capture.redact("".join(traceback.format_tb(error.__traceback__)))
    name = type(error).__qualname__
    span.add_event("exception", {
        "exception.type": name,
        "exception.message": message,
        "exception.stacktrace": f"Traceback (most recent call last):\n{frames}{name}: {message}",
        "exception.escaped": False,
    }, timestamp=timestamp)


def safe_str(value: Any, fallback: str) -> str:
    """``str(value)``, or ``fallback`` when the object's ``__str__`` raises (user objects can)."""
    try:
        return str(value)
    except Exception:
        return fallback


def iso_time(ns: int) -> str:
    seconds, remainder = divmod(ns, 1_000_000_000)
    return f"{_iso_seconds(seconds)}.{remainder // 1000:06d}Z"


@functools.lru_cache(maxsize=8)
def _iso_seconds(seconds: int) -> str:
    # Calls a second apart share this part; formatting it costs more than the rest of the timestamp.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
