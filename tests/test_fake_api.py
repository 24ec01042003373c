"""The fake Messages API, driven through the real ``anthropic`` client (no SDK mocks).

Every assertion goes through the SDK's own transport, parsing, retries and streaming, so these tests
also prove the fake is faithful enough for the instrumentation tests that build on it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_agent_trace.testing import fake_api
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, Fault, Reply, text_reply, tool_reply

MODEL = "claude-fake-model"
MSGS: list[Any] = [{"role": "user", "content": "hi"}]
# A tiny positive retry-after: the SDK treats 0 as "unspecified" and would back off ~0.5 s instead.
FAST = 0.01


@pytest.fixture
def api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as server:
        yield server


_open_clients: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    # Unclosed SDK clients leak pooled sockets into later tests' ResourceWarnings.
    yield
    while _open_clients:
        _open_clients.pop().close()


def client(api: FakeMessagesAPI, **kw: Any) -> anthropic.Anthropic:
    kw.setdefault("max_retries", 0)
    made = anthropic.Anthropic(api_key="test-key", base_url=api.base_url, **kw)
    _open_clients.append(made)
    return made


def create(c: Any, **kw: Any) -> Any:
    return c.messages.create(model=kw.pop("model", MODEL), max_tokens=64, messages=MSGS, **kw)


def raw_post(api: FakeMessagesAPI, path: str, body: bytes, method: str = "POST") -> tuple[int, dict, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())
    finally:
        conn.close()


def test_text_reply_json_and_request_id(api: FakeMessagesAPI) -> None:
    api.enqueue(text_reply("hello there"))
    raw = client(api).messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=MSGS)
    msg = raw.parse()
    assert raw.headers["request-id"].startswith("req_fake_")
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == "hello there"
    assert msg.model == MODEL and msg.stop_reason == "end_turn" and msg.id.startswith("msg_fake_")


def test_default_answer_is_ok_and_overrides(api: FakeMessagesAPI) -> None:
    assert create(client(api)).content[0].text == "ok"
    api.enqueue(text_reply("x", model="other-model", id="msg_custom", stop_reason="max_tokens"))
    msg = create(client(api))
    assert (msg.model, msg.id, msg.stop_reason) == ("other-model", "msg_custom", "max_tokens")


def test_tool_use_reply(api: FakeMessagesAPI) -> None:
    api.enqueue(
        tool_reply(
            ("get_weather", {"city": "Paris", "days": [1, 2]}),
            {"name": "lookup", "input": {}, "id": "toolu_mine"},
            text="checking",
        )
    )
    msg = create(client(api))
    assert msg.stop_reason == "tool_use"
    text, first, second = msg.content
    assert text.type == "text" and text.text == "checking"
    assert isinstance(first, anthropic.types.ToolUseBlock)
    assert first.name == "get_weather" and first.input == {"city": "Paris", "days": [1, 2]}
    assert first.id.startswith("toolu_fake_") and second.id == "toolu_mine"


def test_tool_reply_needs_a_tool_use() -> None:
    with pytest.raises(ValueError):
        tool_reply(text="no tools")


def test_usage_including_cache_fields(api: FakeMessagesAPI) -> None:
    api.enqueue(
        text_reply(
            "x",
            usage={
                "input_tokens": 100,
                "output_tokens": 7,
                "cache_read_input_tokens": 40,
                "cache_creation_input_tokens": 9,
            },
        ),
        Reply(content=[{"type": "text", "text": "y"}], usage={"input_tokens": 3}),
    )
    usage = create(client(api)).usage
    assert (usage.input_tokens, usage.output_tokens) == (100, 7)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (40, 9)
    partial = create(client(api)).usage  # a partial usage dict is completed with defaults
    assert partial.input_tokens == 3 and partial.output_tokens > 0 and partial.cache_read_input_tokens == 0


def test_stream_true_event_sequence(api: FakeMessagesAPI) -> None:
    api.enqueue(
        tool_reply(
            ("search", {"q": "a long enough query string"}),
            text="Let me look that up",
            usage={"input_tokens": 50, "output_tokens": 20, "cache_read_input_tokens": 5},
        )
    )
    events = list(create(client(api), stream=True))
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    start = events[0].message
    assert start.content == [] and start.usage.output_tokens == 1
    assert start.usage.input_tokens == 50 and start.usage.cache_read_input_tokens == 5
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    text = "".join(d.text for d in deltas if d.type == "text_delta")
    partial_json = "".join(d.partial_json for d in deltas if d.type == "input_json_delta")
    assert text == "Let me look that up" and json.loads(partial_json) == {"q": "a long enough query string"}
    assert sum(d.type == "text_delta" for d in deltas) > 1
    assert sum(d.type == "input_json_delta" for d in deltas) > 1
    assert types.count("content_block_start") == types.count("content_block_stop") == 2
    assert events[-2].delta.stop_reason == "tool_use" and events[-2].usage.output_tokens == 20


def test_stream_helper_final_message_equals_script(api: FakeMessagesAPI) -> None:
    scripted = tool_reply(
        ("calc", {"expr": "1+2"}),
        text="computing",
        id="msg_s",
        usage={
            "input_tokens": 31,
            "output_tokens": 17,
            "cache_read_input_tokens": 4,
            "cache_creation_input_tokens": 2,
        },
    )
    api.enqueue(scripted)
    c = client(api)
    with c.messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as stream:
        final = stream.get_final_message()
    assert [
        b.model_dump(include={"type", "text", "id", "name", "input"}) for b in final.content
    ] == scripted.content
    assert (final.id, final.model, final.stop_reason) == ("msg_s", MODEL, "tool_use")
    assert final.usage.model_dump(include=set(scripted.usage)) == scripted.usage


def test_async_client_create_and_stream(api: FakeMessagesAPI) -> None:
    api.enqueue(text_reply("async one"), text_reply("async two"))

    async def main() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(api_key="test-key", base_url=api.base_url, max_retries=0) as c:
            first = await c.messages.create(model=MODEL, max_tokens=64, messages=MSGS)
            async with c.messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as stream:
                second = await stream.get_final_message()
        return first.content[0].text, second.content[0].text

    assert asyncio.run(main()) == ("async one", "async two")


def test_rate_limit_then_success_is_retried_by_sdk(api: FakeMessagesAPI) -> None:
    api.enqueue(Fault.rate_limit(retry_after=FAST), text_reply("after retry"))
    assert create(client(api, max_retries=2)).content[0].text == "after retry"
    assert len(api.requests) == 2
    assert api.requests[1].headers["x-stainless-retry-count"] == "1"


def test_rate_limit_headers_and_body(api: FakeMessagesAPI) -> None:
    api.enqueue(Fault.rate_limit(retry_after=3))
    with pytest.raises(anthropic.RateLimitError) as info:
        create(client(api))
    assert info.value.status_code == 429 and info.value.response.headers["retry-after"] == "3"
    assert info.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "fake_api: scripted rate_limit"},
    }


@pytest.mark.parametrize(
    ("fault", "exc", "status"),
    [
        (Fault.overloaded(retry_after=FAST), anthropic.OverloadedError, 529),
        (Fault.server_error(retry_after=FAST), anthropic.InternalServerError, 500),
    ],
)
def test_retries_exhausted(api: FakeMessagesAPI, fault: Fault, exc: type[Exception], status: int) -> None:
    api.enqueue(fault, fault)
    with pytest.raises(exc) as info:
        create(client(api, max_retries=1))
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert len(api.requests) == 2


def test_bad_request_is_not_retried(api: FakeMessagesAPI) -> None:
    api.enqueue(Fault.bad_request("max_tokens: too big"))
    with pytest.raises(anthropic.BadRequestError, match="max_tokens: too big"):
        create(client(api, max_retries=3))
    assert len(api.requests) == 1


def test_malformed_json_raises(api: FakeMessagesAPI) -> None:
    api.enqueue(Fault.malformed_json())
    with pytest.raises((json.JSONDecodeError, anthropic.APIError)):
        create(client(api))
    api.enqueue(Fault.malformed_json())
    with pytest.raises((json.JSONDecodeError, anthropic.APIError)):
        list(create(client(api), stream=True))


def test_truncated_stream_raises_while_iterating(api: FakeMessagesAPI) -> None:
    api.enqueue(Fault.truncated_stream(text_reply("a reply that will never be finished")))
    seen: list[str] = []
    # anthropic < 2.17 surfaces the transport's own error; 2.17 wraps it in APIConnectionError, text kept
    with pytest.raises(Exception) as info:
        for event in create(client(api), stream=True):
            seen.append(event.type)
    assert seen and seen[0] == "message_start" and "message_stop" not in seen
    assert "incomplete" in str(info.value) or "closed" in str(info.value)
    # Non-streaming: the body is shorter than its content-length, which the SDK reports as a connection error.
    api.enqueue(Fault.truncated_stream())
    with pytest.raises(anthropic.APIConnectionError):
        create(client(api))
    assert create(client(api)).content[0].text == "ok"  # and the server carries on


def test_responder_gets_normalised_body(api: FakeMessagesAPI) -> None:
    seen: list[dict] = []

    def responder(body: dict) -> Reply | Fault:
        seen.append(body)
        return text_reply(f"echo {body['messages'][-1]['content']}")

    with FakeMessagesAPI(responder) as server:
        server.enqueue(text_reply("queued first"))
        c = client(server)
        assert create(c).content[0].text == "queued first"
        assert create(c).content[0].text == "echo hi"
    assert seen == [{"model": MODEL, "max_tokens": 64, "messages": MSGS, "stream": False}]


def test_broken_responder_gives_500_not_a_dead_server() -> None:
    def responder(body: dict) -> Reply:
        raise KeyError("boom")

    with FakeMessagesAPI(responder) as server, pytest.raises(anthropic.InternalServerError, match="boom"):
        create(client(server))


def test_requests_recorded_and_bounded(api: FakeMessagesAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    create(client(api, default_headers={"X-Custom-Thing": "v1"}), system="be brief")
    req = api.requests[0]
    assert (req.method, req.path) == ("POST", "/v1/messages")
    assert req.body == {"model": MODEL, "max_tokens": 64, "messages": MSGS, "system": "be brief"}
    assert req.headers["x-custom-thing"] == "v1" and all(k == k.lower() for k in req.headers)
    monkeypatch.setattr(fake_api, "MAX_RECORDED_REQUESTS", 3)
    c = client(api)
    for i in range(5):
        c.messages.create(model=f"m{i}", max_tokens=1, messages=MSGS)
    assert [r.body["model"] for r in api.requests] == ["m2", "m3", "m4"]


def test_count_tokens(api: FakeMessagesAPI) -> None:
    api.enqueue(text_reply("still queued"))
    small = client(api).messages.count_tokens(model=MODEL, messages=MSGS)
    long_msgs: list[Any] = [{"role": "user", "content": "word " * 400}]
    big = client(api).messages.count_tokens(model=MODEL, messages=long_msgs)
    assert 0 < small.input_tokens < big.input_tokens
    assert create(client(api)).content[0].text == "still queued"  # count_tokens consumed no script item


def test_beta_client(api: FakeMessagesAPI) -> None:
    api.enqueue(text_reply("beta"))
    msg = client(api).beta.messages.create(model=MODEL, max_tokens=8, messages=MSGS, betas=["x-2025-01-01"])
    assert msg.content[0].text == "beta"
    assert api.requests[0].headers["anthropic-beta"] == "x-2025-01-01"


def test_bad_input_and_unknown_routes(api: FakeMessagesAPI) -> None:
    status, headers, body = raw_post(api, "/v1/messages", b"{not json")
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    assert headers["request-id"].startswith("req_fake_")
    status, _, body = raw_post(api, "/v1/messages?beta=true", b"[1, 2]")
    assert status == 400
    status, _, body = raw_post(api, "/v1/nothing", b"{}")
    assert status == 404 and body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": body["error"]["message"]},
    }
    assert raw_post(api, "/v1/messages", b"", method="GET")[0] == 404
    with pytest.raises(anthropic.NotFoundError):
        client(api).models.list()
    assert create(client(api)).content[0].text == "ok"


def raw_exchange(api: FakeMessagesAPI, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):  # each of these requests makes the server close the connection
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"BREW /v1/messages HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_malformed_http_gets_json_error(api: FakeMessagesAPI, data: bytes) -> None:
    answer = raw_exchange(api, data)
    assert b'"type": "error"' in answer
    assert create(client(api)).content[0].text == "ok"


def test_chunked_request_body_is_read(api: FakeMessagesAPI) -> None:
    body = b'{"model": "chunky", "messages": []}'
    head = b"POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(api, head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    assert answer.startswith(b"HTTP/1.1 200") and b'"model": "chunky"' in answer


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bodies_never_break_the_server(api: FakeMessagesAPI, body: bytes) -> None:
    status, headers, payload = raw_post(api, "/v1/messages", body)
    assert status in (200, 400) and headers["request-id"].startswith("req_fake_")
    assert payload["type"] in ("message", "error")


def test_keep_alive_reuses_one_connection(api: FakeMessagesAPI) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("POST", "/v1/messages", body=json.dumps({"model": "m", "messages": []}))
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["content"][0]["text"] == "ok"
            sock = conn.sock
        assert sock is conn.sock is not None
    finally:
        conn.close()


def test_delay_triggers_client_timeout(api: FakeMessagesAPI) -> None:
    api.enqueue(text_reply("slow", delay=2.0))
    start = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        create(client(api, timeout=0.2))
    assert time.monotonic() - start < 1.5
    api.enqueue(text_reply("a bit slow", delay=0.1))
    assert create(client(api)).content[0].text == "a bit slow"


def test_stop_cuts_delays_short_and_is_idempotent() -> None:
    server = FakeMessagesAPI([text_reply("never", delay=30)]).start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            create(client(server, timeout=20))
        except Exception as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while not server.requests:
        time.sleep(0.01)
    start = time.monotonic()
    server.stop()
    server.stop()
    caller.join(timeout=10)
    assert not caller.is_alive() and time.monotonic() - start < 5
    assert errors and isinstance(errors[0], anthropic.APIConnectionError)


def test_wait_idle_waits_for_every_connection_to_end(api: FakeMessagesAPI) -> None:
    """A test that counts live objects can wait until no connection thread of the server is left."""
    threads_before = set(threading.enumerate())
    open_client = client(api)
    create(open_client)
    assert api.wait_idle(timeout=0.2) is False  # the pooled keep-alive connection is still open
    open_client.close()
    assert api.wait_idle(timeout=10) is True
    assert set(threading.enumerate()) <= threads_before


def test_api_misuse_is_reported() -> None:
    server = FakeMessagesAPI()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with pytest.raises(TypeError):
        server.enqueue("not an item")  # type: ignore[arg-type]
    with server:
        assert server.base_url == f"http://127.0.0.1:{server.port}" and server.port > 0
        with pytest.raises(RuntimeError):
            server.start()


def test_concurrent_clients(api: FakeMessagesAPI) -> None:
    c = client(api)
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            msg = create(c)
            with lock:
                results.append(msg.id)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 320 and len(set(results)) == 320


def test_vertex_non_stream_and_stream(api: FakeMessagesAPI) -> None:
    try:
        vertex = anthropic.AnthropicVertex(
            region="us-east5", project_id="proj", access_token="tok", base_url=api.base_url, max_retries=0
        )
    except Exception as exc:  # e.g. an SDK whose Vertex client insists on google-auth
        pytest.skip(f"AnthropicVertex cannot be constructed here: {exc!r}")
    _open_clients.append(vertex)
    model = "claude-sonnet-4@20250514"
    api.enqueue(text_reply("from vertex"), tool_reply(("f", {"a": 1})))
    msg = vertex.messages.create(model=model, max_tokens=8, messages=MSGS)
    assert msg.content[0].text == "from vertex" and msg.model == model
    assert api.requests[0].path.endswith(f"/models/{model}:rawPredict")
    assert "model" not in api.requests[0].body
    with vertex.messages.stream(model=model, max_tokens=8, messages=MSGS) as stream:
        final = stream.get_final_message()
    assert final.content[0].input == {"a": 1} and api.requests[1].path.endswith(":streamRawPredict")
    assert vertex.messages.count_tokens(model=model, messages=MSGS).input_tokens > 0


@pytest.mark.parametrize("auth", ["api_key", "aws_keys"])
def test_bedrock_non_stream(api: FakeMessagesAPI, auth: str) -> None:
    if auth == "aws_keys":
        pytest.importorskip("boto3", reason="AnthropicBedrock signs requests with boto3/botocore")
        kw: dict[str, str] = {"aws_access_key": "AKIAFAKE", "aws_secret_key": "secret"}
    else:
        kw = {"api_key": "bedrock-key"}
    try:
        bedrock = anthropic.AnthropicBedrock(
            aws_region="us-east-1", base_url=api.base_url, max_retries=0, **kw
        )
    except Exception as exc:  # e.g. an SDK without bearer-token support
        pytest.skip(f"AnthropicBedrock cannot be constructed with {auth}: {exc!r}")
    _open_clients.append(bedrock)
    model = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    api.enqueue(tool_reply(("f", {"a": 1}), text="bedrock"))
    msg = bedrock.messages.create(model=model, max_tokens=8, messages=MSGS)
    assert msg.model == model and msg.content[0].text == "bedrock" and msg.content[1].input == {"a": 1}
    assert api.requests[0].path == f"/model/{model}/invoke" and "authorization" in api.requests[0].headers


def test_bedrock_stream_event_stream_framing(api: FakeMessagesAPI) -> None:
    pytest.importorskip("botocore", reason="the SDK decodes Bedrock's binary event stream with botocore")
    bedrock = anthropic.AnthropicBedrock(
        aws_region="us-east-1", base_url=api.base_url, max_retries=0, api_key="bedrock-key"
    )
    _open_clients.append(bedrock)
    scripted = tool_reply(("f", {"a": [1, 2, 3]}), text="streamed from bedrock", id="msg_b")
    api.enqueue(scripted, Fault.truncated_stream())
    with bedrock.messages.stream(model="anthropic.claude-v2:1", max_tokens=8, messages=MSGS) as stream:
        final = stream.get_final_message()
    assert [
        b.model_dump(include={"type", "text", "id", "name", "input"}) for b in final.content
    ] == scripted.content
    assert final.id == "msg_b" and final.stop_reason == "tool_use"
    assert api.requests[0].path.endswith("/invoke-with-response-stream")
    with pytest.raises(Exception):  # noqa: B017 - the transport's own error
        list(bedrock.messages.create(model="m", max_tokens=8, messages=MSGS, stream=True))


def test_thinking_blocks_stream_back_whole(api: FakeMessagesAPI) -> None:
    content = [
        {"type": "thinking", "thinking": "step one, then step two", "signature": "sig-abc"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "answer"},
    ]
    api.enqueue(Reply(content=content), Reply(content=content))
    assert [b.model_dump(exclude_none=True) for b in create(client(api)).content] == content
    with client(api).messages.stream(model=MODEL, max_tokens=64, messages=MSGS) as stream:
        final = stream.get_final_message()
    fields = {"type", "thinking", "signature", "data", "text"}
    assert [b.model_dump(include=fields) for b in final.content] == content
