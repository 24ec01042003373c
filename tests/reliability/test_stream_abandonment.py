"""Streams abandoned in every way, many times over: each turn span ends exactly once, nothing warns about
ending a span twice, and nothing of ours (or anything else) piles up in memory."""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.instrumentation.recorder import TurnCall
from otel_agent_trace.testing.fake_api import FakeMessagesAPI
from tests.calls import REQUEST
from tests.reliability.support import EndCounter, LiveObjects, Records, scaled, tracked_objects

WAYS = 15
# CI: 500 abandonments in all (~34 of each way; an abandoned stream costs the SDK alone 2-5 ms, so 500 of
# each would take half a minute). Soak: 10 000 of each way.
ROUNDS = scaled(-(-500 // WAYS), 10_000)
MAX_OPEN_SESSIONS = 100  # abandoned turns leave their sessions open until evicted; a small LRU bound is
# reached during the warm-up half, so the measured half shows any growth beyond it
CLIENT_REUSE = 50  # a never-read stream holds its pooled connection (the SDK's doing); fresh clients bound that
GROWTH_PER_CALL = 0.1  # live objects a call may leave behind, on average, once warmed up


class Boom(Exception):
    pass


# --- the ways to abandon a stream ------------------------------------------------------------------------
def never_read(client: anthropic.Anthropic) -> None:
    client.messages.create(stream=True, **REQUEST)


def partly_read_then_dropped(client: anthropic.Anthropic) -> None:
    stream = client.messages.create(stream=True, **REQUEST)
    next(iter(stream))


def break_inside_with(client: anthropic.Anthropic) -> None:
    with client.messages.create(stream=True, **REQUEST) as stream:
        for _event in stream:
            break


def closed_early(client: anthropic.Anthropic) -> None:
    stream = client.messages.create(stream=True, **REQUEST)
    next(iter(stream))
    stream.close()


def user_error_inside_with(client: anthropic.Anthropic) -> None:
    try:
        with client.messages.create(stream=True, **REQUEST) as stream:
            for _event in stream:
                raise Boom
    except Boom:
        pass


def user_error_in_bare_loop(client: anthropic.Anthropic) -> None:
    try:
        for _event in client.messages.create(stream=True, **REQUEST):
            raise Boom
    except Boom:
        pass


def helper_left_early(client: anthropic.Anthropic) -> None:
    with client.messages.stream(**REQUEST) as stream:
        for _text in stream.text_stream:
            break


def helper_user_error(client: anthropic.Anthropic) -> None:
    try:
        with client.messages.stream(**REQUEST) as stream:
            next(iter(stream))
            raise Boom
    except Boom:
        pass


async def async_never_read(client: anthropic.AsyncAnthropic) -> None:
    await client.messages.create(stream=True, **REQUEST)


async def async_partly_read_then_dropped(client: anthropic.AsyncAnthropic) -> None:
    stream = await client.messages.create(stream=True, **REQUEST)
    await stream.__aiter__().__anext__()


async def async_break_inside_with(client: anthropic.AsyncAnthropic) -> None:
    async with await client.messages.create(stream=True, **REQUEST) as stream:
        async for _event in stream:
            break


async def async_closed_early(client: anthropic.AsyncAnthropic) -> None:
    stream = await client.messages.create(stream=True, **REQUEST)
    await stream.__aiter__().__anext__()
    await stream.close()


async def async_user_error_inside_with(client: anthropic.AsyncAnthropic) -> None:
    try:
        async with await client.messages.create(stream=True, **REQUEST) as stream:
            async for _event in stream:
                raise Boom
    except Boom:
        pass


async def async_helper_left_early(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(**REQUEST) as stream:
        async for _text in stream.text_stream:
            break


async def async_helper_user_error(client: anthropic.AsyncAnthropic) -> None:
    try:
        async with client.messages.stream(**REQUEST) as stream:
            await stream.__aiter__().__anext__()
            raise Boom
    except Boom:
        pass


SYNC_WAYS: list[Callable[[anthropic.Anthropic], None]] = [
    never_read, partly_read_then_dropped, break_inside_with, closed_early, user_error_inside_with,
    user_error_in_bare_loop, helper_left_early, helper_user_error]
ASYNC_WAYS: list[Callable[[anthropic.AsyncAnthropic], Coroutine[Any, Any, None]]] = [
    async_never_read, async_partly_read_then_dropped, async_break_inside_with, async_closed_early,
    async_user_error_inside_with, async_helper_left_early, async_helper_user_error]
assert len(SYNC_WAYS) + len(ASYNC_WAYS) == WAYS


# --- harness ---------------------------------------------------------------------------------------------
# anthropic 0.x (httpx/httpcore): when the cyclic GC finalizes a dropped, half-read ``Stream`` while another
# request holds the connection pool's lock, the finalizer's ``response.close()`` waits for that same lock
# forever — with or without instrumentation (reproduced with the bare SDK). There, cycles are collected at
# safe points between calls instead of wherever the GC happens to run.
GC_AT_SAFE_POINTS = int(anthropic.__version__.split(".")[0]) < 1


@contextmanager
def sync_gc_policy() -> Iterator[Callable[[], None]]:
    if not GC_AT_SAFE_POINTS:
        yield lambda: None
        return
    gc.disable()
    try:
        yield lambda: gc.collect(0)
    finally:
        gc.enable()


def _options(base_url: str) -> dict[str, Any]:
    return {"api_key": "sk-ant-test-key-000000", "base_url": base_url, "max_retries": 0}


def abandon_all_ways(base_url: str, rounds: int) -> None:
    """``rounds`` times: abandon one stream in each sync way, then in each async way."""
    done = 0
    while done < rounds:
        batch = min(CLIENT_REUSE, rounds - done)
        http = anthropic.DefaultHttpxClient(verify=False)  # no CA bundle to load: plain HTTP on localhost
        with anthropic.Anthropic(http_client=http, **_options(base_url)) as sync, sync_gc_policy() as safe_point:
            for _ in range(batch):
                for way in SYNC_WAYS:
                    way(sync)
                    safe_point()

        async def async_batch(count: int) -> None:
            http = anthropic.DefaultAsyncHttpxClient(verify=False)
            async with anthropic.AsyncAnthropic(http_client=http, **_options(base_url)) as client:
                for _ in range(count):
                    for way in ASYNC_WAYS:
                        await way(client)

        asyncio.run(async_batch(batch))
        done += batch


@contextmanager
def unraisables_as_text() -> Iterator[list[str]]:
    """Exceptions raised while the GC finalizes an object, noted as text: what failed, and where the object's
    code is defined. On Python 3.13 an abandoned stream's httpx2 async generators sometimes fail to close when
    collected ("async generator already executing"; the bare SDK does the same). pytest's own hook keeps each
    such exception until the test ends, and with it the traceback, the generator and its response: objects
    that would count as left behind by the instrumentation. Noted as text, nothing is kept."""
    noted: list[str] = []
    previous = sys.unraisablehook

    def note(unraisable: Any) -> None:
        target = unraisable.object
        code = getattr(target, "ag_code", None) or getattr(target, "gi_code", None) or getattr(target, "cr_code", None)
        where = code.co_filename if code is not None else getattr(type(target), "__module__", "?")
        noted.append(f"{unraisable.exc_type.__name__}: {unraisable.exc_value} (finalizing {target!r}, from {where})")

    sys.unraisablehook = note
    try:
        yield noted
    finally:
        sys.unraisablehook = previous


def live_objects(instrumentor: AnthropicAgentInstrumentor, api: FakeMessagesAPI) -> LiveObjects:
    """Live objects once everything transient is gone. Sessions the abandoned turns left open are ended
    first: they are bounded on their own (``max_open_sessions``), and how many are open at a given moment
    depends on which contexts the batches ran in, not on what a stream leaves behind. The fake server's
    connection threads must have ended too: on a loaded machine a few were still ending when counted, and
    their frames, locks and events looked like growth (about 25 objects a thread)."""
    instrumentor._hub.sessions.end_all("abandoned")
    assert api.wait_idle(), "the fake server's connection threads did not end"
    return tracked_objects(api)


def turn_calls(live: LiveObjects) -> int:
    return live.per_type.get(TurnCall, 0)


@pytest.fixture(scope="module")
def abandoned() -> dict[str, Any]:
    """Two equal halves of ``ROUNDS`` rounds under the instrumentation, live objects measured after each; the
    sessions the abandoned turns left open are ended by ``uninstrument`` at the end."""
    counter = EndCounter()
    provider = TracerProvider()
    provider.add_span_processor(counter)
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=Settings(max_open_sessions=MAX_OPEN_SESSIONS))
    start = time.perf_counter()
    try:
        with Records() as log, FakeMessagesAPI() as api, unraisables_as_text() as unraisables:
            abandon_all_ways(api.base_url, ROUNDS // 2)
            warm = live_objects(instrumentor, api)
            abandon_all_ways(api.base_url, ROUNDS - ROUNDS // 2)
            after = live_objects(instrumentor, api)
    finally:
        instrumentor.uninstrument()
    calls = (ROUNDS - ROUNDS // 2) * (len(SYNC_WAYS) + len(ASYNC_WAYS))
    print(f"{ROUNDS} rounds x {len(SYNC_WAYS) + len(ASYNC_WAYS)} ways; live objects {warm.total} -> {after.total} "
          f"({(after.total - warm.total) / calls:+.3f}/call); TurnCall objects {turn_calls(warm)} -> "
          f"{turn_calls(after)}; {time.perf_counter() - start:.1f} s; {len(unraisables)} failed finalizers (not kept)")
    return {"ends": counter, "warm": warm, "after": after, "calls": calls, "log": log.text(),
            "unraisables": unraisables}


class TestAbandonedStreams:
    def test_every_turn_span_ends_exactly_once(self, abandoned):
        """Each abandoned stream's turn span (and each session span) ends exactly once."""
        ends: EndCounter = abandoned["ends"]
        assert ends.count("chat") == ROUNDS * WAYS
        assert ends.not_ended_once() == {}

    def test_nothing_warns_about_ended_spans(self, abandoned):
        """No exit path ends a span twice or writes to an ended one (the SDK would warn)."""
        assert "ended span" not in abandoned["log"].lower()

    def test_no_turn_calls_survive(self, abandoned):
        """Once abandoned streams are collected, no ``TurnCall`` stays alive."""
        assert turn_calls(abandoned["warm"]) == 0 and turn_calls(abandoned["after"]) == 0

    def test_nothing_of_ours_fails_when_collected(self, abandoned):
        """No finalizer of ours raises while the GC collects an abandoned stream."""
        assert [u for u in abandoned["unraisables"] if "otel_agent_trace" in u] == []

    def test_live_objects_do_not_grow(self, abandoned):
        """A second, equal batch of abandonments leaves the number of live objects where the first left it."""
        warm, after = abandoned["warm"], abandoned["after"]
        assert after.total - warm.total <= abandoned["calls"] * GROWTH_PER_CALL, after.grown_since(warm)
