"""The normalized records that flow through everything: live capture, importers, detectors, exporters.

Plain slotted dataclasses with no OpenTelemetry in them. Spans, JSONL lines and reports are adapters
around these; detectors read only these, so they behave the same live, on imported files, and with
content capture on or off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "error"]
ToolSource = Literal["dispatcher", "decorator", "inferred", "imported"]


@dataclass(slots=True)
class Usage:
    """Token counts as the Messages API reports them (``input_tokens`` excludes cached tokens)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    # Sums over ``usage.iterations`` (server-side tool loops, compaction, advisor), whose entries can hold
    # tokens the top-level counts leave out; 0 when the response has no iterations.
    iterations_input_tokens: int = 0
    iterations_output_tokens: int = 0
    # Of ``cache_creation_input_tokens``, those written with the one-hour lifetime
    # (``usage.cache_creation.ephemeral_1h_input_tokens``): how long the cached prefix lasts.
    cache_creation_1h_input_tokens: int = 0

    @property
    def context_tokens(self) -> int:
        """Everything the model read this turn: fresh input plus cache reads and writes."""
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    @property
    def cache_hit_ratio(self) -> float:
        total = self.context_tokens
        return self.cache_read_input_tokens / total if total else 0.0


@dataclass(slots=True)
class ToolUse:
    """One ``tool_use`` block of a model response."""

    id: str
    name: str
    input: Any = None
    # What the detectors made of this block (detectors/roles.py), kept so every detector and the tool call
    # answering it reuse one classification. Derived data: not compared, not shown.
    role: Any = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class ToolResult:
    """One ``tool_result`` block sent back in the following request."""

    tool_use_id: str
    content: str = ""
    is_error: bool | None = None  # None: the block did not say

    @property
    def chars(self) -> int:
        return len(self.content)


@dataclass(slots=True)
class Request:
    """One Messages API request, read once when the call starts: session matching, the turn record, span
    attributes and the JSONL start line all take what they need from here."""

    messages: Any  # the caller's own list, kept for opt-in content capture; never modified
    model: str | None = None
    max_tokens: int | None = None
    stream: bool = False
    message_count: int = 0
    fingerprint: int | None = None  # identity of the conversation: its first message
    tool_results: list[ToolResult] = field(default_factory=list)  # answers to the previous turn's tools
    cache_control: bool = False
    # Sent in a message thread (the SDK's ``client.beta.messages.thread()``, its tool runner), whose requests
    # send only the messages the server lacks; ``continues``: the id of the reply this one continues from.
    threaded: bool = False
    continues: str | None = None


@dataclass(slots=True)
class Turn:
    """One model call: what was asked, what came back, and what it cost."""

    session: str
    index: int  # 1-based within its session
    model: str | None = None
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    tool_uses: list[ToolUse] = field(default_factory=list)
    # Text blocks of the response (kept only where content is available: JSONL, imports, opt-in capture).
    text: str = ""
    response_id: str | None = None
    # Request summary.
    message_count: int = 0
    tools_offered: tuple[str, ...] = ()
    cache_control: bool = False
    # tool_result blocks carried by this turn's request (the results of the previous turn's tool_uses).
    tool_results: list[ToolResult] = field(default_factory=list)
    # Timings in epoch nanoseconds; 0 when unknown.
    start_ns: int = 0
    end_ns: int = 0
    first_chunk_ns: int = 0
    http_attempts: int = 0
    error_type: str | None = None
    # Raw response content blocks as dicts, kept only when content is available.
    content: list[dict[str, Any]] | None = None
    # True when the conversation was compacted/summarised right before this turn (resets drift windows).
    after_compaction: bool = False

    @property
    def tool_names(self) -> list[str]:
        return [use.name for use in self.tool_uses]

    @property
    def has_response(self) -> bool:
        """Whether any response reached us: a call refused or failed before one carries no response fields."""
        return self.response_id is not None or self.stop_reason is not None

    @property
    def failed_attempt(self) -> bool:
        """A call that failed before any response: an error span, but not a turn — no rollup, no detectors,
        no JSONL line; the call re-sending the conversation takes its place."""
        return self.error_type is not None and not self.has_response


@dataclass(slots=True)
class ToolCall:
    """One tool execution, joined to the turn whose ``tool_use`` asked for it."""

    session: str
    tool_use_id: str
    name: str
    turn_index: int  # the turn whose response contained the tool_use
    input: Any = None
    result: str = ""
    is_error: bool = False
    start_ns: int = 0
    end_ns: int = 0
    source: ToolSource = "inferred"
    error_type: str | None = None  # exception class name when the tool raised
    # What the detectors made of this call (detectors/roles.py), with the input and result it was made
    # from; see ToolUse.role.
    classified: Any = field(default=None, compare=False, repr=False)

    @property
    def result_chars(self) -> int:
        return len(self.result)


@dataclass(slots=True)
class Finding:
    """Something a detector noticed, with enough evidence for a person to act on it."""

    kind: str
    severity: Severity
    turn: int  # the turn the finding is reported at
    message: str
    session: str = ""
    turns: list[int] = field(default_factory=list)  # every turn involved, earliest first
    tool_use_ids: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


def end_reason(last_stop_reason: str | None, *, failed: bool = False, tools_left_unanswered: bool = False) -> str:
    """How a run ended, from its last model call — the one rule for live sessions and every importer.

    ``failed``: the last call failed and nothing came after it. ``tools_left_unanswered``: the last
    response asked for tools whose results were produced but never sent back (a loop that stopped at its
    turn limit after running them)."""
    if failed:
        return "error"
    if last_stop_reason in ("end_turn", "stop_sequence"):
        return "end_turn"
    if last_stop_reason == "max_tokens":
        return "max_tokens"
    if last_stop_reason == "tool_use" and tools_left_unanswered:
        return "turn_limit"
    return "abandoned"


def end_reason_for_exception(error: BaseException) -> str:
    """How a run ended when an exception left it (an ``agent_session`` block, or the program): a loop's
    ``raise RuntimeError("Turn limit reached")`` is a turn limit, anything else an error."""
    try:
        text = str(error).lower()
    except Exception:  # a user exception whose __str__ raises
        return "error"
    return "turn_limit" if any(words in text for words in _TURN_LIMIT_WORDS) else "error"


_TURN_LIMIT_WORDS = ("turn limit", "max turns", "maximum turns", "too many turns", "max_turns")


@dataclass(slots=True)
class Session:
    """One agent run: its turns and tool calls in order. Importers yield these; the live path builds them."""

    id: str
    agent_name: str = "agent"
    turns: list[Turn] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    end_reason: str | None = None  # end_turn, max_tokens, turn_limit, error, abandoned
    parent_id: str | None = None  # the session that started this one (sub-agents)
    source: str = ""  # file the session came from, for imported sessions
    task: str | None = None  # the first user message, where content is available
    findings: list[Finding] = field(default_factory=list)

    def unanswered_tool_uses(self) -> list[tuple[Turn, ToolUse]]:
        """Tools a response asked for whose call never came back (the run ended first), with their turn:
        they still get a span and count among the session's tool calls."""
        answered = {call.tool_use_id for call in self.tool_calls}
        return [(turn, use) for turn in self.turns for use in turn.tool_uses if use.id not in answered]
