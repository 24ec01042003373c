"""token_jump: the context grows sharply at one turn, almost always because a tool returned a lot.

The jump shows at turn N+1 (the request carrying the result), the cause is a tool call of turn N: the
finding names its largest result, so the fix (grep instead of a whole-file read, truncate command
output) is obvious. The first big read of a file is usually the point: reported as info. Command output
is not a read, even when the command is ``cat``: ``cat logs/worker.log`` dumps a log, and a log file is
output too, however it is opened; those stay warnings.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_agent_trace.detectors._util import fmt_tokens, short
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.detectors.roles import READ, classify_tool
from otel_agent_trace.model.records import Finding, ToolCall, ToolUse, Turn

_CHARS_PER_TOKEN = 4  # rough, for "this result explains the jump" estimates only
_EARLY_TURNS = 2  # a big read at turn 1-2 builds the first context: expected


def _is_log(path: str | None) -> bool:
    """worker.log, worker.log.1, logs/app.txt: output someone else wrote, not source under work."""
    if not path:
        return False
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".log") or ".log." in name or "/logs/" in f"/{path}" or "/log/" in f"/{path}"


@dataclass(slots=True)
class _Largest:
    tool_use_id: str
    name: str
    chars: int
    turn: int
    input: object = None


class TokenJump(Detector):
    """Context grows ≥ max(``jump_min_tokens``, ``jump_min_ratio`` × previous) over the previous turn."""

    kind = "token_jump"

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        self.min_tokens = self.thresholds.jump_min_tokens
        self.min_ratio = self.thresholds.jump_min_ratio
        self._prev_context = 0
        self._prev_turn = 0
        self._prev_uses: list[ToolUse] = []  # the previous turn's tool_uses: names and inputs of the causes
        self._largest: _Largest | None = None  # largest tool result of the previous turn

    def observe_tool(self, call: ToolCall) -> list[Finding]:
        if call.turn_index == self._prev_turn:
            largest = self._largest
            if largest is None or len(call.result) > largest.chars:
                self._largest = _Largest(call.tool_use_id, call.name, len(call.result), call.turn_index,
                                         call.input)
        return []

    def observe_turn(self, turn: Turn) -> list[Finding]:
        context = turn.usage.context_tokens
        findings: list[Finding] = []
        if context > 0 and self._prev_context > 0 and not turn.after_compaction:
            growth = context - self._prev_context
            needed = max(self.min_tokens, int(self.min_ratio * self._prev_context))
            if growth >= needed:
                findings.append(self._finding(turn, growth, needed))
        if context > 0:
            self._prev_context = context
        self._prev_turn = turn.index
        self._prev_uses = turn.tool_uses
        self._largest = None
        return findings

    def _cause(self, turn: Turn) -> _Largest | None:
        """The largest tool result behind this turn: observed tool calls, else the request's tool_results."""
        largest = self._largest
        for result in turn.tool_results:
            if largest is None or result.chars > largest.chars:
                use = next((u for u in self._prev_uses if u.id == result.tool_use_id), None)
                name, tool_input = (use.name, use.input) if use is not None else ("tool", None)
                largest = _Largest(result.tool_use_id, name, result.chars, turn.index - 1, tool_input)
        return largest

    def _finding(self, turn: Turn, growth: int, needed: int) -> Finding:
        before, now, t = self._prev_context, turn.usage.context_tokens, turn.index
        cause = self._cause(turn)
        evidence: dict[str, object] = {
            "previous_context_tokens": before, "context_tokens": now, "growth_tokens": growth,
            "threshold_tokens": needed, "ratio": round(now / before, 2) if before else None,
        }
        rise = f"raised context by {fmt_tokens(growth)} tokens ({fmt_tokens(before)} → {fmt_tokens(now)})"
        if cause is None or cause.chars == 0:
            return Finding(
                kind=self.kind, severity="info", turn=t, turns=[t - 1, t] if t > 1 else [t],
                message=(f"context jumped at turn {t}: {rise} with no large tool result — a big user message,"
                         " attachment or system prompt change?"),
                evidence=evidence,
            )
        role = classify_tool(cause.name, cause.input)
        target = f" {short(role.target, 60)}" if role.target else ""
        file_read = role.role == READ and not role.shell and not _is_log(role.path)
        early = file_read and cause.turn <= _EARLY_TURNS
        explained = cause.chars / _CHARS_PER_TOKEN >= growth / 2
        evidence.update({
            "tool": cause.name, "tool_use_id": cause.tool_use_id, "result_chars": cause.chars,
            "result_tokens_estimate": cause.chars // _CHARS_PER_TOKEN, "cause_turn": cause.turn,
            "role": role.role, "target": role.target, "explained": explained, "early_read": early,
        })
        if early:
            fix = "a large first read is often intended; if only part of the file was needed, grep for it"
        elif file_read:
            fix = "if the model needed one function, a grep or a line range would have cost far fewer tokens"
        else:
            fix = "truncate the output (the first ~2,000 characters are usually enough) or grep it"
        return Finding(
            kind=self.kind, severity="info" if early else "warning", turn=t, turns=[cause.turn, t],
            tool_use_ids=[cause.tool_use_id],
            message=(f"tool result of {cause.chars:,} chars from {cause.name}{target} at turn {cause.turn}"
                     f" {rise} at turn {t} — {fix}"),
            evidence=evidence,
        )

    def tracked(self) -> int:
        return len(self._prev_uses)
