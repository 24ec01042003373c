"""One turn's lifecycle — start, succeed or fail, finish exactly once — with no sync/async branches.

``AgentTracer`` is the hub the wrappers are closed over: it owns the tracer, the session tracker, the
optional detector and JSONL sinks, and turns SDK calls into ``TurnCall`` handles. Every entry point
swallows its own failures (logged once) so telemetry can never break the agent.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
import traceback
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from . import content as content_capture
from . import semconv as sc
from .config import Settings
from .detectors.errors import classify_error
from .extract import StreamAccumulator, apply_message, request_uses_cache, tool_names_offered
from .metrics import AgentMetrics
from .records import Finding, ToolCall, Turn
from .sessions import LiveSession, SessionTracker, first_user_text
from .spans import (
    attach_findings,
    tool_attributes,
    tool_span_name,
    turn_request_attributes,
    turn_response_attributes,
    turn_span_name,
)

log = logging.getLogger("otel_agent_trace")

# The call whose HTTP request is in flight in this context: read by the attempt counter and by the guard
# that keeps the SDK's own span from duplicating ours.
current_call: contextvars.ContextVar[TurnCall | None] = contextvars.ContextVar(
    "otel_agent_trace_current_call", default=None
)

_logged_once: set[str] = set()

# The live instrumentation, if any. The one piece of module state: wrappers the SDK cached, the public
# helpers (agent_session, trace_tool) and the exit hooks all need to find the current hub, not the one
# that was live when they were created.
_active: list[AgentTracer | None] = [None]


def active_hub() -> AgentTracer | None:
    """The hub of the live instrumentation; None when it is off."""
    return _active[0]


def set_active_hub(hub: AgentTracer | None, *, replacing: AgentTracer | None = None) -> None:
    """Install ``hub``; with ``replacing``, only if that one is still the active hub."""
    if replacing is None or _active[0] is replacing:
        _active[0] = hub


def log_once(key: str, message: str, *args: Any) -> None:
    """Telemetry failures are logged once per kind, never per call, and never raised."""
    if key not in _logged_once:
        _logged_once.add(key)
        log.warning(message, *args, exc_info=True)


def provider_of(client: Any) -> str:
    name = type(client).__name__
    if "Bedrock" in name:
        return sc.PROVIDER_BEDROCK
    if "Vertex" in name or "GoogleCloud" in name:
        return sc.PROVIDER_VERTEX
    if "Foundry" in name or "Azure" in name:
        return sc.PROVIDER_AZURE
    return sc.PROVIDER_ANTHROPIC


class AgentTracer:
    """Turns SDK calls and tool executions into records, spans, findings and JSONL lines."""

    def __init__(self, tracer: trace.Tracer, settings: Settings, meter_provider: Any = None) -> None:
        self.tracer = tracer
        self.settings = settings
        self.metrics = AgentMetrics(meter_provider)
        self.pending_dispatcher: Any = None  # a dispatcher patch still waiting for its function to exist
        self.jsonl = None
        if settings.jsonl:
            from .exporters.jsonl import JsonlTraceWriter

            self.jsonl = JsonlTraceWriter(settings.jsonl)
        self.content = content_capture.ContentEncoder(settings.max_content_chars)
        # Records keep content when someone will read it: span capture or the local JSONL file.
        self.keep_content = settings.capture_content or self.jsonl is not None
        analyzer_factory = None
        if settings.detectors:
            from .detectors import SessionAnalyzer, thresholds_from_env

            thresholds = thresholds_from_env(**settings.thresholds)
            analyzer_factory = lambda session_id: SessionAnalyzer(session_id, thresholds)  # noqa: E731
        self.sessions = SessionTracker(
            tracer, agent_name=settings.agent_name, idle_timeout=settings.session_idle_timeout,
            max_open=settings.max_open_sessions, analyzer_factory=analyzer_factory,
            on_session_end=self._session_ended,
            on_findings=self.metrics.findings,
        )

    # -- turns -------------------------------------------------------------------------------------
    def start_turn(self, resource: Any, kwargs: dict[str, Any], *, stream: bool) -> TurnCall | None:
        """A handle for one model call, or None when instrumentation is suppressed or fails."""
        if not is_instrumentation_enabled():
            return None
        try:
            return self._start_turn(resource, kwargs, stream)
        except Exception:
            log_once("start_turn", "otel_agent_trace: could not start a turn span; the call goes on untraced")
            return None

    def _start_turn(self, resource: Any, kwargs: dict[str, Any], stream: bool) -> TurnCall:
        start_ns = time.time_ns()
        if self.pending_dispatcher is not None and self.pending_dispatcher.try_install():
            self.pending_dispatcher = None
        self.sessions.sweep_idle()
        session, results = self.sessions.resolve(kwargs, start_ns)
        if results:
            self.infer_tool_calls(session, results, start_ns)
        messages = kwargs.get("messages")
        with session.lock:
            session.turns += 1
            index = session.turns
        if index == 1 and self.jsonl is not None:
            self.jsonl.start(session.id, first_user_text(messages), session.agent_name,
                             session.parent.id if session.parent else None)
        turn = Turn(
            session=session.id, index=index, model=kwargs.get("model"),
            message_count=len(messages) if isinstance(messages, Sequence) else 0,
            tools_offered=tool_names_offered(kwargs.get("tools")) if self.keep_content else (),
            cache_control=request_uses_cache(kwargs), tool_results=results, start_ns=start_ns,
        )
        client = getattr(resource, "_client", None)
        attributes = turn_request_attributes(turn, session.id, provider_of(client),
                                             max_tokens=kwargs.get("max_tokens"), stream=stream)
        _server_attributes(client, attributes)
        if self.settings.capture_content:
            self._request_content(kwargs, attributes)
        return TurnCall(self, session, turn, attributes, stream)

    def _request_content(self, kwargs: dict[str, Any], attributes: dict[str, Any]) -> None:
        encoder = self.content
        attributes[sc.INPUT_MESSAGES] = encoder.input_messages(kwargs.get("messages"))
        if kwargs.get("system") is not None:
            attributes[sc.SYSTEM_INSTRUCTIONS] = encoder.system_instructions(kwargs.get("system"))
        if kwargs.get("tools") is not None:
            attributes[sc.TOOL_DEFINITIONS] = encoder.tool_definitions(kwargs.get("tools"))

    def complete_turn(self, call: TurnCall) -> None:
        """Record a finished turn: rollups, detectors, then its span, created whole and ended at once.

        The span is built only now, with its original start time: nothing needs it while the request is
        in flight (the SDK's own span is suppressed inside our turn), and one creation with every
        attribute costs far less than a span opened early and filled in later.
        """
        turn, session = call.turn, call.session
        turn.end_ns = time.time_ns()
        saved = self.settings.cache_saving_usd(turn.model, turn.usage.cache_read_input_tokens)
        findings: list[Finding] = []
        with session.lock:
            session.last_turn = turn
            session.last_stop_reason = turn.stop_reason
            session.last_error = turn.error_type
            session.rollup.add_turn(turn, saved)
            if session.analyzer is not None:
                findings = session.analyzer.observe_turn(turn)
                session.note_findings(findings)
        attributes = call.attributes
        attributes.update(turn_response_attributes(turn, saved))
        if self.settings.capture_content and turn.content is not None:
            attributes[sc.OUTPUT_MESSAGES] = self.content.output_messages(turn.content, turn.stop_reason)
        if turn.first_chunk_ns:
            attributes[sc.LANGFUSE_COMPLETION_START] = _iso(turn.first_chunk_ns)
        span = self.tracer.start_span(turn_span_name(turn.model), context=trace.set_span_in_context(session.span),
                                      kind=SpanKind.CLIENT, attributes=attributes, start_time=turn.start_ns)
        if call.error is not None:
            record_error(span, call.error, turn.end_ns)
        if findings:
            attach_findings(span, findings)
            self.metrics.findings(findings)
        if turn.error_type:
            span.set_status(Status(StatusCode.ERROR, turn.error_type))
        span.end(end_time=turn.end_ns)
        self.sessions.expect_tool_uses(session, turn, span)
        self.metrics.turn(turn)
        if self.jsonl is not None:
            self.jsonl.turn(turn, findings)
        if turn.stop_reason in ("end_turn", "stop_sequence") and not session.explicit:
            self.sessions.end(session, "end_turn", end_ns=turn.end_ns)

    # -- tools -------------------------------------------------------------------------------------
    def infer_tool_calls(self, session: LiveSession, results: list[Any], now_ns: int) -> None:
        """Tool results nobody traced: one ``execute_tool`` span each over the gap before this request."""
        calls: list[ToolCall] = []
        turn_index = 0
        for result in results:
            pending = self.sessions.take_pending(session, result.tool_use_id)
            if pending is None:
                continue
            turn_index = pending.turn_index
            if pending.dispatched:
                continue
            call = ToolCall(
                session=session.id, tool_use_id=result.tool_use_id, name=pending.use.name,
                turn_index=pending.turn_index, input=pending.use.input, result=result.content,
                # Hand-written loops rarely set is_error, so the result text decides (as on import).
                is_error=classify_error(result.content, result.is_error) is not None,
                start_ns=pending.turn_end_ns or now_ns, end_ns=now_ns,
                source="inferred",
            )
            self.record_tool_span(session, call, pending.span_context)
            calls.append(call)
        if turn_index and self.jsonl is not None:
            self.jsonl.tool_results(session.id, turn_index, results, calls)

    def record_tool_span(self, session: LiveSession, call: ToolCall, parent: otel_context.Context,
                         span: Span | None = None) -> None:
        """Detectors, attributes and end for one finished tool call (span created here if not given)."""
        attributes = tool_attributes(call, session.id)
        if self.settings.capture_content:
            limit = self.settings.max_content_chars
            attributes[sc.TOOL_CALL_ARGUMENTS] = content_capture.to_attribute(call.input, limit)
            attributes[sc.TOOL_CALL_RESULT] = content_capture.cap(content_capture.redact(call.result), limit)
        if span is None:
            span = self.tracer.start_span(tool_span_name(call.name), context=parent, kind=SpanKind.INTERNAL,
                                          attributes=attributes, start_time=call.start_ns)
        else:
            span.set_attributes(attributes)
        findings: list[Finding] = []
        with session.lock:
            session.rollup.tool_calls += 1
            if session.analyzer is not None:
                findings = session.analyzer.observe_tool(call)
                session.note_findings(findings)
        if findings:
            attach_findings(span, findings)
            self.metrics.findings(findings)
        if call.is_error:
            span.set_status(Status(StatusCode.ERROR, call.error_type or "tool reported an error"))
        span.end(end_time=call.end_ns)
        self.metrics.tool(call)

    # -- sessions ----------------------------------------------------------------------------------
    def _session_ended(self, session: LiveSession) -> None:
        if self.jsonl is not None:
            from .records import Session

            self.jsonl.end(Session(id=session.id, agent_name=session.agent_name, end_reason=session.end_reason,
                                   parent_id=session.parent.id if session.parent else None,
                                   findings=list(session.final_findings)))

    def shutdown(self, reason: str | None = None) -> None:
        try:
            self.sessions.end_all(reason)
        except Exception:
            log_once("shutdown", "otel_agent_trace: could not end open sessions")
        if self.jsonl is not None:
            self.jsonl.close()


class TurnCall:
    """One in-flight model call. ``finish`` runs exactly once, whichever exit path gets there first."""

    __slots__ = ("_accumulator", "_done", "attributes", "error", "hub", "session", "stream", "turn")

    def __init__(self, hub: AgentTracer, session: LiveSession, turn: Turn, attributes: dict[str, Any],
                 stream: bool) -> None:
        self.hub = hub
        self.session = session
        self.turn = turn
        self.attributes = attributes  # request side, known at start; the response side is added at the end
        self.stream = stream
        self.error: BaseException | None = None
        self._done = False
        self._accumulator: StreamAccumulator | None = None

    def activate(self) -> contextvars.Token:
        return current_call.set(self)

    @staticmethod
    def deactivate(token: contextvars.Token) -> None:
        current_call.reset(token)

    def count_attempt(self) -> None:
        self.turn.http_attempts += 1

    # -- outcomes ----------------------------------------------------------------------------------
    def fail(self, error: BaseException) -> None:
        if self._done:
            return
        self.error = error
        self.turn.error_type = type(error).__qualname__
        self.finish()

    def adopt(self, result: Any) -> Any:
        """Record a return value, or wrap it so its remainder is recorded; returns what the user gets."""
        try:
            from .streams import adopt_result

            return adopt_result(self, result)
        except Exception:
            log_once("adopt", "otel_agent_trace: could not record a response")
            self.finish()
            return result

    def on_message(self, message: Any) -> None:
        try:
            apply_message(self.turn, message, self.hub.keep_content)
        except Exception:
            log_once("message", "otel_agent_trace: could not read a response")
        self.finish()

    def on_event(self, event: Any) -> None:
        try:
            if self._accumulator is None:
                self._accumulator = StreamAccumulator(self.turn, self.hub.keep_content)
                self.turn.first_chunk_ns = time.time_ns()
            self._accumulator.feed(event)
        except Exception:
            log_once("event", "otel_agent_trace: could not read a stream event")

    def finish_stream(self, error: BaseException | None = None) -> None:
        if self._done:
            return
        if self._accumulator is not None:
            try:
                self._accumulator.finish()
            except Exception:
                log_once("stream_finish", "otel_agent_trace: could not finish a stream")
        if error is not None and not isinstance(error, GeneratorExit):
            self.fail(error)
        else:
            self.finish()

    def finish(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self.hub.complete_turn(self)
        except Exception:
            log_once("finish", "otel_agent_trace: could not finish a turn span")


def safe_str(value: Any, fallback: str) -> str:
    """``str(value)``, or ``fallback`` when the object's ``__str__`` raises (user objects can)."""
    try:
        return str(value)
    except Exception:
        return fallback


def record_error(span: Span, error: BaseException, timestamp: int | None = None) -> None:
    """An ``exception`` event like ``Span.record_exception``, with the message and stack trace redacted:
    exceptions from tools and clients quote inputs, and those may hold keys."""
    from .content import redact

    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    span.add_event("exception", {
        "exception.type": type(error).__qualname__,
        "exception.message": redact(safe_str(error, "(unprintable exception)")),
        "exception.stacktrace": redact(stack),
        "exception.escaped": False,
    }, timestamp=timestamp)


def _server_attributes(client: Any, attributes: dict[str, Any]) -> None:
    url = getattr(client, "base_url", None)
    host = getattr(url, "host", None)
    if host:
        attributes[sc.SERVER_ADDRESS] = host
        port = getattr(url, "port", None)
        attributes[sc.SERVER_PORT] = port or (443 if getattr(url, "scheme", "https") == "https" else 80)


def _iso(ns: int) -> str:
    seconds, remainder = divmod(ns, 1_000_000_000)
    return f"{_iso_seconds(seconds)}.{remainder // 1000:06d}Z"


@functools.lru_cache(maxsize=8)
def _iso_seconds(seconds: int) -> str:
    # Calls a second apart share this part; formatting it costs more than the rest of the timestamp.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


__all__ = ["AgentTracer", "TurnCall", "active_hub", "current_call", "log_once", "set_active_hub"]
