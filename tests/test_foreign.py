"""Another library's GenAI spans around the same call: one chat span with usage per call, one tool span per
tool call. The other library is played by a tracer of its own scope, shaped as the real ones are (the
compatibility suite runs the real ones)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import pytest

from otel_agent_trace import trace_tool
from otel_agent_trace.testing import by_operation
from otel_agent_trace.testing.fake_api import Fault, text_reply, tool_reply

FRAMEWORK = "some.agent.framework"
SDK_INSTRUMENTOR = "opentelemetry.instrumentation.anthropic"


@contextmanager
def foreign_span(provider: Any, scope: str, name: str, operation: str) -> Iterator[Any]:
    with provider.get_tracer(scope).start_as_current_span(name, attributes={"gen_ai.operation.name": operation}) \
            as span:
        yield span


def _loop(api: Any, provider: Any, scope: str, *, tool: Any = None) -> None:
    """A two-turn tool loop inside a foreign agent run, each model call inside a foreign chat span."""
    client = anthropic.Anthropic(api_key="k", base_url=api.base_url, max_retries=0)
    api.enqueue(tool_reply(("read_file", {"path": "a.py"})), text_reply("done"))
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    with foreign_span(provider, scope, "invoke_agent framework", "invoke_agent"):
        with foreign_span(provider, scope, "chat m", "chat"):
            response = client.messages.create(model="m", max_tokens=5, messages=messages)
        use = response.content[0]
        with foreign_span(provider, scope, "execute_tool read_file", "execute_tool"):
            result = tool(use.input["path"]) if tool else "text"
        messages += [{"role": "assistant", "content": response.content},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": result}]}]
        with foreign_span(provider, scope, "chat m", "chat"):
            client.messages.create(model="m", max_tokens=5, messages=messages)


def test_foreign_chat_span_is_borrowed_not_doubled(api, provider, exporter, instrumented):
    """Each call inside another library's chat span gets no chat span of ours; theirs carries our turn."""
    _loop(api, provider, FRAMEWORK)
    chats = by_operation(exporter.get_finished_spans(), "chat")
    assert [(c.instrumentation_scope.name, c.attributes["agent_trace.turn.index"]) for c in chats] == [
        (FRAMEWORK, 1), (FRAMEWORK, 2)]


def test_session_hangs_under_the_agent_run_not_the_chat_span(api, provider, exporter, instrumented):
    """Our session's parent is the framework's agent run, where its chat span hangs."""
    _loop(api, provider, FRAMEWORK)
    spans = exporter.get_finished_spans()
    (run,) = [s for s in spans if s.name == "invoke_agent framework"]
    (session,) = [s for s in by_operation(spans, "invoke_agent") if s.instrumentation_scope.name != FRAMEWORK]
    assert session.parent.span_id == run.context.span_id


def test_framework_traces_its_tools_so_ours_are_not_made(api, provider, exporter, instrumented):
    """A tool call under a framework's turn keeps the framework's tool span only."""
    _loop(api, provider, FRAMEWORK)
    tools = by_operation(exporter.get_finished_spans(), "execute_tool")
    assert [t.instrumentation_scope.name for t in tools] == [FRAMEWORK]


def test_sdk_instrumentor_turn_keeps_our_tool_spans(api, provider, exporter, instrumented):
    """An instrumentor of the SDK traces no tools: the inferred tool span is ours, under its chat span."""
    _loop(api, provider, SDK_INSTRUMENTOR)
    spans = exporter.get_finished_spans()
    ours = [t for t in by_operation(spans, "execute_tool") if t.instrumentation_scope.name == "otel_agent_trace"]
    first_chat = by_operation(spans, "chat")[0]
    assert [t.parent.span_id for t in ours] == [first_chat.context.span_id]


def test_dispatcher_inside_a_foreign_tool_span_borrows_it(api, provider, exporter, instrumented):
    """A traced tool running inside another library's tool span adds to that span instead of making one."""

    @trace_tool
    def read_file(path: str) -> str:
        return "text of " + path

    _loop(api, provider, FRAMEWORK, tool=read_file)
    (tool,) = by_operation(exporter.get_finished_spans(), "execute_tool")
    assert tool.instrumentation_scope.name == FRAMEWORK
    assert tool.attributes["agent_trace.tool.source"] == "decorator"
    assert tool.attributes["agent_trace.turn.index"] == 1


def test_failed_attempt_leaves_the_borrowed_span_to_the_retry(api, provider, exporter, instrumented):
    """A refused attempt and its retry inside one foreign chat span: the span carries the retry's outcome."""
    client = anthropic.Anthropic(api_key="k", base_url=api.base_url, max_retries=0)
    api.enqueue(Fault.bad_request(), text_reply("done"))
    with foreign_span(provider, FRAMEWORK, "chat m", "chat"):
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "go"}])
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "go"}])
    (theirs,) = [c for c in by_operation(exporter.get_finished_spans(), "chat")
                 if c.instrumentation_scope.name == FRAMEWORK]
    assert theirs.attributes["agent_trace.stop_reason"] == "end_turn"
    assert "error.type" not in theirs.attributes


def test_chat_span_started_but_not_current_is_borrowed_once(api, provider, exporter, instrumented):
    """A foreign chat span started around the call without being made current (OpenLLMetry's way) is
    borrowed by that call, and never by a later call it did not start around."""
    client = anthropic.Anthropic(api_key="k", base_url=api.base_url, max_retries=0)
    span = provider.get_tracer(SDK_INSTRUMENTOR).start_span("anthropic.chat", attributes={
        "gen_ai.operation.name": "chat"})
    client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "one"}])
    client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "two"}])
    span.end()  # its owner ends it after the call; the second call's span is ours
    chats = by_operation(exporter.get_finished_spans(), "chat")
    assert sorted(c.instrumentation_scope.name for c in chats) == sorted(["otel_agent_trace", SDK_INSTRUMENTOR])
