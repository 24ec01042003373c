"""Other GenAI instrumentation around the same call: one span per thing, whoever else instruments.

Frameworks (pydantic-ai, LangChain with LangSmith's OTel mode) and other instrumentors of the SDK (the
official GenAI instrumentor, OpenLLMetry, OpenInference) make their own ``chat`` / ``execute_tool`` spans.
Backends sum usage over every chat span and count every tool span, so a second span of ours would double
them. The rules (README, "Compatibility"):

- **A foreign chat span is current at call time** (a framework's, or an instrumentor patched after us):
  we *borrow* it instead of starting our own. Our turn's attributes are added where it has none (its own
  values win), our findings become events on it, its owner ends it. Tool spans of that turn are children
  of it, and our session hangs where it hangs (the agent's run), never under it.
- **That span comes from a framework** (any scope that is not an instrumentor of the SDK): the framework
  traces its tools too, so inferred tool calls of the turn are recorded (detectors, rollups, JSONL)
  without a span of ours; their findings go on the session span.
- **An instrumentor patched the SDK before us** (its wrapper runs inside ours): it is called with
  instrumentation suppressed. One that ignores suppression is noticed where the SDK would start its own
  span; it keeps the usage, and our turn span says so (``agent_trace.usage.reported_by``). LangSmith's
  OTel mode, whose spans are made after the call, is recognised from its settings and treated the same.
- **A foreign chat span started around the call without being made current** (OpenLLMetry after us): a
  span processor on the SDK tracer provider notes it as it starts, and the call borrows it.
- **A foreign tool span is current when a traced dispatcher runs**: it is borrowed the same way (tools.py).

Spans are recognised by what they say: ``gen_ai.operation.name`` (pydantic-ai, the official instrumentor,
OpenLLMetry, the SDK, LangSmith), ``llm.request.type`` and ``traceloop.span.kind`` (older OpenLLMetry),
``openinference.span.kind`` (OpenInference).
"""

from __future__ import annotations

import contextvars
import os
import sys
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import NonRecordingSpan, Span
from opentelemetry.util.types import Attributes, AttributeValue

from otel_agent_trace import semconv as sc

_USAGE_PREFIX = "gen_ai.usage."
_CHAT_OPERATIONS = frozenset({sc.OP_CHAT, "text_completion", "generate_content"})

# Instrumentors of the anthropic SDK itself trace the call only; everything else around a chat span is
# an agent framework that also traces its tools.
_SDK_INSTRUMENTOR_SCOPES = ("opentelemetry.instrumentation.anthropic", "opentelemetry.instrumentation.genai",
                            "openinference.instrumentation.anthropic", "com.anthropic.sdk")


def _attributes(span: Any) -> Mapping[str, Any]:
    attributes = getattr(span, "attributes", None)
    return attributes if isinstance(attributes, Mapping) else {}


def _scope(span: Any) -> str:
    return str(getattr(getattr(span, "instrumentation_scope", None), "name", "") or "")


def is_foreign(span: Any, operation: str) -> bool:
    """Whether ``span`` is another library's open GenAI span for ``operation`` (chat or execute_tool)."""
    if span is None or not span.is_recording() or _scope(span) == sc.INSTRUMENTATION_SCOPE:
        return False
    attributes = _attributes(span)
    declared = attributes.get(sc.OPERATION_NAME)
    openinference = attributes.get("openinference.span.kind")
    if operation == sc.OP_CHAT:
        return (declared in _CHAT_OPERATIONS or attributes.get("llm.request.type") in ("chat", "completion")
                or openinference == "LLM")
    if operation == sc.OP_EXECUTE_TOOL:
        return declared == sc.OP_EXECUTE_TOOL or openinference == "TOOL" \
            or attributes.get("traceloop.span.kind") == "tool"
    return False


def current_foreign(operation: str) -> Span | None:
    """The current span when it is another library's span for ``operation``; never raises."""
    try:
        span = trace.get_current_span()
        return span if is_foreign(span, operation) else None
    except Exception:
        return None


# The last foreign chat span started in this context that no call has taken yet (see StartWatcher).
_started: contextvars.ContextVar[Span | None] = contextvars.ContextVar("otel_agent_trace_foreign_started",
                                                                      default=None)


class StartWatcher(SpanProcessor):
    """Notes another library's chat span as it starts, for the call about to run in the same context.

    OpenLLMetry instrumented after us starts its chat span around our wrapper without making it current,
    so nothing else could see it. Each noted span is taken by one call at most: a span that never ends
    (OpenLLMetry loses the span of an abandoned stream) can't be taken again by a later call.
    """

    def on_start(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        try:
            if is_foreign(span, sc.OP_CHAT):
                _started.set(span)
        except Exception:
            pass

    def on_end(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


_watched: weakref.WeakSet[Any] = weakref.WeakSet()


def watch(provider: Any) -> None:
    """Install one StartWatcher on an SDK tracer provider (providers have no way to remove one: it stays,
    and only notes spans, which cost nothing while we are not instrumenting)."""
    try:
        if hasattr(provider, "add_span_processor") and provider not in _watched:
            provider.add_span_processor(StartWatcher())
            _watched.add(provider)
    except Exception:
        pass


def _take_started() -> Span | None:
    span = _started.get()
    if span is None:
        return None
    _started.set(None)
    return span if span.is_recording() else None


_LANGSMITH = "langsmith"


class ReportedElsewhere(NonRecordingSpan):
    """Marks a call another library reports on a span we can't reach (made after the call, elsewhere)."""

    def __init__(self, reporter: str) -> None:
        super().__init__(trace.INVALID_SPAN_CONTEXT)
        self.reporter = reporter


def _flag(name: str) -> bool:
    return any(os.environ.get(f"{ns}_{name}", "").lower() == "true" for ns in ("LANGSMITH", "LANGCHAIN"))


def langsmith_reports(client: Any) -> bool:
    """Whether LangSmith's OTel mode will export this call as a chat span with usage.

    It builds that span from the LangChain run record after the fact, in its own trace, and it is never
    current during the call, so it can't be borrowed: the call is recognised by the client LangChain
    made (its User-Agent) and LangSmith's settings — the tracer in context, else the environment.
    """
    if _LANGSMITH not in sys.modules:
        return False
    headers = getattr(client, "_custom_headers", None)
    agent = next((str(v) for k, v in headers.items() if k.lower() == "user-agent"), "") \
        if isinstance(headers, Mapping) else ""
    if not agent.lower().startswith("langchain"):
        return False
    context = sys.modules.get("langchain_core.tracers.context")
    tracer = getattr(context, "tracing_v2_callback_var", None)
    tracer = tracer.get() if tracer is not None else None
    if tracer is not None:
        return getattr(getattr(tracer, "client", None), "_tracing_mode", None) in ("otel", "hybrid")
    mode = (os.environ.get("LANGSMITH_TRACING_MODE") or os.environ.get("LANGCHAIN_TRACING_MODE") or "").lower()
    otel = mode in ("otel", "hybrid") if mode else _flag("OTEL_ENABLED")
    return otel and (_flag("TRACING") or _flag("TRACING_V2"))


def chat_span_for(client: Any) -> Span | None:
    """At call time: another library's span for this call, current (borrowed later) or out of reach."""
    span = current_foreign(sc.OP_CHAT) or _take_started()
    if span is None:
        try:
            if langsmith_reports(client):
                return ReportedElsewhere(_LANGSMITH)
        except Exception:
            return None
    return span


def note_inner_chat_span(call: Any) -> None:
    """Called from inside our turn's HTTP request (where the SDK would start its own span): a foreign chat
    span current there was started inside our wrapper by an instrumentor that ignores suppression (the
    official GenAI one patched before us). Remembered, so the turn leaves usage to it."""
    if call is not None and call.foreign is None:
        call.foreign = current_foreign(sc.OP_CHAT)


def traces_its_tools(span: Any) -> bool:
    """Whether the library behind a foreign chat span makes its own tool spans (a framework does)."""
    return not _scope(span).startswith(_SDK_INSTRUMENTOR_SCOPES)


def run_context() -> otel_context.Context | None:
    """Where a new session belongs when another library's span is current, or None to keep ours.

    Inside a foreign chat span: where that span hangs (the agent's run; a root if it has no parent).
    Inside a foreign tool span: under it, so a sub-agent run from a framework's tool nests in the tool.
    """
    try:
        span = trace.get_current_span()
        if is_foreign(span, sc.OP_CHAT):
            parent = getattr(span, "parent", None)
            # An empty Context is falsy: callers compare with None.
            root = otel_context.Context()
            return root if parent is None else trace.set_span_in_context(NonRecordingSpan(parent), root)
        if is_foreign(span, sc.OP_EXECUTE_TOOL):
            return otel_context.get_current()
    except Exception:
        return None
    return None


# OpenLLMetry honours its own key meant for exactly this (other instrumentation keeps working); OpenInference
# and the official instrumentor honour only the general one.
_QUIET_KEYS = ("suppress_language_model_instrumentation", _SUPPRESS_INSTRUMENTATION_KEY)
# wrapt 2's function wrappers are not ObjectProxy subclasses.
_WRAPT_TYPES = tuple(t for t in (getattr(wrapt, name, None) for name in ("ObjectProxy", "FunctionWrapper",
                                                                         "BoundFunctionWrapper")) if t)


def quieted(wrapped: Callable[..., Any], *, is_async: bool = False) -> Callable[..., Any]:
    """``wrapped`` as our wrapper should call it: when another instrumentor patched the SDK method before
    us (its wrapt wrapper sits inside ours), it runs with instrumentation suppressed, so that instrumentor
    skips the call our turn already traces. Otherwise ``wrapped`` itself, untouched."""
    if not isinstance(wrapped, _WRAPT_TYPES):
        return wrapped

    def quiet() -> object:
        ctx = otel_context.get_current()
        for key in _QUIET_KEYS:
            ctx = otel_context.set_value(key, True, ctx)
        return otel_context.attach(ctx)

    if is_async:
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            token = quiet()
            try:
                return await wrapped(*args, **kwargs)
            finally:
                otel_context.detach(token)

        return call_async

    def call(*args: Any, **kwargs: Any) -> Any:
        token = quiet()
        try:
            return wrapped(*args, **kwargs)
        finally:
            otel_context.detach(token)

    return call


class BorrowedSpan(Span):
    """Another library's open span, lent to the recorder in place of a span of ours.

    Attributes are added only where the span has none (its owner's values win, and the owner may still
    set its usage after us), our finding events are added, exceptions and status are left to the owner
    (it records them itself), and ``end`` is the owner's.
    """

    def __init__(self, span: Span) -> None:
        self.span = span

    def get_span_context(self) -> trace.SpanContext:
        return self.span.get_span_context()

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        existing = _attributes(self.span)
        fresh = {key: value for key, value in attributes.items() if key not in existing}
        if fresh:
            self.span.set_attributes(fresh)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.set_attributes({key: value})

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        if name != "exception":
            self.span.add_event(name, attributes, timestamp)

    def add_link(self, context: trace.SpanContext, attributes: Attributes = None) -> None:
        pass

    def update_name(self, name: str) -> None:
        pass

    def is_recording(self) -> bool:
        return self.span.is_recording()

    def set_status(self, status: Any, description: str | None = None) -> None:
        pass

    def record_exception(self, exception: BaseException, attributes: Attributes = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        pass

    def end(self, end_time: int | None = None) -> None:
        pass


class UntracedToolSpan(BorrowedSpan):
    """Stands in for the span of a tool call a framework traced itself: nothing of ours is emitted, and
    findings on the call go on the session span (still open) instead of being lost."""

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        pass

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        if name == sc.FINDING_EVENT:
            self.span.add_event(name, attributes, timestamp)


def usage_reporter(foreign: Span | None, ours: Span) -> str | None:
    """Who reports this call's usage when it is not our turn span: an instrumentor inside our wrapper made
    its own chat span (and ended it with the usage on it), or LangSmith will make one later. Our span then
    keeps everything else (the turn, its tools, findings) and leaves ``gen_ai.usage.*`` to that one. None
    when ours carries the usage, or when ours is the borrowed foreign span itself (its own values win)."""
    if foreign is None or isinstance(ours, BorrowedSpan):
        return None
    return getattr(foreign, "reporter", None) or _scope(foreign) or "unknown"


def tool_stand_in(turn_span: Span, session_span: Span) -> Span | None:
    """For an inferred tool call: a stand-in when the turn's span is a framework's (which traced the tool
    itself), else None to make a span of ours."""
    if isinstance(turn_span, BorrowedSpan) and traces_its_tools(turn_span.span):
        return UntracedToolSpan(session_span)
    if _attributes(turn_span).get(sc.USAGE_REPORTED_BY) == _LANGSMITH:  # LangChain's tools are traced too
        return UntracedToolSpan(session_span)
    return None


__all__ = ["BorrowedSpan", "ReportedElsewhere", "UntracedToolSpan", "chat_span_for", "current_foreign", "is_foreign",
           "langsmith_reports", "note_inner_chat_span", "quieted", "run_context",
           "tool_stand_in", "traces_its_tools", "usage_reporter", "watch"]
