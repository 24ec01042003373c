"""Sessions: which agent run a model call belongs to, and the ``invoke_agent`` span that groups its turns.

A call is matched to a session, most reliable evidence first:

1. its ``tool_result`` blocks answer ``tool_use`` ids a session issued (ids are unique, so this never
   mixes agents running side by side);
2. the explicit ``agent_session(...)`` active in this context;
3. the implicit session last active in this context (thread or asyncio task), when the call's
   ``messages`` start with the same first message and are longer than that session's last request;
4. any open session with that first message and a shorter history (the most recent few are looked at,
   so matching costs the same however many runs of one task are open);
5. otherwise a new session, a child of the session in whose tool call it started (a sub-agent).

Two rules keep retries and repeated runs apart. A call that fails (HTTP or network error, a refusal by
the SDK before sending) gives its history length and its turn number back, so the call that re-sends the
same conversation continues the same session as the same turn. A request that starts the task of the
session last active in this context again from the top, after that session's last call succeeded, is a
new run of the task: the previous run ends and the new one becomes its sibling, never its sub-agent.

Implicit sessions end at ``end_turn``, on an uncaught exception (turn limit), at shutdown, after an idle
timeout, or when the bounded set of open sessions overflows; explicit sessions when their block exits.
"""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span

from otel_agent_trace.instrumentation import foreign
from otel_agent_trace.instrumentation.extract import field_of, text_of
from otel_agent_trace.model.records import Request, ToolCall, ToolResult, ToolUse, Turn, end_reason
from otel_agent_trace.pipeline.sink import RecordSink, SessionLedger
from otel_agent_trace.pipeline.spans import inferred_tool_start_attributes

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

# Between a response that asks for one tool and the request carrying its result, the inferred tool span is
# current in the agent's context, so a sub-agent, the tool's own spans and its HTTP calls nest under it.
# Each entry: (owner session, context before, context we made current, the entry it covers).
_tool_context: contextvars.ContextVar[tuple[Any, ...] | None] = contextvars.ContextVar(
    "otel_agent_trace_tool_context", default=None
)

_MAX_PENDING_TOOL_USES = 256
_MATCH_CANDIDATES = 8  # open sessions of one task looked at per call, most recent first


class PendingToolUse:
    """A ``tool_use`` waiting for its result, with the turn span it must be parented to."""

    __slots__ = ("call", "dispatched", "span", "span_context", "turn_end_ns", "turn_index", "use")

    def __init__(self, use: ToolUse, span_context: otel_context.Context, turn_index: int, turn_end_ns: int,
                 span: Span | None = None):
        self.use = use
        self.span_context = span_context
        self.turn_index = turn_index
        self.turn_end_ns = turn_end_ns
        self.span = span  # the execute_tool span started when the response arrived, if inferred
        self.dispatched = False
        self.call: ToolCall | None = None  # the dispatcher's or decorator's record, once the tool returned


class LiveSession(SessionLedger):
    """One agent run in progress: the sink's ledger plus what matching needs (history, pending tools)."""

    def __init__(self, conversation_id: str, agent_name: str, span: Span, *, explicit: bool,
                 parent: LiveSession | None, analyzer: Any | None) -> None:
        super().__init__(conversation_id, agent_name, span, parent.id if parent else None, analyzer)
        self.explicit = explicit
        self.parent = parent
        self.turns = 0
        self.fingerprint: int | None = None
        self.message_count = 0
        self.last_stop_reason: str | None = None
        self.last_error: str | None = None
        self.last_activity = time.monotonic()
        self.pending: dict[str, PendingToolUse] = {}
        self.ended = False
        self.announced = False  # its start line is in the JSONL file
        self.end_reason: str | None = None
        # In a message thread, the latest reply's id: the thread's next request names it as the one it continues.
        self.threaded = False
        self.last_reply_id: str | None = None

    def forget_attempt(self, turn: Turn, previous_count: int) -> None:
        """A failed call gives back its turn number and history length, so its retry continues here as the
        same turn. Call with ``lock`` held."""
        if self.turns == turn.index:
            self.turns -= 1
        if self.message_count == turn.message_count:
            self.message_count = previous_count
        self.last_stop_reason = None


class SessionTracker:
    """Finds or creates the session of each call; ends sessions; bounded in the number it keeps open."""

    def __init__(self, sink: RecordSink, *, agent_name: str, idle_timeout: float, max_open: int) -> None:
        self._sink = sink
        self._agent_name = agent_name
        self._idle_timeout = idle_timeout
        self._next_sweep = 0.0  # monotonic time before which no open session can have gone idle
        self._max_open = max_open
        self._lock = threading.Lock()
        self._open: OrderedDict[str, LiveSession] = OrderedDict()
        self._by_tool_use: dict[str, LiveSession] = {}
        self._by_fingerprint: dict[int, OrderedDict[str, LiveSession]] = {}
        self._by_reply: dict[str, LiveSession] = {}  # a threaded session's latest reply id → the session

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
        span = self._sink.session_span(conversation_id, name, parent.id if parent else None, parent_context,
                                       start_ns)
        session = LiveSession(conversation_id, name, span, explicit=explicit, parent=parent,
                              analyzer=self._sink.analyzer(conversation_id))
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
            if session.last_reply_id is not None:
                self._by_reply.pop(session.last_reply_id, None)
            if session.fingerprint is not None:
                bucket = self._by_fingerprint.get(session.fingerprint)
                if bucket is not None:
                    bucket.pop(session.id, None)
                    if not bucket:
                        del self._by_fingerprint[session.fingerprint]
        if _active_session.get() is session:
            _active_session.set(session.parent)
        leave_tool_context(session)
        with session.lock:
            unanswered = [p for p in session.pending.values() if p.span is not None and not p.dispatched]
            unsent = [p for p in session.pending.values() if p.call is not None]
            session.pending.clear()
        for pending in unanswered:  # asked for, never answered: the run ended first
            self._sink.unanswered_tool(session, pending.span, end_ns)  # type: ignore[arg-type]
        if unsent:  # run by a dispatcher, but the run ended before their results went out with a request
            self._sink.unsent_tool_calls([p.call for p in unsent if p.call is not None])
        self._sink.end_session(session, session.end_reason, end_ns, error=session.last_error)

    @staticmethod
    def _default_end_reason(session: LiveSession) -> str:
        return end_reason(session.last_stop_reason,
                          failed=session.last_error is not None and session.last_stop_reason is None)

    def end_all(self, reason: str | None = None) -> None:
        with self._lock:
            sessions = list(self._open.values())
        for session in sessions:
            self.end(session, reason)

    def sweep_idle(self) -> None:
        """End sessions idle for longer than the timeout (oldest first; stops at the first fresh one).
        Runs on every call, so it remembers when the oldest session can expire at the earliest and does
        nothing until then."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        deadline = now - self._idle_timeout
        while True:
            with self._lock:
                if not self._open:
                    self._next_sweep = now + self._idle_timeout  # a session opened from now on expires later
                    return
                oldest = next(iter(self._open.values()))
                if oldest.explicit:
                    self._next_sweep = 0.0  # ended by its block, not by idleness: look again next call
                    return
                if oldest.last_activity > deadline:
                    self._next_sweep = oldest.last_activity + self._idle_timeout
                    return
            self.end(oldest, None)

    # -- resolution --------------------------------------------------------------------------------
    def resolve(self, request: Request, start_ns: int) -> tuple[LiveSession, int]:
        """The session this call belongs to (created if needed), and the session's history length before
        this call (given back if the call fails)."""
        _leave_ended_tool_contexts()
        fingerprint, count = request.fingerprint, request.message_count
        session = self._match(request.tool_results, fingerprint, count, request.continues)
        if session is None:
            session = self._new_run(fingerprint, start_ns)
        with session.lock:
            session.last_activity = time.monotonic()
            session.threaded = session.threaded or request.threaded
            if fingerprint is not None and session.fingerprint is None:
                session.fingerprint = fingerprint
                with self._lock:
                    self._by_fingerprint.setdefault(fingerprint, OrderedDict())[session.id] = session
            previous_count = session.message_count
            session.message_count = max(session.message_count, count)
        _active_session.set(session)
        return session, previous_count

    def _new_run(self, fingerprint: int | None, start_ns: int) -> LiveSession:
        explicit = _explicit_session.get()
        if explicit is not None and not explicit.ended and explicit.turns == 0:
            return explicit
        active = _active_session.get()
        parent = None
        if active is not None and not active.ended:
            if fingerprint is not None and active.fingerprint == fingerprint and not active.explicit:
                # The same task from the top again (an eval harness, a caller retrying a whole run): the
                # previous run is over, and the new one is its sibling, not its sub-agent.
                parent = active.parent if active.parent is not None and not active.parent.ended else None
                self.end(active)
            elif active.last_stop_reason == "tool_use":
                parent = active
        if parent is None and explicit is not None and not explicit.ended:
            parent = explicit
        return self.open(None, explicit=False, parent=parent, start_ns=start_ns)

    def _match(self, results: list[ToolResult], fingerprint: int | None, count: int,
               continues: str | None) -> LiveSession | None:
        # A message thread's request sends only what the server lacks, so neither its first message nor its
        # length says whose it is; the reply it continues from does, exactly.
        if continues is not None:
            with self._lock:
                session = self._by_reply.get(continues)
            if session is not None and not session.ended:
                return session
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
            bucket = self._by_fingerprint.get(fingerprint)
            if not bucket:
                return None
            for looked, candidate in enumerate(reversed(bucket.values())):
                if looked == _MATCH_CANDIDATES:
                    break
                if not candidate.ended and count > candidate.message_count and (
                        explicit is None or candidate is explicit or candidate.parent is explicit):
                    return candidate
        return None

    def note_reply(self, session: LiveSession, reply_id: str) -> None:
        """A threaded session's latest reply: the thread's next request continues from it. Only the latest
        is kept per session (a thread continues from its last reply), so the index holds one id per open
        threaded session."""
        with self._lock:
            if session.ended:  # end() has already cleared its entry
                return
            if session.last_reply_id is not None:
                self._by_reply.pop(session.last_reply_id, None)
            self._by_reply[reply_id] = session
            session.last_reply_id = reply_id

    def expect_tool_uses(self, session: LiveSession, turn: Turn, parent_context: otel_context.Context, *,
                         start_spans: bool, make_current: bool, stand_in: Span | None = None) -> None:
        """Remember the turn's tool_uses so results (dispatched or inferred) find their parent turn span.

        With ``start_spans`` each gets its ``execute_tool`` span now, when the response asks for it; with
        ``make_current`` and a single tool, that span is current in the agent's context until the request
        carrying its result, so work done inside the tool nests under it. ``stand_in`` replaces those spans
        when a framework traces its own tools (foreign.py): the calls are still recorded, without a span.
        ``parent_context``: the context holding the turn's span, the tool spans' parent."""
        if not turn.tool_uses:
            return
        stale: list[PendingToolUse] = []
        with session.lock:
            for use in turn.tool_uses:
                span = stand_in
                if start_spans and stand_in is None:
                    span = self._sink.tool_span(use.name, parent_context, turn.end_ns,
                                                inferred_tool_start_attributes(use, turn.index, session.id))
                session.pending[use.id] = PendingToolUse(use, parent_context, turn.index, turn.end_ns, span)
            while len(session.pending) > _MAX_PENDING_TOOL_USES:
                stale_id = next(iter(session.pending))
                stale.append(session.pending.pop(stale_id))
                with self._lock:
                    self._by_tool_use.pop(stale_id, None)
        for pending in stale:
            if pending.span is not None and not pending.dispatched:
                pending.span.end()
        with self._lock:
            for use in turn.tool_uses:
                self._by_tool_use[use.id] = session
        if make_current and start_spans and stand_in is None and len(turn.tool_uses) == 1:
            only = session.pending.get(turn.tool_uses[0].id)
            if only is not None and only.span is not None:
                enter_tool_context(session, only.span)

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


def enter_tool_context(session: LiveSession, span: Span) -> None:
    """Make ``span`` current in this context until ``leave_tool_context(session)``."""
    before = otel_context.get_current()
    ours = trace.set_span_in_context(span, before)
    otel_context.attach(ours)
    _tool_context.set((session, before, ours, _tool_context.get(), current_tool_span.get()))
    current_tool_span.set(span)


def leave_tool_context(session: LiveSession) -> None:
    """Undo ``enter_tool_context`` for ``session`` in this context; a no-op for any other session (a
    sub-agent's calls run inside its parent's tool and leave the parent's tool current)."""
    entry = _tool_context.get()
    if entry is None or entry[0] is not session:
        return
    _, before, ours, covered, tool_span = entry
    _tool_context.set(covered)
    current_tool_span.set(tool_span)
    # No detach: the token belongs to another call frame. Re-attaching what was current is the same end
    # state; if the agent made something else current meanwhile, that is left alone.
    if otel_context.get_current() is ours:
        otel_context.attach(before)


def _leave_ended_tool_contexts() -> None:
    """A run that ended with a tool still current here (its session ended on another thread, by idle
    timeout or eviction) must not parent what this context does next."""
    entry = _tool_context.get()
    while entry is not None and entry[0].ended:
        leave_tool_context(entry[0])
        entry = _tool_context.get()


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
