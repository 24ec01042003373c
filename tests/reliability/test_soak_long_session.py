"""Soak: one agent session that runs for thousands of turns (a sliding window of messages, every turn a
new tool call on a new file) must cost the same work per call at the end as near the start, and hold
bounded memory once the detectors' caps are reached. 1,500 turns in CI, 10,000 under
``OTEL_AGENT_TRACE_SOAK=1``.

Cost is counted as lines of this package executed per call and objects the garbage collector tracks, as
in the identical-request soak: exact where timings on a shared machine are not. The detectors' cap on
tracked targets is set low, so the session passes it early and the second half shows the steady state.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, RecordedRequest, Reply, tool_reply
from tests.reliability.support import CountingExporter, package_lines_per_call, scaled, tracked_objects

TURNS = scaled(1_500, 10_000)
SAMPLED_TURNS = 20  # turns traced line by line near the start and at the end
WINDOW = 20  # messages kept after the task
TRACKED_TARGETS_CAP = 64
FIRST = {"role": "user", "content": "Fix the failing tests in tests/ without changing them."}


def _tool_use(k: int) -> dict[str, Any]:
    """Turn k's tool call: read, edit, test and search in turn, each on a file not touched before."""
    path = f"src/pkg/mod_{k}.py"
    name, tool_input = [
        ("Read", {"file_path": path}),
        ("Edit", {"file_path": path, "old_string": f"a{k}", "new_string": f"b{k}"}),
        ("Bash", {"command": f"pytest tests/test_mod_{k}.py -q"}),
        ("Grep", {"pattern": f"def helper_{k}", "path": "src"}),
    ][k % 4]
    return {"id": f"toolu_soak_{k:06d}", "name": name, "input": tool_input}


class SlidingWindowAgent:
    """Sends turn k: the task, then the last ``WINDOW`` messages, answering turn k-1's tool call."""

    def __init__(self, client: anthropic.Anthropic) -> None:
        self.client = client
        self.history: list[dict[str, Any]] = []
        self.turn = 0

    def step(self) -> None:
        k = self.turn
        if k:
            use = _tool_use(k - 1)
            self.history += [
                {"role": "assistant", "content": [{"type": "tool_use", **use}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"],
                                              "content": f"output of step {k - 1}\n" * 8}]},
            ]
            del self.history[:max(0, len(self.history) - WINDOW)]
        self.client.messages.create(model="claude-sonnet-4-6", max_tokens=256, messages=[FIRST, *self.history])
        self.turn += 1


@pytest.fixture(scope="module")
def long_session() -> Iterator[tuple[SlidingWindowAgent, FakeMessagesAPI, CountingExporter, Any]]:
    exporter = CountingExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = AnthropicAgentInstrumentor()
    settings = Settings.from_env({"OTEL_AGENT_TRACE_DETECTORS": "true"})
    settings.thresholds = {"max_tracked_targets": TRACKED_TARGETS_CAP}
    instrumentor.instrument(tracer_provider=provider, settings=settings)
    turns = itertools.count()

    def answer(request: RecordedRequest) -> Reply:
        return tool_reply(_tool_use(next(turns)), text="next step")

    try:
        with FakeMessagesAPI(answer) as api:
            client = anthropic.Anthropic(api_key="sk-ant-test-key-000000", base_url=api.base_url, max_retries=0)
            yield SlidingWindowAgent(client), api, exporter, instrumentor.hub
            client.close()
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


@pytest.fixture(scope="module")
def soak_run(long_session: tuple[SlidingWindowAgent, FakeMessagesAPI, CountingExporter, Any]) -> dict[str, Any]:
    agent, api, exporter, hub = long_session
    half = TURNS // 2
    for _ in range(half - SAMPLED_TURNS):
        agent.step()
    middle_lines = package_lines_per_call(agent.step, SAMPLED_TURNS)
    middle_objects = tracked_objects(api)
    for _ in range(TURNS - half - SAMPLED_TURNS):
        agent.step()
    late_lines = package_lines_per_call(agent.step, SAMPLED_TURNS)
    late_objects = tracked_objects(api)
    sessions = list(hub.sessions._open.values())
    return {"middle_lines": middle_lines, "late_lines": late_lines, "middle_objects": middle_objects,
            "late_objects": late_objects, "spans": exporter.spans, "open_sessions": len(sessions),
            "session_turns": sessions[0].turns if sessions else 0}


def test_a_long_session_is_one_session(soak_run: dict[str, Any]) -> None:
    """The sliding window does not split the run: every turn belongs to the one open session."""
    assert soak_run["open_sessions"] == 1, soak_run
    assert soak_run["session_turns"] == TURNS, soak_run


def test_late_turns_cost_the_same_work_as_earlier_ones(soak_run: dict[str, Any]) -> None:
    """The last turns execute no more of our code than turns halfway through: no per-turn scan of the
    session's history, in the sessions or in any detector."""
    assert soak_run["late_lines"] <= soak_run["middle_lines"] * 1.05 + 20, soak_run


def test_memory_stays_bounded_once_the_caps_are_reached(soak_run: dict[str, Any]) -> None:
    """Between halfway and the end, objects tracked by the garbage collector do not grow with the turns."""
    early, late = soak_run["middle_objects"], soak_run["late_objects"]
    assert late.total - early.total <= 2_000, late.grown_since(early)


def test_every_turn_and_tool_call_is_traced(soak_run: dict[str, Any]) -> None:
    """A chat span per turn and an inferred tool span per answered tool call, all exported."""
    assert soak_run["spans"] >= 2 * TURNS - 1, soak_run
