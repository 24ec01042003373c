"""Malformed API responses and SSE streams: with the instrumentation the caller sees exactly what the SDK
alone shows them — the same return value, or the same exception type and message — never one of ours."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import anthropic
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation import recorder
from tests.calls import REQUEST
from tests.reliability.support import EndCounter, RawHTTPServer, UrandomIds, outcome, safe_repr, scaled, uninstrumented

FUZZ = hypothesis_settings(
    max_examples=scaled(40, 600), deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(params=[False, True], ids=["content-off", "content-on+jsonl"])
def settings(request, tmp_path) -> Settings:
    """Both record paths: metadata only, and content capture plus the JSONL writer (which keeps content)."""
    chosen = Settings.from_env({"OTEL_AGENT_TRACE_DETECTORS": os.environ.get("OTEL_AGENT_TRACE_DETECTORS", "true")})
    if request.param:
        chosen.capture_content = True
        chosen.jsonl = str(tmp_path / "trace.jsonl")
    return chosen


@pytest.fixture
def provider(exporter) -> TracerProvider:
    """Span ids from ``os.urandom``: hypothesis reseeds ``random`` for every example, and the SDK's default
    id generator would then hand out the same span ids again and again."""
    provider = TracerProvider(id_generator=UrandomIds())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture(scope="module")
def raw():
    with RawHTTPServer() as server:
        yield server


# --- strategies: mostly the right shape, sometimes any JSON value in its place ---------------------------
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=16))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)


def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(good, good, good, JSON)


TOKENS = st.integers(min_value=0, max_value=10**7)
USAGE = st.dictionaries(
    st.sampled_from(["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                     "service_tier", "server_tool_use"]), mostly(TOKENS), max_size=6)
STOP = st.sampled_from(["end_turn", "tool_use", "max_tokens", "stop_sequence", "pause_turn", "refusal", None])
BLOCK = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": mostly(st.text(max_size=30))}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": mostly(st.just("toolu_1")),
                           "name": mostly(st.sampled_from(["read_file", "run_bash"])), "input": JSON}),
    st.fixed_dictionaries({"type": st.just("thinking"), "thinking": mostly(st.text(max_size=10)),
                           "signature": mostly(st.text(max_size=5))}),
    st.fixed_dictionaries({"type": st.text(max_size=12)}, optional={"data": JSON}),  # unknown block types
    st.fixed_dictionaries({}, optional={"text": JSON}),  # no type at all
    JSON,
)
MESSAGE = st.fixed_dictionaries({}, optional={
    "id": mostly(st.just("msg_fuzz")), "type": mostly(st.just("message")), "role": mostly(st.just("assistant")),
    "model": mostly(st.just("claude-sonnet-4-6")), "content": mostly(st.lists(BLOCK, max_size=4)),
    "stop_reason": mostly(STOP), "stop_sequence": mostly(st.none()), "usage": mostly(USAGE),
})
STATUS = st.sampled_from([200, 200, 200, 200, 201, 204, 400, 401, 404, 413, 429, 500, 529])
CONTENT_TYPE = st.sampled_from(["application/json", "application/json", "text/plain", "text/event-stream",
                                "application/octet-stream"])


@st.composite
def responses(draw: st.DrawFn) -> dict[str, Any]:
    """A whole non-streamed HTTP answer: status, content type, body bytes, framing and where it is cut."""
    body = draw(st.one_of(MESSAGE.map(json.dumps), MESSAGE.map(json.dumps), JSON.map(json.dumps),
                          st.text(max_size=40))).encode()
    if draw(st.integers(0, 4)) == 0:
        body = body + draw(st.binary(max_size=8))
    cut = draw(st.none() | st.integers(0, len(body))) if draw(st.integers(0, 3)) == 0 else None
    return {"body": body, "status": draw(STATUS), "content_type": draw(CONTENT_TYPE), "cut": cut,
            "framing": draw(st.sampled_from(["length", "eof", "chunked"]))}


INDEX = mostly(st.integers(0, 3))
DELTA = st.one_of(
    st.fixed_dictionaries({"type": st.just("text_delta"), "text": mostly(st.text(max_size=10))}),
    st.fixed_dictionaries({"type": st.just("input_json_delta"),
                           "partial_json": mostly(st.sampled_from(['{"path": "a', '"}', "{", "}", "nul", "[1,"])
                                                  | st.text(max_size=8))}),
    st.fixed_dictionaries({"type": st.just("thinking_delta"), "thinking": mostly(st.text(max_size=5))}),
    st.fixed_dictionaries({"type": st.text(max_size=10)}),
    JSON,
)
EVENT_DATA = {
    "message_start": st.fixed_dictionaries({"type": st.just("message_start"), "message": mostly(MESSAGE)}),
    "content_block_start": st.fixed_dictionaries({"type": st.just("content_block_start"), "index": INDEX,
                                                  "content_block": BLOCK}),
    "content_block_delta": st.fixed_dictionaries({"type": st.just("content_block_delta"), "index": INDEX,
                                                  "delta": DELTA}),
    "content_block_stop": st.fixed_dictionaries({"type": st.just("content_block_stop"), "index": INDEX}),
    "message_delta": st.fixed_dictionaries({"type": st.just("message_delta"),
                                            "delta": mostly(st.fixed_dictionaries({"stop_reason": STOP})),
                                            "usage": mostly(USAGE)}),
    "message_stop": st.fixed_dictionaries({"type": st.just("message_stop")}),
    "ping": st.fixed_dictionaries({"type": st.just("ping")}),
    "error": st.fixed_dictionaries({"type": st.just("error"), "error": mostly(st.fixed_dictionaries(
        {"type": st.just("overloaded_error"), "message": st.text(max_size=10)}))}),
}


@st.composite
def sse_event(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from([*EVENT_DATA, "completion", "unknown_event"]))
    data_kind = draw(st.integers(0, 9))
    if data_kind == 0:
        data = draw(st.text(max_size=20).filter(lambda s: "\n" not in s and "\r" not in s))  # not JSON
    elif data_kind == 1:
        data = json.dumps(draw(JSON))
    else:
        # The data's own type usually matches the event line; sometimes another event's data.
        data_name = name if name in EVENT_DATA and data_kind > 2 else draw(st.sampled_from(list(EVENT_DATA)))
        data = json.dumps(draw(EVENT_DATA[data_name]))
    event_line = "" if draw(st.integers(0, 9)) == 0 else f"event: {name}\n"
    return f"{event_line}data: {data}\n\n".encode()


def well_formed_events(text: str, tool_json_chunks: list[str], usage: dict[str, Any]) -> list[bytes]:
    """A real-looking stream (text block, then a tool_use block whose input arrives as JSON chunks)."""
    message = {"id": "msg_fuzz", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
               "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "toolu_fuzz", "name": "read_file", "input": {}}},
        *({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": c}}
          for c in tool_json_chunks),
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": usage},
        {"type": "message_stop"},
    ]
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


@st.composite
def streams(draw: st.DrawFn) -> dict[str, Any]:
    """An SSE answer: a random event sequence, or a real one with bad tool JSON, wrong usage types or a cut."""
    if draw(st.booleans()):
        events = draw(st.lists(sse_event(), max_size=8))
    else:
        chunks = draw(st.one_of(st.just(['{"path": ', '"auth/session.ts"}']),
                                st.lists(st.sampled_from(['{"path": "a', '"}', "{", "}", "nul", "[1,", "\\u12"])
                                         | st.text(max_size=6), max_size=4)))
        events = well_formed_events(draw(st.text(max_size=20)), chunks, draw(mostly(USAGE)))
        if draw(st.booleans()):
            events.insert(draw(st.integers(0, len(events))), draw(sse_event()))
    body = b"".join(events)
    cut = draw(st.none() | st.integers(0, max(0, len(body) - 1)))
    return {"body": body, "status": 200, "content_type": draw(st.sampled_from(
        ["text/event-stream", "text/event-stream", "text/event-stream; charset=utf-8", "application/json"])),
            "cut": cut, "framing": draw(st.sampled_from(["length", "eof", "chunked"]))}


# --- calls: each returns what the caller observed, comparable across runs ---------------------------------
def _request() -> dict[str, Any]:
    return {**REQUEST, "tools": [{"name": "read_file", "input_schema": {"type": "object"}}]}


class Caller:
    """One sync and one async client on one event loop, reused for every example (a client costs ~50 ms
    to build, mostly its TLS context)."""

    def __init__(self, base_url: str) -> None:
        options: dict[str, Any] = {"api_key": "sk-ant-fuzz-000000", "base_url": base_url, "max_retries": 0,
                                   "timeout": 5}
        self.sync = anthropic.Anthropic(**options)
        self.loop = asyncio.new_event_loop()
        self.async_ = anthropic.AsyncAnthropic(**options)

    def close(self) -> None:
        self.sync.close()
        self.loop.run_until_complete(self.async_.close())
        self.loop.close()

    def __call__(self, style: str) -> Any:
        """Make one call in ``style`` and return what the caller saw, as comparable plain data.

        ``with_options()`` shares the connection pool but not the resources, whose ``with_raw_response``
        caches the bound ``create`` it first saw — instrumented or not (see test_toggling.py).
        """
        client = self.sync.with_options()
        if style == "create":
            return safe_repr(client.messages.create(**_request()))
        if style == "beta_create":
            return safe_repr(client.beta.messages.create(**_request()))
        if style == "raw":
            raw = client.messages.with_raw_response.create(**_request())
            return raw.status_code, safe_repr(raw.parse())
        if style == "create_stream":
            seen: list[str] = []
            try:
                for event in client.messages.create(stream=True, **_request()):
                    seen.append(safe_repr(event))
            except Exception as error:
                return seen, type(error).__qualname__, safe_repr(str(error))
            return seen
        if style == "helper":
            with client.messages.stream(**_request()) as stream:
                events = [safe_repr(event) for event in stream]
                return events, safe_repr(stream.get_final_message())
        return self.loop.run_until_complete(self._async(style))

    async def _async(self, style: str) -> Any:
        client = self.async_.with_options()
        if style == "async_create":
            return safe_repr(await client.messages.create(**_request()))
        if style == "async_create_stream":
            seen = []
            try:
                async for event in await client.messages.create(stream=True, **_request()):
                    seen.append(safe_repr(event))
            except Exception as error:
                return seen, type(error).__qualname__, safe_repr(str(error))
            return seen
        async with client.messages.stream(**_request()) as stream:
            events = [safe_repr(event) async for event in stream]
            return events, safe_repr(await stream.get_final_message())


@pytest.fixture(scope="module")
def caller(raw):
    made = Caller(raw.base_url)
    yield made
    made.close()


def _compare(raw: RawHTTPServer, caller: Caller, answer: dict[str, Any], style: str, instrumented, provider,
             settings, ends: EndCounter) -> None:
    raw.answer(**answer)
    before = ends.count("chat")
    traced = outcome(lambda: caller(style))
    assert ends.count("chat") == before + 1, "one turn span per call"
    with uninstrumented(instrumented, provider, settings):
        bare = outcome(lambda: caller(style))
    assert traced == bare
    assert ends.not_ended_once("chat") == {}


@pytest.mark.usefixtures("instrumented")
class TestMalformedResponses:
    @FUZZ
    @given(answer=responses(), style=st.sampled_from(["create", "beta_create", "raw", "async_create"]))
    def test_non_streamed_bodies_behave_as_without_instrumentation(self, raw, caller, instrumented, provider, settings,
                                                                   ends, caplog, answer, style):
        """Random JSON bodies, wrong usage types, missing content, unknown blocks, cut bodies: same outcome."""
        _compare(raw, caller, answer, style, instrumented, provider, settings, ends)
        assert "ended span" not in caplog.text

    @FUZZ
    @given(answer=streams(), style=st.sampled_from(["create_stream", "helper", "async_create_stream",
                                                    "async_helper"]))
    def test_sse_streams_behave_as_without_instrumentation(self, raw, caller, instrumented, provider, settings, ends,
                                                           caplog, answer, style):
        """Random event sequences, truncated streams, bad partial_json, wrong types: same events, same error."""
        _compare(raw, caller, answer, style, instrumented, provider, settings, ends)
        assert "ended span" not in caplog.text

    def test_failures_to_read_a_response_are_logged_once(self, raw, caller, instrumented, caplog, monkeypatch):
        """However many unreadable responses arrive, our own warnings stay at one per kind."""
        monkeypatch.setattr(recorder, "_logged_once", set())  # as in a fresh process
        caplog.set_level(logging.WARNING, logger="otel_agent_trace")
        raw.answer(b'{"content": 5, "usage": {"input_tokens": "many"}, "model": {}, "stop_reason": []}')
        for _ in range(20):
            caller("create")
        ours = [r.getMessage() for r in caplog.records if r.name.startswith("otel_agent_trace")]
        assert ours and len(ours) == len(set(ours))

    def test_wrong_typed_blocks_add_no_python_warnings(self, raw, caller, instrumented, settings, request):
        """A block whose fields have the wrong types makes no Python warning appear that the SDK alone would not."""
        body = (b'event: content_block_start\ndata: {"type": "content_block_start", "index": 0, '
                b'"content_block": {"type": "text", "text": []}}\n\n')
        raw.answer(body, content_type="text/event-stream")
        assert outcome(lambda: caller("create_stream"))[-1] == []

    @pytest.mark.parametrize("model", [True, ["claude-sonnet-4-6"]], ids=["bool", "list"])
    @pytest.mark.parametrize("style", ["create", "create_stream"])
    def test_a_non_string_model_still_gives_its_turn_span(self, raw, caller, instrumented, ends, style, model):
        """A response whose ``model`` is not a string, with cache reads to price, still yields one turn span
        (found by the soak run: pricing the cache saving raised and the turn was dropped)."""
        message = {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
                   "stop_reason": "end_turn", "usage": {"input_tokens": 3, "cache_read_input_tokens": 900}}
        if style == "create":
            raw.answer(json.dumps(message).encode())
        else:
            events = [{"type": "message_start", "message": {**message, "stop_reason": None}},
                      {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
                      {"type": "message_stop"}]
            raw.answer(b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events),
                       content_type="text/event-stream")
        caller(style)
        assert ends.count("chat") == 1
        assert ends.not_ended_once("chat") == {}
