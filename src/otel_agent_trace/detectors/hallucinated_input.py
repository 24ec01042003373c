"""hallucinated_input: a call on something that does not exist and that the model never saw.

A not-found path is only suspicious when nothing earlier in the session grounded it: no listing,
search, read, write or other tool result mentioned its name. Paths named in a result and then failing
are a wrong directory or a deleted file — different problems. A path that exists shows every directory
on the way to it: ``.erk/ctx`` was seen in ``/repo/.erk/ctx/plan.md`` (a ``git rm`` of an untracked
directory fails with "did not match", but the model did not invent it). A listing that finds nothing (``ls x``,
``which x || ls /opt/x``) is a check rather than a reliance on the path: reported as info, since a
reader could take it either way, and never as the growth of a run of guesses; before any call of the
session has worked it is the session's first look around, not reported at all. Hallucinations cluster
before the first orientation call (a search, glob or directory listing), so those are reported stronger.
Unknown commands and flags (``command not found``, ``unrecognized arguments: --foo``) count too, for every
shell call whatever its role (``git log --grep-author`` is a search, ``bat x.py`` a read), when the
model wrote them: a missing program the command does not name (a script, a Makefile or an ``eval`` of
another program's output ran it) is not the model's input.

Grounding is looked up lazily. This runs inside the agent's tool call, and most calls succeed, so a
successful result, or the output of a command that ran and failed (a test suite, a build, a traceback:
the model read it), is only remembered: the names of the call's own target, and the result text (its
first 16 KB for listings and searches, 4 KB for others) in a window of recent results bounded in count
and characters. Only when a not-found error asks whether a name occurred earlier are those texts
searched for it, and only the places it occurs are tokenised, exactly as indexing them would have done.
A name found in more than a few dozen places of the recent output counts as seen without further
checks. The window is what bounds the horizon, with one exception: the session's first results (its
first 64 KB, each kept as far as a listing) stay. What the model was given to start from — the task's
plan or issue, the first reads and listings — is what it works from for the whole session, and a path
taken from it (a stale plan naming a file the repository no longer has) was not invented. Beyond both,
a name is only known if it was the target of a call.

Consecutive guesses — failures on never-seen targets with no successful call in between — form one
cluster. Findings are immutable once emitted and each is attached to the span of the event that
produced it (live and offline alike), so a cluster is reported as it grows instead of being edited:

* the first guess is reported at once, as before;
* a guess at a later turn that adds a new distinct target (another file name, command or flag) emits a
  new finding for the whole cluster: its ``turns`` list every guess so far, and its message and
  evidence name every missing target;
* guessing the same file name in another directory (``a/x.ts`` → ``b/x.ts``) is the same invented file
  looked for elsewhere, and parallel calls of one turn are alternatives tried at once: they join the
  cluster without a new finding (tool_loop reports the repetition).

The cluster ends with the next successful call (a listing or search is one) or the end of the session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from otel_agent_trace.detectors._util import BoundedDict, short, turn_span
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.detectors.errors import (
    HEAD_CHARS,
    PATH_PUNCT,
    PATH_TOKEN,
    bad_flag,
    classify_error,
    describe,
    error_line,
    error_speaker,
    graphql_name,
    missing_command,
    missing_name,
    path_tokens,
)
from otel_agent_trace.detectors.roles import READ, SEARCH, WINDOWS_PATH, WRITE, ToolRole, call_info, norm_path
from otel_agent_trace.detectors.shell import invoked_with
from otel_agent_trace.model.records import Finding, ToolCall

_LISTING_CHARS = 16_384  # listings and search results are read further than ordinary results
_LISTING_LINES = 512
_OTHER_CHARS = 4_096
_TEXT_BUDGET = 262_144  # characters of recent results kept for lookups: bounds both memory and lookup time
_MAX_TEXTS = 256
_CODE_TEXTS = 32
_CODE_BUDGET = 65_536
# The start of the session (the task's documents, the plan, the first listings) stays grounding for the
# whole session, whatever came after: results until this many characters, each kept as far as a listing.
_START_BUDGET = 65_536
_START_TEXTS = 64
_CLUSTER_TARGETS = 16  # distinct targets named in a cluster finding
_CLUSTER_TURNS = 32
_MAX_CHECKS = 64  # occurrences of a name looked at per lookup; a name that common counts as seen
_TOKEN_REACH = 512  # characters looked at on each side of a name found in a result
_DOT_LETTER = re.compile(r"\.[A-Za-z]")  # a path-like token has a slash or an extension
# Standard utilities of Unix-like systems that minimal images and containers often leave out. "Command not
# found" for one of them is the machine's gap, not a command the model made up.
_STANDARD_TOOLS = frozenset({
    "ss", "netstat", "ip", "ifconfig", "route", "lsof", "ps", "pgrep", "pkill", "killall", "top", "htop",
    "free", "vmstat", "iostat", "tree", "file", "which", "whereis", "curl", "wget", "nc", "ncat", "netcat",
    "telnet", "dig", "nslookup", "host", "ping", "traceroute", "jq", "xxd", "hexdump", "od", "strace",
    "unzip", "zip", "less", "more", "vi", "vim", "nano", "sudo", "systemctl", "service", "journalctl",
    "lsb_release", "procps", "sqlite3", "rsync", "ssh", "scp", "tar", "gzip", "bzip2", "xz", "diff",
    "patch", "make", "gcc", "cc", "python", "pip", "timeout", "watch", "column", "bc", "time",
    # Shells: a script is often tried under the shell it targets, which this machine may not have.
    "zsh", "fish", "ksh", "tcsh", "csh", "dash", "pwsh", "powershell", "nu", "elvish", "xonsh",
})


def _gnu(letters: str, long: str = "") -> frozenset[str]:
    return frozenset({f"-{c}" for c in letters} | {f"--{name}" for name in long.split()})


# Options of GNU's core utilities that the BSD tools of macOS (and BusyBox) do not all have. Rejected there
# ("cat: illegal option -- A"), such an option is the machine's variant of a real tool, like a standard
# tool the machine lacks: the model relied on a habit from another system, not on an option it made up.
_GNU_OPTIONS = {
    "base64": _gnu("diw", "decode wrap ignore-garbage"),
    "cat": _gnu("AbeEnstTuv", "show-all show-ends show-tabs show-nonprinting number number-nonblank"),
    "cp": _gnu("abdfHilLnPpRrsStTuvxZ", "archive no-clobber parents preserve target-directory update"),
    "cut": _gnu("bcdfnsz", "complement output-delimiter"),
    "date": _gnu("dfIRrsu", "date iso-8601 rfc-3339 rfc-email reference utc"),
    "df": _gnu("aBhHiklPtTvx", "output print-type total"),
    "du": _gnu("0abBcdDhHklLmPsStxX", "max-depth apparent-size summarize human-readable threshold exclude"),
    "grep": _gnu("ABCDEFGHILPRTUVZabcdefhilmnoqrsuvwxyz", "perl-regexp null-data only-matching no-messages"),
    "head": _gnu("cnqvz", "bytes lines quiet verbose"),
    "ln": _gnu("bdfFiLnPrsStTv", "relative target-directory no-target-directory"),
    "ls": _gnu("aAbBcCdDfFgGhHiIklLmnNopqQrRsStTuUvwxXZ1",
               "color group-directories-first time-style full-time human-readable almost-all sort"),
    "mktemp": _gnu("dpqtu", "suffix tmpdir"),
    "mv": _gnu("bfinStTuvZ", "no-clobber target-directory no-target-directory"),
    "readlink": _gnu("efmnqsvz", "canonicalize canonicalize-existing canonicalize-missing"),
    "realpath": _gnu("eLmPqsz", "relative-to relative-base"),
    "rm": _gnu("dfiIrRv", "one-file-system preserve-root"),
    "sed": _gnu("nefEirsulz", "in-place regexp-extended null-data separate debug posix"),
    "sort": _gnu("bcCdfghikmMnoRrsStTuVz", "version-sort human-numeric-sort parallel"),
    "stat": _gnu("cfLtZ", "format printf terse"),
    "tail": _gnu("cfFnqsvz", "bytes lines follow pid retry"),
    "touch": _gnu("acdfhmr", "date reference no-create"),
    "uniq": _gnu("cdDfisuwz", "all-repeated group"),
    "wc": _gnu("clLmw", "max-line-length files0-from"),
    "xargs": _gnu("0adEeIiLlnoPprstx", "null delimiter no-run-if-empty max-procs"),
}


def _gnu_option(invoked: str, flag: str, speaker: str | None) -> bool:
    """Is ``flag`` an option GNU's version of the rejecting program has (``cat -A`` on macOS)?"""
    programs = {speaker, *(word.rsplit("/", 1)[-1] for word in invoked.split())}
    return any(flag in _GNU_OPTIONS.get(program or "", ()) for program in programs)


def _names(path: str) -> tuple[str, ...]:
    """'src/auth/session.ts' → ('session.ts', 'auth'); 'session.ts' → ('session.ts',)."""
    parts = path.rstrip("/").rsplit("/", 2)
    if len(parts) > 1 and parts[-2] not in ("", ".", "..", "~"):
        return parts[-1], parts[-2]
    return (parts[-1],)


_MAX_DEPTH = 8  # directories of a seen path that count as seen (the deepest ones)


def _components(path: str) -> tuple[str, ...]:
    """Every name on a path, deepest first: 'src/auth/session.ts' → ('session.ts', 'auth', 'src'). A path
    that exists shows that each directory on the way to it exists too."""
    parts = path.rstrip("/").split("/")[-_MAX_DEPTH - 1:]
    return tuple(p for p in reversed(parts) if p not in ("", ".", "..", "~"))


def _token_names(text: str, at: int, end: int) -> tuple[str, ...]:
    """Names of the path-like token around ``text[at:end]``, as a whitespace-split tokeniser sees it."""
    start, stop, size = at, end, len(text)
    floor, ceiling = max(0, at - _TOKEN_REACH), min(size, end + _TOKEN_REACH)
    while start > floor and not text[start - 1].isspace():
        start -= 1
    while stop < ceiling and not text[stop].isspace():
        stop += 1
    if ((start == floor and start > 0 and not text[start - 1].isspace())
            or (stop == ceiling and stop < size and not text[stop].isspace())):
        return ()  # part of a token longer than any path: minified code, base64
    raw = text[start:stop]
    if "\\" in raw:
        raw = _slashed(raw)
    if "/" not in raw and "." not in raw:
        return ()
    match = _SEEN_TOKEN.match(raw.strip(PATH_PUNCT))
    return _components(match.group(0)) if match else ()


# A path-like token as grounding: a dotfile named alone (`.env.example`, `.golangci.yaml`) counts too. Only
# here: taken as the target of a failing command, a name that short would match output lines too often.
_SEEN_TOKEN = re.compile(rf"\.?(?:{PATH_TOKEN.pattern})")


def _slashed(token: str) -> str:
    """A Windows path in a result (``src\\color\\palette.go``, ``D:\\repo\\a.go:12:``) with ``/`` separators and no
    drive or line suffix, so its names split like any other path's."""
    if not WINDOWS_PATH.search(token):
        return token
    token = token.strip(PATH_PUNCT).replace("\\", "/")  # quotes off first: 'D:\a.go' loses its drive too
    if len(token) > 2 and token[1] == ":" and token[2] == "/":
        token = token[2:]
    return token.split(":", 1)[0]


def _listed_names(text: str, at: int) -> tuple[str, ...]:
    """Names of the listing entry on the line holding ``text[at]`` ("src/a.py:12: …", "auth/")."""
    start = text.rfind("\n", 0, at) + 1
    stop = text.find("\n", at)
    names: tuple[str, ...] = ()
    for line in text[start:stop if stop >= 0 else len(text)].splitlines():
        entry = line.strip()
        entry = (_slashed(entry) if "\\" in entry else entry.split(":", 1)[0]).rstrip("/")
        if " " in entry:
            # A long listing puts the name last: `ls -l` ("drwxr-xr-x 1 me staff 0 Jul 14 07:13 docs"),
            # `git status --short` (" M src/a.py"), `wc -l`, `du`.
            entry = line.rsplit(None, 1)[-1].strip(PATH_PUNCT).rstrip("/")
        if entry:
            names += _components(entry)
    return names


_USAGE_ERROR_LINES = 4  # a program rejecting its arguments says so before doing anything else
# A search hit (`grep -n`, ripgrep): `path:line:` and the matched text. An error message in it is the
# searched file's content (the model looking for where an error is raised), not the command's own error.
_SEARCH_HIT = re.compile(r"^[^\s:]+:\d+[:-]")
# Asking a program for its usage is the grounding step itself: the model looks up which options exist
# instead of relying on one. A program without a help flag rejecting it is not an invented input.
_HELP_FLAGS = frozenset({"--help", "-help", "-h", "help", "-?"})


def _models_flag(flag: str | None, result: str, command: str) -> bool:
    """Is the rejected flag one the model wrote? The named flag must be in the command; an unnamed one
    must be rejected in the first lines of output, not mentioned in a log, test output or search hit."""
    if flag:
        name = flag.lstrip("-").split("=", 1)[0]
        # A quoted argument that starts with dashes (`grep -c "--- PASS"`) is a pattern the program misread
        # as an option: a quoting slip, not an option the model invented.
        return name in command and not re.search(r"[\"']" + re.escape(flag), command)
    lines = [line for line in result[:HEAD_CHARS].lower().splitlines()[:_USAGE_ERROR_LINES + 1]
             if not line.startswith("exit code") and not _SEARCH_HIT.match(line)]
    return any(classify_error(line, True) == "bad_option" for line in lines[:_USAGE_ERROR_LINES])


# `command -v ruby`, `which ruby`, `type ruby`, `hash ruby`, `where ruby`, or `ruby --version`.
_ASKS_FOR = (r"\b(?:command\s+-v|which|type|hash|where)\s+(?:[\w.+-]+\s+)*{0}(?![\w.-])"
             r"|(?<![\w./-]){0}\s+(?:--version|-v|-V|version)\b")


def _asks_for(name: str, command: str) -> bool:
    """Does the command ask whether the program is there, rather than rely on it?"""
    return re.search(_ASKS_FOR.format(re.escape(name)), command) is not None


def _harness_path(path: str) -> bool:
    """A path into the agent harness's own directory (``~/.claude/projects/…/memory/MEMORY.md``, a skill's
    ``.claude/skills/x/SKILL.md``): its system prompt names these, and a transcript does not record it. A
    worktree it checked out there (``.claude/worktrees/agent-1/src/a.go``) holds the project's own files."""
    slashed = "/" + path.lstrip("~")
    return "/.claude/" in slashed and "/.claude/worktrees/" not in slashed


def _substituted(result: str, command: str) -> bool:
    """Did a program the command does not name print the error? Then the user's shell put it there (an
    alias or wrapper: ``tree`` running ``lsd``) or a script ran it: the flags it rejects are not the
    model's, and the model's input was valid for the command it wrote."""
    speaker = error_speaker(result)
    if speaker is None:
        return False
    words = {w.rsplit("/", 1)[-1].lower() for w in command.split()}
    return speaker.lower() not in words


@dataclass(slots=True)
class _Cluster:
    """Consecutive guesses on never-seen targets."""

    before: bool  # started before the first orientation call
    emitted_turn: int  # turn of the last finding emitted for this cluster
    guesses: int = 0
    turns: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # distinct, in order
    types: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)  # what makes a guess new: file name, command or flag

    def add(self, t: int, tool_use_id: str, target: str, what: str, key: str) -> bool:
        """Record one guess; True when it adds a new distinct target."""
        self.guesses += 1
        if (not self.turns or self.turns[-1] != t) and len(self.turns) < _CLUSTER_TURNS:
            self.turns.append(t)
        if len(self.ids) < _CLUSTER_TURNS:
            self.ids.append(tool_use_id)
        if target not in self.targets and len(self.targets) < _CLUSTER_TARGETS:
            self.targets.append(target)
            self.types.append(what)
        new = key not in self.keys
        if new and len(self.keys) < _CLUSTER_TARGETS:
            self.keys.add(key)
        return new


class HallucinatedInput(Detector):
    """Not-found errors on targets never seen before; unknown commands and flags."""

    kind = "hallucinated_input"

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        cap = self.thresholds.max_tracked_targets
        # Names of the targets of successful calls (a file read or written was real to the model).
        self._known: BoundedDict[str, int] = BoundedDict(cap)
        # Recent successful results, oldest first: (text, is a listing) → None. Identical outputs (a rerun
        # test, the same listing) are kept once.
        self._texts: dict[tuple[str, bool], None] = {}
        self._text_chars = 0
        # Reads with no path-like token in them (code), kept apart: only the name look-up searches them.
        self._code: dict[str, None] = {}
        self._code_chars = 0
        texts = max(1, min(cap, _MAX_TEXTS) - _CLUSTER_TARGETS)  # with the cluster: ≤ cap entries
        # The start's texts come out of the same allowance: recent and first results together stay ≤ it.
        self._max_start = min(_START_TEXTS, texts // 4)
        self._max_texts = max(1, texts - self._max_start)
        # The session's first results, never evicted: (text, is a listing) → None, up to _START_BUDGET.
        self._start: dict[tuple[str, bool], None] = {}
        self._start_chars = 0
        self._reported: BoundedDict[str, int] = BoundedDict(cap)
        self._oriented_at: int | None = None
        self._worked = False  # some call of the session has worked
        self._cluster: _Cluster | None = None

    def observe_tool(self, call: ToolCall) -> list[Finding]:
        info = call_info(call)
        role, t = info.role, call.turn_index
        if info.error is None:
            self._cluster = None  # a call that worked ends a run of guesses
            self._worked = True
            self._learn(call.result, role, t)
            return []
        target, what = self._target(call, role, info.error)
        if what == "path" and role.role == SEARCH and not self._worked:
            # The session's first look around (a listing or search before any call has worked) is the
            # orientation step this detector's advice asks for: a path it finds missing was checked.
            target = None
        findings = [] if target is None else self._judge(call, info.error, target, what)
        if info.error in _RAN_AND_FAILED:
            # A test suite or build that failed still showed the model its output: a path or name printed
            # there (a log file, a failing test's module) was seen, not invented, by later calls. Its own
            # target is not learned as existing, and the run of guesses goes on.
            self._learn(call.result, role._replace(path=None), t)
        elif role.shell and info.error == "not_found":
            # `cd build/docs && ls category; echo ---; ls` fails on the cd and still lists the directory it is
            # in: the lines that are not errors were seen.
            seen = "\n".join(line for line in call.result[:_LISTING_CHARS].splitlines()
                              if line.strip() and classify_error(line) is None)
            if seen:
                self._learn(seen, role._replace(path=None, changed_paths=()), t)
        return findings

    def _judge(self, call: ToolCall, error: str, target: str, what: str) -> list[Finding]:
        """Findings for a failure on ``target``: none when something earlier grounded it."""
        t = call.turn_index
        cluster = self._cluster
        if target in self._reported:
            if cluster is not None:  # the same invented target again: part of the cluster, nothing new
                cluster.add(t, call.tool_use_id, target, what, _cluster_key(target, what))
            return []
        name_seen = False
        if what == "path":
            names = _names(target)
            name_seen = self._saw(names[0])
            if name_seen and all(self._saw(name) for name in names[1:]):
                return []
        elif what == "name" and self._saw_word(target):
            return []  # a name some result showed: a wrong module or a stale listing, not an invention
        elif what == "account" and all(self._saw_word(part) for part in target.split("/") if part):
            return []  # an owner and a repository some result named, put together wrongly
        key = _cluster_key(target, what)
        if cluster is None:
            cluster = self._cluster = _Cluster(before=self._oriented_at is None, emitted_turn=t)
            cluster.add(t, call.tool_use_id, target, what, key)
            self._reported.put(target, t)
            return [self._single(call, error, target, what, name_seen, cluster)]
        checking = call_info(call).role.role == SEARCH  # a listing that finds it missing is a check, not a guess
        if cluster.add(t, call.tool_use_id, target, what, key) and t > cluster.emitted_turn and not checking:
            cluster.emitted_turn = t
            for named in cluster.targets:  # every target this finding names is reported
                self._reported.put(named, t)
            return [self._grown(call, error, target, what, cluster)]
        return []

    # -- findings ----------------------------------------------------------------------------------
    def _fix(self, before: bool) -> str:
        if before:
            return ("no search or listing yet: the model acted before grounding itself; a forced orientation"
                    " step (directory listing, project structure) at the start prevents this")
        return "look at what the model read before this turn: that input was probably ambiguous"

    def _evidence(self, call: ToolCall, error: str, target: str, what: str, cluster: _Cluster) -> dict[str, object]:
        return {"target": target, "target_type": what, "error_class": error, "tool": call.name,
                "before_orientation": cluster.before, "oriented_at_turn": self._oriented_at,
                "error": short(error_line(call.result, error), 200), "targets": list(cluster.targets),
                "target_types": list(cluster.types), "guesses": cluster.guesses}

    def _single(self, call: ToolCall, error: str, target: str, what: str, name_seen: bool,
                cluster: _Cluster) -> Finding:
        t = call.turn_index
        if what == "path" and name_seen:
            head = (f"{call.name} on {target} at turn {t}: not found; its name was seen earlier, but never in"
                    " that directory")
        elif what == "path":
            head = (f"{call.name} on {target} at turn {t}: not found, and no earlier listing, search or"
                    " result named it")
        elif what == "command":
            head = f"`{target}` at turn {t}: command not found"
        elif what == "name":
            head = f"`{target}` at turn {t}: the code has no such name, and no earlier result showed it"
        elif what == "field":
            head = f"`{target}` at turn {t}: a field or argument the GraphQL schema does not have"
        elif what == "parameter":
            head = f"`{target}` at turn {t}: a parameter the tool does not have"
        elif what == "account":
            head = (f"`{target}` at turn {t}: no such repository or account on GitHub, and no earlier result"
                    " named it")
        else:
            head = f"`{target}` at turn {t}: {describe(error)}"  # the error line itself is in the evidence
        return Finding(
            # Checking whether something exists is context; relying on it is the failure.
            kind=self.kind, severity="info" if call_info(call).role.role == SEARCH else "warning", turn=t,
            turns=[t],
            tool_use_ids=[call.tool_use_id], message=f"{head} — {self._fix(cluster.before)}",
            evidence=self._evidence(call, error, target, what, cluster),
        )

    def _grown(self, call: ToolCall, error: str, target: str, what: str, cluster: _Cluster) -> Finding:
        t = call.turn_index
        shown = ", ".join(x if kind == "path" else f"`{x}`" for x, kind in zip(cluster.targets, cluster.types,
                                                                              strict=True))
        noun = "paths" if all(kind == "path" for kind in cluster.types) else "inputs"
        head = (f"{cluster.guesses} guesses in a row ({turn_span(cluster.turns)}) on {noun} no earlier listing,"
                f" search or result named, all failing: {shown}")
        return Finding(
            kind=self.kind, severity="warning", turn=t, turns=list(cluster.turns),
            tool_use_ids=list(cluster.ids), message=f"{head} — {self._fix(cluster.before)}",
            evidence=self._evidence(call, error, target, what, cluster),
        )

    # -- targets -----------------------------------------------------------------------------------
    def _target(self, call: ToolCall, role: ToolRole, error: str) -> tuple[str | None, str]:
        command = role.command or ""
        if role.shell and not call.is_error and ("||" in command or "$?" in command):
            # `tool ... || echo "not installed"` succeeded through its fallback, and `tool x; echo "exit: $?"`
            # prints the failure it expected: the model checked for the program, path or option (or tried
            # how its own program answers a wrong one) and planned for its absence; it did not rely on it.
            return None, ""
        if error in _NAME_ERRORS:
            missing = missing_name(call.result)
            if missing is None:
                return None, ""
            # The model's own input must hold the name: an import failing inside the project's code is not
            # something this call invented. A repository may be written apart (`owner: "o", name: "r"`).
            text = role.command if role.shell else str(call.input)[:_OTHER_CHARS]
            what = "account" if missing[1] in _ACCOUNTS else "name"
            typed = all(part in (text or "") for part in missing[0].split("/")) if what == "account" else (
                missing[0] in (text or ""))
            return (missing[0], what) if typed else (None, "")
        if error == "not_found":
            # A shell command's error may be about another of its parts (`cd build/docs && ls category`
            # failing on the cd): there the target is the argument the error line names.
            if role.path and _harness_path(role.path):
                return None, ""
            if role.path and role.role != WRITE and (not role.shell or role.path in error_line(call.result, error)):
                return role.path, "path"
            if role.shell and role.command and not _substituted(call.result, role.command):
                # `python scripts/x.py` → the argument the error message complains about.
                text = call.result[:HEAD_CHARS]
                for token in path_tokens(role.command, 500, 16):
                    if token in text:
                        if _creates(role.command, token):
                            return None, "path"
                        return norm_path(token), "path"
            return None, "path"
        if error == "bad_option" and _SCHEMA_REJECTED in call.result[:HEAD_CHARS]:
            return _unknown_parameter(call)
        if error == "bad_option" and (name := graphql_name(call.result)):
            # `gh api graphql -f query='{ repository { repositorySecurityAdvisory … } }'`: the query's own name.
            return (name, "field") if name in (role.command or str(call.input)) else (None, "")
        if not role.shell:
            return None, ""
        if _substituted(call.result, command):
            return None, ""
        if error == "command_not_found":
            # `poetry run pytest` → "bash: poetry: command not found" names poetry, not pytest.
            missing = missing_command(call.result)
            if missing is not None and not _names_word(missing, command):
                # A program the command does not name (an `eval` of another command's output, a script or
                # Makefile calling it): the model did not write it, its input was not invented.
                return None, ""
            name = missing or (role.invoked or role.program or role.target or "").split(" ", 1)[0]
            if name.lower() in _STANDARD_TOOLS or name.startswith("-") or any(c in name for c in "\"'`\\"):
                # No program is named "-100" or `world\"`: an option a line break cut off its command
                # (`head \n-100`) or the piece of a string whose quotes did not pair is a typing slip, not a
                # program the model made up.
                return None, ""
            if _asks_for(name, command) or self._saw_word(name) or self._saw_word(name.capitalize()):
                # `command -v ruby`, `ruby --version`: "not found" is the answer the model asked for. A
                # program an earlier result named (the project's own `astro` in package.json, the Docker its
                # roadmap runs: prose capitalises it) was seen, not invented: this machine lacks it.
                return None, ""
            return name or None, "command"
        if error == "bad_option":
            flag = bad_flag(call.result)
            if (flag or "").lower() in _HELP_FLAGS or not _models_flag(flag, call.result, command):
                return None, ""
            if flag and not flag.startswith("-"):
                # git names a long option without its dashes ("unknown option `no-edit'"): say it as typed.
                flag = next((typed for typed in ("--" + flag, "-" + flag) if _names_word(typed, command)), flag)
            # The option belongs to the part of the command that was given it (`git add a\ngit rebase
            # --no-edit` → git rebase); when several parts hold it, `sed -n 1,5p f | cat -A` → "cat: illegal
            # option -- A": the program that says so, when the command runs it.
            invoked = (invoked_with(command, flag) if flag else None) or role.invoked or (
                role.program or role.target or "").split(" ", 1)[0]
            speaker = error_speaker(call.result)
            if speaker and not _names_word(speaker, invoked) and _names_word(speaker, command):
                invoked = speaker
            if flag and _gnu_option(invoked, flag, speaker):
                return None, ""
            return (f"{invoked} {flag}" if flag else invoked) or None, "flag"
        return None, ""

    # -- grounding ---------------------------------------------------------------------------------
    def _learn(self, text: str, role: ToolRole, t: int) -> None:
        # A call's own target, and the files its command wrote or removed (`> /tmp/run.log`), were real to
        # the model.
        for path in (role.path, *role.changed_paths) if role.changed_paths else (role.path,):
            if path:
                for name in _components(path):
                    self._known.put(name, t)
        listing = role.role == SEARCH
        if listing:
            if self._oriented_at is None:
                self._oriented_at = t
            text = text[:_LISTING_CHARS]
            if text.count("\n") >= _LISTING_LINES:
                text = "\n".join(text.split("\n", _LISTING_LINES)[:_LISTING_LINES])
        if self._start_chars < _START_BUDGET and text and self._max_start:
            self._pin(text if listing else text[:_LISTING_CHARS], listing)
        if not listing:
            text = text[:_OTHER_CHARS]
            if "/" not in text and _DOT_LETTER.search(text) is None:
                # No path-like token in it ("The file has been updated."): nothing a path look-up could
                # find. A read of code still shows the names it defines, for the name look-up only.
                if role.role == READ and text:
                    self._remember_code(text)
                return
        if not text:
            return
        texts = self._texts
        key = (text, listing)
        if key in texts:
            del texts[key]  # seen again: now the most recent
        else:
            self._text_chars += len(text)
        texts[key] = None
        while len(texts) > self._max_texts or (self._text_chars > _TEXT_BUDGET and len(texts) > 1):
            old = next(iter(texts))
            del texts[old]
            self._text_chars -= len(old[0])

    def _pin(self, text: str, listing: bool) -> None:
        """Keep one of the session's first results for good: what the model was given to start from (the
        task's plan, the first reads and listings) is what it keeps working from, long after the window of
        recent results has moved on (the article: the input it was working from)."""
        start, key = self._start, (text[:_START_BUDGET - self._start_chars], listing)
        if key in start:
            return
        start[key] = None
        self._start_chars += len(key[0])
        if len(start) >= self._max_start:
            self._start_chars = _START_BUDGET  # full: the start is over

    def _remember_code(self, text: str) -> None:
        code = self._code
        if text in code:
            del code[text]
        else:
            self._code_chars += len(text)
        code[text] = None
        while len(code) > _CODE_TEXTS or (self._code_chars > _CODE_BUDGET and len(code) > 1):
            old = next(iter(code))
            del code[old]
            self._code_chars -= len(old)

    def _saw(self, name: str) -> bool:
        """Did a call target, or a listing entry / path-like token of a recent result, have this name?"""
        if name in self._known:
            return True
        if not name or any(c.isspace() for c in name):
            return False  # tokens never hold whitespace
        size, budget = len(name), _MAX_CHECKS
        for text, listing in (*reversed(self._texts), *self._start):  # newest first, then the start
            at = text.find(name)
            while at >= 0:
                budget -= 1
                if budget < 0:
                    return True  # all over the recent output: the model has seen it
                if listing:
                    # A listing's entry, or a name its lines mention (a search's matching line, JSON from
                    # `gh pr view`): either was shown to the model.
                    if name in _listed_names(text, at) or name in _token_names(text, at, at + size):
                        return True
                    at = text.find("\n", at)  # one look per listing line
                    if at < 0:
                        break
                elif name in _token_names(text, at, at + size):
                    return True
                at = text.find(name, at + 1)
        return False

    def _saw_word(self, name: str) -> bool:
        """Did a recent result hold this identifier as a whole word (``def parse_file``, ``parse_file(``)?"""
        if name in self._known:
            return True
        size, budget = len(name), _MAX_CHECKS
        texts = [*reversed(self._code), *(text for text, _ in reversed(self._texts)),  # newest first
                 *(text for text, _ in self._start)]
        for text in texts:
            at = text.find(name)
            while at >= 0:
                budget -= 1
                if budget < 0:
                    return True  # all over the recent output: the model has seen it
                end = at + size
                if (at == 0 or not _word_char(text[at - 1])) and (end >= len(text) or not _word_char(text[end])):
                    return True
                at = text.find(name, at + 1)
        return False

    def tracked(self) -> int:
        cluster = len(self._cluster.targets) if self._cluster else 0
        return (len(self._known) + len(self._reported) + len(self._texts) + len(self._code) + len(self._start)
                + cluster)


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _names_word(name: str, command: str) -> bool:
    """Does the command hold ``name`` as a word of its own (``poetry run``, ``./bin/tool``), not as part of
    a longer one?"""
    at = command.find(name)
    while at >= 0:
        end = at + len(name)
        if ((at == 0 or not (_word_char(command[at - 1]) or command[at - 1] in "-."))
                and (end >= len(command) or not (_word_char(command[end]) or command[end] in "-"))):
            return True
        at = command.find(name, at + 1)
    return False


# Error classes under which a language reports a missing name (an uncaught ImportError, a failed build).
_NAME_ERRORS = frozenset({"traceback", "nonzero_exit", "other_error"})
_ACCOUNTS = frozenset({"repository", "user", "organization"})  # GitHub's "Could not resolve to a …"
# A command that ran and failed (tests, a build, a script's traceback), as opposed to one refused for its
# input (a missing path, an unknown flag or program): what it printed is output the model read.
_RAN_AND_FAILED = frozenset({"traceback", "nonzero_exit"})


# Claude Code refusing a tool call its input schema does not allow; and saying that it never sent the model
# that schema (a deferred tool called before it was loaded), when the model could only guess.
_SCHEMA_REJECTED = "unexpected parameter `"
_SCHEMA_NOT_SENT = "schema was not sent"


def _unknown_parameter(call: ToolCall) -> tuple[str | None, str]:
    """A parameter the tool does not have (Grep's ``-l``, Read's ``path`` for ``file_path``): a flag of the
    tool's own that the model made up, unless the model was never shown the tool's parameters."""
    name = bad_flag(call.result)
    given = call.input if isinstance(call.input, dict) else {}
    if name is None or name not in given or _SCHEMA_NOT_SENT in call.result[:HEAD_CHARS]:
        return None, ""
    return f"{call.name} {name}", "parameter"


# Writing to a path names it as the model's own: `touch x`, `mkdir -p x`, `> x`, `tee x`, `-o x`, `--output x`.
_CREATING = r"(?:\btouch|\bmkdir(?:\s+-p)?|\btee(?:\s+-a)?|>>?|\s-o|\s--output(?:=|\s))\s*['\"]?"


def _creates(command: str, token: str) -> bool:
    """Does the command itself create ``token``? Then the model named a scratch file of its own (a marker
    it checks for, an output it writes), and finding it missing is the outcome of the command, not an
    input the model relied on and invented."""
    return re.search(_CREATING + re.escape(token), command) is not None


def _cluster_key(target: str, what: str) -> str:
    """A guess is new when it names another file (any directory), command or flag."""
    return f"path:{_names(target)[0]}" if what == "path" else f"{what}:{target}"
