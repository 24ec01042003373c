"""Helpers for testing agents traced by otel-agent-trace: the fake Messages API and span assertions.

    from otel_agent_trace.testing import FakeMessagesAPI, text_reply, span_tree
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .fake_api import FakeMessagesAPI, Fault, RecordedRequest, Reply, text_reply, tool_reply

__all__ = [
    "FakeMessagesAPI", "Fault", "RecordedRequest", "Reply", "by_operation", "findings_of", "span_tree",
    "text_reply", "tool_reply",
]


def by_operation(spans: Iterable[Any], operation: str) -> list[Any]:
    """Finished spans whose ``gen_ai.operation.name`` is ``operation`` (chat, execute_tool, invoke_agent)."""
    return [s for s in spans if (s.attributes or {}).get("gen_ai.operation.name") == operation]


def span_tree(spans: Sequence[Any]) -> list[tuple[str, list[Any]]]:
    """The spans as ``(name, children)`` pairs from the roots down, children in start order.

    Compare it with a literal to assert a trace's whole shape at once.
    """
    children: dict[int | None, list[Any]] = {}
    ids = {s.context.span_id for s in spans}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)

    def build(parent: int | None) -> list[tuple[str, list[Any]]]:
        return [(s.name, build(s.context.span_id)) for s in children.get(parent, [])]

    return build(None)


def findings_of(spans: Iterable[Any]) -> list[dict[str, Any]]:
    """Every ``agent_trace.finding`` event, as attribute dicts, across ``spans``."""
    return [dict(event.attributes) for s in spans for event in s.events if event.name == "agent_trace.finding"]
