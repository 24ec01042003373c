"""Dispatcher shapes users write, patched by dotted path — also before their module is imported."""

from __future__ import annotations

import asyncio
import importlib
import sys
import textwrap

import anthropic
import pytest

from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing import by_operation
from otel_agent_trace.testing.fake_api import tool_reply

MODULE = textwrap.dedent('''
    class Toolbox:
        def dispatch(self, block):
            if block.name == "explode":
                raise ValueError("boom")
            return {"content": "result of " + block.name, "is_error": block.name == "fails"}

    async def dispatch_async(name, tool_input):
        return "async " + name
''')


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A user module on sys.path that is *not* imported yet."""
    name = f"user_tools_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _run(api, dispatch, names):
    """One model turn asking for ``names``, then dispatch each tool_use, then the follow-up request."""
    client = anthropic.Anthropic(api_key="k", base_url=api.base_url, max_retries=0)
    api.enqueue(tool_reply(*[(n, {"path": f"{n}.txt"}) for n in names]))
    messages = [{"role": "user", "content": "go"}]
    response = client.messages.create(model="m", max_tokens=5, messages=messages)
    results = []
    for block in response.content:
        if block.type == "tool_use":
            try:
                output = dispatch(block)
            except ValueError as error:
                output = str(error)
            results.append({"type": "tool_result", "tool_use_id": block.id, "content": str(output)})
    messages += [{"role": "assistant", "content": response.content}, {"role": "user", "content": results}]
    client.messages.create(model="m", max_tokens=5, messages=messages)


def test_method_taking_the_block_patched_on_import(api, provider, settings, exporter, user_module):
    """``module:Class.method`` named before the module is imported is patched when it is imported."""
    settings.tool_dispatcher = f"{user_module}:Toolbox.dispatch"
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=settings)
    try:
        toolbox = importlib.import_module(user_module).Toolbox()
        _run(api, toolbox.dispatch, ["read_file", "fails", "explode"])
    finally:
        instrumentor.uninstrument()
    tools = {s.attributes["gen_ai.tool.name"]: s for s in by_operation(exporter.get_finished_spans(), "execute_tool")}
    assert set(tools) == {"read_file", "fails", "explode"}
    assert {s.attributes["agent_trace.tool.source"] for s in tools.values()} == {"dispatcher"}
    assert tools["read_file"].attributes["agent_trace.tool.is_error"] is False
    assert tools["fails"].attributes["agent_trace.tool.is_error"] is True
    assert tools["explode"].attributes["error.type"] == "ValueError"
    (chat, _) = by_operation(exporter.get_finished_spans(), "chat")
    assert all(t.parent.span_id == chat.context.span_id for t in tools.values())


def test_async_dispatcher_by_name_and_input(api, provider, settings, exporter, user_module):
    """An async ``(name, input)`` dispatcher gets spans too, and its result is returned unchanged."""
    settings.tool_dispatcher = f"{user_module}:dispatch_async"
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=settings)
    try:
        module = importlib.import_module(user_module)
        outputs = []
        _run(api, lambda block: outputs.append(asyncio.run(module.dispatch_async(block.name, block.input))) or
             outputs[-1], ["list_dir"])
    finally:
        instrumentor.uninstrument()
    assert outputs == ["async list_dir"]
    (tool,) = by_operation(exporter.get_finished_spans(), "execute_tool")
    assert tool.attributes["gen_ai.tool.name"] == "list_dir"
    assert tool.attributes["agent_trace.tool.result.chars"] == len("async list_dir")


def test_uninstrument_restores_the_dispatcher(provider, settings, user_module):
    """The user's function is the original again after uninstrument."""
    module = importlib.import_module(user_module)
    original = module.Toolbox.dispatch
    settings.tool_dispatcher = f"{user_module}:Toolbox.dispatch"
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=settings)
    assert module.Toolbox.dispatch is not original
    instrumentor.uninstrument()
    assert module.Toolbox.dispatch is original


def test_parallel_tool_calls_are_siblings(api, provider, settings, exporter):
    """Several tool_uses in one turn become sibling spans under that turn, inferred with no dispatcher."""
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=settings)
    try:
        _run(api, lambda block: "ok", ["a", "b", "c"])
    finally:
        instrumentor.uninstrument()
    spans = exporter.get_finished_spans()
    chat = by_operation(spans, "chat")[0]
    tools = by_operation(spans, "execute_tool")
    assert sorted(t.attributes["gen_ai.tool.name"] for t in tools) == ["a", "b", "c"]
    assert {t.parent.span_id for t in tools} == {chat.context.span_id}


def test_tools_run_on_a_thread_pool_find_their_turn(api, provider, settings, exporter, user_module):
    """Parallel tool calls dispatched on worker threads (no context carried over) still parent correctly."""
    from concurrent.futures import ThreadPoolExecutor

    settings.tool_dispatcher = f"{user_module}:dispatch_async"
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=settings)
    try:
        module = importlib.import_module(user_module)
        with ThreadPoolExecutor(4) as pool:
            def dispatch(block):
                return pool.submit(lambda: asyncio.run(module.dispatch_async(block.name, block.input))).result()

            _run(api, dispatch, ["a", "b", "c"])
    finally:
        instrumentor.uninstrument()
    spans = exporter.get_finished_spans()
    chat = by_operation(spans, "chat")[0]
    tools = by_operation(spans, "execute_tool")
    assert sorted(t.attributes["gen_ai.tool.name"] for t in tools) == ["a", "b", "c"]
    assert {t.attributes["agent_trace.tool.source"] for t in tools} == {"dispatcher"}
    assert {t.parent.span_id for t in tools} == {chat.context.span_id}
