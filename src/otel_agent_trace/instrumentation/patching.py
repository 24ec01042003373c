"""The wrappers wrapt installs, one factory per SDK entry point, each closed over its hub. Tiny by design:
all logic lives in the recorder, and this is the only module where sync and async differ (``await``)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otel_agent_trace.instrumentation import foreign
from otel_agent_trace.instrumentation.recorder import AgentTracer, TurnCall, current_call, log_once
from otel_agent_trace.instrumentation.streams import follow_helper_snapshot


def _run(call: TurnCall, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    token = call.activate()
    try:
        result = fn(*args, **kwargs)
    except BaseException as error:
        call.fail(error)
        raise
    finally:
        call.deactivate(token)
    return call.adopt(result)


async def _run_async(call: TurnCall, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    token = call.activate()
    try:
        result = await fn(*args, **kwargs)
    except BaseException as error:
        call.fail(error)
        raise
    finally:
        call.deactivate(token)
    return call.adopt(result)


# Wrappers are made per instrumentation and close over its hub. The SDK caches bound methods
# (``client.messages.with_raw_response`` keeps ``create`` as it was), so a wrapper can outlive an
# uninstrument: every wrapper's first line sends the call straight through unless its hub is still live
# and instrumentation is not suppressed. A call through such a stale wrapper reaches the client's
# ``request``, where the live hub's ``request_fallback`` traces it.
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def create(hub: AgentTracer) -> Wrapper:
    """``Messages.create`` (plain, beta, Bedrock, Vertex; also behind with_raw/streaming_response)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not hub.live or not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        call = hub.start_turn(instance, kwargs, stream=kwargs.get("stream") is True)
        return wrapped(*args, **kwargs) if call is None else _run(call, foreign.quieted(wrapped), args, kwargs)

    return wrapper


def async_create(hub: AgentTracer) -> Wrapper:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        if not hub.live or not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        call = hub.start_turn(instance, kwargs, stream=kwargs.get("stream") is True)
        if call is None:
            return await wrapped(*args, **kwargs)
        return await _run_async(call, foreign.quieted(wrapped, is_async=True), args, kwargs)

    return wrapper


_MESSAGES_PATH = "/v1/messages"


class _ClientResource:
    """What ``start_turn`` reads of a resource (its client), for calls caught at the client level."""

    __slots__ = ("_client",)

    def __init__(self, client: Any) -> None:
        self._client = client


def _bypassed_messages_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The request body of a Messages call that reached the client without passing our ``create`` wrapper,
    else None. ``client.messages.with_raw_response`` (and ``with_streaming_response``) is cached on first
    use and keeps the bound ``create`` of that moment: touched before ``instrument()``, it calls the
    unwrapped method forever. Inside one of our turns (``current_call`` set) nothing is bypassed."""
    if current_call.get() is not None:
        return None
    options = args[1] if len(args) > 1 else kwargs.get("options")
    url = getattr(options, "url", None)
    if not isinstance(url, str) or url.split("?", 1)[0] != _MESSAGES_PATH:
        return None
    if str(getattr(options, "method", "")).lower() != "post":
        return None
    body = getattr(options, "json_data", None)
    return dict(body) if isinstance(body, Mapping) else None


def request_fallback(hub: AgentTracer) -> Wrapper:
    """``SyncAPIClient.request``: traces a Messages call that bypassed ``create`` (see above)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not hub.live or not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        body = _bypassed_messages_call(args, kwargs)
        call = (hub.start_turn(_ClientResource(instance), body, stream=body.get("stream") is True)
                if body is not None else None)
        return wrapped(*args, **kwargs) if call is None else _run(call, wrapped, args, kwargs)

    return wrapper


def async_request_fallback(hub: AgentTracer) -> Wrapper:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        if not hub.live or not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        body = _bypassed_messages_call(args, kwargs)
        call = (hub.start_turn(_ClientResource(instance), body, stream=body.get("stream") is True)
                if body is not None else None)
        if call is None:
            return await wrapped(*args, **kwargs)
        return await _run_async(call, wrapped, args, kwargs)

    return wrapper


def stream_helper(hub: AgentTracer) -> Wrapper:
    """``Messages.stream(...)``: the request starts when the manager is entered, so the turn starts there.

    The manager keeps its request as a private callable (sync) or awaitable (async); we swap in a traced
    one that wraps the raw event stream. ``MessageStream`` reads every event from that raw stream —
    ``text_stream``, ``until_done()`` and ``get_final_message()`` included — so one proxy sees them all.
    """

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not hub.live or not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        manager = wrapped(*args, **kwargs)
        try:
            name = next((key for key in vars(manager) if key.endswith("__api_request")), None)
            if name is not None:
                original = getattr(manager, name)
                traced = (_TracedAwaitable(hub, instance, kwargs, original) if hasattr(original, "__await__")
                          else _traced_request(hub, instance, kwargs, original))
                setattr(manager, name, traced)
        except Exception:
            log_once("stream_helper", "otel_agent_trace: could not trace a stream helper")
        return manager

    return wrapper


def stream_manager_enter(hub: AgentTracer) -> Wrapper:
    """``MessageStreamManager.__enter__`` (sync; ``__aenter__`` below): the ``MessageStream`` it returns
    reads our traced raw stream and accumulates the message itself, so the turn takes that snapshot at
    the end instead of reading each event a second time."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        message_stream = wrapped(*args, **kwargs)
        if hub.live and is_instrumentation_enabled():
            _follow(message_stream)
        return message_stream

    return wrapper


def async_stream_manager_enter(hub: AgentTracer) -> Wrapper:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        message_stream = await wrapped(*args, **kwargs)
        if hub.live and is_instrumentation_enabled():
            _follow(message_stream)
        return message_stream

    return wrapper


def _follow(message_stream: Any) -> None:
    try:
        follow_helper_snapshot(message_stream)
    except Exception:
        log_once("follow_snapshot", "otel_agent_trace: could not follow a stream helper's message")


def _traced_request(hub: AgentTracer, instance: Any, kwargs: dict[str, Any],
                    request: Callable[[], Any]) -> Callable[[], Any]:
    def traced() -> Any:
        call = hub.start_turn(instance, kwargs, stream=True)
        return request() if call is None else _run(call, request, (), {})

    return traced


class _TracedAwaitable:
    """Stands in for the async manager's pending request; starts the turn only when awaited, so an
    unentered manager creates no span and no extra never-awaited coroutine."""

    __slots__ = ("_hub", "_instance", "_kwargs", "_request")

    def __init__(self, hub: AgentTracer, instance: Any, kwargs: dict[str, Any], request: Any) -> None:
        self._hub, self._instance, self._kwargs, self._request = hub, instance, kwargs, request

    def __await__(self) -> Generator[Any, None, Any]:
        return self._run().__await__()

    async def _run(self) -> Any:
        call = self._hub.start_turn(self._instance, self._kwargs, stream=True)
        if call is None:
            return await self._request

        async def request() -> Any:
            return await self._request

        return await _run_async(call, request, (), {})


def attempt_counter(hub: AgentTracer) -> Wrapper:
    """``BaseClient._build_request`` runs once per HTTP attempt, on httpx and httpx2 alike: each attempt is
    counted, and its request carries our chat span's trace context (the SDK's own span, which would have
    put it there, is suppressed inside our turn)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # Acts only inside one of our turns, which started with instrumentation enabled; it does not ask
        # again, because inside the turn we may have suppressed another instrumentor ourselves (quieted).
        call = current_call.get() if hub.live else None
        request = wrapped(*args, **kwargs)
        if call is not None:
            try:
                call.count_attempt()
                call.inject_trace_context(request.headers)
            except Exception:
                log_once("propagate", "otel_agent_trace: could not put the trace context on a request")
        return request

    return wrapper


def native_span_guard(hub: AgentTracer) -> Wrapper:
    """anthropic ≥ 1.14 starts its own ``chat`` span per call; inside our turn it would be a second chat
    span with the same usage (double-counted tokens). Returning None is the SDK's own "no span" path."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = current_call.get() if hub.live else None  # only inside one of our turns, as above
        if call is not None:
            foreign.note_inner_chat_span(call)
            return None
        return wrapped(*args, **kwargs)

    return wrapper
