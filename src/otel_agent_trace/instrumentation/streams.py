"""Return values: record complete messages, and wrap streams and raw responses so the turn span ends
exactly once — on exhaustion, ``close()``, ``break`` inside ``with``, an exception, or garbage collection.

Proxies are ``wrapt.ObjectProxy`` subclasses, so ``isinstance`` checks and every public attribute of the
SDK's objects (``response``, ``text_stream`` via the helper, ``get_final_message()``…) keep working.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import wrapt

from otel_agent_trace.instrumentation.recorder import log_once

if TYPE_CHECKING:
    from otel_agent_trace.instrumentation.recorder import TurnCall


def adopt_result(call: TurnCall, result: Any) -> Any:
    """What the caller gets back for ``result``; records it now or once it has been consumed."""
    if hasattr(result, "stop_reason") and hasattr(result, "usage"):
        call.on_message(result)
        return result
    if hasattr(result, "http_response") and hasattr(result, "parse"):
        return _adopt_api_response(call, result)
    if hasattr(result, "__anext__"):
        return TracedAsyncStream(result, call)
    if hasattr(result, "__next__"):
        return TracedStream(result, call)
    call.finish()
    return result


def _adopt_api_response(call: TurnCall, response: Any) -> Any:
    # with_raw_response has read a non-streamed body already: parsing it now is free (the SDK caches the
    # parsed object) and lets the span end with the call instead of whenever the user parses.
    is_legacy = type(response).__name__ == "LegacyAPIResponse"
    if is_legacy and not call.stream:
        try:
            call.on_message(response.parse())
        except Exception:
            call.finish()
        return response
    if inspect.iscoroutinefunction(response.parse):
        return TracedAsyncAPIResponse(response, call)
    return TracedAPIResponse(response, call)


class _EventStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """What the sync and async event-stream proxies share: the turn they feed, the end of that turn
    (exactly once, whichever way the stream ends), and cleanup of streams the caller dropped."""

    def __init__(self, wrapped: Any, call: TurnCall) -> None:
        super().__init__(wrapped)
        self._self_call = call

    def _self_end(self, error: BaseException | None = None) -> None:
        self._self_call.finish_stream(error)

    def follow_snapshot(self, snapshot: Callable[[], Any]) -> None:
        """The SDK's ``.stream()`` helper is reading this stream and accumulates the message itself: the
        turn is filled from its snapshot at the end instead of from every event (only the first event's
        time is taken). Called before the first event; afterwards it changes nothing."""
        self._self_call.read_from_snapshot(snapshot)


class TracedStream(_EventStream):
    """A sync ``Stream`` of raw events that feeds them to its turn.

    Iterating it iterates one generator over the wrapped stream (``_observed``): each event then costs a
    generator step and one call into the turn, not a Python ``__next__`` on the proxy; ``next(stream)``
    takes from the same generator, so both ways of reading see every event once, in order. The generator,
    not the proxy, notices a stream dropped unfinished: ``for event in client.messages.create(...)`` keeps
    only the generator, and the proxy is gone before the first event."""

    def __init__(self, wrapped: Any, call: TurnCall) -> None:
        super().__init__(wrapped, call)
        self._self_events = _observed(wrapped, call)
        next(self._self_events)  # to its first pause, so that collecting it unread still runs its cleanup

    def __iter__(self) -> Iterator[Any]:
        return self._self_events  # type: ignore[no-any-return]

    def __next__(self) -> Any:
        return next(self._self_events)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_end()

    def __enter__(self) -> TracedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_end(exc)


_NEVER = object()


def _observed(stream: Any, call: TurnCall) -> Iterator[Any]:
    """``stream``'s events, each shown to ``call`` on its way to the caller; the turn ends when the stream
    does. Its first ``next()`` only starts it; collected before the stream's end, it abandons the turn."""
    try:
        yield None
        # A stream with only ``__next__`` is read through it (StopIteration from it ends the loop).
        events = iter(stream) if hasattr(type(stream), "__iter__") else iter(stream.__next__, _NEVER)
        feed = None
        for event in events:
            if feed is None:
                feed = call.first_event()
                if feed is None:  # filled from the helper's snapshot: the rest passes through untouched
                    yield event
                    yield from events
                    break
            try:
                feed(event)
            except Exception:
                log_once("event", "otel_agent_trace: could not read a stream event")
            yield event
    except GeneratorExit:  # collected unfinished: nobody reads the stream any more
        call.abandon()
        raise
    except BaseException as error:
        call.finish_stream(error)
        raise
    call.finish_stream()


class TracedAsyncStream(_EventStream):
    """An ``AsyncStream`` of raw events that feeds them to its turn."""

    def __init__(self, wrapped: Any, call: TurnCall) -> None:
        super().__init__(wrapped, call)
        self._self_anext = wrapped.__anext__
        self._self_on_event = call.on_event  # bound once: each event is one call into the turn

    def __del__(self) -> None:
        self._self_call.abandon()

    def __aiter__(self) -> TracedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            event = await self._self_anext()
        except StopAsyncIteration:
            self._self_end()
            raise
        except BaseException as error:
            self._self_end(error)
            raise
        self._self_on_event(event)
        return event

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_end()

    async def __aenter__(self) -> TracedAsyncStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_end(exc)


def follow_helper_snapshot(message_stream: Any) -> None:
    """After the SDK's stream manager made its ``MessageStream`` over our traced raw stream: let the turn
    read the helper's own accumulated message instead of every event. SDK versions without the snapshot
    accessor keep reading events."""
    raw = getattr(message_stream, "_raw_stream", None)
    snapshot = getattr(message_stream, "_current_snapshot_or_none", None)
    if isinstance(raw, _EventStream) and callable(snapshot):
        raw.follow_snapshot(snapshot)


class _APIResponseBase(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, wrapped: Any, call: TurnCall) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_parsed: Any = None

    def _self_adopt(self, parsed: Any) -> Any:
        if self._self_parsed is None:
            self._self_parsed = adopt_result(self._self_call, parsed)
        return self._self_parsed

    def __del__(self) -> None:
        self._self_call.abandon()


class TracedAPIResponse(_APIResponseBase):
    """``with_streaming_response`` / raw streamed responses: recorded when parsed, ended when closed."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_adopt(self.__wrapped__.parse(*args, **kwargs))

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_call.finish_stream()


class TracedAsyncAPIResponse(_APIResponseBase):
    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_adopt(await self.__wrapped__.parse(*args, **kwargs))

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_call.finish_stream()
