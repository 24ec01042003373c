"""With content capture off, tool output does not leave the process: a raising tool's exception event carries
its type and a redacted, capped message, and finding messages describe failures instead of quoting them."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from otel_agent_trace import trace_tool
from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.pipeline.sink import ERROR_MESSAGE_CHARS
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, Reply, text_reply, tool_reply
from tests.reliability.test_secrets import span_texts

# Words no message of ours contains: any of them on a span came from the tool's output.
OUTPUT_WORDS = ("quokka", "zeppelin", "marmalade", "obsidian")
LONG_OUTPUT = " ".join(OUTPUT_WORDS * 200)
TOKEN = "ghp_ToolOutputToken1111aaaa2222bbbb3333"


def _model(body: dict[str, Any]) -> Reply:
    turn = 1 + sum(1 for m in body["messages"] if m["role"] == "assistant")
    return tool_reply(("deploy", {"env": "prod"})) if turn <= 3 else text_reply("gave up")


@trace_tool("deploy")
def deploy(env: str) -> str:
    raise RuntimeError(f"deploy to {env} failed with {TOKEN}: {LONG_OUTPUT}")


@pytest.fixture
def spans(exporter, provider) -> list[Any]:
    """Three failing deploys (a tool loop) with content capture off, each raising with a long message."""
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=Settings(capture_content=False))
    try:
        with FakeMessagesAPI(_model) as api:
            client = anthropic.Anthropic(api_key="sk-ant-test", base_url=api.base_url, max_retries=0)
            messages: list[dict[str, Any]] = [{"role": "user", "content": "deploy"}]
            while True:
                response = client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=messages)
                messages.append({"role": "assistant", "content": response.content})
                if response.stop_reason == "end_turn":
                    break
                results = []
                for block in response.content:
                    try:
                        output = deploy(**block.input)
                    except RuntimeError as error:
                        output = f"Error: {error}"
                    results.append({"type": "tool_result", "tool_use_id": block.id, "content": output,
                                    "is_error": True})
                messages.append({"role": "user", "content": results})
    finally:
        instrumentor.uninstrument()
    return list(exporter.get_finished_spans())


def _exception_events(spans: list[Any]) -> list[dict[str, Any]]:
    return [dict(event.attributes or {}) for span in spans for event in span.events if event.name == "exception"]


def test_a_raising_tool_reports_its_type_and_a_capped_redacted_message(spans):
    """Each exception event names the type; its message is capped and has the token masked."""
    events = _exception_events(spans)
    assert len(events) == 3
    for event in events:
        assert event["exception.type"] == "RuntimeError"
        assert len(event["exception.message"]) <= ERROR_MESSAGE_CHARS
        assert TOKEN not in event["exception.message"] and "deploy to prod failed" in event["exception.message"]


def test_the_stack_trace_carries_no_more_of_the_message_than_the_message_does(spans):
    """The stack trace is frames plus the capped message: the long output is not repeated there."""
    for event in _exception_events(spans):
        stack = event["exception.stacktrace"]
        assert stack.endswith(f"RuntimeError: {event['exception.message']}")
        assert stack.count("quokka") <= event["exception.message"].count("quokka")


def test_finding_messages_and_langfuse_status_quote_no_tool_output(spans):
    """The tool loop is reported, and neither its finding message nor Langfuse's status message holds a word
    of the tool's output."""
    texts = [(where, text) for where, text in span_texts(spans)
             if ": event agent_trace.finding " in where or "langfuse.observation.status_message" in where]
    assert any("tool_loop" in text for _, text in texts), "the loop was reported"
    assert [where for where, text in texts if any(word in text for word in OUTPUT_WORDS)] == []
