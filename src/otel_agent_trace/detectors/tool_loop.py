"""tool_loop: the same kind of call failing the same way, turn after turn, with no change of strategy.

Repeats are counted per turn, not per call: parallel calls in one turn are alternatives tried at once,
while a loop is the model seeing an error and retrying the same thing. Anything that changes the
situation ends a streak: a success on the same target, a search after guessed paths, a read of the
file after failed edits, an edit before re-running a failing command.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_agent_trace.detectors._util import BoundedDict, short, turn_span
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.detectors.errors import clip, describe, error_line
from otel_agent_trace.detectors.roles import BASH, CHANGE_ROLES, EDIT, OTHER, READ, SEARCH, WRITE, ToolRole, call_info
from otel_agent_trace.model.records import Finding, Severity, ToolCall

_MAX_GAP = 2  # turns between two failures of one streak ("consecutive-ish": one unrelated turn allowed)
_MAX_STREAKS = 32  # only recent streaks can continue; older ones are evicted first
_GUESS = "*guessed paths*"  # one streak for every not-found read, whatever path was guessed
_KEEP_TURNS = 8  # turns and tool_use ids kept per streak (the most recent)
_KEEP_TARGETS = 5
_ESCALATE = 5  # repeats at which a reported loop is reported once more, as an error
_BASH_FIXES = {
    "bad_option": "the flag does not exist: give the model the command's --help output or docs",
    "command_not_found": "the command is not installed here: tell the model which tools exist",
    "permission": "the sandbox forbids it: tell the model what it may run",
}


@dataclass(slots=True)
class _Streak:
    error: str
    first_turn: int
    last_turn: int
    name: str
    first_error: str
    turns: list[int]  # the last _KEEP_TURNS turns, ids and targets
    ids: list[str]
    targets: list[str]
    count: int = 1
    reported: int = 0  # 0: not yet, 1: warning sent, 2: escalated


def _keep(items: list, item: object, limit: int) -> None:  # type: ignore[type-arg]
    """Append, dropping the oldest beyond ``limit`` (a bounded window, like a deque with maxlen)."""
    items.append(item)
    if len(items) > limit:
        del items[0]


def _key(role: ToolRole, name: str, error: str | None) -> tuple[str, str]:
    if role.role == READ and error == "not_found":
        return (READ, _GUESS)
    if role.role in (READ, EDIT, WRITE):
        return (EDIT if role.role == WRITE else role.role, role.path or name)
    if role.role in (BASH, SEARCH):
        return (role.role, role.program or name)
    return (OTHER, name)


class ToolLoop(Detector):
    """≥ ``loop_min_repeats`` turns of one tool/role on similar input failing with the same error class."""

    kind = "tool_loop"

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        self.min_repeats = max(2, self.thresholds.loop_min_repeats)
        self.escalate_at = max(_ESCALATE, self.min_repeats + 2)
        cap = min(_MAX_STREAKS, self.thresholds.max_tracked_targets)
        # Bash streaks apart: a change to the code ends all of them at once, without a scan.
        self._streaks: BoundedDict[tuple[str, str], _Streak] = BoundedDict(cap)
        self._bash: BoundedDict[tuple[str, str], _Streak] = BoundedDict(cap)

    def observe_tool(self, call: ToolCall) -> list[Finding]:
        info = call_info(call)
        role, t = info.role, call.turn_index
        key = _key(role, call.name, info.error)
        if info.error is None:
            self._success(role, key)
            return []
        streaks = self._bash if key[0] == BASH else self._streaks
        streak = streaks.touch(key)
        target = role.path or role.target
        if streak is None or streak.error != info.error or t - streak.last_turn > _MAX_GAP:
            streak = _Streak(info.error, t, t, call.name, error_line(call.result, info.error, 240), [t],
                             [call.tool_use_id], [target] if target else [])
            streaks.put(key, streak)
            return []  # one failure is never a loop (min_repeats ≥ 2)
        else:
            if t != streak.last_turn:
                streak.count += 1
                streak.last_turn = t
                _keep(streak.turns, t, _KEEP_TURNS)
            _keep(streak.ids, call.tool_use_id, _KEEP_TURNS)
            if target and target not in streak.targets:
                _keep(streak.targets, target, _KEEP_TARGETS)
        if streak.count >= self.min_repeats and streak.reported == 0:
            streak.reported = 1
            return [self._finding(key, streak, t, "warning")]
        if streak.count >= self.escalate_at and streak.reported == 1:
            streak.reported = 2
            return [self._finding(key, streak, t, "error")]
        return []

    def _success(self, role: ToolRole, key: tuple[str, str]) -> None:
        streaks = self._streaks
        if key[0] == BASH:
            self._bash.pop(key)
            return
        streaks.pop(key)
        if role.role == READ:
            # Reading the file is the usual cure for failed edits; a read that works ends path guessing.
            streaks.pop((READ, _GUESS))
            if role.path:
                streaks.pop((EDIT, role.path))
        elif role.role == SEARCH:
            streaks.pop((READ, _GUESS))
        elif role.role in CHANGE_ROLES and len(self._bash):
            # Code changed: re-running the failing command is now a new attempt, not a repeat.
            self._bash.clear()

    def _finding(self, key: tuple[str, str], s: _Streak, t: int, severity: Severity) -> Finding:
        role, target = key
        turns = list(s.turns)
        span = turn_span([s.first_turn, t])
        err = f"{describe(s.error)} ({s.error})"  # described, not quoted: the quote is in the evidence
        if role == READ and target == _GUESS:
            what = f"{s.count} turns of guessed paths not found ({span}: {', '.join(s.targets)})"
            fix = "the model is guessing rather than exploring: give it a glob or directory listing first"
        elif role == EDIT:
            what = f"{s.name} on {target} failed in {s.count} turns ({span}) with {err}"
            fix = "look at the error the model was given"
            if s.error == "no_match":
                fix = ("the file no longer holds what the model expects (changed earlier?): re-read the exact"
                       " lines before editing")
        elif role == BASH:
            what = f"`{short(target, 50)}` failed in {s.count} turns ({span}) with {err}"
            fix = _BASH_FIXES.get(s.error, "the error output does not tell the model enough to diagnose it:"
                                  " make it more specific")
        else:
            what = f"{s.name} failed in {s.count} turns ({span}) with {err}"
            fix = "the model is not changing strategy: check what the error told it"
        again = ", still looping" if severity == "error" else ""
        return Finding(
            kind=self.kind, severity=severity, turn=t,
            turns=turns, tool_use_ids=list(s.ids),
            message=f"{what}{again} — {fix}",
            evidence={"role": role, "target": None if target == _GUESS else target,
                      "targets": list(s.targets), "error_class": s.error, "repeats": s.count,
                      "first_error": clip(s.first_error, 200), "first_turn": s.first_turn, "tool": s.name},
        )

    def tracked(self) -> int:
        return len(self._streaks) + len(self._bash)
