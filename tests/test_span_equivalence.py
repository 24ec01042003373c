"""Performance work must not change what users see: a fixed scripted run (every call style, inferred tools,
a failing tool, a re-read that detectors flag, a failed call, content capture off and on) yields the same
span names, kinds, attributes, events, statuses and parentage as recorded in ``fixtures/spans_golden.json``.

Regenerate the fixture only for an intended change of output:
``OTEL_AGENT_TRACE_REGEN_GOLDEN=1 python -m pytest tests/test_span_equivalence.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, Fault, text_reply, tool_reply

GOLDEN = Path(__file__).parent / "fixtures" / "spans_golden.json"
STYLES = ("create", "async_create", "create_stream", "async_create_stream", "helper", "async_helper")
MODEL = "claude-sonnet-4-6"
# Values that differ from run to run (times, ports, random ids) are compared by presence only.
VOLATILE = {"gen_ai.response.time_to_first_chunk", "langfuse.observation.completion_start_time",
            "server.port"}
ID_ATTRIBUTES = {"gen_ai.conversation.id", "session.id", "agent_trace.session.parent"}

# (tool name, input, result text) per turn; the last turn answers with text. The bash call fails, and
# read_file of a.py comes back four turns later with no edit in between (context drift).
STEPS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("read_file", {"path": "src/a.py"}, "def a():\n    return 1\n"),
    ("bash", {"command": "pytest -q tests/test_a.py"}, "Error: exit code 1\nFAILED tests/test_a.py::test_a"),
    ("grep", {"pattern": "def b", "path": "src"}, "src/b.py:1:def b():"),
    ("read_file", {"path": "src/b.py"}, "def b():\n    return 2\n"),
    ("bash", {"command": "ls src"}, "a.py\nb.py\n"),
    ("read_file", {"path": "src/a.py"}, "def a():\n    return 1\n"),
)


def _call(style: str, client: anthropic.Anthropic, request: dict[str, Any]) -> Any:
    if style == "create":
        return client.messages.create(**request)
    if style == "create_stream":
        for _ in client.messages.create(stream=True, **request):
            pass
        return None
    if style == "helper":
        with client.messages.stream(**request) as stream:
            return stream.get_final_message()

    async def run() -> Any:
        # A client per event loop: its connection pool belongs to the loop that opened it.
        aclient = anthropic.AsyncAnthropic(api_key="sk-ant-test-key-000000", base_url=str(client.base_url),
                                           max_retries=0)
        async with aclient:
            return await _call_async(style, aclient, request)

    return asyncio.run(run())


async def _call_async(style: str, aclient: anthropic.AsyncAnthropic, request: dict[str, Any]) -> Any:
    if style == "async_create":
        return await aclient.messages.create(**request)
    if style == "async_create_stream":
        async for _ in await aclient.messages.create(stream=True, **request):
            pass
        return None
    async with aclient.messages.stream(**request) as stream:
        return await stream.get_final_message()


def _agent_loop(api: FakeMessagesAPI, style: str, n: int) -> None:
    """One scripted conversation in ``style``: six tool turns, a final answer, then a failed retry."""
    client = anthropic.Anthropic(api_key="sk-ant-test-key-000000", base_url=api.base_url, max_retries=0)
    usage = {"input_tokens": 40, "output_tokens": 9, "cache_read_input_tokens": 1200,
             "cache_creation_input_tokens": 30}
    for i, (name, tool_input, _) in enumerate(STEPS):
        api.enqueue(tool_reply({"id": f"toolu_{n}_{i}", "name": name, "input": tool_input},
                               text=f"step {i}", usage=usage, id=f"msg_{n}_{i}"))
    api.enqueue(text_reply("done", usage=usage, id=f"msg_{n}_end"))
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"task {n} in style {style}: fix test_a"}]
    tools = [{"name": s[0], "description": "a tool", "input_schema": {"type": "object"}} for s in STEPS[:3]]
    system = [{"type": "text", "text": "You are an agent.", "cache_control": {"type": "ephemeral"}}]
    for i in range(len(STEPS) + 1):
        request = {"model": MODEL, "max_tokens": 256, "system": system, "tools": tools, "messages": list(messages)}
        _call(style, client, request)
        if i == len(STEPS):
            break
        name, tool_input, result = STEPS[i]
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": f"step {i}"},
            {"type": "tool_use", "id": f"toolu_{n}_{i}", "name": name, "input": tool_input}]})
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": f"toolu_{n}_{i}", "content": result}
        if name == "bash" and result.startswith("Error"):
            block["is_error"] = True
        messages.append({"role": "user", "content": [block]})
    # A fresh request that the API refuses: an error span in a session of its own.
    api.enqueue(Fault.bad_request("scripted refusal"))
    with pytest.raises(anthropic.BadRequestError):
        _call(style, client, {"model": MODEL, "max_tokens": 256,
                                       "messages": [{"role": "user", "content": f"refused {n} {style}"}]})
    client.close()


def _normalize(spans: list[Any]) -> list[dict[str, Any]]:
    """Spans as comparable dicts, in a stable order, parents named by their stable key."""
    ids: dict[str, str] = {}

    def conversation(value: str) -> str:
        return ids.setdefault(value, f"conversation-{len(ids)}")

    def key(span: Any) -> str:
        attrs = span.attributes or {}
        conv = conversation(str(attrs.get("gen_ai.conversation.id", "?")))
        return "|".join((conv, span.name, str(attrs.get("agent_trace.turn.index", "")),
                         str(attrs.get("gen_ai.tool.call.id", ""))))

    for span in sorted(spans, key=lambda s: s.start_time or 0):  # ids numbered in order of appearance
        key(span)
    by_id = {s.context.span_id: key(s) for s in spans}
    out = []
    for span in spans:
        attrs: dict[str, Any] = {}
        for name, value in sorted((span.attributes or {}).items()):
            if name in VOLATILE:
                value = "<volatile>"
            elif name in ID_ATTRIBUTES:
                value = conversation(str(value))
            attrs[name] = list(value) if isinstance(value, tuple) else value
        events = []
        for event in span.events:
            event_attrs = {}
            for name, value in sorted((event.attributes or {}).items()):
                if name == "agent_trace.finding.span_id":
                    value = by_id.get(int(str(value), 16), "<other>")
                elif name == "exception.stacktrace":
                    value = "<stacktrace>"
                elif name == "exception.message" and "scripted refusal" in str(value):
                    # str() of the SDK's error: its wording is the SDK's (anthropic 2.17 changed it); the
                    # server's message must still be in it.
                    value = "<the SDK's message, with the server's: scripted refusal>"
                event_attrs[name] = list(value) if isinstance(value, tuple) else value
            events.append({"name": event.name, "attributes": event_attrs})
        parent = span.parent.span_id if span.parent is not None else None
        out.append({"key": key(span), "name": span.name, "kind": span.kind.name,
                    "status": [span.status.status_code.name, span.status.description],
                    "parent": by_id.get(parent, "<external>") if parent is not None else None,
                    "attributes": attrs, "events": events})
    return sorted(out, key=lambda s: s["key"])


def _scripted_run(capture_content: bool) -> list[dict[str, Any]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    environ = {"OTEL_AGENT_TRACE_DETECTORS": "true"}
    if capture_content:
        environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=Settings.from_env(environ))
    try:
        with FakeMessagesAPI() as api:
            for n, style in enumerate(STYLES):
                _agent_loop(api, style, n)
    finally:
        instrumentor.uninstrument()  # ends what is still open
    provider.shutdown()
    return _normalize(list(exporter.get_finished_spans()))


@pytest.mark.parametrize("capture_content", [False, True], ids=["metadata", "content"])
def test_scripted_run_emits_the_recorded_spans(capture_content: bool) -> None:
    """The scripted run's spans equal the recorded ones: names, kinds, attributes, events, status, parents."""
    spans = _scripted_run(capture_content)
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    mode = "content" if capture_content else "metadata"
    if os.environ.get("OTEL_AGENT_TRACE_REGEN_GOLDEN") == "1":
        golden[mode] = spans
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    assert spans == golden[mode]
