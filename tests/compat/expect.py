"""What every compatibility case must show, as functions over one run's spans and received requests.

A span is looked at by what it says, across every instrumentation scope (ours, the SDK's, the
framework's): a backend sums usage over all of them, and counts tool spans from all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from otel_agent_trace import semconv as sc
from otel_agent_trace.testing import findings_of
from otel_agent_trace.testing.fake_api import RecordedRequest


@dataclass
class Trace:
    """One run of an agent: what it returned, the spans exported, the requests the fake API received."""

    output: str
    spans: Sequence[Any]
    requests: Sequence[RecordedRequest]


def ours(span: Any) -> bool:
    return span.instrumentation_scope.name == sc.INSTRUMENTATION_SCOPE


def operation(span: Any) -> str | None:
    return (span.attributes or {}).get(sc.OPERATION_NAME)


def sessions(trace: Trace) -> list[Any]:
    return [s for s in trace.spans if ours(s) and operation(s) == sc.OP_INVOKE_AGENT]


def chat_spans_with_usage(trace: Trace) -> list[Any]:
    return [s for s in trace.spans if sc.USAGE_INPUT_TOKENS in (s.attributes or {})]


def tool_spans(trace: Trace) -> list[Any]:
    return [s for s in trace.spans if operation(s) == sc.OP_EXECUTE_TOOL]


def model_requests(trace: Trace) -> list[RecordedRequest]:
    return [r for r in trace.requests if r.path.split("?")[0] == "/v1/messages"]


def tool_call_ids(trace: Trace) -> list[str]:
    """Every tool call the agent made: the tool_result ids its requests sent back."""
    ids = []
    for request in model_requests(trace):
        last = (request.body or {}).get("messages", [{}])[-1]
        content = last.get("content")
        if isinstance(content, list):
            ids += [b["tool_use_id"] for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    return list(dict.fromkeys(ids))  # a retried request repeats the same results


def by_id(trace: Trace) -> dict[int, Any]:
    return {s.context.span_id: s for s in trace.spans}


def parent_of(trace: Trace, span: Any) -> Any | None:
    return by_id(trace).get(span.parent.span_id) if span.parent is not None else None


# -- the expectations ----------------------------------------------------------------------------------
def check_sessions(trace: Trace, runs: int, sub_agents: int) -> None:
    """One session per agent run, a sub-agent's under the tool call that started it, and no session under
    another library's chat span."""
    found = sessions(trace)
    top = [s for s in found if sc.PARENT_SESSION not in s.attributes]
    children = [s for s in found if sc.PARENT_SESSION in s.attributes]
    assert (len(top), len(children)) == (runs, sub_agents), [s.attributes for s in found]
    for session in found:
        parent = parent_of(trace, session)
        assert parent is None or operation(parent) != sc.OP_CHAT, f"session under chat span {parent.name}"
    runs_of_framework = {s.context.span_id for s in trace.spans if not ours(s) and operation(s) == sc.OP_INVOKE_AGENT}
    if runs_of_framework:  # the framework traces its agent run (pydantic-ai, the SDK's tool runner)
        for session in top:
            assert session.parent is not None and session.parent.span_id in runs_of_framework, \
                "session not under the framework's agent run"
    for child in children:
        parent = parent_of(trace, child)
        assert parent is not None and operation(parent) == sc.OP_EXECUTE_TOOL, "sub-agent not under its tool"
    for session in found:
        assert session.attributes[sc.END_REASON] == "end_turn"


def check_turns(trace: Trace, failed_requests: int) -> None:
    """Each session numbers its turns 1..n with no gap, one number per answered model call: a failed
    attempt takes none (its error span names the turn its retry takes, marked as a failed attempt)."""
    numbered: dict[str, list[int]] = {}
    for span in trace.spans:
        if (operation(span) == sc.OP_CHAT and sc.TURN_INDEX in span.attributes
                and not span.attributes.get(sc.TURN_FAILED_ATTEMPT)):
            numbered.setdefault(span.attributes[sc.LANGFUSE_SESSION_ID], []).append(span.attributes[sc.TURN_INDEX])
    for session, turns in numbered.items():
        assert sorted(turns) == list(range(1, len(turns) + 1)), (session, turns)
    assert sum(map(len, numbered.values())) == len(model_requests(trace)) - failed_requests, numbered


def check_usage_once(trace: Trace, failed_requests: int) -> None:
    """One chat span carrying usage per model call that got a response, whoever made the span."""
    assert len(chat_spans_with_usage(trace)) == len(model_requests(trace)) - failed_requests, [
        (s.name, s.instrumentation_scope.name) for s in chat_spans_with_usage(trace)]


def check_tool_spans(trace: Trace) -> None:
    """One tool span per tool call, with its call id and turn; ours hang under the turn that asked for it."""
    ids = tool_call_ids(trace)
    assert ids, "the agent made no tool call"
    spans = tool_spans(trace)
    assert len(spans) == len(ids), [(s.name, s.instrumentation_scope.name) for s in spans]
    # Every span that names its call names a different one of them (LangSmith's name none).
    named = [s.attributes[sc.TOOL_CALL_ID] for s in spans if sc.TOOL_CALL_ID in s.attributes]
    assert len(set(named)) == len(named) and set(named) <= set(ids), (named, ids)
    for span in spans:
        if not ours(span):
            continue  # a framework's own tool span hangs where the framework puts it
        turn = parent_of(trace, span)
        assert turn is not None and operation(turn) == sc.OP_CHAT, f"{span.name} not under a chat span"
        assert span.attributes[sc.TURN_INDEX] == turn.attributes[sc.TURN_INDEX] >= 1


def check_traceparent(trace: Trace) -> None:
    """Every model request carries a W3C traceparent naming a chat span of the trace."""
    chat_ids = {s.context.span_id for s in trace.spans if operation(s) == sc.OP_CHAT}
    for request in model_requests(trace):
        header = request.headers.get("traceparent")
        assert header, "a request without traceparent"
        assert int(header.split("-")[2], 16) in chat_ids, f"traceparent {header} names no chat span"


def check_no_findings(trace: Trace) -> None:
    assert findings_of(trace.spans) == []
