"""A seed-style coding agent: the plain loop from "The Message Trace Is Your Debugger", with a plain
``dispatch_tool`` function and real local tools on a scratch copy of a tiny repo.

It needs no API key and no network: unless ANTHROPIC_BASE_URL is set, it starts the project's local
fake Messages API, which plays a scripted model. Trace it with zero code changes:

    opentelemetry-instrument python examples/agent.py            # clean run
    opentelemetry-instrument python examples/agent.py --failing  # a run that loops, drifts and hits the limit
"""

from __future__ import annotations

import os
import sys

import anthropic

from otel_agent_trace.testing import demo_agent
from otel_agent_trace.testing.fake_api import FakeMessagesAPI


def dispatch_tool(name: str, tool_input: dict) -> str:
    """Run one tool the model asked for (set OTEL_AGENT_TRACE_TOOL_DISPATCHER=agent:dispatch_tool)."""
    return demo_agent.dispatch_tool(name, tool_input)


def run_agent(client: anthropic.Anthropic, task: str, max_turns: int = 12) -> str:
    messages = [{"role": "user", "content": task}]
    for _turn in range(max_turns):
        response = client.messages.create(model=demo_agent.MODEL, max_tokens=1024, system=demo_agent.SYSTEM,
                                          tools=demo_agent.TOOLS, messages=messages)
        messages.append({"role": "assistant", "content": response.content})
        if response.stop_reason == "end_turn":
            return response.content[-1].text
        tool_results = []
        for block in response.content:
            if block.type == "tool_use":
                output = dispatch_tool(block.name, block.input)
                tool_results.append({"type": "tool_result", "tool_use_id": block.id, "content": str(output)})
        messages.append({"role": "user", "content": tool_results})
    raise RuntimeError("Turn limit reached")


def main() -> None:
    task = demo_agent.FAILING_TASK if "--failing" in sys.argv else demo_agent.CLEAN_TASK
    demo_agent.workspace.set(demo_agent.make_workspace())
    server = None
    if not os.environ.get("ANTHROPIC_BASE_URL"):
        server = FakeMessagesAPI(demo_agent.scripted_model).start()
    client = anthropic.Anthropic(api_key=os.environ.get("ANTHROPIC_API_KEY", "fake-key"),
                                 base_url=server.base_url if server else None)
    try:
        print(run_agent(client, task, max_turns=11))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
