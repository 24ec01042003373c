"""The SDK's message threads (``client.beta.messages.thread()``, and its tool runner, which uses them by default
on the first-party client): the server holds the conversation, so each request sends only the new messages
and names the reply it continues from. Neither the first message nor the history's length then says which
run a request belongs to; the reply it continues from does. A threaded run must trace exactly as the same
run sent with its whole history does."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from anthropic.resources.beta.messages import Messages as BetaMessages

from otel_agent_trace import semconv as sc
from otel_agent_trace.testing.fake_api import Fault, text_reply, tool_reply

pytestmark = pytest.mark.skipif(not hasattr(BetaMessages, "thread"), reason="this anthropic has no message threads")

MODEL = "claude-sonnet-4-6"
TOOLS = [{"name": "read_file", "description": "Read a file.",
          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}]
RETRIED_LOOP = [tool_reply(("read_file", {"path": "a.py"})), Fault.overloaded(),
                tool_reply(("read_file", {"path": "b.py"})), text_reply("done")]
MAX_CALLS = 8  # a loop that never ends fails instead of hanging


def clients(api: Any) -> tuple[anthropic.Anthropic, anthropic.AsyncAnthropic]:
    options = {"api_key": "sk-ant-test-key-000000", "base_url": api.base_url, "max_retries": 0}
    return anthropic.Anthropic(**options), anthropic.AsyncAnthropic(**options)


def results_for(reply: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "x = 1"}
                                         for block in reply.content if block.type == "tool_use"]}]


def run_turns(turn: Callable[[list[dict[str, Any]]], Any]) -> None:
    """An agent loop: ``turn`` sends the staged messages as one turn; after a 529 it is sent again with nothing
    new staged (the thread re-sends the turn itself)."""
    staged: list[dict[str, Any]] = [{"role": "user", "content": "Fix the failing test."}]
    for _ in range(MAX_CALLS):
        try:
            reply = turn(staged)
        except anthropic.APIStatusError:
            staged = []
            continue
        if reply.stop_reason != "tool_use":
            return
        staged = results_for(reply)
    raise AssertionError("the loop did not end")


def threaded_loop(api: Any, how: str) -> None:
    """``run_turns`` on a thread, each turn sent with ``send``, async ``send`` or ``.stream()``."""
    sync_client, async_client = clients(api)
    if how == "async":
        loop = asyncio.new_event_loop()
        async_thread = async_client.beta.messages.thread(model=MODEL, max_tokens=256, tools=TOOLS)
        try:
            run_turns(lambda staged: loop.run_until_complete(async_thread.send(*staged)))
        finally:
            loop.run_until_complete(async_client.close())
            loop.close()
        return
    thread = sync_client.beta.messages.thread(model=MODEL, max_tokens=256, tools=TOOLS)

    def streamed(staged: list[dict[str, Any]]) -> Any:
        with thread.stream(*staged) as stream:
            return stream.get_final_message()

    run_turns(streamed if how == "stream" else lambda staged: thread.send(*staged))


def unthreaded_loop(api: Any) -> None:
    """The same run with the whole history in every request."""
    client, _ = clients(api)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix the failing test."}]
    for _ in range(MAX_CALLS):
        try:
            reply = client.beta.messages.create(model=MODEL, max_tokens=256, tools=TOOLS, messages=messages)
        except anthropic.APIStatusError:
            continue
        messages.append({"role": "assistant", "content": reply.content})
        if reply.stop_reason != "tool_use":
            return
        messages += results_for(reply)
    raise AssertionError("the loop did not end")


def shape(spans: Any) -> list[tuple[str, str | None, Any, Any]]:
    """Each span's name, its parent's name, its turn index and whether it is a failed attempt, in start order."""
    by_id = {s.context.span_id: s for s in spans}
    return [(s.name, by_id[s.parent.span_id].name if s.parent and s.parent.span_id in by_id else None,
             s.attributes.get(sc.TURN_INDEX), s.attributes.get(sc.TURN_FAILED_ATTEMPT))
            for s in sorted(spans, key=lambda s: (s.start_time, s.name))]


def sessions(spans: Any) -> list[Any]:
    return [s for s in spans if s.name.startswith("invoke_agent")]


@pytest.mark.parametrize("how", ["send", "async", "stream"])
def test_a_threaded_loop_retried_after_an_error_traces_like_the_unthreaded_one(instrumented, api, exporter, how):
    """The retry continues from the same reply as the failed attempt: one run, the retry takes the failed
    attempt's turn number, and no session is left open."""
    api.enqueue(*RETRIED_LOOP)
    threaded_loop(api, how)
    assert [r.body.get("thread", {}).get("type") for r in api.requests] == ["create", "continue", "continue",
                                                                           "continue"]
    threaded = exporter.get_finished_spans()
    exporter.clear()
    api.enqueue(*RETRIED_LOOP)
    unthreaded_loop(api)
    assert shape(threaded) == shape(exporter.get_finished_spans())
    (run,) = sessions(threaded)
    assert run.attributes[sc.TURNS] == 3 and run.attributes[sc.END_REASON] == "end_turn"


def test_a_thread_continued_from_another_thread_stays_in_its_run(instrumented, api, exporter):
    """A reply cut at max_tokens, continued from a worker thread with a plain "continue": no tool result ties
    it to the run and its only message is new, yet it is the run's next turn."""
    api.enqueue(text_reply("The cause is", stop_reason="max_tokens"), text_reply("a stale fixture."))
    client, _ = clients(api)
    thread = client.beta.messages.thread(model=MODEL, max_tokens=16)
    thread.send({"role": "user", "content": "Why does the test fail?"})
    worker = threading.Thread(target=lambda: thread.send({"role": "user", "content": "continue"}))
    worker.start()
    worker.join()
    spans = exporter.get_finished_spans()
    (run,) = sessions(spans)
    chats = sorted((s for s in spans if s.name.startswith("chat")), key=lambda s: s.start_time)
    assert [c.attributes[sc.TURN_INDEX] for c in chats] == [1, 2]
    assert all(c.parent.span_id == run.context.span_id for c in chats)
    assert run.attributes[sc.TURNS] == 2 and run.attributes[sc.END_REASON] == "end_turn"


def test_the_sdk_tool_runner_on_threads_is_one_run(instrumented, api, exporter):
    """The SDK's tool runner threads its requests by default; its run is one session, each tool under its turn."""
    from anthropic import beta_tool

    @beta_tool
    def read_file(path: str) -> str:
        """Read a file."""
        return f"contents of {path}"

    api.enqueue(tool_reply(("read_file", {"path": "a.py"})), tool_reply(("read_file", {"path": "b.py"})),
                text_reply("done"))
    client, _ = clients(api)
    runner = client.beta.messages.tool_runner(model=MODEL, max_tokens=256, tools=[read_file],
                                              messages=[{"role": "user", "content": "Read a.py then b.py."}])
    runner.until_done()
    assert [r.body.get("thread", {}).get("type") for r in api.requests] == ["create", "continue", "continue"]
    assert shape(exporter.get_finished_spans()) == [
        ("chat claude-sonnet-4-6", "invoke_agent agent", 1, None), ("invoke_agent agent", None, None, None),
        ("execute_tool read_file", "chat claude-sonnet-4-6", 1, None),
        ("chat claude-sonnet-4-6", "invoke_agent agent", 2, None),
        ("execute_tool read_file", "chat claude-sonnet-4-6", 2, None),
        ("chat claude-sonnet-4-6", "invoke_agent agent", 3, None)]


def test_a_threaded_turn_names_the_reply_it_continues(instrumented, api, exporter):
    """Its request holds only the new messages (agent_trace.request.messages counts what was sent); the span
    says which reply the server continued from. A request outside a thread has no such attribute."""
    api.enqueue(tool_reply(("read_file", {"path": "a.py"})), text_reply("done"), text_reply("plain"))
    client, _ = clients(api)
    thread = client.beta.messages.thread(model=MODEL, max_tokens=256, tools=TOOLS)
    first = thread.send({"role": "user", "content": "Read a.py."})
    thread.send(*results_for(first))
    client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello."}])
    chats = sorted((s for s in exporter.get_finished_spans() if s.name.startswith("chat")), key=lambda s: s.start_time)
    assert [c.attributes.get(sc.REQUEST_CONTINUES) for c in chats] == [None, first.id, None]
    assert chats[1].attributes[sc.REQUEST_MESSAGES] == 1
