"""Real recorded Messages API responses, replayed through every call path, give chat spans that match the
recorded body attribute by attribute.

The corpus (``tests/fixtures/recorded/*.jsonl``, sources and licences in ``SOURCES.md``) holds responses
recorded from the real API by other projects' test suites: JSON bodies, SSE streams and Bedrock event
streams, with tool use, thinking, prompt caching, server tools, beta features and errors. Each record is
replayed by the project's fake Messages API and the real ``anthropic`` client calls it in six styles:

- a path of the recording's own kind gets the bytes as recorded (JSON for ``create``, the SSE text or
  Bedrock events for the streaming paths; error bodies on every path, with their status);
- a JSON recording on a streaming path is streamed by the fake from the recorded message;
- a stream recording on a non-streaming path is answered with the message the stream accumulates to.

The recorded request body is sent as recorded (minus ``stream``, which the call style decides; parameters
the installed SDK does not name go in ``extra_body``), so the instrumentation also sees real tools, system
prompts, ``cache_control`` and thinking settings. Each case checks: one chat span; its name and request
model; response id, model, finish reasons and stop reason; input tokens (input + cache read + cache
write), output, cache read and write tokens; the tool_use names; and for an error, the SDK's own
exception with the recorded status, an ERROR span with ``error.type`` and no response-derived attributes.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from otel_agent_trace import semconv as sc
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing import by_operation
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, Recorded, Reply, ScriptItem, aws_event_stream
from tests.calls import CALL_STYLES

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
DEFAULT_MODEL = "claude-sonnet-4-5"
STREAM_STYLES = ("create_stream", "async_create_stream", "helper", "async_helper")
CONSUMED_ATTRIBUTES = (sc.USAGE_CONSUMED_INPUT_TOKENS, sc.USAGE_CONSUMED_OUTPUT_TOKENS)
USAGE_ATTRIBUTES = (sc.USAGE_INPUT_TOKENS, sc.USAGE_OUTPUT_TOKENS, sc.USAGE_CACHE_READ, sc.USAGE_CACHE_WRITE,
                    sc.USAGE_CACHE_CREATION, *CONSUMED_ATTRIBUTES)
RESPONSE_ATTRIBUTES = (sc.RESPONSE_ID, sc.RESPONSE_MODEL, sc.RESPONSE_FINISH_REASONS, sc.STOP_REASON,
                       sc.TOOL_USE_NAMES, *USAGE_ATTRIBUTES)


def load_records() -> list[dict[str, Any]]:
    records = []
    for path in sorted(RECORDED.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            records.extend(json.loads(line) for line in fh if line.strip())
    return records


RECORDS = load_records()


# --- what the recording says -----------------------------------------------------------------------------

def parse_sse(text: str) -> list[dict[str, Any]]:
    """The JSON ``data:`` payloads of an SSE body, in order."""
    events = []
    for chunk in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in chunk.split("\n") if line.startswith("data:"))
        if data.strip():
            events.append(json.loads(data))
    return events


def accumulate(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The message a stream of events adds up to, the way the SDK's stream helper builds it."""
    message: dict[str, Any] = {}
    partial_json: dict[int, str] = {}
    for event in events:
        kind = event.get("type")
        if kind == "message_start":
            message = copy.deepcopy(event["message"])
            message["content"] = []
        elif kind == "content_block_start":
            message["content"].append(copy.deepcopy(event["content_block"]))
        elif kind == "content_block_delta":
            block, delta = message["content"][event["index"]], event["delta"]
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif dtype == "input_json_delta":
                partial_json[event["index"]] = partial_json.get(event["index"], "") + delta["partial_json"]
            elif dtype == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
            elif dtype == "signature_delta":
                block["signature"] = delta["signature"]
            elif dtype == "citations_delta":
                block.setdefault("citations", []).append(delta["citation"])
        elif kind == "content_block_stop":
            raw = partial_json.pop(event["index"], "")
            if raw:
                message["content"][event["index"]]["input"] = json.loads(raw)
        elif kind == "message_delta":
            message.update({k: v for k, v in event.get("delta", {}).items() if k in ("stop_reason", "stop_sequence")})
            usage = message.setdefault("usage", {})
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
    return message


def recorded_message(record: dict[str, Any]) -> dict[str, Any]:
    """The complete message the recording holds (not defined for error records)."""
    if record["kind"] == "json":
        return record["body"]
    return accumulate(parse_sse(record["sse"]) if record["kind"] == "sse" else record["events"])


def is_error(record: dict[str, Any]) -> bool:
    return record["status"] >= 400


def request_of(record: dict[str, Any]) -> dict[str, Any]:
    """The recorded request body as call keywords; a minimal one when the cassette kept none."""
    body = dict(record.get("request") or {})
    for key in ("stream", "anthropic_version"):
        body.pop(key, None)
    if record["platform"] == "bedrock":
        body["model"] = record["bedrock_model"]
    elif "model" not in body:
        # No request kept: name the model the response names, or any model for a bare error body.
        body["model"] = DEFAULT_MODEL if is_error(record) else recorded_message(record)["model"]
    body.setdefault("max_tokens", 1024)
    body.setdefault("messages", [{"role": "user", "content": "Hello"}])
    return body


def expected_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """The chat span attributes the recorded message implies (DESIGN.md §2)."""
    usage = message.get("usage") or {}
    cache_read = usage.get("cache_read_input_tokens") or 0
    cache_write = usage.get("cache_creation_input_tokens") or 0
    expected: dict[str, Any] = {
        sc.RESPONSE_ID: message["id"],
        sc.RESPONSE_MODEL: message["model"],
        sc.STOP_REASON: message["stop_reason"],
        sc.RESPONSE_FINISH_REASONS: (message["stop_reason"],),
        sc.USAGE_INPUT_TOKENS: (usage.get("input_tokens") or 0) + cache_read + cache_write,
        sc.USAGE_OUTPUT_TOKENS: usage.get("output_tokens") or 0,
        sc.USAGE_CACHE_READ: cache_read,
        sc.USAGE_CACHE_WRITE: cache_write,
        sc.USAGE_CACHE_CREATION: cache_write,
    }
    iterations = usage.get("iterations") or []
    consumed_in = sum((i.get("input_tokens") or 0) + (i.get("cache_read_input_tokens") or 0)
                      + (i.get("cache_creation_input_tokens") or 0) for i in iterations)
    consumed_out = sum(i.get("output_tokens") or 0 for i in iterations)
    top_in, top_out = expected[sc.USAGE_INPUT_TOKENS], expected[sc.USAGE_OUTPUT_TOKENS]
    if (consumed_in > top_in or consumed_out > top_out):
        # Everything the call consumed: the iterations' sums where they exceed the top-level counts.
        expected[CONSUMED_ATTRIBUTES[0]] = max(consumed_in, top_in)
        expected[CONSUMED_ATTRIBUTES[1]] = max(consumed_out, top_out)
    names = tuple(block["name"] for block in message.get("content") or () if block.get("type") == "tool_use")
    if names:
        expected[sc.TOOL_USE_NAMES] = names
    return expected


# --- how the fake answers -------------------------------------------------------------------------------

def script_item(record: dict[str, Any], style: str) -> ScriptItem:
    """What the fake API answers ``style``'s request with for this record (see the module docstring)."""
    streaming = style in STREAM_STYLES
    headers = dict(record.get("headers") or {})
    if record["kind"] == "json" and (is_error(record) or not streaming):
        return Recorded(record["status"], json.dumps(record["body"]).encode(), headers=headers)
    if record["kind"] == "json":
        message = record["body"]
        return Reply(content=message["content"], stop_reason=message["stop_reason"], usage=message["usage"],
                     model=message["model"], id=message["id"])
    if not streaming:
        return Recorded(200, json.dumps(recorded_message(record)).encode())
    if record["kind"] == "sse":
        return Recorded(record["status"], record["sse"].encode(), "text/event-stream", headers)
    return Recorded(record["status"], aws_event_stream(record["events"]), "application/vnd.amazon.eventstream")


# --- how the caller calls -------------------------------------------------------------------------------

class Replayer:
    """One fake API and one client per kind for the whole module: building an ``httpx`` client (its TLS
    context) costs more than a replayed call. Each test sets the one item every request is answered with."""

    def __init__(self) -> None:
        self.item: ScriptItem | None = None
        self.api = FakeMessagesAPI(self._answer).start()
        self.loop = asyncio.new_event_loop()
        self._clients: dict[tuple[str, bool], Any] = {}

    def _answer(self, request: dict[str, Any]) -> ScriptItem:
        assert self.item is not None, "no recording set for this request"
        return self.item

    def client(self, platform: str, *, use_async: bool) -> Any:
        key = (platform, use_async)
        if key not in self._clients:
            # An explicit timeout: with the default one the SDK refuses, before any request, a non-streaming
            # call whose max_tokens could take over ten minutes, and some recordings ask for that much.
            options: dict[str, Any] = {"base_url": self.api.base_url, "max_retries": 0, "timeout": 60.0}
            if platform == "bedrock":
                cls = anthropic.AsyncAnthropicBedrock if use_async else anthropic.AnthropicBedrock
                self._clients[key] = cls(aws_access_key="AKIAFAKE", aws_secret_key="fake", aws_region="us-east-1",
                                         **options)
            else:
                cls = anthropic.AsyncAnthropic if use_async else anthropic.Anthropic
                self._clients[key] = cls(api_key="sk-ant-test-key-000000", **options)
        return self._clients[key]

    def close(self) -> None:
        for (_, is_async), client in self._clients.items():
            if is_async:
                self.loop.run_until_complete(client.close())
            else:
                client.close()
        self.loop.close()
        self.api.stop()


@functools.cache
def _parameters(method: Any) -> frozenset[str]:
    # The stream helper's ``output_format`` takes a Python type; a recorded request holds the wire form, a
    # JSON schema dict, which only the body can carry.
    return frozenset(inspect.signature(method).parameters) - {"output_format"}


def split_kwargs(method: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Keywords the installed SDK's ``method`` knows go as arguments, the rest in ``extra_body``: recordings
    from newer API versions carry parameters older SDKs do not name."""
    known = _parameters(method)
    kwargs = {k: v for k, v in request.items() if k in known}
    extra = {k: v for k, v in request.items() if k not in known}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def beta_of(record: dict[str, Any]) -> bool:
    return "beta=true" in record.get("uri_query", "")


def call(style: str, record: dict[str, Any], replayer: Replayer) -> Any:
    """Make the call in ``style``; return the final message (or the list of stream events)."""
    request = request_of(record)
    is_async = style.startswith("async_")
    client = replayer.client(record["platform"], use_async=is_async)
    messages = client.beta.messages if beta_of(record) else client.messages
    if style == "create":
        return messages.create(**split_kwargs(messages.create, request))
    if style == "create_stream":
        return list(messages.create(stream=True, **split_kwargs(messages.create, request)))
    if style == "helper":
        with messages.stream(**split_kwargs(messages.stream, request)) as stream:
            return stream.get_final_message()

    async def run() -> Any:
        if style == "async_create":
            return await messages.create(**split_kwargs(messages.create, request))
        if style == "async_create_stream":
            events = await messages.create(stream=True, **split_kwargs(messages.create, request))
            return [event async for event in events]
        async with messages.stream(**split_kwargs(messages.stream, request)) as stream:
            return await stream.get_final_message()

    return replayer.loop.run_until_complete(run())


@pytest.fixture(scope="module")
def replayer() -> Iterator[Replayer]:
    replayer = Replayer()
    try:
        yield replayer
    finally:
        replayer.close()


# --- the cases ------------------------------------------------------------------------------------------

def cases() -> list[Any]:
    params = []
    for record in RECORDS:
        params.extend(pytest.param(record, style, id=f"{record['id']}-{style}") for style in CALL_STYLES)
    return params


@pytest.mark.parametrize(("record", "style"), cases())
def test_recorded_response_gives_one_matching_chat_span(record: dict[str, Any], style: str,
                                                        exporter: InMemorySpanExporter,
                                                        instrumented: AnthropicAgentInstrumentor,
                                                        replayer: Replayer) -> None:
    """A replayed real response yields exactly one chat span whose attributes match the recorded body."""
    request = request_of(record)
    replayer.item = script_item(record, style)
    if is_error(record):
        with pytest.raises(anthropic.APIStatusError) as raised:
            call(style, record, replayer)
        outcome: Any = raised.value
    else:
        outcome = call(style, record, replayer)
    chats = by_operation(exporter.get_finished_spans(), sc.OP_CHAT)
    assert len(chats) == 1, [s.name for s in chats]
    span = chats[0]
    attributes = dict(span.attributes or {})
    assert attributes[sc.REQUEST_MODEL] == request["model"]
    if is_error(record):
        assert outcome.status_code == record["status"]
        assert span.status.status_code is StatusCode.ERROR
        assert attributes[sc.ERROR_TYPE] == type(outcome).__qualname__
        assert sc.RESPONSE_ID not in attributes and sc.RESPONSE_FINISH_REASONS not in attributes
    else:
        expected = expected_attributes(recorded_message(record))
        if not isinstance(outcome, list):  # the caller got the recorded message back, not something else
            assert (outcome.id, outcome.stop_reason) == (expected[sc.RESPONSE_ID], expected[sc.STOP_REASON])
        assert span.status.status_code is not StatusCode.ERROR
        assert {name: attributes.get(name) for name in RESPONSE_ATTRIBUTES} == {
            name: expected.get(name) for name in RESPONSE_ATTRIBUTES}
    # The semantic conventions name the span after the requested model; a failed call has no response.
    assert span.name == f"{sc.OP_CHAT} {request['model']}", f"span named {span.name!r}"
    if is_error(record):
        leaked = [name for name in RESPONSE_ATTRIBUTES if name in attributes]
        assert not leaked, f"error span carries response attributes {leaked}"


def test_corpus_is_several_hundred_real_responses() -> None:
    """The corpus holds several hundred recordings covering streams, Bedrock, beta, tool use and errors."""
    kinds = {record["kind"] for record in RECORDS}
    assert len(RECORDS) >= 400
    assert kinds == {"json", "sse", "eventstream"}
    assert sum(is_error(record) for record in RECORDS) >= 5
    assert sum(beta_of(record) for record in RECORDS) >= 100
    assert sum(record["platform"] == "bedrock" for record in RECORDS) >= 20
    assert sum(sc.TOOL_USE_NAMES in expected_attributes(recorded_message(r)) for r in RECORDS if not is_error(r)) >= 100
