"""tool_loop: the same kind of call failing the same way, turn after turn, with no change of strategy.

Repeats are counted per turn, not per call: parallel calls in one turn are alternatives tried at once,
while a loop is the model seeing an error and retrying the same thing. Anything that changes the
situation ends a streak: a success on the same target, a search or listing after guessed paths, a read
of the file after failed edits (unless the next edit's text is still not in the file: the read did not
show the model what it gets wrong), a search that finds something after searches that found nothing, a
command that fails differently from before (after an edit, test-driven iterations; without one, a
narrower run that shows the model something new: the suite, then one failing test, then another; not a
retry the shell refused before the program ran, a glob matching nothing or unbalanced quotes: only its
quoting varied). A success that does not answer the failure (a read or a `git diff` between empty
searches) is not a change of strategy: the streak goes on. An edit after which the command fails as
before changed nothing that mattered: the retry continues the streak. "As before" is the article's
"similar errors": the same error line (numbers aside), an error at the same place in the code (same
file, a few lines apart), the same message at more or less length (every word of the shorter in the
longer, paths aside), or an error the streak already produced (the edits went round in a circle).
Retries may be spread out (a few unrelated turns between them) and vary cosmetically (other paths, flags
or quoting): streaks are keyed by what is retried (the file edited, the program run, "a guessed path"),
not by the exact input.

Edits refused because the file was not read first, on one file after another, are one habit however far
apart: each refusal is cured by one read, but the model goes on editing from what it read long ago, and
the same failure comes back. The third file refused over the session is a loop, reported once.

A relative path that fails (not found, or a search in it finding nothing) although the session knows a
file or directory it names (an absolute path ending with it, or the same relative path working earlier)
is the wrong working directory, not a guess: the same mistake, whatever the tool's input, for as long as
the shell stays where it is. Such failures form one streak per tool with no limit on the turns between
them; a listing restarts the count, and a relative path that works again (the directory fits) ends it.
One such loop is reported once per tool until it ends.

Severity: a loop is waste (``warning``), reported at its third repeat. A loop costs the run when the run
ends inside it: the model kept going after it was reported (five repeats by default) and the session
ended with the loop's last failure among its last turns, no success in between. That is reported once
more, as an ``error``, when the session ends: the report, the watch summary and ``--fail-on error``
treat it as a failed run. A loop the model got out of, however long, stays waste. The wrong-directory
loop is never escalated: each failure there is followed by a working call, the run goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from otel_agent_trace.detectors._util import BoundedDict, short, turn_span
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.detectors.errors import HEAD_CHARS, clip, describe, error_line, path_tokens
from otel_agent_trace.detectors.roles import (
    BASH,
    EDIT,
    LISTERS,
    OTHER,
    READ,
    SEARCH,
    WRITE,
    ToolRole,
    call_info,
    found_nothing,
    is_finder,
)
from otel_agent_trace.model.records import Finding, Severity, ToolCall, Turn

# Turns between two failures of one streak. Retries need not be adjacent: a model that reads or lists
# something between two identical failures and then retries unchanged has not changed strategy. Three
# unrelated turns are allowed; a longer pause is a new attempt.
_MAX_GAP = 4
_MAX_STREAKS = 32  # only recent streaks can continue; older ones are evicted first
_GUESS = "*guessed paths*"  # one streak for every not-found read, whatever path was guessed
_NOTHING = "*searches finding nothing*"  # one streak for every empty search, whatever the pattern
_REFUSED = "*edits refused: file not read*"
_ELSEWHERE = "*relative paths that exist under another directory*"
_HABIT = "*edits refused: file not read, one file after another*"  # one streak, whichever file
_MAX_KNOWN = 1_024  # path suffixes known to exist
_ESCALATE = 5  # repeats after which a loop the run ends in is reported once more, as an error
_KEEP_TURNS = 8  # turns and tool_use ids kept per streak (the most recent)
_KEEP_TARGETS = 5
_KEEP_FAILURES = 4  # distinct failures (masked error lines, code locations) remembered per bash streak
_NEAR_LINES = 3  # errors this many lines apart in one file point at the same code
_BASH_FIXES = {
    "bad_option": "the flag does not exist: give the model the command's --help output or docs",
    "command_not_found": "the command is not installed here: tell the model which tools exist",
    "permission": "the sandbox forbids it: tell the model what it may run",
}


@dataclass(frozen=True, slots=True)
class _Seen:
    """One distinct failure of a command: its error line (digits masked), the code it points at, and
    when it first came (the streak's ``total`` then, and the turn)."""

    failure: str
    where: tuple[str, int] | None
    total: int
    turn: int
    words: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Streak:
    error: str
    first_turn: int
    last_turn: int
    name: str
    first_error: str
    turns: list[int]  # the last _KEEP_TURNS failing turns, (turn, tool_use id)s and targets
    ids: list[tuple[int, str]]
    targets: list[str]
    count: int = 1
    reported: bool = False
    escalated: bool = False
    reported_from: int = 0  # first turn of the streak that was reported: a circle back to it is not new
    # Bash streaks: failing turns since the command last succeeded (a different failure after an edit
    # restarts ``count``, not this), and the distinct failures seen meanwhile, the most recent last.
    total: int = 1
    seen: list[_Seen] = field(default_factory=list)
    command: str | None = None  # the last failing command, and the session's count of changes made before it
    changes: int = 0
    # Edit streaks: the last turn the file was read between failures, 0 if never. The edits still missed
    # after it, so that read is part of the retrying: the gap to the next failure counts from it.
    read_turn: int = 0


# Numbers standing alone (counts, timings, seeds, line numbers), not the digits of a name (test_case_3).
_NUMBERS = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")


# "src/app.py:184:17 - error", "File \"x.py\", line 12", "main.go:40: undefined": where a failure points.
_LOCATION = re.compile(r"([\w./\\-]*\w\.[A-Za-z]\w{0,7})(?::|\"?, line |\()(\d+)")


# The shell rejecting a command line before running it (a glob matching nothing, unbalanced quotes or
# brackets): the retry's quoting or globbing varied, not what it retries.
_SHELL_REJECTED = re.compile(r"no matches found: |syntax error near unexpected token|unexpected EOF while looking for"
                             r"|parse error near |bad substitution|unmatched [\"'`]", re.IGNORECASE)

_WORD = re.compile(r"[a-z][a-z0-9_]+")
_PATHS = re.compile(r"\S*[/\\]\S*|\S+\.[A-Za-z]\w{0,7}\b\S*")  # where a message points, not what it says
_MIN_WORDS = 3  # a shorter message is only similar when it is the same


def _failure(text: str, error: str) -> tuple[str, tuple[str, int] | None, frozenset[str]]:
    """The failure's telling line with numbers masked (timings, counts, seeds, line numbers), the file and
    line it points at, if it names one, and the words of its message (paths left out)."""
    line = error_line(text, error, 240)
    match = _LOCATION.search(line)
    where = (match.group(1).rsplit("/", 1)[-1], int(match.group(2))) if match else None
    words = frozenset(_WORD.findall(_PATHS.sub(" ", line).lower()))
    return _NUMBERS.sub("#", line), where, words


def _similar(streak: _Streak, failure: str, where: tuple[str, int] | None,
             words: frozenset[str]) -> _Seen | None:
    """The earliest failure of the streak's history this one repeats: the same error line, an error at the
    same place in the code (same file, a few lines apart), or the same message told at more or less length
    (every word of the shorter in the longer: "This command requires approval" and "This Bash command
    contains multiple operations. The following part requires approval: …")."""
    for seen in streak.seen:
        if seen.failure == failure or (where is not None and seen.where is not None and seen.where[0] == where[0]
                                       and abs(seen.where[1] - where[1]) <= _NEAR_LINES):
            return seen
        if min(len(words), len(seen.words)) >= _MIN_WORDS and (words <= seen.words or seen.words <= words):
            return seen
    return None


def _remember(streak: _Streak, failure: str, where: tuple[str, int] | None, t: int,
              words: frozenset[str]) -> None:
    if all(seen.failure != failure for seen in streak.seen):
        _keep(streak.seen, _Seen(failure, where, streak.total, t, words), _KEEP_FAILURES)


def _relative(path: str | None) -> bool:
    """A path the shell resolves against its working directory (not ".", "..", absolute, ~ or a URL)."""
    if not path or path in (".", "..") or path[0] in "/~$\\":
        return False
    return "://" not in path and not (len(path) > 2 and path[1] == ":" and path[2] in "/\\")


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
        # Paths known to exist (and their directories), by their last part: a relative path another known
        # path ends with exists, just not under the shell's working directory.
        self._known: BoundedDict[str, str] = BoundedDict(min(_MAX_KNOWN, self.thresholds.max_tracked_targets))
        self._elsewhere: BoundedDict[str, _Streak] = BoundedDict(cap)  # by tool name
        self._elsewhere_reported: BoundedDict[str, int] = BoundedDict(cap)  # tool name → turn reported
        self._last_known: str | None = None
        self._last_command: str | None = None
        self._habit: _Streak | None = None  # refused edits over the whole session, one per file
        self._habit_reported = False
        self._changes = 0  # successful edits and writes so far: did anything change between two failures?

    def observe_tool(self, call: ToolCall) -> list[Finding]:
        info = call_info(call)
        role, t = info.role, call.turn_index
        error = info.error
        if error is None and found_nothing(role, call.result):
            error = "empty"  # patterns varied slightly, nothing found each time: the labels' "empty results"
        key = (SEARCH, _NOTHING) if error == "empty" else _key(role, call.name, error)
        if error is None:
            if role.role in (EDIT, WRITE) or role.changed_paths:
                self._changes += 1
            self._success(role, key, t)
            self._learn(call, role)
            return []
        self._last_known = self._last_command = None  # a path may stop resolving: learn it again when it works
        if error in ("not_found", "empty"):
            relative = self._relative_target(call, role, error)
            if relative is not None and self._exists(relative):
                return self._misplaced(call, relative, error, t)
        found = self._repeat(call, role, key, error, t)
        if key == (EDIT, _REFUSED):
            found = self._refused_habit(call, role, t, reported=bool(found)) or found
        return found

    def _repeat(self, call: ToolCall, role: ToolRole, key: tuple[str, str], error: str, t: int) -> list[Finding]:
        """One more failure of the streak ``key``: a loop when it repeats a recent failure."""
        bash = key[0] == BASH
        streaks = self._bash if bash else self._streaks
        streak = streaks.touch(key)
        target = role.path or role.target
        failure, where, words = _failure(call.result, error) if bash else ("", None, frozenset())
        if streak is None or streak.error != error or t - max(streak.last_turn, streak.read_turn) > _MAX_GAP:
            streak = _Streak(error, t, t, call.name, error_line(call.result, error, 240), [t],
                             [(t, call.tool_use_id)], [target] if target else [])
            if bash:
                _remember(streak, failure, where, t, words)
                streak.command, streak.changes = role.command, self._changes
            streaks.put(key, streak)
            return []  # one failure is never a loop (min_repeats ≥ 2)
        if bash and t != streak.last_turn:
            streak.total += 1
            again = _similar(streak, failure, where, words)
            if again is not None and again.turn < streak.first_turn:
                # Back at a failure from before the last restart: the edits since went round in a circle,
                # so every failing turn since that failure belongs to the loop.
                streak.count = streak.total - again.total
                streak.first_turn = again.turn
            elif (again is None and not _SHELL_REJECTED.search(failure)
                  and (role.command != streak.command or self._changes != streak.changes)):
                # The command fails differently: progress, not a repeat. After an edit these are test-driven
                # iterations; without one the model ran something else to learn more (the whole suite, then
                # one failing test and then another, each telling it something new). A variation the shell
                # refused before the program ran told it nothing about what it retries: a repeat. So is the
                # very same command with nothing changed since it last failed, whatever it says this time
                # (an external service failing in other words each time): no change of strategy.
                streak.count, streak.first_turn = 0, t
                streak.first_error = error_line(call.result, error, 240)
                streak.reported = streak.escalated = False
            _remember(streak, failure, where, t, words)
            streak.command, streak.changes = role.command, self._changes
        if t != streak.last_turn or streak.count == 0:
            streak.count += 1
            streak.last_turn = t
            _keep(streak.turns, t, _KEEP_TURNS)
        _keep(streak.ids, (t, call.tool_use_id), _KEEP_TURNS)
        if target and target not in streak.targets:
            _keep(streak.targets, target, _KEEP_TARGETS)
        if not streak.reported and streak.reported_from and streak.first_turn <= streak.reported_from:
            streak.reported = True  # circled back into a loop already reported
        if streak.count >= self.min_repeats and not streak.reported:
            streak.reported, streak.reported_from = True, streak.first_turn
            return [self._finding(key, streak, t)]
        return []

    def finish(self, last_turn: Turn | None, end_reason: str | None) -> list[Finding]:
        """The run ended: a reported loop still going at its end, past ``escalate_at`` repeats, cost it."""
        if last_turn is None:
            return []
        end = last_turn.index
        found = []
        for key, streak in (*self._streaks.items(), *self._bash.items()):
            if (streak.reported and not streak.escalated and streak.count >= self.escalate_at
                    and end - streak.last_turn <= _MAX_GAP):
                streak.escalated = True
                found.append(self._finding(key, streak, streak.last_turn, "error"))
        return found

    # -- a habit: edits refused for want of a read, file after file ---------------------------------
    def _refused_habit(self, call: ToolCall, role: ToolRole, t: int, reported: bool) -> list[Finding]:
        """Edits refused because the file was not read (or not since it changed), on one file after
        another over the session: each refusal is cured by one read, but the model keeps editing from what
        it remembers, so the same failure comes back. However far apart, that is one loop, reported once
        at the third file. ``reported``: a run of refusals was just reported as a loop of its own."""
        if self._habit_reported:
            return []
        if reported:
            self._habit_reported = True
            return []
        habit, path = self._habit, role.path or call.name
        if habit is None:
            self._habit = _Streak("precondition", t, t, call.name, error_line(call.result, "precondition", 240),
                                  [t], [(t, call.tool_use_id)], [path])
            return []
        if path in habit.targets:
            return []  # the same file again: the run of refusals is the streak's to judge, not the habit's
        habit.count += 1
        habit.last_turn = t
        _keep(habit.turns, t, _KEEP_TURNS)
        _keep(habit.ids, (t, call.tool_use_id), _KEEP_TURNS)
        _keep(habit.targets, path, _KEEP_TARGETS)
        if habit.count < self.min_repeats:
            return []
        self._habit_reported = True
        return [self._finding((EDIT, _HABIT), habit, t)]

    # -- the wrong working directory ---------------------------------------------------------------
    def _learn(self, call: ToolCall, role: ToolRole) -> None:
        """Remember the paths a successful call shows to exist; a relative one working ends the mistake."""
        path = role.path
        if path and path != self._last_known:  # runs of calls on one file are common: learn it once
            self._last_known = path
            self._know(path)
            if _relative(path):
                self._fits()
        # Some commands accept a path that is not there and print nothing (`git diff -- x`): only output
        # shows that a path a command names resolved.
        command = role.command
        if (role.shell and command and command != self._last_command and "/" in command
                and call.result.strip()):
            self._last_command = command  # a command re-run (the tests) names the same paths
            for token in path_tokens(command, 500, 8):
                if "/" in token:
                    self._know(token)
                    if _relative(token):
                        self._fits()
        if role.role == SEARCH and self._elsewhere and is_finder(role, LISTERS):
            self._elsewhere.clear()  # the model looked around: a new count, but the same diagnosis

    def _know(self, path: str) -> None:
        """Index the path, and its directory (which exists too), by their last part."""
        path = path.replace("\\", "/").rstrip("/")
        head, _, name = path.rpartition("/")
        known = self._known
        if name and name != ".":
            known.put(name, path)
        parent = head.rpartition("/")[2]
        if parent and parent != ".":
            known.put(parent, head)

    def _fits(self) -> None:
        """A relative path resolved: the working directory fits again, the mistake is over."""
        if self._elsewhere or self._elsewhere_reported:
            self._elsewhere.clear()
            self._elsewhere_reported.clear()

    def _relative_target(self, call: ToolCall, role: ToolRole, error: str) -> str | None:
        if role.path:
            return role.path if _relative(role.path) else None
        if role.shell and role.command and error == "not_found":
            text = call.result[:HEAD_CHARS]
            for token in path_tokens(role.command, 500, 16):
                if "/" in token and _relative(token) and token in text:
                    return token  # the relative path the error names
        return None

    def _exists(self, path: str) -> bool:
        """Does a known path end with this relative one (``claude_code_log/x.py`` of ``/home/u/app/…``)?"""
        path = path.replace("\\", "/").rstrip("/")
        while path.startswith("./"):
            path = path[2:]
        known = self._known.get(path.rpartition("/")[2])
        return known is not None and (known == path or known.endswith("/" + path))

    def _misplaced(self, call: ToolCall, path: str, error: str, t: int) -> list[Finding]:
        name = call.name
        streak = self._elsewhere.touch(name)
        if streak is None:
            streak = _Streak(error, t, t, name, error_line(call.result, error, 240), [t],
                             [(t, call.tool_use_id)], [path], reported=name in self._elsewhere_reported)
            self._elsewhere.put(name, streak)
            return []
        if t != streak.last_turn:
            streak.count += 1
            streak.last_turn = t
            _keep(streak.turns, t, _KEEP_TURNS)
        _keep(streak.ids, (t, call.tool_use_id), _KEEP_TURNS)
        if path not in streak.targets:
            _keep(streak.targets, path, _KEEP_TARGETS)
        if streak.count >= self.min_repeats and not streak.reported:
            streak.reported = True
            self._elsewhere_reported.put(name, t)
            return [self._finding((READ, _ELSEWHERE), streak, t)]
        return []

    def _success(self, role: ToolRole, key: tuple[str, str], turn: int) -> None:
        streaks = self._streaks
        if key[0] == BASH:
            self._bash.pop(key)
            return
        streaks.pop(key)
        if role.role == READ and role.path:
            # Reading the file is the usual cure for failed edits, and the next edit tells whether it was:
            # one whose text is still not in the file after the read repeats the failure (the read did not
            # show the model what it gets wrong, an invisible character, say), so that streak goes on, and
            # the read is part of the retrying: the turns between failures count from it. Path guessing
            # goes on too: reading a file the model already knew does not ground the next guess; a listing
            # or search does.
            edits = streaks.get((EDIT, role.path))
            if edits is not None and edits.error == "no_match":
                edits.read_turn = turn
            else:
                streaks.pop((EDIT, role.path))
            streaks.pop((EDIT, _REFUSED))
        if role.role == SEARCH and is_finder(role, LISTERS):
            # A search found something: the search has moved on. Reads and other queries (git diff) that
            # succeed between empty searches do not show the model a way out of them.
            streaks.pop((SEARCH, _NOTHING))
        if role.role == SEARCH:
            streaks.pop((READ, _GUESS))

    def _finding(self, key: tuple[str, str], s: _Streak, t: int, severity: Severity = "warning") -> Finding:
        role, target = key
        turns = [n for n in s.turns if n >= s.first_turn]  # a restart after progress keeps older turns
        span = turn_span([s.first_turn, t])
        err = f"{describe(s.error)} ({s.error})"  # described, not quoted: the quote is in the evidence
        if target == _HABIT:
            what = (f"edits refused because the file was not read first, on {s.count} files over the session"
                    f" ({span}: {', '.join(s.targets)}; {err})")
            fix = ("each refusal was cured by a read, but the model keeps editing from what it read long ago:"
                   " it should read the lines it changes right before editing them")
        elif target == _REFUSED:
            what = f"{s.count} turns of edits refused because the file was not read first ({span}: {err})"
            fix = "the tool requires a fresh read before a change: the model should read the file, then edit it"
        elif target == _NOTHING:
            what = f"{s.count} turns of searches finding nothing ({span}: {', '.join(s.targets)})"
            fix = ("the model is guessing names: a directory listing or a broader pattern would show what"
                   " exists")
        elif target == _ELSEWHERE:
            what = (f"{s.count} turns of {s.name} calls on relative paths that exist under another directory"
                    f" ({span}: {', '.join(s.targets)})")
            fix = ("the shell's working directory is not where the model thinks (an earlier cd?): absolute"
                   " paths or a cd back to the project end the failures")
        elif role == READ and target == _GUESS:
            what = f"{s.count} turns of guessed paths not found ({span}: {', '.join(s.targets)})"
            fix = "the model is guessing rather than exploring: give it a glob or directory listing first"
        elif role == EDIT:
            what = f"{s.name} on {target} failed in {s.count} turns ({span}) with {err}"
            fix = "look at the error the model was given"
            if s.error == "no_match" and s.read_turn:
                fix = ("reading the file did not help: the lines differ in what a read does not show (tabs,"
                       " trailing spaces, invisible characters): the model should look at their raw bytes or"
                       " rewrite the whole block")
            elif s.error == "no_match":
                fix = ("the file no longer holds what the model expects (changed earlier?): re-read the exact"
                       " lines before editing")
        elif role == BASH:
            what = f"`{short(target, 50)}` failed in {s.count} turns ({span}) with {err}"
            fix = _BASH_FIXES.get(s.error, "the error output does not tell the model enough to diagnose it:"
                                  " make it more specific")
        else:
            what = f"{s.name} failed in {s.count} turns ({span}) with {err}"
            fix = "the model is not changing strategy: check what the error told it"
        return Finding(
            kind=self.kind, severity=severity, turn=t,
            turns=turns, tool_use_ids=[i for n, i in s.ids if n >= s.first_turn],
            message=f"{what}{', and the run ended still looping' if severity == 'error' else ''} — {fix}",
            evidence={"role": role,
                      "target": None if target in (_GUESS, _NOTHING, _REFUSED, _ELSEWHERE, _HABIT) else target,
                      "targets": list(s.targets), "error_class": s.error, "repeats": s.count,
                      "first_error": clip(s.first_error, 200), "first_turn": s.first_turn, "tool": s.name},
        )

    def tracked(self) -> int:
        return (len(self._streaks) + len(self._bash) + len(self._known) + len(self._elsewhere)
                + len(self._elsewhere_reported) + (self._habit is not None))
