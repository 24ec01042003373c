"""Adapters from records to span names, attributes and finding events.

Shared by the live recorder (attributes split into what is known at start and at end) and by the
transcript replay (everything at once, original timestamps), so both produce the same spans.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span, format_span_id

from otel_agent_trace import semconv as sc
from otel_agent_trace.model.findings import SEVERITY_ORDER, finding_from_dict, finding_to_dict
from otel_agent_trace.model.records import Finding, Session, ToolCall, ToolUse, Turn
from otel_agent_trace.pipeline.content import redact

if TYPE_CHECKING:
    from otel_agent_trace.config import Settings

_LANGFUSE_LEVEL = {"info": "DEFAULT", "warning": "WARNING", "error": "ERROR"}


def turn_span_name(model: str | None) -> str:
    """``{operation} {gen_ai.request.model}``: the model asked for, not the snapshot that answered."""
    return f"{sc.OP_CHAT} {model}" if model else sc.OP_CHAT


def tool_span_name(name: str) -> str:
    return f"{sc.OP_EXECUTE_TOOL} {name}"


def session_span_name(agent_name: str) -> str:
    return f"{sc.OP_INVOKE_AGENT} {agent_name}"


def turn_request_attributes(turn: Turn, conversation_id: str, provider: str, *, max_tokens: Any = None,
                            stream: bool = False) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        sc.OPERATION_NAME: sc.OP_CHAT,
        sc.PROVIDER_NAME: provider,
        sc.REQUEST_STREAM: stream,
        sc.CONVERSATION_ID: conversation_id,
        sc.LANGFUSE_SESSION_ID: conversation_id,
        sc.TURN_INDEX: turn.index,
        sc.REQUEST_MESSAGES: turn.message_count,
        sc.REQUEST_CACHE_CONTROL: turn.cache_control,
    }
    if turn.model:
        attributes[sc.REQUEST_MODEL] = turn.model
    if isinstance(max_tokens, int):
        attributes[sc.REQUEST_MAX_TOKENS] = max_tokens
    return attributes


def turn_response_attributes(turn: Turn, saved_usd: float) -> dict[str, Any]:
    """What the response said. A call that failed before any response gets only its error and attempts:
    no model, tokens or finish reason that nothing reported."""
    if not turn.has_response:
        attributes: dict[str, Any] = {sc.HTTP_ATTEMPTS: turn.http_attempts}
        if turn.error_type:
            attributes[sc.ERROR_TYPE] = turn.error_type
        return attributes
    usage = turn.usage
    attributes = {
        # The semantic conventions (and the SDK's own spans) count cached tokens as input tokens.
        sc.USAGE_INPUT_TOKENS: usage.context_tokens,
        sc.USAGE_OUTPUT_TOKENS: usage.output_tokens,
        sc.USAGE_CACHE_READ: usage.cache_read_input_tokens,
        sc.USAGE_CACHE_WRITE: usage.cache_creation_input_tokens,
        sc.USAGE_CACHE_CREATION: usage.cache_creation_input_tokens,
        sc.CONTEXT_TOKENS: usage.context_tokens,
        sc.CACHE_HIT_RATIO: round(usage.cache_hit_ratio, 4),
        sc.CACHE_SAVED_USD: round(saved_usd, 6),
        sc.HTTP_ATTEMPTS: turn.http_attempts,
    }
    if usage.iterations_input_tokens > usage.context_tokens or usage.iterations_output_tokens > usage.output_tokens:
        attributes[sc.USAGE_CONSUMED_INPUT_TOKENS] = max(usage.iterations_input_tokens, usage.context_tokens)
        attributes[sc.USAGE_CONSUMED_OUTPUT_TOKENS] = max(usage.iterations_output_tokens, usage.output_tokens)
    if turn.response_id:
        attributes[sc.RESPONSE_ID] = turn.response_id
    if turn.model:
        attributes[sc.RESPONSE_MODEL] = turn.model
    stop_reason = turn.stop_reason
    if stop_reason:
        attributes[sc.STOP_REASON] = stop_reason
        attributes[sc.RESPONSE_FINISH_REASONS] = (stop_reason,)
    if turn.tool_uses:
        attributes[sc.TOOL_USE_NAMES] = tuple([use.name for use in turn.tool_uses])
    if turn.first_chunk_ns and turn.start_ns:
        attributes[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = (turn.first_chunk_ns - turn.start_ns) / 1e9
    if turn.error_type:
        attributes[sc.ERROR_TYPE] = turn.error_type
    return attributes


def tool_attributes(call: ToolCall, conversation_id: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL,
        sc.TOOL_NAME: call.name,
        sc.TOOL_CALL_ID: call.tool_use_id,
        sc.TOOL_TYPE: "function",
        sc.TOOL_SOURCE: call.source,
        sc.TOOL_RESULT_CHARS: call.result_chars,
        sc.TOOL_IS_ERROR: call.is_error,
        sc.TURN_INDEX: call.turn_index,
        sc.CONVERSATION_ID: conversation_id,
        sc.LANGFUSE_SESSION_ID: conversation_id,
    }
    if call.error_type:
        attributes[sc.ERROR_TYPE] = call.error_type
    return attributes


def inferred_tool_start_attributes(use: ToolUse, turn_index: int, conversation_id: str,
                                   source: str = "inferred") -> dict[str, Any]:
    """An inferred tool span as it starts, when the response asks for the tool; the result side is set
    from ``tool_attributes`` when the next request carries it."""
    return {
        sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL,
        sc.TOOL_NAME: use.name,
        sc.TOOL_CALL_ID: use.id,
        sc.TOOL_TYPE: "function",
        sc.TOOL_SOURCE: source,
        sc.TURN_INDEX: turn_index,
        sc.CONVERSATION_ID: conversation_id,
        sc.LANGFUSE_SESSION_ID: conversation_id,
    }


def session_start_attributes(conversation_id: str, agent_name: str, parent_id: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        sc.OPERATION_NAME: sc.OP_INVOKE_AGENT,
        sc.AGENT_NAME: agent_name,
        sc.CONVERSATION_ID: conversation_id,
        sc.LANGFUSE_SESSION_ID: conversation_id,
    }
    if parent_id:
        attributes[sc.PARENT_SESSION] = parent_id
    return attributes


# The finding's dict form (findings.py) under event attribute names; evidence stays off spans (nested).
_EVENT_KEYS = {"kind": sc.FINDING_KIND, "severity": sc.FINDING_SEVERITY, "turn": sc.FINDING_TURN,
               "turns": sc.FINDING_TURNS, "message": sc.FINDING_MESSAGE, "tool_use_ids": sc.FINDING_TOOL_USE_IDS}


def finding_event_attributes(finding: Finding, span_id: int | None,
                             masked_message: str | None = None) -> dict[str, Any]:
    """``masked_message``: the message already passed through ``redact`` (the caller needs it too)."""
    data = finding_to_dict(finding)
    # Messages quote paths, commands and error lines from tool traffic: mask any secret in them.
    data["message"] = redact(finding.message) if masked_message is None else masked_message
    attributes = {name: tuple(data[key]) if isinstance(data[key], list) else data[key]
                  for key, name in _EVENT_KEYS.items() if data[key] != []}
    if span_id:
        attributes[sc.FINDING_SPAN_ID] = format_span_id(span_id)
    return attributes


def finding_from_event_attributes(attributes: Any, session: str = "") -> Finding | None:
    """The Finding an ``agent_trace.finding`` span event describes (evidence is not on spans)."""
    return finding_from_dict({key: attributes[name] for key, name in _EVENT_KEYS.items() if name in attributes},
                             session)


@dataclass(slots=True)
class Rollup:
    """A session's running totals, the same for live sessions and replayed transcripts."""

    turns: int = 0
    input_tokens: int = 0  # context tokens: input + cache read + cache write, as on turn spans
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0
    saved_usd: float = 0.0
    tool_calls: int = 0
    findings_count: int = 0
    findings_kinds: dict[str, None] = field(default_factory=dict)  # ordered set

    def add_turn(self, turn: Turn, saved_usd: float) -> None:
        usage = turn.usage
        self.turns += 1
        self.input_tokens += usage.context_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read += usage.cache_read_input_tokens
        self.cache_write += usage.cache_creation_input_tokens
        self.saved_usd += saved_usd

    @classmethod
    def of(cls, session: Session, settings: Settings) -> Rollup:
        """A finished session's totals, as its ``invoke_agent`` span carries them."""
        rollup = cls(tool_calls=len(session.tool_calls) + len(session.unanswered_tool_uses()))
        for turn in session.turns:
            if not turn.failed_attempt:  # as the sink counts them
                rollup.add_turn(turn, settings.cache_saving_usd(turn.model, turn.usage.cache_read_input_tokens))
        rollup.add_findings(session.findings)
        return rollup

    @classmethod
    def from_attributes(cls, attributes: Any) -> Rollup:
        """The totals an ``invoke_agent`` span carries, read back (the inverse of ``attributes``)."""
        get = attributes.get
        return cls(turns=get(sc.TURNS, 0), input_tokens=get(sc.TOKENS_INPUT, 0), output_tokens=get(sc.TOKENS_OUTPUT, 0),
                   cache_read=get(sc.TOKENS_CACHE_READ, 0), cache_write=get(sc.TOKENS_CACHE_WRITE, 0),
                   saved_usd=get(sc.CACHE_SAVED_USD, 0.0), tool_calls=get(sc.TOOL_CALLS, 0),
                   findings_count=get(sc.FINDINGS_COUNT, 0), findings_kinds=dict.fromkeys(get(sc.FINDINGS_KINDS, ())))

    def add_findings(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.findings_count += 1
            self.findings_kinds.setdefault(finding.kind, None)

    def attributes(self, end_reason: str | None) -> dict[str, Any]:
        return {
            sc.TURNS: self.turns,
            sc.TOKENS_INPUT: self.input_tokens,
            sc.TOKENS_OUTPUT: self.output_tokens,
            sc.TOKENS_CACHE_READ: self.cache_read,
            sc.TOKENS_CACHE_WRITE: self.cache_write,
            sc.CACHE_SAVED_USD: round(self.saved_usd, 6),
            sc.CACHE_HIT_RATIO: round(self.cache_read / self.input_tokens, 4) if self.input_tokens else 0.0,
            sc.TOOL_CALLS: self.tool_calls,
            sc.FINDINGS_COUNT: self.findings_count,
            sc.FINDINGS_KINDS: tuple(self.findings_kinds),
            sc.END_REASON: end_reason or "abandoned",
        }


def failure_description(end_reason: str | None) -> str | None:
    """The ERROR status description for a session that ended this way, or None for a normal end.

    A turn limit is a failed run too: backends (Phoenix, Jaeger) then show the trace as failed."""
    if end_reason == "error":
        return "agent run failed"
    if end_reason == "turn_limit":
        return "turn limit reached without end_turn"
    return None


def attach_findings(span: Span, findings: Iterable[Finding], *, timestamp: int | None = None) -> None:
    """Put findings where people look: span events (Jaeger, Tempo, Phoenix) and the observation level and
    status message Langfuse shows (it displays no events). ``span`` must still be open."""
    worst: tuple[Finding, str] | None = None
    span_id = span.get_span_context().span_id
    for finding in findings:
        masked = redact(finding.message)
        span.add_event(sc.FINDING_EVENT, finding_event_attributes(finding, span_id, masked), timestamp=timestamp)
        if worst is None or SEVERITY_ORDER[finding.severity] > SEVERITY_ORDER[worst[0].severity]:
            worst = (finding, masked)
    if worst is not None:
        span.set_attribute(sc.LANGFUSE_LEVEL, _LANGFUSE_LEVEL[worst[0].severity])
        span.set_attribute(sc.LANGFUSE_STATUS_MESSAGE, f"{worst[0].kind}: {worst[1]}")
