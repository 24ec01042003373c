"""tool_avalanche: turn after turn of small reads and searches, and no commitment.

Many small exploratory calls with similar context increments usually mean a vague task: the model
keeps looking instead of acting. Judged from each turn's own tool_uses (known when the response
arrives), so it works live and on imported files without results.
"""

from __future__ import annotations

from collections import Counter

from otel_agent_trace.detectors._util import fmt_tokens
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.detectors.roles import READ, SEARCH, classify_tool
from otel_agent_trace.model.records import Finding, Turn

_EXPLORE = frozenset({READ, SEARCH})
_MAX_TARGETS = 64  # distinct targets remembered per run, for the evidence only


class ToolAvalanche(Detector):
    """≥ ``avalanche_min_turns`` consecutive turns whose calls only read or search, with small increments."""

    kind = "tool_avalanche"

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        self.min_turns = max(2, self.thresholds.avalanche_min_turns)
        self.jump_tokens = self.thresholds.jump_min_tokens
        self._prev_context = 0
        self._reset()

    def _reset(self) -> None:
        self._start = 0
        self._length = 0
        self._growth = 0  # context growth over the run's small steps
        self._steps = 0
        self._big_steps = 0
        self._roles: Counter[str] = Counter()
        self._targets: set[str] = set()
        self._reported = False

    def observe_turn(self, turn: Turn) -> list[Finding]:
        context = turn.usage.context_tokens
        step = context - self._prev_context if context and self._prev_context else 0
        if context:
            self._prev_context = context
        roles = [classify_tool(use.name, use.input) for use in turn.tool_uses] if turn.tool_uses else None
        if not roles or any(r.role not in _EXPLORE for r in roles) or turn.after_compaction:
            if self._length:
                self._reset()
            return []
        if self._length == 0:
            self._start = turn.index
        self._length += 1
        # A single big step is a token_jump, not part of an avalanche of small ones.
        if 0 < step < self.jump_tokens:
            self._growth += step
            self._steps += 1
        elif step >= self.jump_tokens:
            self._big_steps += 1
        for r in roles:
            self._roles[r.role] += 1
            if r.target and len(self._targets) < _MAX_TARGETS:
                self._targets.add(r.target)
        if self._reported or self._length < self.min_turns or self._big_steps * 2 > self._length:
            return []
        self._reported = True
        return [self._finding(turn.index)]

    def _finding(self, t: int) -> Finding:
        avg = self._growth // self._steps if self._steps else 0
        reads, searches = self._roles[READ], self._roles[SEARCH]
        per_turn = f", context +{fmt_tokens(avg)} tokens per turn" if avg else ""
        return Finding(
            kind=self.kind, severity="info", turn=t, turns=list(range(self._start, t + 1)),
            message=(f"{self._length} turns of reads and searches with no edit (turns {self._start}-{t}:"
                     f" {reads} reads, {searches} searches, {len(self._targets)} targets{per_turn}) — the"
                     " model is exploring without committing to a plan: a more specific task or an explicit"
                     " plan step usually helps"),
            evidence={"start_turn": self._start, "turns": self._length, "reads": reads, "searches": searches,
                      "distinct_targets": len(self._targets), "avg_growth_tokens": avg},
        )

    def tracked(self) -> int:
        return len(self._targets) + len(self._roles)
