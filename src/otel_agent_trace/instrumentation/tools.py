"""Tool spans from the user's dispatcher (patched by dotted path) or from ``@trace_tool``.

Both produce one ``execute_tool`` span per call, parented to the turn whose ``tool_use`` asked for it
(found by tool_use id, else by name and input among the session's pending tool uses). Calls nobody
traced are inferred later from the next request's ``tool_result`` blocks (see ``AgentTracer``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys
import time
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from opentelemetry.trace import Span, SpanKind

from otel_agent_trace import semconv as sc
from otel_agent_trace.detectors.errors import tool_result_is_error
from otel_agent_trace.instrumentation import foreign
from otel_agent_trace.instrumentation.extract import field_of, text_of
from otel_agent_trace.instrumentation.recorder import AgentTracer, log_once
from otel_agent_trace.instrumentation.sessions import LiveSession, PendingToolUse, current_session, current_tool_span
from otel_agent_trace.model.records import ToolCall, ToolSource
from otel_agent_trace.pipeline.sink import record_error, safe_str
from otel_agent_trace.pipeline.spans import tool_span_name

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("otel_agent_trace")


_NAME_KEYS = ("name", "tool_name", "tool")
_INPUT_KEYS = ("input", "tool_input", "arguments", "args", "params")
_ID_KEYS = ("tool_use_id", "id", "tool_call_id")


def _block_in(args: tuple[Any, ...]) -> Any:
    """The first positional argument shaped like a ``tool_use`` block (has a name and an input): the
    ``(block)`` shape, and ``(context, block)`` / ``(tool, block)`` like the SDK tool runner's own."""
    return next((arg for arg in args if not isinstance(arg, (str, bytes))
                 and field_of(arg, "name") is not None and field_of(arg, "input") is not None), None)


def describe_call(args: tuple[Any, ...], kwargs: Mapping[str, Any], default_name: str | None
                  ) -> tuple[str | None, Any, str | None]:
    """(tool name, input, tool_use id) from the common dispatcher shapes: ``(block)`` (also after other
    arguments), ``(name, input)``, keyword forms, or — for a decorated per-tool function — its own name
    and arguments. The name is None when a dispatcher's call matches none of them."""
    block = _block_in(args)
    if block is not None:
        return str(field_of(block, "name")), field_of(block, "input"), field_of(block, "id")
    name = next((kwargs[k] for k in _NAME_KEYS if isinstance(kwargs.get(k), str)), None)
    tool_input = next((kwargs[k] for k in _INPUT_KEYS if k in kwargs), None)
    tool_use_id = next((kwargs[k] for k in _ID_KEYS if isinstance(kwargs.get(k), str)), None)
    if default_name is None and args and isinstance(args[0], str):
        name = name or args[0]
        if tool_input is None and len(args) > 1:
            tool_input = args[1]
        if tool_use_id is None and len(args) > 2 and isinstance(args[2], str):
            tool_use_id = args[2]
    if default_name is not None:
        name = default_name
        tool_input = dict(kwargs) if kwargs else (args[0] if len(args) == 1 else list(args))
    return (None if name is None else str(name)), tool_input, tool_use_id


_unknown_shapes: set[str] = set()


def call_shape(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """How a call looked, by argument types and keyword names (never values: they may hold content)."""
    return "(" + ", ".join([type(arg).__name__ for arg in args] + [f"{key}=" for key in kwargs]) + ")"


def _warn_unknown_shape(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    shape = call_shape(args, kwargs)
    if shape not in _unknown_shapes:
        _unknown_shapes.add(shape)
        log.warning("otel_agent_trace: the tool dispatcher was called as %s, which is none of the shapes it "
                    "understands ((name, input), (block), or name=/input= keywords): no tool span for it; "
                    "tool spans for these calls are inferred from the next request instead", shape)


def _match_pending(session: LiveSession, name: str, tool_input: Any, tool_use_id: str | None
                   ) -> PendingToolUse | None:
    with session.lock:
        pending = [p for p in session.pending.values() if not p.dispatched]
        found = None
        if tool_use_id is not None:
            found = session.pending.get(tool_use_id)
        found = found or next((p for p in pending if p.use.name == name and p.use.input == tool_input), None)
        found = found or next((p for p in pending if p.use.name == name), None)
        found = found or next((p for p in pending if p.use.input == tool_input), None)
        if found is not None:
            found.dispatched = True
        return found


def _result_is_error(result: Any, text: str) -> bool:
    """An explicit ``is_error`` on the returned value wins; otherwise the text decides, as it does for
    inferred and imported tool calls, so every source flags the same results."""
    flag = None if isinstance(result, (str, bytes, list, tuple)) else field_of(result, "is_error")
    return tool_result_is_error(text, None if flag is None else bool(flag))


def _result_text(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, Mapping) and "content" in result:
        return text_of(result["content"])
    return "" if result is None else safe_str(result, "(unprintable result)")


class ToolRun:
    """One traced tool execution: span and record, finished exactly once."""

    __slots__ = ("_token", "_tool_token", "call", "hub", "pending", "session", "span")

    def __init__(self, hub: AgentTracer, session: LiveSession | None, call: ToolCall, span: Span,
                 pending: PendingToolUse | None) -> None:
        self.hub, self.session, self.call, self.span, self.pending = hub, session, call, span, pending
        self._token = otel_context.attach(trace.set_span_in_context(span))
        self._tool_token = current_tool_span.set(span)

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        try:
            otel_context.detach(self._token)
            current_tool_span.reset(self._tool_token)
        except Exception:
            pass
        call = self.call
        call.end_ns = time.time_ns()
        try:
            if error is not None:
                call.is_error = True
                call.error_type = type(error).__qualname__
                call.result = safe_str(error, f"{type(error).__name__} (unprintable)")
                record_error(self.span, error, call.end_ns)
            else:
                call.result = _result_text(result)
                call.is_error = _result_is_error(result, call.result)
        except Exception:
            log_once("tool_result", "otel_agent_trace: could not read a tool result")
        if self.pending is not None:
            self.pending.call = call
        try:
            if self.session is None:
                self.span.end(end_time=call.end_ns)
            else:
                self.hub.record_tool_span(self.session, call, otel_context.get_current(), span=self.span)
        except Exception:
            log_once("tool_finish", "otel_agent_trace: could not finish a tool span")
            if self.span.is_recording():
                self.span.end(end_time=call.end_ns)


def start_tool(hub: AgentTracer, args: tuple[Any, ...], kwargs: Mapping[str, Any], *,
               default_name: str | None, source: ToolSource) -> ToolRun | None:
    # A wrapper can outlive its instrumentation (user code bound the patched dispatcher to a name):
    # only a live hub traces.
    if not hub.live or not is_instrumentation_enabled():
        return None
    try:
        name, tool_input, tool_use_id = describe_call(args, kwargs, default_name)
        if name is None:
            # A span named "tool" with no call id and turn 0 would only add noise: say so once instead.
            _warn_unknown_shape(args, kwargs)
            return None
        session = current_session() or hub.sessions.owner_of_pending(tool_use_id, name, tool_input)
        pending = _match_pending(session, name, tool_input, tool_use_id) if session is not None else None
        if pending is None and default_name is not None and session is not None:
            # A decorated dispatcher (``(name, input)`` or ``(block)``) rather than a per-tool function.
            as_dispatcher = describe_call(args, kwargs, None)
            if as_dispatcher[0] is not None:
                name, tool_input, tool_use_id = as_dispatcher
                pending = _match_pending(session, name, tool_input, tool_use_id)
        now = time.time_ns()
        call = ToolCall(
            session=session.id if session else "", tool_use_id=(pending.use.id if pending else tool_use_id) or "",
            name=pending.use.name if pending else name, turn_index=pending.turn_index if pending else 0,
            input=tool_input, start_ns=now, source=source,
        )
        # From now on this hub's tool spans start when tools run, not when responses ask for them.
        hub.tools_traced_by_user = True
        # Another library's tool span already running this call (the SDK tool runner's, pydantic-ai's):
        # ours would be a second span for one tool call, so it is borrowed instead.
        borrowed = foreign.current_foreign(sc.OP_EXECUTE_TOOL)
        span: Span
        if borrowed is not None:
            span = foreign.BorrowedSpan(borrowed)
        elif pending is not None and pending.span is not None:
            span = pending.span  # started when the response asked for this tool: it is ours to finish now
        else:
            parent = pending.span_context if pending is not None else otel_context.get_current()
            span = hub.tracer.start_span(tool_span_name(call.name), context=parent, kind=SpanKind.INTERNAL,
                                         start_time=now)
        return ToolRun(hub, session, call, span, pending)
    except Exception:
        log_once("tool_start", "otel_agent_trace: could not start a tool span")
        return None


def _call(run: ToolRun | None, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if run is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        run.finish(error=error)
        raise
    run.finish(result)
    return result


async def _call_async(run: ToolRun | None, wrapped: Callable[..., Any], args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
    if run is None:
        return await wrapped(*args, **kwargs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as error:
        run.finish(error=error)
        raise
    run.finish(result)
    return result


def tool_wrapper(hub: AgentTracer, *, default_name: str | None, source: ToolSource,
                 is_async: bool) -> Callable[..., Any]:
    """A wrapt wrapper tracing each call of a dispatcher or tool function (sync or async)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return _call(start_tool(hub, args, kwargs, default_name=default_name, source=source), wrapped, args, kwargs)

    async def async_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                            kwargs: dict[str, Any]) -> Any:
        run = start_tool(hub, args, kwargs, default_name=default_name, source=source)
        return await _call_async(run, wrapped, args, kwargs)

    return async_wrapper if is_async else wrapper


# The SDK's beta tool runner runs each tool through one of these methods, ``(tool, tool_use)`` or
# ``(tool_use)``; patched like a dispatcher, so runner-driven agents get tool spans out of the box with
# the runner's own tool_use ids. Methods missing from an SDK version are skipped by the instrumentor.
def _runner_tool(hub: AgentTracer) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return _call(start_tool(hub, args, kwargs, default_name=None, source="dispatcher"), wrapped, args, kwargs)

    return wrapper


def _async_runner_tool(hub: AgentTracer) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        run = start_tool(hub, args, kwargs, default_name=None, source="dispatcher")
        return await _call_async(run, wrapped, args, kwargs)

    return wrapper


def _runner_tool_span(hub: AgentTracer) -> Callable[..., Any]:
    """The runner's own ``execute_tool`` span would be a second span for the call, and it hangs under the
    runner rather than under the turn that asked for the tool: while we trace, the runner gets its own
    spanless path (a bare record it fills in with the result)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not hub.live or not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        return contextlib.nullcontext(types.SimpleNamespace(result=None, content=None))

    return wrapper


_RUNNER = "anthropic.lib.tools._beta_runner"
TOOL_RUNNER_TARGETS: tuple[tuple[str, str, Callable[..., Any]], ...] = (
    (_RUNNER, "BaseToolRunner._tool_use_span", _runner_tool_span),
    (_RUNNER, "BaseSyncToolRunner._run_tool", _runner_tool),
    (_RUNNER, "BaseSyncToolRunner._run_toolset_member", _runner_tool),
    (_RUNNER, "BaseAsyncToolRunner._run_tool", _async_runner_tool),
    (_RUNNER, "BaseAsyncToolRunner._run_toolset_member", _async_runner_tool),
)


def trace_tool(name_or_function: Any = None) -> Any:
    """Decorator: ``@trace_tool`` or ``@trace_tool("read_file")`` on a tool function (sync or async).

    Each call becomes an ``execute_tool`` span under the turn that asked for it. Costs one check when
    instrumentation is off.
    """

    def decorate(function: F, name: str | None) -> F:
        tool_name = name or function.__name__
        is_async = inspect.iscoroutinefunction(function)

        def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
            from otel_agent_trace.instrumentation.instrumentor import active_hub

            hub = active_hub()
            if hub is None:
                return wrapped(*args, **kwargs)
            inner = tool_wrapper(hub, default_name=tool_name, source="decorator", is_async=is_async)
            return inner(wrapped, instance, args, kwargs)

        return wrapt.decorator(wrapper)(function)  # type: ignore[no-any-return]

    if callable(name_or_function):
        return decorate(name_or_function, None)
    return functools.partial(decorate, name=name_or_function)


class DispatcherPatch:
    """The user's dispatcher named ``module:qualname``, patched now, on import, or — for a script run as
    ``__main__`` whose function is defined only as it runs — at the first model call after definition."""

    def __init__(self, hub: AgentTracer, spec: str) -> None:
        self.hub = hub
        self.module_name, _, self.qualname = spec.partition(":")
        self.installed: tuple[Any, str] | None = None
        self.done = False

    def try_install(self) -> bool:
        if self.done:
            return True
        module = sys.modules.get(self.module_name) or _main_module_named(self.module_name)
        if module is None:
            return False
        *parents, attribute = self.qualname.split(".")
        owner: Any = module
        for part in parents:
            owner = getattr(owner, part, None)
            if owner is None:
                return False
        target = getattr(owner, attribute, None)
        if target is None:
            return False
        is_async = inspect.iscoroutinefunction(target)
        wrapt.wrap_function_wrapper(owner, attribute,
                                    tool_wrapper(self.hub, default_name=None, source="dispatcher", is_async=is_async))
        self.installed = (owner, attribute)
        self.done = True
        return True

    def uninstall(self) -> None:
        if self.installed is not None:
            unwrap(*self.installed)
            self.installed = None
        self.done = True  # a pending post-import hook must not patch after uninstrument


def _main_module_named(name: str) -> Any:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is not None and (name == "__main__" or (path and Path(path).stem == name)):
        return main
    return None


def install_dispatcher(hub: AgentTracer, spec: str | None) -> DispatcherPatch | None:
    if not spec or ":" not in spec:
        return None
    patch = DispatcherPatch(hub, spec)
    try:
        if not patch.try_install():
            if patch.module_name != "__main__" and _main_module_named(patch.module_name) is None:
                wrapt.register_post_import_hook(lambda module: patch.try_install(), patch.module_name)
            hub.pending_dispatcher = patch
    except Exception:
        log_once("dispatcher", "otel_agent_trace: could not patch tool dispatcher %s", spec)
    return patch
