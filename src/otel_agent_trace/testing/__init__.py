"""The test kit for agents traced by otel-agent-trace (also used by this project's own tests).

- ``FakeMessagesAPI``, ``text_reply``, ``tool_reply``, ``Fault``: a real local HTTP fake of the Anthropic
  Messages API with scripted replies (``fake_api``);
- ``OTLPReceiver``: a real OTLP/HTTP receiver, for tests that go over the wire (``otlp_receiver``);
- ``AgentRun``, ``SessionResult``, ``Findings``, ``TraceShape``: assertions over a traced run (``run``);
- ``span_tree``, ``by_operation``, ``findings_of``: small helpers over finished spans;
- ``scenario``: hand-built sessions (``session(turn(read("a.py")), ...)``) for detector tests;
- ``demo_agent``: the scripted coding agent behind ``otel-agent-trace demo``.

With pytest, installing the package enables the ``agent_trace``, ``fake_anthropic`` and
``trace_snapshot`` fixtures (``pytest_plugin``)::

    def test_answers(agent_trace, fake_anthropic):
        fake_anthropic.enqueue(text_reply("4"))
        my_agent(fake_anthropic.client(), "2 + 2?")
        assert agent_trace.session.clean and agent_trace.session.turns == 1
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from otel_agent_trace.testing.fake_api import FakeMessagesAPI, Fault, RecordedRequest, Reply, text_reply, tool_reply
from otel_agent_trace.testing.otlp_receiver import OTLPReceiver
from otel_agent_trace.testing.run import AgentRun, Findings, SessionResult, TraceShape, sessions_of_file, trace_shape

__all__ = [
    "AgentRun", "FakeMessagesAPI", "Fault", "Findings", "OTLPReceiver", "RecordedRequest", "Reply",
    "SessionResult", "TraceShape", "by_operation", "findings_of", "sessions_of_file", "span_tree", "text_reply",
    "tool_reply", "trace_shape",
]


def by_operation(spans: Iterable[Any], operation: str) -> list[Any]:
    """Finished spans whose ``gen_ai.operation.name`` is ``operation`` (chat, execute_tool, invoke_agent)."""
    return [s for s in spans if (s.attributes or {}).get("gen_ai.operation.name") == operation]


def span_tree(spans: Sequence[Any], label: Callable[[Any], Any] | None = None) -> list[tuple[Any, list[Any]]]:
    """The spans as ``(name, children)`` pairs from the roots down, children in start order.

    Compare it with a literal to assert a trace's whole shape at once. ``label`` replaces the name.
    """
    children: dict[int | None, list[Any]] = {}
    ids = {s.context.span_id for s in spans}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)

    def build(parent: int | None) -> list[tuple[Any, list[Any]]]:
        return [(label(s) if label else s.name, build(s.context.span_id)) for s in children.get(parent, [])]

    return build(None)


def findings_of(spans: Iterable[Any]) -> list[dict[str, Any]]:
    """Every ``agent_trace.finding`` event, as attribute dicts, across ``spans``."""
    return [dict(event.attributes) for s in spans for event in s.events if event.name == "agent_trace.finding"]
