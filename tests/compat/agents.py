"""The same small tool-using agent, written the way each framework (or a hand-written loop) writes it.

Every agent asks the fake Messages API about the weather; the fake answers a first request with a
``get_weather`` tool call and a request carrying a tool result with the final text (see ``answer``), so
each run is one tool call between two model calls, whatever the framework does in between. A runner
takes a :class:`Run` and returns what the agent produced, compared with and without our instrumentation.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic

from otel_agent_trace.testing.fake_api import ScriptItem, text_reply, tool_reply

MODEL = "claude-sonnet-4-6"
PROMPT = "What is the weather in Paris?"
SUB_PROMPT = "sub-task: summarise the forecast for Paris"
FINAL = "It is sunny in Paris."
SUB_FINAL = "Summary: sunny."


def answer(body: dict[str, Any]) -> ScriptItem:
    """The fake API's side of every agent here: a tool call first, the final text once a result is back."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    content = last.get("content")
    if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return text_reply(FINAL)
    first = messages[0].get("content") if messages else ""
    if SUB_PROMPT in str(first):
        return text_reply(SUB_FINAL)
    return tool_reply(("get_weather", {"city": "Paris"}), text="Let me check.")


@dataclass
class Run:
    """What a runner needs: where the fake API listens, the test's tracer provider (for the SDK's and the
    frameworks' own spans), and whether the tool starts a sub-agent."""

    base_url: str
    provider: Any
    sub_agent: bool = False

    def client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"api_key": "sk-ant-test-key-000000", "base_url": self.base_url, "max_retries": 0}
        # anthropic >= 1.14 traces itself; a user with a tracer provider has those spans on.
        if "open_telemetry" in inspect.signature(anthropic.Anthropic.__init__).parameters:
            options["open_telemetry"] = {"tracer_provider": self.provider}
        return options

    def client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(**self.client_options())

    def async_client(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(**self.client_options())

    def weather(self, city: str) -> str:
        """The tool itself; with ``sub_agent`` it hands part of the work to a fresh agent."""
        if self.sub_agent:
            return f"sunny in {city} ({hand_loop_sync(self, SUB_PROMPT)})"
        return f"sunny in {city}"


TOOLS = [{"name": "get_weather", "description": "Weather for a city.",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


def _results(run: Run, content: list[Any]) -> list[dict[str, Any]]:
    return [{"type": "tool_result", "tool_use_id": block.id, "content": run.weather(**block.input)}
            for block in content if block.type == "tool_use"]


def _text(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


# -- hand-written loops ---------------------------------------------------------------------------------
def hand_loop_sync(run: Run, prompt: str = PROMPT) -> str:
    client = run.client()
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    while True:
        response = client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS, messages=messages)
        if response.stop_reason != "tool_use":
            return _text(response)
        messages += [{"role": "assistant", "content": response.content},
                     {"role": "user", "content": _results(run, response.content)}]


def hand_loop_async(run: Run) -> str:
    async def loop() -> str:
        client = run.async_client()
        messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
        while True:
            response = await client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS, messages=messages)
            if response.stop_reason != "tool_use":
                return _text(response)
            messages += [{"role": "assistant", "content": response.content},
                         {"role": "user", "content": _results(run, response.content)}]

    return asyncio.run(loop())


def hand_loop_streaming(run: Run) -> str:
    client = run.client()
    messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
    while True:
        with client.messages.stream(model=MODEL, max_tokens=1024, tools=TOOLS, messages=messages) as stream:
            text = "".join(stream.text_stream)
            response = stream.get_final_message()
        if response.stop_reason != "tool_use":
            return text
        messages += [{"role": "assistant", "content": response.content},
                     {"role": "user", "content": _results(run, response.content)}]


def hand_loop_retrying(run: Run) -> str:
    """A loop that handles overload itself (the client's retries are off): the same messages, re-sent."""
    client = run.client()
    messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
    while True:
        try:
            response = client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS, messages=messages)
        except anthropic.APIStatusError as error:
            if error.status_code == 529:
                continue
            raise
        if response.stop_reason != "tool_use":
            return _text(response)
        messages += [{"role": "assistant", "content": response.content},
                     {"role": "user", "content": _results(run, response.content)}]


def two_agents_in_threads(run: Run) -> str:
    """Two copies of the same agent, same prompt, at the same time on two threads."""
    outputs: list[str] = ["", ""]
    barrier = threading.Barrier(2)

    def agent(slot: int) -> None:
        barrier.wait()
        outputs[slot] = hand_loop_sync(run)

    threads = [threading.Thread(target=agent, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return " | ".join(outputs)


def sub_agent_from_tool(run: Run) -> str:
    run.sub_agent = True
    return hand_loop_sync(run)


# -- the SDK's beta tool runner -------------------------------------------------------------------------
def sdk_tool_runner(run: Run) -> str:
    from anthropic import beta_tool

    @beta_tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return run.weather(city)

    runner = run.client().beta.messages.tool_runner(model=MODEL, max_tokens=1024, tools=[get_weather],
                                                    messages=[{"role": "user", "content": PROMPT}])
    return _text(runner.until_done())


def sdk_tool_runner_async(run: Run) -> str:
    from anthropic import beta_async_tool

    @beta_async_tool
    async def get_weather(city: str) -> str:
        """Weather for a city."""
        return run.weather(city)

    async def main() -> str:
        runner = run.async_client().beta.messages.tool_runner(
            model=MODEL, max_tokens=1024, tools=[get_weather], messages=[{"role": "user", "content": PROMPT}])
        return _text(await runner.until_done())

    return asyncio.run(main())


# -- pydantic-ai ----------------------------------------------------------------------------------------
def _pydantic_agent(run: Run, instrument: bool) -> str:
    from pydantic_ai import Agent
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.providers.anthropic import AnthropicProvider

    model = AnthropicModel(MODEL, provider=AnthropicProvider(anthropic_client=run.async_client()))
    # Agent.instrument_all() with the test's provider instead of the global one.
    Agent.instrument_all(InstrumentationSettings(tracer_provider=run.provider) if instrument else False)
    try:
        agent = Agent(model)

        @agent.tool_plain
        def get_weather(city: str) -> str:
            return run.weather(city)

        return str(agent.run_sync(PROMPT).output)
    finally:
        Agent.instrument_all(False)


def pydantic_ai_default(run: Run) -> str:
    return _pydantic_agent(run, instrument=False)


def pydantic_ai_instrumented(run: Run) -> str:
    return _pydantic_agent(run, instrument=True)


# -- LangChain / LangGraph ------------------------------------------------------------------------------
def _chat_anthropic(run: Run) -> Any:
    from langchain_anthropic import ChatAnthropic

    return ChatAnthropic(model=MODEL, api_key="sk-ant-test-key-000000", base_url=run.base_url, max_retries=0)


def _langchain_tool(run: Run) -> Any:
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return run.weather(city)

    return get_weather


def langchain_tools(run: Run) -> str:
    """``ChatAnthropic.bind_tools`` with the tool loop written out, as LangChain's docs show it."""
    from langchain_core.messages import HumanMessage, ToolMessage

    get_weather = _langchain_tool(run)
    chat = _chat_anthropic(run).bind_tools([get_weather])
    messages: list[Any] = [HumanMessage(PROMPT)]
    while True:
        reply = chat.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return str(reply.text)
        for call in reply.tool_calls:
            messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))


def langchain_tools_langsmith_otel(run: Run) -> str:
    """The LangChain agent traced by LangSmith in OTel mode (its spans to the test's provider, none to LangSmith)."""
    from langchain_core.tracers.context import tracing_v2_enabled
    from langchain_core.tracers.langchain import wait_for_all_tracers
    from langsmith import Client

    client = Client(api_key="lsv2-test-key", tracing_mode="otel", otel_tracer_provider=run.provider)
    try:
        with tracing_v2_enabled(client=client):
            return langchain_tools(run)
    finally:
        wait_for_all_tracers()
        client.flush()


def langgraph_react_agent(run: Run) -> str:
    from langchain_core.messages import HumanMessage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in LangGraph 1.0 in favour of langchain.agents
        from langgraph.prebuilt import create_react_agent

        agent = create_react_agent(_chat_anthropic(run), [_langchain_tool(run)])
    state = agent.invoke({"messages": [HumanMessage(PROMPT)]})
    return str(state["messages"][-1].text)


Runner = Callable[[Run], str]

# Other instrumentors of the SDK, by the module their AnthropicInstrumentor lives in.
PEERS = {
    "openllmetry": "opentelemetry.instrumentation.anthropic",
    "openinference": "openinference.instrumentation.anthropic",
    "official_genai": "opentelemetry.instrumentation.genai.anthropic",
}
