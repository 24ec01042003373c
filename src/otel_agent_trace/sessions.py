"""Sessions: which agent run a model call belongs to, and the ``invoke_agent`` span that groups its turns.

A call is matched to a session, most reliable evidence first:

1. its ``tool_result`` blocks answer ``tool_use`` ids a session issued (ids are unique, so this never
   mixes agents running side by side);
2. the explicit ``agent_session(...)`` active in this context;
3. the implicit session last active in this context (thread or asyncio task), when the call's
   ``messages`` start with the same first message and are longer than that session's last request;
4. any open session with that first message and a shorter history;
5. otherwise a new session, a child of the session in whose tool call it started (a sub-agent).

Implicit sessions end at ``end_turn``, on an uncaught exception (turn limit), at shutdown, after an idle
timeout, or when the bounded set of open sessions overflows; explicit sessions when their block exits.
"""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from . import foreign
from .extract import conversation_fingerprint, field_of, request_tool_results, text_of
from .records import Finding, ToolResult, ToolUse, Turn
from .spans import Rollup, attach_findings, failure_description, session_span_name, session_start_attributes

_explicit_session: contextvars.ContextVar[LiveSession | None] = contextvars.ContextVar(
    "otel_agent_trace_explicit_session", default=None
)
_active_session: contextvars.ContextVar[LiveSession | None] = contextvars.ContextVar(
    "otel_agent_trace_active_session", default=None
)

# The tool span running in this context: a sub-agent started inside a tool nests under it.
current_tool_span: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "otel_agent_trace_tool_span", default=None
)

_MAX_PENDING_TOOL_USES = 256


class PendingToolUse:
    """A ``tool_use`` waiting for its result, with the turn span it must be parented to."""

    __slots__ = ("dispatched", "span_context", "turn_end_ns", "turn_index", "use")

    def __init__(self, use: ToolUse, span_context: otel_context.Context, turn_index: int, turn_end_ns: int):
        self.use = use
        self.span_context = span_context
        self.turn_index = turn_index
        self.turn_end_ns = turn_end_ns
        self.dispatched = False


class LiveSession:
    """One agent run in progress: its span, rollups, detector state and pending tool uses."""

    def __init__(self, conversation_id: str, agent_name: str, span: Span, *, explicit: bool,
                 parent: LiveSession | None, analyzer: Any | None) -> None:
        self.id = conversation_id
        self.agent_name = agent_name
        self.span = span
        self.explicit = explicit
        self.parent = parent
        self.analyzer = analyzer
        self.lock = threading.RLock()
        self.turns = 0
        self.fingerprint: int | None = None
        self.message_count = 0
        self.last_stop_reason: str | None = None
        self.last_error: str | None = None
        self.last_turn: Turn | None = None
        self.last_activity = time.monotonic()
        self.pending: dict[str, PendingToolUse] = {}
        self.rollup = Rollup()
        self.ended = False
        self.end_reason: str | None = None
        self.final_findings: Sequence[Finding] = ()  # what the detectors said when the session ended

    def note_findings(self, findings: Sequence[Finding]) -> None:
        self.rollup.add_findings(findings)


class SessionTracker:
    """Finds or creates the session of each call; ends sessions; bounded in the number it keeps open."""

    def __init__(self, tracer: trace.Tracer, *, agent_name: str, idle_timeout: float, max_open: int,
                 analyzer_factory: Callable[[str], Any] | None,
                 on_session_end: Callable[[LiveSession], None] | None = None,
                 on_findings: Callable[[Sequence[Finding]], None] | None = None) -> None:
        self._tracer = tracer
        self._agent_name = agent_name
        self._idle_timeout = idle_timeout
        self._max_open = max_open
        self._analyzer_factory = analyzer_factory
        self._on_end = on_session_end
        self._on_findings = on_findings
        self._lock = threading.Lock()
        self._open: OrderedDict[str, LiveSession] = OrderedDict()
        self._by_tool_use: dict[str, LiveSession] = {}
        self._by_fingerprint: dict[int, list[LiveSession]] = {}

    # -- lifecycle ---------------------------------------------------------------------------------
    def open(self, agent_name: str | None, *, conversation_id: str | None = None, explicit: bool,
             parent: LiveSession | None, start_ns: int | None = None) -> LiveSession:
        conversation_id = conversation_id or uuid.uuid4().hex
        name = agent_name or self._agent_name
        if parent is None:
            parent_context = otel_context.get_current()
        else:
            parent_context = trace.set_span_in_context(current_tool_span.get() or parent.span)
        if parent is None or current_tool_span.get() is None:
            # Inside another library's chat or tool span: hang where the agent's run hangs (foreign.py).
            run_context = foreign.run_context()
            parent_context = parent_context if run_context is None else run_context
        span = self._tracer.start_span(
            session_span_name(name), context=parent_context, kind=SpanKind.INTERNAL,
            attributes=session_start_attributes(conversation_id, name, parent.id if parent else None),
            start_time=start_ns,
        )
        analyzer = self._analyzer_factory(conversation_id) if self._analyzer_factory else None
        session = LiveSession(conversation_id, name, span, explicit=explicit, parent=parent, analyzer=analyzer)
        evicted: list[LiveSession] = []
        with self._lock:
            self._open[conversation_id] = session
            while len(self._open) > self._max_open:
                evicted.append(self._open.popitem(last=False)[1])
        for old in evicted:
            self.end(old, "abandoned")
        return session

    def end(self, session: LiveSession, reason: str | None = None, *, end_ns: int | None = None) -> None:
        """End ``session`` exactly once: detector wrap-up, rollups, span end."""
        with session.lock:
            if session.ended:
                return
            session.ended = True
            session.end_reason = reason or self._default_end_reason(session)
        with self._lock:
            self._open.pop(session.id, None)
            for tool_use_id in session.pending:
                self._by_tool_use.pop(tool_use_id, None)
            if session.fingerprint is not None:
                bucket = self._by_fingerprint.get(session.fingerprint)
                if bucket is not None:
                    bucket[:] = [s for s in bucket if s is not session]
                    if not bucket:
                        del self._by_fingerprint[session.fingerprint]
        if _active_session.get() is session:
            _active_session.set(session.parent)
        try:
            self._finish_span(session, end_ns)
        finally:
            if self._on_end is not None:
                self._on_end(session)

    def _finish_span(self, session: LiveSession, end_ns: int | None) -> None:
        span = session.span
        if session.analyzer is not None:
            findings = session.analyzer.finish(session.last_turn, session.end_reason)
            if findings:
                session.note_findings(findings)
                session.final_findings = findings
                attach_findings(span, findings)
                if self._on_findings is not None:
                    self._on_findings(findings)
        span.set_attributes(session.rollup.attributes(session.end_reason))
        failed = failure_description(session.end_reason)
        if failed:
            span.set_status(Status(StatusCode.ERROR, session.last_error or failed))
        span.end(end_time=end_ns)

    @staticmethod
    def _default_end_reason(session: LiveSession) -> str:
        if session.last_error is not None and session.last_stop_reason is None:
            return "error"
        if session.last_stop_reason in ("end_turn", "stop_sequence", "max_tokens"):
            return "end_turn" if session.last_stop_reason == "stop_sequence" else session.last_stop_reason
        return "abandoned"

    def end_all(self, reason: str | None = None) -> None:
        with self._lock:
            sessions = list(self._open.values())
        for session in sessions:
            self.end(session, reason)

    def sweep_idle(self) -> None:
        """End sessions idle for longer than the timeout (oldest first; stops at the first fresh one)."""
        deadline = time.monotonic() - self._idle_timeout
        while True:
            with self._lock:
                if not self._open:
                    return
                oldest = next(iter(self._open.values()))
                if oldest.last_activity > deadline or oldest.explicit:
                    return
            self.end(oldest, None)

    # -- resolution --------------------------------------------------------------------------------
    def resolve(self, kwargs: dict[str, Any], start_ns: int) -> tuple[LiveSession, list[ToolResult]]:
        """The session this call belongs to (created if needed) and the tool results it carries."""
        messages = kwargs.get("messages")
        results = request_tool_results(messages)
        fingerprint = conversation_fingerprint(messages)
        count = len(messages) if isinstance(messages, Sequence) else 0
        session = self._match(results, fingerprint, count)
        if session is None:
            explicit = _explicit_session.get()
            if explicit is not None and not explicit.ended and explicit.turns == 0:
                session = explicit
            else:
                active = _active_session.get()
                parent = None
                if active is not None and not active.ended and active.last_stop_reason == "tool_use":
                    parent = active
                elif explicit is not None and not explicit.ended:
                    parent = explicit
                session = self.open(None, explicit=False, parent=parent, start_ns=start_ns)
        with session.lock:
            session.last_activity = time.monotonic()
            if fingerprint is not None and session.fingerprint is None:
                session.fingerprint = fingerprint
                with self._lock:
                    self._by_fingerprint.setdefault(fingerprint, []).append(session)
            session.message_count = max(session.message_count, count)
        _active_session.set(session)
        return session, results

    def _match(self, results: list[ToolResult], fingerprint: int | None, count: int) -> LiveSession | None:
        if results:
            with self._lock:
                for result in results:
                    session = self._by_tool_use.get(result.tool_use_id)
                    if session is not None and not session.ended:
                        return session
        explicit = _explicit_session.get()
        if explicit is not None and not explicit.ended and explicit.turns and explicit.fingerprint == fingerprint:
            return explicit
        active = _active_session.get()
        if (active is not None and not active.ended and fingerprint is not None
                and active.fingerprint == fingerprint and count > active.message_count):
            return active
        if fingerprint is None:
            return None
        with self._lock:
            for candidate in reversed(self._by_fingerprint.get(fingerprint, ())):
                if not candidate.ended and count > candidate.message_count and (
                        explicit is None or candidate is explicit or candidate.parent is explicit):
                    return candidate
        return None

    def expect_tool_uses(self, session: LiveSession, turn: Turn, turn_span: Span) -> None:
        """Remember the turn's tool_uses so results (dispatched or inferred) find their parent turn span."""
        if not turn.tool_uses:
            return
        parent_context = trace.set_span_in_context(turn_span)
        with session.lock:
            for use in turn.tool_uses:
                session.pending[use.id] = PendingToolUse(use, parent_context, turn.index, turn.end_ns)
            while len(session.pending) > _MAX_PENDING_TOOL_USES:
                stale = next(iter(session.pending))
                del session.pending[stale]
                with self._lock:
                    self._by_tool_use.pop(stale, None)
        with self._lock:
            for use in turn.tool_uses:
                self._by_tool_use[use.id] = session

    def owner_of_pending(self, tool_use_id: str | None, name: str, tool_input: Any) -> LiveSession | None:
        """The session waiting for this tool call, for calls made where no session is in context (a tool
        run on a worker thread the agent handed it to). Only on that rare path is every open session
        looked at, most recent first."""
        with self._lock:
            if tool_use_id and tool_use_id in self._by_tool_use:
                return self._by_tool_use[tool_use_id]
            sessions = list(self._open.values())
        for session in reversed(sessions):
            with session.lock:
                for pending in session.pending.values():
                    if not pending.dispatched and pending.use.name == name and pending.use.input == tool_input:
                        return session
        return None

    def take_pending(self, session: LiveSession, tool_use_id: str) -> PendingToolUse | None:
        with session.lock:
            pending = session.pending.pop(tool_use_id, None)
        if pending is not None:
            with self._lock:
                self._by_tool_use.pop(tool_use_id, None)
        return pending


def current_session() -> LiveSession | None:
    """The session a tool call made in this context belongs to."""
    explicit = _explicit_session.get()
    active = _active_session.get()
    if active is not None and not active.ended:
        return active
    return explicit if explicit is not None and not explicit.ended else None


def first_user_text(messages: Any) -> str | None:
    if isinstance(messages, Sequence) and messages:
        return text_of(field_of(messages[0], "content"))[:2_000]
    return None
