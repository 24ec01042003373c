"""The trace is right wherever people run agents: one spec, run against every framework and loop style.

Each case is a real framework installed from the registry (or a hand-written loop) driving the same
tool-using agent against the fake Messages API. Each is run once with our instrumentation and once
without, and every test below checks one expectation on every case.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, Fault
from tests.compat import agents, expect
from tests.compat.conftest import require
from tests.compat.expect import Trace


@dataclass(frozen=True)
class Case:
    id: str
    run: agents.Runner
    modules: tuple[str, ...] = ()  # frameworks the case needs installed
    runs: int = 1  # agent runs, each one session
    sub_agents: int = 0
    faults: tuple[Fault, ...] = ()  # answered before the agent's own script
    peer: str | None = None  # another instrumentor of the SDK (agents.PEERS), on for the whole case
    peer_first: bool = True  # instrumented before ours (so its wrapper sits inside ours) or after

    def __str__(self) -> str:
        return self.id


CASES = [
    Case("sdk_tool_runner", agents.sdk_tool_runner),
    Case("sdk_tool_runner_async", agents.sdk_tool_runner_async),
    Case("pydantic_ai_default", agents.pydantic_ai_default, ("pydantic_ai",)),
    Case("pydantic_ai_instrumented", agents.pydantic_ai_instrumented, ("pydantic_ai",)),
    Case("langchain_chat_anthropic_tools", agents.langchain_tools, ("langchain_anthropic",)),
    Case("langchain_langsmith_otel_mode", agents.langchain_tools_langsmith_otel, ("langchain_anthropic", "langsmith")),
    Case("langgraph_create_react_agent", agents.langgraph_react_agent, ("langchain_anthropic", "langgraph")),
    Case("hand_loop_sync", agents.hand_loop_sync),
    Case("hand_loop_async", agents.hand_loop_async),
    Case("hand_loop_streaming", agents.hand_loop_streaming),
    Case("hand_loop_retrying_overloaded", agents.hand_loop_retrying, faults=(Fault.overloaded(),)),
    # Other instrumentors of the SDK, either side of ours.
    Case("openllmetry_before_ours", agents.hand_loop_sync, ("opentelemetry.instrumentation.anthropic",),
         peer="openllmetry"),
    Case("openllmetry_after_ours", agents.hand_loop_sync, ("opentelemetry.instrumentation.anthropic",),
         peer="openllmetry", peer_first=False),
    Case("openinference_before_ours", agents.hand_loop_sync, ("openinference.instrumentation.anthropic",),
         peer="openinference"),
    Case("openinference_after_ours", agents.hand_loop_sync, ("openinference.instrumentation.anthropic",),
         peer="openinference", peer_first=False),
    Case("official_genai_before_ours", agents.hand_loop_sync, ("opentelemetry.instrumentation.genai.anthropic",),
         peer="official_genai"),
    Case("official_genai_after_ours", agents.hand_loop_sync, ("opentelemetry.instrumentation.genai.anthropic",),
         peer="official_genai", peer_first=False),
    Case("two_agents_in_threads", agents.two_agents_in_threads, runs=2),
    Case("sub_agent_from_tool", agents.sub_agent_from_tool, sub_agents=1),
]


def run_case(case: Case, *, instrumented: bool) -> Trace:
    """Run the case's agent against a fresh fake API, with or without our instrumentation."""
    for module in case.modules:
        require(module)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ours = AnthropicAgentInstrumentor()
    peer = require(agents.PEERS[case.peer]).AnthropicInstrumentor() if case.peer else None
    order = [x for x in ((peer, ours) if case.peer_first else (ours, peer)) if x is not None and
             (x is not ours or instrumented)]
    for instrumentor in order:
        if instrumentor is ours:
            ours.instrument(tracer_provider=provider, settings=Settings.from_env({}))
        else:
            instrumentor.instrument(tracer_provider=provider)
    try:
        with FakeMessagesAPI(agents.answer) as api:
            api.enqueue(*case.faults)
            output = case.run(agents.Run(api.base_url, provider))
            requests = list(api.requests)
    finally:
        # Last patched, first unpatched: each unwrap restores what its own wrap replaced. Ours ends
        # whatever session is still open, as process exit would.
        for instrumentor in reversed(order):
            instrumentor.uninstrument()
    provider.shutdown()
    return Trace(output, exporter.get_finished_spans(), requests)


@pytest.fixture(scope="module", params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture(scope="module")
def traced(case: Case) -> Trace:
    return run_case(case, instrumented=True)


def test_sessions__one_per_run(case: Case, traced: Trace) -> None:
    """One session per agent run, parented to the agent's run (a sub-agent's to its tool), never to a chat span."""
    expect.check_sessions(traced, case.runs, case.sub_agents)


def test_turns__numbered_without_gaps(case: Case, traced: Trace) -> None:
    """Each session's turns are numbered 1..n, one per model call that answered."""
    expect.check_turns(traced, failed_requests=len(case.faults))


def test_usage__one_chat_span_per_model_call(case: Case, traced: Trace) -> None:
    """Across every instrumentation scope, exactly one chat span per answered model call carries usage."""
    expect.check_usage_once(traced, failed_requests=len(case.faults))


def test_tools__one_span_per_tool_call(traced: Trace) -> None:
    """Every tool call has exactly one tool span, with its call id; ours sit under the turn that asked."""
    expect.check_tool_spans(traced)


def test_traceparent__on_every_request(traced: Trace) -> None:
    """Every request the fake API received carries a traceparent naming a chat span of the trace."""
    expect.check_traceparent(traced)


def test_findings__none_on_a_clean_run(traced: Trace) -> None:
    """A clean run raises no finding."""
    expect.check_no_findings(traced)


def test_output__same_without_instrumentation(case: Case, traced: Trace) -> None:
    """The agent produces the same output with and without our instrumentation."""
    assert traced.output == run_case(case, instrumented=False).output
