"""tool_loop: the same kind of call failing the same way, turn after turn, with no change of strategy.

Repeats are counted per turn, not per call: parallel calls in one turn are alternatives tried at once,
while a loop is the model seeing an error and retrying the same thing. Anything that changes the
situation ends a streak: a success on the same target, a search or listing after guessed paths, a read
of the file after failed edits, an edit before re-running a failing command that then fails differently
(test-driven iterations). An edit after which the command fails exactly as before (same error line,
numbers aside) changed nothing that mattered: the retry continues the streak. Retries may be spread out
(a few unrelated turns between them) and vary cosmetically (other paths, flags or quoting): streaks are
keyed by what is retried (the file edited, the program run, "a guessed path"), not by the exact input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from otel_agent_trace.detectors._util import BoundedDict, short, turn_span
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.detectors.errors import clip, describe, error_line
from otel_agent_trace.detectors.roles import BASH, CHANGE_ROLES, EDIT, OTHER, READ, SEARCH, WRITE, ToolRole, call_info
from otel_agent_trace.model.records import Finding, Severity, ToolCall

# Turns between two failures of one streak. Retries need not be adjacent: a model that reads or lists
# something between two identical failures and then retries unchanged has not changed strategy. Three
# unrelated turns are allowed; a longer pause is a new attempt.
_MAX_GAP = 4
_MAX_STREAKS = 32  # only recent streaks can continue; older ones are evicted first
_GUESS = "*guessed paths*"  # one streak for every not-found read, whatever path was guessed
_NOTHING = "*searches finding nothing*"  # one streak for every empty search, whatever the pattern
_REFUSED = "*edits refused: file not read*"  # one streak for edits refused for not reading first, any file
_EMPTY_RESULTS = frozenset({"", "no files found", "no matches found", "no results found", "no results",
                            "found 0 files", "0 matches"})

_FINDERS = frozenset({"grep", "rg", "ag", "ack", "egrep", "fgrep", "find", "fd", "fdfind", "locate"})


def _empty(result: str) -> bool:
    """A search that ran and found nothing: the search tool's way of failing."""
    return len(result) < 40 and result.strip().strip(".").lower() in _EMPTY_RESULTS
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
    last_error: str = ""  # the last failure's error line, digits masked: "the same failure again?"


# Numbers standing alone (counts, timings, seeds, line numbers), not the digits of a name (test_case_3).
_NUMBERS = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")


def _same_failure(text: str, error: str) -> str:
    """The failure's telling line with numbers masked (timings, counts, seeds, line numbers)."""
    return _NUMBERS.sub("#", error_line(text, error, 240))


def _keep(items: list, item: object, limit: int) -> None:  # type: ignore[type-arg]
    """Append, dropping the oldest beyond ``limit`` (a bounded window, like a deque with maxlen)."""
    items.append(item)
    if len(items) > limit:
        del items[0]


def _key(role: ToolRole, name: str, error: str | None) -> tuple[str, str]:
    if error == "not_found" and (role.role == READ or (role.role == SEARCH and role.path)):
        return (READ, _GUESS)  # `ls guessed/dir` is a guessed path too
    if error == "precondition" and role.role in (EDIT, WRITE):
        return (EDIT, _REFUSED)  # the same missing step, whichever file the model tries to change
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
        self._streaks: BoundedDict[tuple[str, str], _Streak] = BoundedDict(cap)
        self._bash: BoundedDict[tuple[str, str], _Streak] = BoundedDict(cap)
        self._changed_at = 0  # turn of the last successful change to the code (edit, write)

    def observe_tool(self, call: ToolCall) -> list[Finding]:
        info = call_info(call)
        role, t = info.role, call.turn_index
        error = info.error
        if (error is None and role.role == SEARCH and (not role.shell or role.program in _FINDERS)
                and _empty(call.result)):
            error = "empty"  # patterns varied slightly, nothing found each time: the labels' "empty results"
        key = (SEARCH, _NOTHING) if error == "empty" else _key(role, call.name, error)
        if error is None:
            self._success(role, key, t)
            return []
        bash = key[0] == BASH
        streaks = self._bash if bash else self._streaks
        streak = streaks.touch(key)
        target = role.path or role.target
        failure = _same_failure(call.result, error) if bash else ""
        # Code changed since the last failure: re-running is a new attempt (TDD) unless it fails exactly
        # as before, in which case the changes were cosmetic and the model is retrying the same thing.
        changed = bash and streak is not None and self._changed_at >= streak.last_turn
        if (streak is None or streak.error != error or t - streak.last_turn > _MAX_GAP
                or (changed and failure != streak.last_error)):
            streak = _Streak(error, t, t, call.name, error_line(call.result, error, 240), [t],
                             [call.tool_use_id], [target] if target else [], last_error=failure)
            streaks.put(key, streak)
            return []  # one failure is never a loop (min_repeats ≥ 2)
        else:
            streak.last_error = failure
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

    def _success(self, role: ToolRole, key: tuple[str, str], t: int) -> None:
        streaks = self._streaks
        if key[0] == BASH:
            self._bash.pop(key)
            return
        streaks.pop(key)
        if role.role == READ and role.path:
            # Reading the file is the usual cure for failed edits. Path guessing goes on: reading a file
            # the model already knew does not ground the next guess; a listing or search does.
            streaks.pop((EDIT, role.path))
            streaks.pop((EDIT, _REFUSED))
        if role.role in (READ, SEARCH):
            streaks.pop((SEARCH, _NOTHING))  # found something: the search has moved on
        if role.role == SEARCH:
            streaks.pop((READ, _GUESS))
        elif role.role in CHANGE_ROLES:
            # Code changed: re-running the failing command is a new attempt, unless it fails the same way.
            self._changed_at = t

    def _finding(self, key: tuple[str, str], s: _Streak, t: int, severity: Severity) -> Finding:
        role, target = key
        turns = list(s.turns)
        span = turn_span([s.first_turn, t])
        err = f"{describe(s.error)} ({s.error})"  # described, not quoted: the quote is in the evidence
        if target == _REFUSED:
            what = f"{s.count} turns of edits refused because the file was not read first ({span}: {err})"
            fix = "the tool requires a fresh read before a change: the model should read the file, then edit it"
        elif target == _NOTHING:
            what = f"{s.count} turns of searches finding nothing ({span}: {', '.join(s.targets)})"
            fix = ("the model is guessing names: a directory listing or a broader pattern would show what"
                   " exists")
        elif role == READ and target == _GUESS:
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
            evidence={"role": role, "target": None if target in (_GUESS, _NOTHING, _REFUSED) else target,
                      "targets": list(s.targets), "error_class": s.error, "repeats": s.count,
                      "first_error": clip(s.first_error, 200), "first_turn": s.first_turn, "tool": s.name},
        )

    def tracked(self) -> int:
        return len(self._streaks) + len(self._bash)
