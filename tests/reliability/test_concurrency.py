"""Many agents at once — 64 threads and 200 asyncio tasks, all on the same task text — never mix: every
span sits under its own conversation's parent, and each session's turns are numbered 1..n."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_agent_trace import trace_tool
from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing import by_operation
from otel_agent_trace.testing import demo_agent as demo
from otel_agent_trace.testing.fake_api import FakeMessagesAPI
from tests.reliability.support import EndCounter, scaled

THREADS, TASKS = 64, 200
ROUNDS = scaled(1, 10)
TURNS = len(demo.CLEAN_SCRIPT)  # 6 tool turns, then end_turn
FINAL_TEXT = demo.CLEAN_SCRIPT[-1]


# --- an async agent loop: the seed loop's shape, with async tools -------------------------------------------
async def _read_file(path: str) -> str:
    await asyncio.sleep(0)
    return demo.read_file(path)


async def _list_dir(path: str = ".") -> str:
    await asyncio.sleep(0)
    return demo.list_dir(path)


async def _edit_file(path: str, old_str: str, new_str: str) -> str:
    await asyncio.sleep(0)
    return demo.edit_file(path, old_str, new_str)


async def _run_bash(command: str) -> str:
    await asyncio.sleep(0)  # no subprocess: 200 of them would serialise the event loop
    return "1 passed"


PLAIN_TOOLS = {"read_file": _read_file, "list_dir": _list_dir, "edit_file": _edit_file, "run_bash": _run_bash}
TRACED_TOOLS = {name: trace_tool(name)(tool) for name, tool in PLAIN_TOOLS.items()}


async def async_agent(client: anthropic.AsyncAnthropic, tools: dict[str, Any]) -> str:
    demo.workspace.set(demo.make_workspace())
    messages: list[dict[str, Any]] = [{"role": "user", "content": demo.CLEAN_TASK}]
    for _ in range(12):
        response = await client.messages.create(model=demo.MODEL, max_tokens=1024, system=demo.SYSTEM,
                                                tools=demo.TOOLS, messages=messages)
        messages.append({"role": "assistant", "content": response.content})
        if response.stop_reason == "end_turn":
            return str(response.content[-1].text)
        results = []
        for block in response.content:
            if block.type == "tool_use":
                output = await tools[block.name](**block.input)
                results.append({"type": "tool_result", "tool_use_id": block.id, "content": output,
                                "is_error": output.startswith("Error")})
        messages.append({"role": "user", "content": results})
    raise RuntimeError("Turn limit reached")


# --- the run ----------------------------------------------------------------------------------------------
class Crowd:
    """What one run of many agents produced."""

    def __init__(self) -> None:
        self.answers: list[str] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    def record(self, outcome: Any) -> None:
        with self.lock:
            (self.errors if isinstance(outcome, BaseException) else self.answers).append(outcome)


def thread_agent(crowd: Crowd, client: anthropic.Anthropic, start: threading.Barrier, patched: bool,
                 original_dispatch: Any) -> None:
    """The demo's sync loop in its own workspace: tools through the patched dispatcher, or untraced."""
    demo.workspace.set(demo.make_workspace())
    dispatch = (lambda name, tool_input: demo.dispatch_tool(name, tool_input)) if patched else original_dispatch
    start.wait()
    try:
        crowd.record(demo.run_agent(client, demo.CLEAN_TASK, dispatch=dispatch))
    except BaseException as error:
        crowd.record(error)


async def task_agents(crowd: Crowd, base_url: str, start: threading.Barrier) -> None:
    client = anthropic.AsyncAnthropic(api_key="sk-ant-test-key-000000", base_url=base_url, max_retries=2)
    start.wait()
    outcomes = await asyncio.gather(
        *(async_agent(client, TRACED_TOOLS if i % 2 == 0 else PLAIN_TOOLS) for i in range(TASKS)),
        return_exceptions=True)
    await client.close()
    for outcome in outcomes:
        crowd.record(outcome)


def one_round(crowd: Crowd, base_url: str, client: anthropic.Anthropic, original_dispatch: Any) -> None:
    """64 threads and 200 tasks, released together."""
    start = threading.Barrier(THREADS + 1)
    threads = [threading.Thread(target=thread_agent, args=(crowd, client, start, i % 2 == 0, original_dispatch))
               for i in range(THREADS)]
    for thread in threads:
        thread.start()
    asyncio.run(task_agents(crowd, base_url, start))
    for thread in threads:
        thread.join()


@pytest.fixture(scope="module")
def crowd() -> dict[str, Any]:
    """ROUNDS times: 64 threads (half through the patched dispatcher, half with inferred tools) and 200
    asyncio tasks (half with ``@trace_tool`` tools, half inferred), all on the same task text and server."""
    exporter, counter = InMemorySpanExporter(), EndCounter()
    provider = TracerProvider()
    provider.add_span_processor(counter)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    original_dispatch = demo.dispatch_tool
    workspaces: list[Path] = []
    make_workspace = demo.make_workspace

    def tracked_workspace() -> Path:
        workspaces.append(make_workspace())
        return workspaces[-1]

    run = Crowd()
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider,
                            settings=Settings(tool_dispatcher="otel_agent_trace.testing.demo_agent:dispatch_tool"))
    try:
        with pytest.MonkeyPatch.context() as patch, FakeMessagesAPI(demo.scripted_model) as api:
            patch.setattr(demo, "make_workspace", tracked_workspace)
            client = anthropic.Anthropic(api_key="sk-ant-test-key-000000", base_url=api.base_url, max_retries=2)
            for _ in range(ROUNDS):
                one_round(run, api.base_url, client, original_dispatch)
    finally:
        instrumentor.uninstrument()
        for path in workspaces:
            shutil.rmtree(path, ignore_errors=True)
    return {"spans": exporter.get_finished_spans(), "ends": counter, "answers": run.answers, "errors": run.errors}


def _conversation(span: Any) -> str:
    return span.attributes["gen_ai.conversation.id"]


class TestCrowdOfAgents:
    def test_every_agent_finishes_with_its_answer(self, crowd):
        """Every thread and task gets the scripted final answer; none raises."""
        assert crowd["errors"] == []
        assert crowd["answers"] == [FINAL_TEXT] * ((THREADS + TASKS) * ROUNDS)

    def test_one_session_per_agent(self, crowd):
        """Each agent run is one ``invoke_agent`` span of ``TURNS`` turns and ``TURNS - 1`` tool calls."""
        sessions = by_operation(crowd["spans"], "invoke_agent")
        assert len(sessions) == (THREADS + TASKS) * ROUNDS
        assert {s.attributes["agent_trace.turns"] for s in sessions} == {TURNS}
        assert {s.attributes["agent_trace.tool_calls"] for s in sessions} == {TURNS - 1}
        assert {s.attributes["agent_trace.end_reason"] for s in sessions} == {"end_turn"}

    def test_chat_spans_sit_under_their_own_session(self, crowd):
        """Every chat span's parent is the ``invoke_agent`` span of the same conversation id."""
        spans = crowd["spans"]
        sessions = {s.context.span_id: s for s in by_operation(spans, "invoke_agent")}
        misparented = [c.name for c in by_operation(spans, "chat")
                       if c.parent is None or c.parent.span_id not in sessions
                       or _conversation(sessions[c.parent.span_id]) != _conversation(c)]
        assert misparented == []

    def test_tool_spans_sit_under_the_turn_that_asked_for_them(self, crowd):
        """Every ``execute_tool`` span's parent is a chat span of its conversation that named that tool."""
        spans = crowd["spans"]
        chats = {s.context.span_id: s for s in by_operation(spans, "chat")}
        tools = by_operation(spans, "execute_tool")
        assert len(tools) == (THREADS + TASKS) * ROUNDS * (TURNS - 1)
        misparented = []
        for tool in tools:
            parent = chats.get(tool.parent.span_id) if tool.parent else None
            if (parent is None or _conversation(parent) != _conversation(tool)
                    or tool.attributes["gen_ai.tool.name"] not in parent.attributes["agent_trace.tool_use.names"]):
                misparented.append(tool.name)
        assert misparented == []
        assert {t.attributes["agent_trace.tool.source"] for t in tools} == {"dispatcher", "decorator", "inferred"}

    def test_turns_are_numbered_one_to_n_per_session(self, crowd):
        """No turn lands in another agent's session: each session's turn indexes are exactly 1..n."""
        indexes: dict[str, list[int]] = defaultdict(list)
        for chat in by_operation(crowd["spans"], "chat"):
            indexes[_conversation(chat)].append(chat.attributes["agent_trace.turn.index"])
        assert {tuple(sorted(found)) for found in indexes.values()} == {tuple(range(1, TURNS + 1))}

    def test_every_span_ended_exactly_once(self, crowd):
        """Under contention no span is left open or ended twice."""
        assert crowd["ends"].not_ended_once() == {}
