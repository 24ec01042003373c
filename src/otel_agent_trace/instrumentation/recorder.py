"""One turn's lifecycle — start, succeed or fail, finish exactly once — with no sync/async branches.

``AgentTracer`` is the hub the wrappers are closed over (one per ``instrument()``): it owns the tracer, the
session tracker, the optional detector and JSONL sinks, and turns SDK calls into ``TurnCall`` handles. Every entry point
swallows its own failures (logged once) so telemetry can never break the agent.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Span

from otel_agent_trace import semconv as sc
from otel_agent_trace.config import Settings
from otel_agent_trace.detectors.errors import tool_result_is_error
from otel_agent_trace.instrumentation import foreign
from otel_agent_trace.instrumentation.extract import StreamAccumulator, apply_message, parse_request, tool_names_offered
from otel_agent_trace.instrumentation.sessions import LiveSession, SessionTracker, first_user_text, leave_tool_context
from otel_agent_trace.model.records import ToolCall, Turn
from otel_agent_trace.pipeline.metrics import AgentMetrics
from otel_agent_trace.pipeline.sink import RecordSink
from otel_agent_trace.pipeline.spans import (
    turn_request_attributes,
)

log = logging.getLogger("otel_agent_trace")

# The call whose HTTP request is in flight in this context: read by the attempt counter and by the guard
# that keeps the SDK's own span from duplicating ours.
current_call: contextvars.ContextVar[TurnCall | None] = contextvars.ContextVar(
    "otel_agent_trace_current_call", default=None
)

_logged_once: set[str] = set()

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
        # False once its instrumentation is taken off: wrappers that outlive it (bound methods the SDK or
        # the user cached) then pass every call straight through.
        self.live = True
        self.tracer = tracer
        self.settings = settings
        self.metrics = AgentMetrics(meter_provider)
        self._server: tuple[Any, dict[str, Any]] = (None, {})  # the last base URL and its server attributes
        self.pending_dispatcher: Any = None  # a dispatcher patch still waiting for its function to exist
        # With a dispatcher or @trace_tool in use, tool spans start when the tool runs; otherwise they are
        # inferred, started when the response asking for them arrives (so work inside the tool nests).
        self.tools_traced_by_user = bool(settings.tool_dispatcher)
        self.jsonl = None
        if settings.jsonl:
            from otel_agent_trace.files.jsonl import JsonlTraceWriter

            self.jsonl = JsonlTraceWriter(settings.jsonl)
        # Records keep content when someone will read it: span capture or the local JSONL file.
        self.keep_content = settings.capture_content or self.jsonl is not None
        self.sink = RecordSink(tracer, settings, metrics=self.metrics, jsonl=self.jsonl)
        self.sessions = SessionTracker(self.sink, agent_name=settings.agent_name,
                                       idle_timeout=settings.session_idle_timeout,
                                       max_open=settings.max_open_sessions)

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
        request = parse_request(kwargs, stream=stream)
        session, previous_count = self.sessions.resolve(request, start_ns)
        leave_tool_context(session)  # the agent is back from its tool: what was current before it is again
        if request.tool_results:
            self.infer_tool_calls(session, request.tool_results, start_ns)
        with session.lock:
            session.turns += 1
            index = session.turns
            announce = not session.announced
            session.announced = True
        if announce and self.jsonl is not None:
            self.jsonl.start(session.id, first_user_text(request.messages), session.agent_name,
                             session.parent.id if session.parent else None)
        turn = Turn(
            session=session.id, index=index, model=request.model, message_count=request.message_count,
            tools_offered=tool_names_offered(kwargs.get("tools")) if self.keep_content else (),
            cache_control=request.cache_control, tool_results=request.tool_results, start_ns=start_ns,
        )
        client = getattr(resource, "_client", None)
        attributes = turn_request_attributes(turn, session.id, provider_of(client),
                                             max_tokens=request.max_tokens, stream=stream)
        url = getattr(client, "base_url", None)
        if url is not self._server[0]:  # nearly every call goes to the same URL object: parse it once
            self._server = (url, server_attributes(url))
        attributes.update(self._server[1])
        if request.continues is not None:
            attributes[sc.REQUEST_CONTINUES] = request.continues
        if self.settings.capture_content:
            self._request_content(kwargs, attributes)
        # Started now, not at the end: its context goes out on the wire (traceparent) and is current while
        # the SDK sends, so proxies, gateways and HTTP-client spans find their parent. When another library's
        # chat span for this call is current (a framework's, or an instrumentor's), that span is borrowed
        # instead, so a backend sees one chat span per call (foreign.py).
        foreign_span = foreign.chat_span_for(client)
        if foreign_span is not None and foreign_span.is_recording():
            span: Span = foreign.BorrowedSpan(foreign_span)
            span.set_attributes(attributes)
        else:
            span = self.sink.turn_span(session, request.model, attributes, start_ns)
        call = TurnCall(self, session, turn, span, stream, previous_count)
        call.foreign, call.request_attributes = foreign_span, attributes
        return call

    def _request_content(self, kwargs: dict[str, Any], attributes: dict[str, Any]) -> None:
        encoder = self.sink.content
        attributes[sc.INPUT_MESSAGES] = encoder.input_messages(kwargs.get("messages"))
        if kwargs.get("system") is not None:
            attributes[sc.SYSTEM_INSTRUCTIONS] = encoder.system_instructions(kwargs.get("system"))
        if kwargs.get("tools") is not None:
            attributes[sc.TOOL_DEFINITIONS] = encoder.tool_definitions(kwargs.get("tools"))

    def complete_turn(self, call: TurnCall) -> None:
        """Hand a finished call to the sink, then do what only the live path knows: session bookkeeping,
        the tool uses to wait for, and ending a session at ``end_turn``.

        A call that failed (HTTP or network error, a refusal by the SDK before sending, a stream cut by an
        error) is a failed attempt, not a turn: the call that re-sends the conversation takes its turn
        number in the same session (see ``SessionTracker.resolve``).
        """
        turn, session, span = call.turn, call.session, call.span
        turn.end_ns = time.time_ns()
        if call.error is not None and isinstance(span, foreign.BorrowedSpan):
            # A failed attempt never writes on another library's span: its owner may retry inside it.
            span = self.sink.turn_span(session, turn.model, call.request_attributes, turn.start_ns)
        counted = self.sink.turn(session, turn, span, call.error,
                                 usage_reported_by=foreign.usage_reporter(call.foreign, span))
        with session.lock:
            session.last_error = turn.error_type
            if counted:
                session.last_stop_reason = turn.stop_reason
            else:
                session.forget_attempt(turn, call.previous_count)
        if not counted:
            return
        if session.threaded and turn.response_id:
            self.sessions.note_reply(session, turn.response_id)
        if turn.tool_uses:
            # Only a call another library also traced can have its tools traced by that library.
            stand_in = None if call.foreign is None else foreign.tool_stand_in(span, session.span)
            self.sessions.expect_tool_uses(session, turn, call.context, start_spans=not self.tools_traced_by_user,
                                           make_current=call.in_caller_context, stand_in=stand_in)
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
                # Its span is the dispatcher's or decorator's, ended when the tool returned; its record
                # still goes to the JSONL line beside the inferred ones.
                if pending.call is not None:
                    calls.append(pending.call)
                continue
            call = ToolCall(
                session=session.id, tool_use_id=result.tool_use_id, name=pending.use.name,
                turn_index=pending.turn_index, input=pending.use.input, result=result.content,
                is_error=tool_result_is_error(result.content, result.is_error),
                start_ns=pending.turn_end_ns or now_ns, end_ns=now_ns,
                source="inferred",
            )
            self.record_tool_span(session, call, pending.span_context, span=pending.span)
            calls.append(call)
        if turn_index and self.jsonl is not None:
            self.jsonl.tool_results(session.id, turn_index, results, calls)

    def record_tool_span(self, session: LiveSession, call: ToolCall, parent: otel_context.Context,
                         span: Span | None = None) -> None:
        """Detectors, attributes and end for one finished tool call (span created here if not given)."""
        self.sink.tool(session, call, span or self.sink.tool_span(call.name, parent, call.start_ns))

    def shutdown(self, reason: str | None = None) -> None:
        """End open sessions (``reason``: how the run ended, when known) and close the JSONL file."""
        try:
            self.sessions.end_all(reason)
        except Exception:
            log_once("shutdown", "otel_agent_trace: could not end open sessions")
        if self.jsonl is not None:
            self.jsonl.close()


class TurnCall:
    """One in-flight model call. ``finish`` runs exactly once, whichever exit path gets there first."""

    __slots__ = ("_accumulator", "_done", "context", "error", "foreign", "hub", "in_caller_context", "previous_count",
                 "request_attributes", "session", "snapshot", "span", "stream", "turn")

    def __init__(self, hub: AgentTracer, session: LiveSession, turn: Turn, span: Span, stream: bool,
                 previous_count: int) -> None:
        self.hub = hub
        self.session = session
        self.turn = turn
        self.span = span
        self.context = trace.set_span_in_context(span)
        self.stream = stream
        self.previous_count = previous_count  # the session's history length before this request
        self.error: BaseException | None = None
        # False when the call is finished by garbage collection: whatever runs then is not the agent's code.
        self.in_caller_context = True
        self.foreign: Span | None = None  # another library's chat span for this call (see foreign.py)
        self.request_attributes: dict[str, Any] = {}
        self._done = False
        self._accumulator: StreamAccumulator | None = None
        # The SDK's ``.stream()`` helper builds the whole message itself: when set, the stream's events are
        # not read one by one and the turn is filled from this snapshot at the end (see streams.py).
        self.snapshot: Callable[[], Any] | None = None

    def activate(self) -> tuple[contextvars.Token, object]:
        return current_call.set(self), otel_context.attach(self.context)

    @staticmethod
    def deactivate(tokens: tuple[contextvars.Token, object]) -> None:
        otel_context.detach(tokens[1])
        current_call.reset(tokens[0])

    def count_attempt(self) -> None:
        self.turn.http_attempts += 1

    def inject_trace_context(self, headers: Any) -> None:
        """This call's span as the parent on the wire, through the propagators the application configured."""
        propagate.inject(headers, context=self.context)

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
            from otel_agent_trace.instrumentation.streams import adopt_result

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

    def first_event(self) -> Callable[[Any], None] | None:
        """At a stream's first event: what to show each event to, that one included (the accumulator's
        ``feed``), or None when the turn is filled from the helper's snapshot instead. Never raises."""
        self.turn.first_chunk_ns = time.time_ns()
        if self.snapshot is not None:
            return None
        try:
            self._accumulator = StreamAccumulator(self.turn, self.hub.keep_content)
            return self._accumulator.feed
        except Exception:
            log_once("event", "otel_agent_trace: could not read a stream event")
            return None

    def on_event(self, event: Any) -> None:
        """One event of a stream read event by event (the async proxy); never raises."""
        try:
            if self._accumulator is None and (self.turn.first_chunk_ns or self.first_event() is None):
                return  # filled from the helper's snapshot, or the accumulator could not be made
            self._accumulator.feed(event)  # type: ignore[union-attr]
        except Exception:
            log_once("event", "otel_agent_trace: could not read a stream event")

    def read_from_snapshot(self, snapshot: Callable[[], Any]) -> bool:
        """Fill the turn from ``snapshot()`` when the stream ends instead of from its events; only before
        the first event was read. Returns whether it will."""
        if self.snapshot is not None or self._accumulator is not None or self.turn.first_chunk_ns:
            return False
        self.snapshot = snapshot
        return True

    def finish_stream(self, error: BaseException | None = None) -> None:
        if self._done:
            return
        if self.snapshot is not None and self._accumulator is None:
            try:
                message = self.snapshot()
                if message is not None:
                    apply_message(self.turn, message, self.hub.keep_content)
            except Exception:
                log_once("snapshot", "otel_agent_trace: could not read a stream's final message")
        elif self._accumulator is not None:
            try:
                self._accumulator.finish()
            except Exception:
                log_once("stream_finish", "otel_agent_trace: could not finish a stream")
        if error is not None and not isinstance(error, GeneratorExit):
            self.fail(error)
        else:
            self.finish()

    def abandon(self) -> None:
        """Finish a response nobody read to the end, from the garbage collector."""
        self.in_caller_context = False
        self.finish_stream()

    def finish(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self.hub.complete_turn(self)
        except Exception:
            log_once("finish", "otel_agent_trace: could not finish a turn span")


def server_attributes(url: Any) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of a client's base URL (none when it has no host)."""
    host = getattr(url, "host", None)
    if not host:
        return {}
    port = getattr(url, "port", None)
    return {sc.SERVER_ADDRESS: host,
            sc.SERVER_PORT: port or (443 if getattr(url, "scheme", "https") == "https" else 80)}


__all__ = ["AgentTracer", "TurnCall", "current_call", "log_once"]
