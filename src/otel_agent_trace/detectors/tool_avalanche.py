"""tool_avalanche: turn after turn of small reads and searches, and no commitment.

Many small exploratory calls (reads, searches, listings, web searches and fetches) with similar context
increments usually mean a vague task: the model keeps looking instead of acting. The increments must be
small and similar: a turn that grew by ``jump_min_tokens`` (5k) or more, whatever share of the context
that is, breaks the pattern, and the run starts again from that turn (a stretch without commitment is
reported once, however often a big step restarts its count). The ratio part of the token-jump test is
left out on purpose: late in a conversation a 5k read is a small share of the context, but it is still
no small step beside reads of a few hundred tokens, and read-only work that adds large, uneven amounts
(reviewing a branch file by file) is not the article's avalanche. Judged from each turn's own tool_uses
(known when the response arrives), so it works live and on imported files without results.

A turn whose calls all failed or came back empty added nothing to explore with: it is a retry, which is
tool_loop's signature, not a step of an avalanche. Such turns do not break the run (no commitment was
made), but a run in which a third or more of the turns brought nothing back is mostly retrying, not
exploring, and is not reported while it stays so.
"""

from __future__ import annotations

from collections import Counter

from otel_agent_trace.detectors._util import fmt_tokens, plural
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.detectors.roles import READ, SEARCH, call_info, found_nothing, use_role
from otel_agent_trace.model.records import Finding, ToolCall, Turn

_EXPLORE = frozenset({READ, SEARCH})
# Web searches and fetches touch no file (their role is "other") but are exploration all the same.
_WEB_TOOLS = frozenset({"webfetch", "websearch", "web_search", "web_fetch"})
_MAX_TARGETS = 64  # distinct targets remembered per run, for the evidence only
_FRUITLESS_SHARE = 3  # a run with a third or more of its turns failing or finding nothing is retrying


class ToolAvalanche(Detector):
    """≥ ``avalanche_min_turns`` consecutive turns whose calls only read or search, with small increments."""

    kind = "tool_avalanche"

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        self.min_turns = max(2, self.thresholds.avalanche_min_turns)
        self.jump_tokens = self.thresholds.jump_min_tokens
        self._prev_context = 0
        self._turn = 0  # the latest turn, and whether any of its calls found something
        self._turn_calls = 0
        self._turn_found = False
        self._reset()

    def _reset(self) -> None:
        self._start = 0
        self._length = 0
        self._growth = 0  # context growth over the run's small steps
        self._steps = 0
        self._roles: Counter[str] = Counter()
        self._targets: set[str] = set()
        self._reported = False
        self._fruitless = 0  # turns of the run whose calls all failed or found nothing

    def observe_tool(self, call: ToolCall) -> list[Finding]:
        if call.turn_index == self._turn and self._length:
            self._turn_calls += 1
            if not self._turn_found:
                info = call_info(call)
                self._turn_found = (info.error is None and bool(call.result.strip())
                                    and not found_nothing(info.role, call.result))
        return []

    def observe_turn(self, turn: Turn) -> list[Finding]:
        if self._length and self._turn_calls and not self._turn_found:
            self._fruitless += 1  # the previous turn of the run: every call failed or found nothing
        self._turn, self._turn_calls, self._turn_found = turn.index, 0, False
        context = turn.usage.context_tokens
        prev = self._prev_context
        step = context - prev if context and prev else 0
        if context:
            self._prev_context = context
        roles = [use_role(use) for use in turn.tool_uses] if turn.tool_uses else None
        if (not roles or turn.after_compaction
                or any(r.role not in _EXPLORE and use.name.lower() not in _WEB_TOOLS
                       for r, use in zip(roles, turn.tool_uses, strict=True))):
            if self._length:
                self._reset()
            return []
        if step >= self.jump_tokens and self._length:
            # A big step, not a small similar increment: the pattern starts again here. Still the same
            # stretch without commitment, so one already reported is not reported again.
            reported = self._reported
            self._reset()
            self._reported = reported
        if self._length == 0:
            self._start = turn.index
        self._length += 1
        if 0 < step < self.jump_tokens:
            self._growth += step
            self._steps += 1
        for r in roles:
            self._roles[r.role] += 1
            if r.target and len(self._targets) < _MAX_TARGETS:
                self._targets.add(r.target)
        if (self._reported or self._length < self.min_turns
                or self._fruitless * _FRUITLESS_SHARE >= self._length):
            return []
        self._reported = True
        return [self._finding(turn.index)]

    def _finding(self, t: int) -> Finding:
        avg = self._growth // self._steps if self._steps else 0
        reads, searches = self._roles[READ], self._roles[SEARCH]
        per_turn = f", context +{fmt_tokens(avg)} tokens per turn" if avg else ""
        return Finding(
            kind=self.kind, severity="warning", turn=t, turns=list(range(self._start, t + 1)),
            message=(f"{self._length} turns of reads and searches with no edit (turns {self._start}-{t}:"
                     f" {plural(reads, 'read')}, {plural(searches, 'search', 'searches')},"
                     f" {plural(len(self._targets), 'target')}{per_turn}) — the"
                     " model is exploring without committing to a plan: a more specific task or an explicit"
                     " plan step usually helps"),
            evidence={"start_turn": self._start, "turns": self._length, "fruitless_turns": self._fruitless,
                      "reads": reads, "searches": searches,
                      "distinct_targets": len(self._targets), "avg_growth_tokens": avg},
        )

    def tracked(self) -> int:
        return len(self._targets) + len(self._roles)
