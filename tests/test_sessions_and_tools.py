"""The trace reads like the agent: session → turn → the tool calls that turn asked for."""

from __future__ import annotations

import asyncio
import threading
import time

import anthropic
import pytest
from opentelemetry.trace import StatusCode

from otel_agent_trace import agent_session, trace_tool
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing import by_operation, span_tree
from otel_agent_trace.testing import demo_agent as demo
from otel_agent_trace.testing.fake_api import text_reply, tool_reply

CLEAN_TREE = [("invoke_agent agent", [
    ("chat claude-sonnet-4-6", [("execute_tool list_dir", [])]),
    ("chat claude-sonnet-4-6", [("execute_tool read_file", [])]),
    ("chat claude-sonnet-4-6", [("execute_tool read_file", [])]),
    ("chat claude-sonnet-4-6", [("execute_tool run_bash", [])]),
    ("chat claude-sonnet-4-6", [("execute_tool edit_file", [])]),
    ("chat claude-sonnet-4-6", [("execute_tool run_bash", [])]),
    ("chat claude-sonnet-4-6", []),
])]


@pytest.fixture
def scripted_api(fake_anthropic):
    fake_anthropic.respond_with(demo.scripted_model)
    return fake_anthropic


@pytest.fixture
def client(scripted_api):
    return scripted_api.client()


@pytest.fixture
def workspace():
    token = demo.workspace.set(demo.make_workspace())
    yield
    demo.workspace.reset(token)


def _instrument(provider, settings, **overrides):
    for key, value in overrides.items():
        setattr(settings, key, value)
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=settings)
    return instrumentor


@pytest.mark.usefixtures("workspace")
class TestSeedLoopThreeWays:
    @pytest.mark.parametrize("source", ["dispatcher", "decorator", "inferred"])
    def test_session_turn_tool_tree(self, client, provider, settings, exporter, source):
        """Dispatcher by dotted path, decorator, or nothing: the same tree, with tool ids and sources."""
        dispatch = demo.dispatch_tool
        if source == "dispatcher":
            settings.tool_dispatcher = "otel_agent_trace.testing.demo_agent:dispatch_tool"
        instrumentor = _instrument(provider, settings)
        try:
            if source == "dispatcher":
                dispatch = demo.dispatch_tool  # looked up after patching, as the loop's global lookup would
            elif source == "decorator":
                traced = {f.__name__: trace_tool(f) for f in (demo.read_file, demo.list_dir, demo.edit_file,
                                                               demo.run_bash)}
                dispatch = lambda name, tool_input: traced[name](**tool_input)  # noqa: E731
            demo.run_agent(client, demo.CLEAN_TASK, dispatch=lambda n, i: dispatch(n, i))
        finally:
            instrumentor.uninstrument()
        spans = exporter.get_finished_spans()
        assert span_tree(spans) == CLEAN_TREE
        tools = by_operation(spans, "execute_tool")
        chats = by_operation(spans, "chat")
        assert {t.attributes["agent_trace.tool.source"] for t in tools} == {source}
        for tool in tools:
            parent = next(c for c in chats if c.context.span_id == tool.parent.span_id)
            assert tool.attributes["gen_ai.tool.call.id"].startswith("toolu_")
            assert tool.attributes["agent_trace.turn.index"] == parent.attributes["agent_trace.turn.index"]
            assert parent.attributes["agent_trace.tool_use.names"] == (tool.attributes["gen_ai.tool.name"],)
            assert tool.attributes["agent_trace.tool.is_error"] is False
        (session,) = by_operation(spans, "invoke_agent")
        a = session.attributes
        assert a["agent_trace.turns"] == 7
        assert a["agent_trace.end_reason"] == "end_turn"
        assert a["agent_trace.tool_calls"] == 6
        assert a["agent_trace.tokens.input"] == sum(c.attributes["gen_ai.usage.input_tokens"] for c in chats)
        assert a["agent_trace.tokens.cache_read"] == 6 * 1_800
        assert a["agent_trace.cache.saved_usd"] == pytest.approx(6 * 1_800 * 3.0 * 0.9 / 1e6)
        assert len({s.attributes["gen_ai.conversation.id"] for s in spans}) == 1

    def test_tool_errors_are_flagged(self, client, provider, settings, exporter):
        """A tool that reports an error, or raises, gives an ERROR tool span with ``is_error``."""
        instrumentor = _instrument(provider, settings)
        try:
            with pytest.raises(RuntimeError, match="Turn limit"):
                demo.run_agent(client, demo.FAILING_TASK, max_turns=3)
        finally:
            instrumentor.uninstrument()
        tools = by_operation(exporter.get_finished_spans(), "execute_tool")
        first = tools[0]
        assert first.attributes["gen_ai.tool.name"] == "read_file"
        assert first.attributes["agent_trace.tool.is_error"] is True
        assert first.status.status_code is StatusCode.ERROR

    def test_raising_tool_span_records_the_exception(self, client, provider, settings, exporter):
        """An exception from a decorated tool is re-raised unchanged and recorded on its span."""

        @trace_tool("read_file")
        def broken(name, tool_input):
            raise FileNotFoundError(tool_input["path"])

        instrumentor = _instrument(provider, settings)
        try:
            with pytest.raises(FileNotFoundError):
                demo.run_agent(client, demo.CLEAN_TASK, dispatch=broken)
        finally:
            instrumentor.uninstrument()
        (tool,) = by_operation(exporter.get_finished_spans(), "execute_tool")
        assert tool.attributes["error.type"] == "FileNotFoundError"
        assert tool.events[0].name == "exception"


class TestExplicitSessions:
    def test_context_manager_names_the_agent_and_ends_on_exit(self, api, provider, settings, exporter):
        """``agent_session`` groups calls under its span even after end_turn, and ends when the block does."""
        instrumentor = _instrument(provider, settings)
        client = api.client()
        try:
            with agent_session("fixer", conversation_id="conv-1"):
                client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "a"}])
                client.messages.create(model="m", max_tokens=5, messages=[
                    {"role": "user", "content": "a"}, {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": "and b"}])
        finally:
            instrumentor.uninstrument()
        spans = exporter.get_finished_spans()
        assert span_tree(spans) == [("invoke_agent fixer", [("chat m", []), ("chat m", [])])]
        (session,) = by_operation(spans, "invoke_agent")
        assert session.attributes["gen_ai.conversation.id"] == "conv-1"
        assert session.attributes["session.id"] == "conv-1"
        assert [c.attributes["agent_trace.turn.index"] for c in by_operation(spans, "chat")] == [1, 2]

    def test_turn_limit_exception_ends_session_as_turn_limit(self, provider, settings, exporter, scripted_api,
                                                             workspace):
        """Leaving the block with the seed's turn-limit error records ``end_reason=turn_limit``."""
        instrumentor = _instrument(provider, settings)
        client = scripted_api.client()
        try:
            with pytest.raises(RuntimeError), agent_session("looper"):
                demo.run_agent(client, demo.FAILING_TASK, max_turns=2)
        finally:
            instrumentor.uninstrument()
        (session,) = by_operation(exporter.get_finished_spans(), "invoke_agent")
        assert session.attributes["agent_trace.end_reason"] == "turn_limit"

    def test_async_decorator(self, api, provider, settings, exporter):
        """The decorator form works on coroutines."""
        instrumentor = _instrument(provider, settings)
        client = api.async_client()

        @agent_session("async-agent")
        async def run():
            await client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])

        try:
            asyncio.run(run())
        finally:
            instrumentor.uninstrument()
        assert span_tree(exporter.get_finished_spans()) == [("invoke_agent async-agent", [("chat m", [])])]


class TestSubAgents:
    def test_conversation_started_inside_a_tool_is_a_child_session(self, provider, settings, exporter,
                                                                   scripted_api, workspace):
        """A fresh conversation started while a tool runs becomes a child session under that tool."""
        client = scripted_api.client()

        @trace_tool("list_dir")
        def dispatch(name, tool_input):
            if name == "list_dir":
                sub = client.messages.create(model="m", max_tokens=5,
                                             messages=[{"role": "user", "content": "summarise the repo"}])
                return sub.content[0].text if sub.content[0].type == "text" else "listing"
            return demo.dispatch_tool(name, tool_input)

        instrumentor = _instrument(provider, settings)
        try:
            demo.run_agent(client, demo.CLEAN_TASK, dispatch=dispatch)
        finally:
            instrumentor.uninstrument()
        spans = exporter.get_finished_spans()
        sessions = by_operation(spans, "invoke_agent")
        assert len(sessions) == 2
        parent, child = sorted(sessions, key=lambda s: s.start_time)
        assert child.attributes["agent_trace.session.parent"] == parent.attributes["gen_ai.conversation.id"]
        tool = next(s for s in spans if s.context.span_id == child.parent.span_id)
        assert tool.name == "execute_tool list_dir"
        assert parent.attributes["agent_trace.turns"] == 7


class TestConcurrency:
    def test_threads_and_tasks_never_mix_turns(self, provider, settings, exporter, scripted_api):
        """16 threads and 50 asyncio tasks, each its own agent: every turn and tool in its own session."""
        settings.tool_dispatcher = None
        instrumentor = _instrument(provider, settings)
        errors: list[BaseException] = []

        def thread_agent() -> None:
            demo.workspace.set(demo.make_workspace())
            client = scripted_api.client(max_retries=2)
            try:
                demo.run_agent(client, demo.CLEAN_TASK)
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        async def task_agent(client: anthropic.AsyncAnthropic, index: int) -> None:
            messages = [{"role": "user", "content": f"task {index}"}]
            for _ in range(3):
                response = await client.messages.create(model="m", max_tokens=5, messages=messages)
                messages += [{"role": "assistant", "content": response.content},
                             {"role": "user", "content": f"continue {index}"}]

        async def many_tasks() -> None:
            client = scripted_api.async_client(max_retries=2)
            await asyncio.gather(*(task_agent(client, i) for i in range(50)))

        try:
            threads = [threading.Thread(target=thread_agent) for _ in range(16)]
            for thread in threads:
                thread.start()
            asyncio.run(many_tasks())
            for thread in threads:
                thread.join()
        finally:
            instrumentor.uninstrument()
        assert errors == []
        spans = exporter.get_finished_spans()
        sessions = {s.context.span_id: s for s in by_operation(spans, "invoke_agent")}
        chats = by_operation(spans, "chat")
        by_id = {s.context.span_id: s for s in spans}
        per_session: dict[int, list[int]] = {}
        for chat in chats:
            assert chat.parent.span_id in sessions
            session = sessions[chat.parent.span_id]
            assert chat.attributes["gen_ai.conversation.id"] == session.attributes["gen_ai.conversation.id"]
            per_session.setdefault(chat.parent.span_id, []).append(chat.attributes["agent_trace.turn.index"])
        for tool in by_operation(spans, "execute_tool"):
            turn = by_id[tool.parent.span_id]
            assert tool.attributes["gen_ai.conversation.id"] == turn.attributes["gen_ai.conversation.id"]
        thread_sessions = [t for t in per_session.values() if len(t) == 7]
        assert len(thread_sessions) == 16
        assert all(sorted(t) == list(range(1, 8)) for t in thread_sessions)
        # Each asyncio agent makes 3 end_turn calls: each ends an implicit session, so 150 one-turn sessions.
        assert len(chats) == 16 * 7 + 150


class TestEndingImplicitSessions:
    def test_uninstrument_ends_open_sessions_as_abandoned(self, api, provider, settings, exporter):
        """A loop that stopped mid-task is closed at shutdown with ``end_reason=abandoned``."""
        instrumentor = _instrument(provider, settings)
        api.enqueue(tool_reply(("read_file", {"path": "x"})))
        api.client().messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "go"}])
        instrumentor.uninstrument()
        (session,) = by_operation(exporter.get_finished_spans(), "invoke_agent")
        assert session.attributes["agent_trace.end_reason"] == "abandoned"

    def test_open_sessions_are_bounded(self, api, provider, settings, exporter):
        """Past ``max_open_sessions`` the oldest open session is ended, so a service cannot leak."""
        settings.max_open_sessions = 3
        instrumentor = _instrument(provider, settings)
        client = api.client()
        try:
            for i in range(5):
                api.enqueue(tool_reply(("read_file", {"path": "x"})))
                client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": f"t{i}"}])
            ended_early = len(by_operation(exporter.get_finished_spans(), "invoke_agent"))
        finally:
            instrumentor.uninstrument()
        assert ended_early == 2

    def test_a_session_goes_idle_on_time_even_when_newer_calls_came_first(self, api, provider, settings, exporter):
        """The sweep skips calls while nothing can have expired; a session still ends at the first call
        after its own timeout."""
        settings.session_idle_timeout = 0.3
        instrumentor = _instrument(provider, settings)
        client = api.client()
        try:
            api.enqueue(tool_reply(("read_file", {"path": "x"})), tool_reply(("read_file", {"path": "y"})),
                        text_reply("ok"))
            client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "one"}])
            client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "two"}])
            still_open = len(by_operation(exporter.get_finished_spans(), "invoke_agent"))
            time.sleep(0.4)
            client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "three"}])
            done = by_operation(exporter.get_finished_spans(), "invoke_agent")
        finally:
            instrumentor.uninstrument()
        assert still_open == 0
        assert [s.attributes["agent_trace.end_reason"] for s in done][:2] == ["abandoned", "abandoned"]

    def test_idle_sessions_time_out(self, api, provider, settings, exporter):
        """A session idle past the timeout is ended at the next call."""
        settings.session_idle_timeout = 0.0
        instrumentor = _instrument(provider, settings)
        client = api.client()
        try:
            api.enqueue(tool_reply(("read_file", {"path": "x"})), text_reply("ok"))
            client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "one"}])
            client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "two"}])
            done = by_operation(exporter.get_finished_spans(), "invoke_agent")
        finally:
            instrumentor.uninstrument()
        assert [s.attributes["agent_trace.end_reason"] for s in done][:1] == ["abandoned"]
