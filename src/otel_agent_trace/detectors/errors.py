"""Tool-result error classes and path-like tokens, from the first few KB of a result only.

Tools report errors in prose ("cat: x: No such file or directory", "String to replace not found in
file."), and hand-written dispatchers often forget ``is_error``. A short error class lets detectors
compare failures ("three no_match edits") without comparing whole messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from otel_agent_trace.pipeline.content import redact

# Results can be megabytes of test output; errors that matter are announced near the start.
HEAD_CHARS = 2_048
# Without an explicit is_error flag only the edges of a result are checked: a successfully read source
# file may well contain "No such file" or "Traceback" somewhere in its middle.
EDGE_CHARS = 300

_M = re.MULTILINE


@dataclass(frozen=True, slots=True)
class _Rule:
    """Plain lowercase phrases first (a substring test is far cheaper than a regex), then a regex that
    only runs when one of its ``gate`` substrings is present."""

    name: str
    phrases: tuple[str, ...]
    regex: re.Pattern[str] | None = None
    gate: tuple[str, ...] = ()

    def find(self, low: str) -> int:
        """Position of the first sign of this error class in lowercased text, or -1."""
        for phrase in self.phrases:
            at = low.find(phrase)
            if at >= 0:
                return at
        if self.regex is not None and any(g in low for g in self.gate):
            match = self.regex.search(low)
            if match:
                return match.start()
        return -1


# Most specific first: a traceback ending in FileNotFoundError is a not_found, "command not found" is
# not a missing file, and a failed string-replace edit is not a missing file either.
_RULES: tuple[_Rule, ...] = (
    # An edit refused before it was tried: the file was not read first, or changed since it was read.
    _Rule("precondition", (
        "has not been read yet", "read it first before", "modified since read", "has been unexpectedly modified",
        "modified since it was last read")),
    _Rule("no_match", (
        "string to replace not found", "did not appear verbatim", "no replacement was performed",
        "multiple occurrences of", "is not unique in", "not unique in the file", "search string not found",
        "no match for", "no matches for", "no matches found for", "could not find the text to replace",
        "could not find text to replace", "could not find the string to replace"),
        re.compile(r"old_str(?:ing)?\b.{0,80}?(?:not found|did not appear|not unique)"
                   r"|found \d+ matches of the"),
        ("old_str", "matches of the")),
    _Rule("command_not_found", (
        "command not found", "is not recognized as an internal or external command", "no such command",
        "executable file not found", "unknown command"),
        re.compile(r"^\S+: \d+: \S+: not found", _M), (": not found",)),
    _Rule("bad_option", (
        "unknown option", "unrecognized argument", "unrecognized option", "unrecognised option",
        "invalid option", "illegal option", "no such option", "unknown flag", "unknown shorthand flag",
        "unknown argument", "unexpected argument", "flag provided but not defined",
        # A tool's own input schema (Claude Code: "An unexpected parameter `-l` was provided").
        "unexpected parameter",
        # Windows programs: "Invalid Parameters -- try "/?" for help", "Invalid switch - /x".
        "invalid parameter", "invalid switch",
        # GraphQL (gh api graphql): an argument or field the schema does not have.
        "doesn't accept argument", "does not accept argument", "cannot query field", "doesn't exist on type")),
    _Rule("permission", (
        "permission denied", "eacces", "eperm", "permissionerror", "operation not permitted", "access denied",
        "access is denied")),
    _Rule("not_found", (
        "no such file", "enoent", "filenotfounderror", "file not found", "path not found",
        "directory not found", "does not exist", "cannot find the file", "cannot find file",
        "cannot find the path", "cannot find path", "cannot find module", "could not find file",
        "could not find path", "could not find directory",
        "cannot access '", "not found: /", "file or directory not found", "can't open file",
        "unknown revision or path", "did not match any file", "no rule to make target")),
    _Rule("traceback", ("traceback (most recent call last)",),
          re.compile(r"^(?:panic: |exception in thread|\w+(?:\.\w+)*(?:error|exception): )", _M),
          ("panic: ", "exception", "error: ")),
    # The gates are the literal parts every match of the regex contains ("exit code", "returncode" …).
    _Rule("nonzero_exit", ("returned non-zero", "non-zero exit", "command failed"),
          re.compile(r"exit(?:ed)?(?: with)? (?:code|status)[:=]? *-?[1-9]|return ?code[:=]? *-?[1-9]"),
          ("exit code", "exit status", "exited ", "exit with ", "return code", "returncode")),
)
_NO_RULE = len(_RULES)

# classify_error runs on every tool result, live. Instead of one scan per phrase (~60), it makes one scan
# per *key*: every phrase and regex gate contains a match of one of these keys (checked when the table is
# built, see _key_of), so a result mentioning none of them, most successful results, costs one scan per
# key and no rule regex; when a key matches, only the phrases it stands for are checked, in rule order.
# Each key is a plain string (one fast substring search) or a regex with a literal prefix, which the regex
# engine searches for in C, looking further only where the prefix occurs: "no" covers "not found", "no
# such file", "non-zero"…, and a key may start inside a phrase ("ck (" for "traceback (", "erm" for
# "permission" and "eperm").
_KEYS: tuple[str | re.Pattern[str], ...] = (
    re.compile(r"no(?:t (?:found|find|unique|appear|access|recogni[sz]ed|permitted|exist|defined|match)"
               r"| (?:such|match|replacement|rule to)|n-zero|tfound|ent)"),
    re.compile(r"un(?:known |recogni|expected (?:argument|parameter))"),
    re.compile(r"e(?:acces|rm|xception|rror: |xi(?:t|st on type)|nied|turn ?code)"),  # erm: permission, eperm
    re.compile(r"c(?:an't open|ommand failed|hes of the|currences|k \(|: )"),  # ck (: traceback; c: : panic
    re.compile(r"o(?:ption|ld_str)"),
    # An alternation without a common literal prefix is tried at every position (4 µs on a short result):
    # these phrases are keyed by plain strings instead.
    "invalid ", "accept argument", "cannot query field", "been read yet", "first before", "modified",
)


def _key_of(needle: str) -> int:
    for i, key in enumerate(_KEYS):
        if (key in needle) if isinstance(key, str) else key.search(needle):
            return i
    raise ValueError(f"no scan key covers the error phrase {needle!r}")  # fails the import: add a key


_Checks = tuple[tuple[int, str, bool], ...]


def _build_checks() -> tuple[tuple[tuple[re.Pattern[str], _Checks], ...], tuple[tuple[str, _Checks], ...]]:
    """(regex keys, plain keys), each with the (rule index, phrase or gate, is a regex gate) checks it
    stands for, in rule order."""
    checks: list[list[tuple[int, str, bool]]] = [[] for _ in _KEYS]
    for ri, rule in enumerate(_RULES):
        for phrase in rule.phrases:
            checks[_key_of(phrase)].append((ri, phrase, False))
        for gate in rule.gate:
            checks[_key_of(gate)].append((ri, gate, True))
    pairs = [(key, tuple(sorted(found))) for key, found in zip(_KEYS, checks, strict=True) if found]
    return (tuple((k, c) for k, c in pairs if not isinstance(k, str)),
            tuple((k, c) for k, c in pairs if isinstance(k, str)))


_RX_CHECKS, _STR_CHECKS = _build_checks()


def classify_window(low: str) -> str | None:
    """The first rule (in rule order) with a sign in the lowercased ``low``, or None; one scan per key."""
    best = _NO_RULE
    for rx, checks in _RX_CHECKS:
        if rx.search(low) is not None:
            best = _verify(low, checks, best)
    for key, checks in _STR_CHECKS:
        if key in low:
            best = _verify(low, checks, best)
    return _RULES[best].name if best < _NO_RULE else None


def _verify(low: str, checks: _Checks, best: int) -> int:
    for ri, needle, gated in checks:
        if ri >= best:
            break
        if needle in low and (not gated or _RULES[ri].regex.search(low)):  # type: ignore[union-attr]
            return ri
    return best


# A read quotes a file with its line numbers ("    12→", "12\t", `cat -n`): a line carrying one is the file's
# text, and an error phrase on it (a message the code raises, a test named after an error) is the file's,
# not the tool's: a successful read of such a file did not fail.
_NUMBERED_LINE = re.compile(r"^[ \t]*\d+(?:→|\t).*\n?", _M)
# A test runner's line for a test that passed ("(pass) parseFlags > throws UnknownFlagError for unknown
# flags", "✓ rejects an invalid option", "--- PASS: TestMissingFile", "tests/a.py::test_not_found PASSED"):
# an error phrase there is the test's name, not the run's failure. Matched on the lowercased window.
_PASSED_TEST = re.compile(r"^.*(?:\(pass\)|[✓✔]|--- pass:|::\S+ passed\b).*\n?", _M)
_ERROR_PREFIX = re.compile(r"\A\s*(?:<error>|error\b[:\s]|\[error\]|failed\b[:\s])", re.IGNORECASE)


def _window(text: str, is_error_flag: bool | None) -> str:
    if is_error_flag:
        return text[:HEAD_CHARS]
    if len(text) <= 2 * EDGE_CHARS:
        return text
    # Bash tools print "exit code 1" either first or last; check both edges of long outputs.
    return text[:EDGE_CHARS] + "\n" + text[-EDGE_CHARS:]


# Live, the recorder classifies a result to set its error flag and the detectors classify the same string
# right after: the last answer is kept, keyed by the text's identity (one tuple, replaced atomically).
_last: tuple[str, bool, str | None] | None = None


def classify_error(result_text: str | None, is_error_flag: bool | None = None) -> str | None:
    """A short error class for a tool result, or None when it looks like a success.

    ``is_error_flag`` True with no recognised pattern → ``other_error``; False or None still lets a clear
    error text ("No such file or directory") through, since many dispatchers never set the flag.
    """
    global _last
    text = result_text or ""
    flag = bool(is_error_flag)
    last = _last
    if last is not None and last[0] is text and last[1] is flag:
        return last[2]
    window = _window(text, flag).lower()
    name = classify_window(window)
    if name is not None:
        # Lines that quote something other than the tool's own outcome, left out before looking again.
        quoted = window
        if "→" in quoted or "\t" in quoted:
            quoted = _NUMBERED_LINE.sub("", quoted)
        quoted = _PASSED_TEST.sub("", quoted)
        if len(quoted) != len(window):
            name = classify_window(quoted)
    if name is None and (flag or _ERROR_PREFIX.match(text[:EDGE_CHARS])):
        name = "other_error"
    _last = (text, flag, name)
    return name



def tool_result_is_error(result_text: str | None, is_error_flag: bool | None) -> bool:
    """Whether a tool call failed: an explicit ``is_error`` wins; without one, the result text decides.

    The one rule for every source — dispatcher, decorator, inferred live, and imported files — so a
    result is flagged the same live and on import (hand-written loops and the seed's JSONL rarely set
    the flag).
    """
    if is_error_flag is not None:
        return bool(is_error_flag)
    return classify_error(result_text, None) is not None


# Path-like tokens: anything with a slash, or a name with a short extension ("session.ts"; "Makefile"
# is missed on purpose: bare words are too common to count as evidence). Whitespace splitting first and
# a regex only on candidates is several times faster than one regex scan over the whole text.
PATH_TOKEN = re.compile(r"[\w@.+~-]*(?:/[\w@.+~-]+)+/?|[\w@+~-][\w@.+~-]*\.[A-Za-z][A-Za-z0-9]{0,7}\b")
PATH_PUNCT = "'\"`()[]{}<>,;:!?*"
_FLAG = re.compile(
    r"(?:option|argument|arguments|flag)[:\s]+['\"`‘]?(--?[\w-]+)"
    r"|(?:--?[\w-]+)(?=['\"`’]?:? *(?:unknown|invalid))|(?:invalid|illegal) option -- '?(\w)"  # GNU, BSD
    r"|flag provided but not defined: (-[\w-]+)"  # Go's flag package
    r"|(?:unknown|invalid|unrecognized) option ['\"`‘]([\w.-]+)['\"`’]"  # "unknown option 'log'" (uci, mount)
    r"|unexpected parameter `([\w.-]+)`"  # a tool's input schema (Claude Code)
)


def path_tokens(text: str, limit_chars: int = 4_096, max_tokens: int = 256) -> list[str]:
    """Path-like tokens in the first ``limit_chars`` of ``text`` (bounded work per result)."""
    found: list[str] = []
    for raw in text[:limit_chars].split():
        if "/" not in raw and "." not in raw:
            continue
        match = PATH_TOKEN.match(raw.strip(PATH_PUNCT))
        if match:
            found.append(match.group(0))
            if len(found) >= max_tokens:
                break
    return found


_MISSING_COMMAND = re.compile(
    r"command not found: *['\"`]?([^\s'\"`:]+)"  # zsh, fish: "zsh: command not found: poetry"
    r"|([^\s:'\"`]+)['\"`]?: command not found(?!:)"  # bash: "bash: line 1: poetry: command not found"
    r"|(?:^|: )([^\s:'\"`]+): not found"  # dash: "sh: 1: poetry: not found", "poetry: not found"
    r"|^['\"`]?([^\s'\"`]+)['\"`]? is not recognized as an internal or external command"  # cmd.exe
    r"|exec: \"([^\"]+)\": executable file not found"  # Go
    r"|unknown command:? *['\"`]?([^\s'\"`:]+)",  # fish: "fish: Unknown command: poetry"
    re.MULTILINE | re.IGNORECASE,
)


def missing_command(text: str) -> str | None:
    """The program a "command not found" error names (``bash: poetry: command not found`` → poetry)."""
    match = _MISSING_COMMAND.search(text[:HEAD_CHARS])
    if not match:
        return None
    name = next(g for g in match.groups() if g)
    return name.rsplit("/", 1)[-1] or None


# A name the code does not have, as the language reports it: (name, where it was looked for).
_MISSING_NAME = re.compile(
    r"cannot import name ['\"](\w+)['\"] from ['\"]([\w.]+)['\"]"  # Python ImportError
    r"|module ['\"]([\w.]+)['\"] has no attribute ['\"](\w+)['\"]"  # Python AttributeError on a module
    r"|module ['\"]([^'\"]+)['\"] does not provide an export named ['\"](\w+)['\"]"  # JavaScript ESM
    r"|module ['\"]\\?\"([^'\"\\]+)\\?\"['\"] has no exported member ['\"](\w+)['\"]"  # TypeScript TS2305
    # GitHub (gh, its GraphQL API): "Could not resolve to a Repository with the name 'owner/name'".
    r"|could not resolve to an? (repository|user|organization) with the (?:name|login) ['\"]([\w./-]+)['\"]",
    re.IGNORECASE,
)


def missing_name(text: str) -> tuple[str, str] | None:
    """(name, module) of an import or attribute the code does not have: ``cannot import name 'x' from
    'pkg.mod'`` → ('x', 'pkg.mod'); a GitHub repository or account that does not exist → ('o/r',
    'repository')."""
    match = _MISSING_NAME.search(text[:HEAD_CHARS])
    if not match:
        return None
    g = match.groups()
    if g[0]:
        return g[0], g[1]
    if g[2]:
        return g[3], g[2]
    if g[4]:
        return g[5], g[4]
    if g[6]:
        return g[7], g[6]
    return g[9], g[8].lower()


# "lsd: 3: No such file …", "eza: Unknown argument -R": the program an error line speaks for. Shells and
# generic words are not programs that could stand in for another.
_SPEAKER = re.compile(r"^([A-Za-z][\w.+-]{1,30}): ", re.MULTILINE)
_NOT_SPEAKERS = frozenset({"bash", "sh", "zsh", "fish", "dash", "error", "warning", "fatal", "usage", "line",
                           "note", "hint", "exit code", "info", "debug", "caused by", "stderr", "stdout"})


_USAGE = re.compile(r"^\s*usage: +(?:\S*/)?([A-Za-z][\w.+-]{0,30})\b", re.MULTILINE | re.IGNORECASE)


def error_speaker(text: str) -> str | None:
    """The program that printed the error, when its first lines name one (``lsd: …`` → lsd, or a usage
    banner ``Usage: eza [OPTIONS]`` under a bare ``error: unexpected argument``)."""
    head = text[:512]
    for match in _SPEAKER.finditer(head):
        name = match.group(1).lower()
        if name not in _NOT_SPEAKERS:
            return match.group(1)
    usage = _USAGE.search(head)
    return usage.group(1) if usage else None


# A GraphQL schema refusing a name: "Field 'x' doesn't accept argument 'y'", "Cannot query field 'y' on type",
# GitHub's "Field 'y' doesn't exist on type 'Repository'".
_GRAPHQL_NAME = re.compile(r"accept argument '(\w+)'|query field '(\w+)'|field '(\w+)' doesn't exist on type",
                           re.IGNORECASE)


def graphql_name(text: str) -> str | None:
    """The field or argument a GraphQL error says the schema does not have."""
    match = _GRAPHQL_NAME.search(text[:HEAD_CHARS])
    return next((name for name in match.groups() if name), None) if match else None


def bad_flag(text: str) -> str | None:
    """The offending flag in an "unknown option --foo" style message, when it names one."""
    match = _FLAG.search(text[:HEAD_CHARS])
    if not match:
        return None
    if match.group(2):
        return "-" + match.group(2)
    return match.group(1) or match.group(3) or match.group(4) or match.group(5) or match.group(0)


_BY_CLASS = {rule.name: rule for rule in _RULES}
# What each class means, in words: finding messages describe a failure this way instead of quoting the tool's
# output (which leaves the process on spans, content capture or not); the quote stays in the evidence.
_DESCRIPTIONS = {
    "no_match": "the text to replace was not in the file",
    "command_not_found": "command not found",
    "bad_option": "an option the command does not have",
    "permission": "permission denied",
    "not_found": "not found",
    "traceback": "an uncaught exception",
    "nonzero_exit": "a non-zero exit status",
    "other_error": "an error",
}


def describe(error: str | None) -> str:
    """An error class in words (``no_match`` → "the text to replace was not in the file")."""
    return _DESCRIPTIONS.get(error or "", error or "an error")

# Classes whose matching line says little ("Exit code 1", "Traceback (most recent call last):"): for these
# the line shown is the first one that reads like an error.
_GENERIC = frozenset({"nonzero_exit", "other_error", "traceback"})
_EXCEPTION_LINE = re.compile(r"\b[A-Za-z_][\w.]*(?:Error|Exception)\b:")  # "sqlalchemy.exc.OperationalError: …"
_ERROR_WORDS = re.compile(
    r"\b(?:error|fatal|panic|failed|failure|refused|denied|cannot|can't|unable|timed out|not found|no such"
    r"|invalid|undefined|segmentation fault|aborted)\b|ERR!", re.IGNORECASE)
_EXIT_BANNER = re.compile(r"\W*(?:error:\s*)?(?:exit(?:ed)?(?: with)? (?:code|status)|return ?code)[:=]?\s*-?\d+\W*\Z",
                          re.IGNORECASE)
_PYTEST_MARK = re.compile(r"E\s{2,}")  # pytest prefixes failure lines with "E   "


def telling_line(text: str) -> str | None:
    """The first line of a failure's output that reads like an error: an exception with its message
    (``OperationalError: … Connection refused``), else a line with an error word, else the first line that
    is not just an exit-status banner; None when there is nothing but the banner."""
    lines = [line.strip() for line in text[:HEAD_CHARS].splitlines()]
    lines = [_PYTEST_MARK.sub("", line, 1) if line.startswith("E ") else line
             for line in lines if line and not _EXIT_BANNER.match(line)]
    for pattern in (_EXCEPTION_LINE, _ERROR_WORDS):
        for line in lines:
            if pattern.search(line):
                return line
    return lines[0] if lines else None


def error_line(text: str, error: str | None, limit: int = 120) -> str:
    """The line that shows the error (``unrecognized arguments: --cov``), not a usage banner above it."""
    head = text[:HEAD_CHARS]
    if error in _GENERIC:
        line = telling_line(head)
        return clip(line, limit) if line else first_line(text, limit)
    rule = _BY_CLASS.get(error or "")
    at = rule.find(head.lower()) if rule else -1
    if at < 0:
        return first_line(text, limit)
    start = head.rfind("\n", 0, at) + 1
    end = head.find("\n", at)
    return first_line(head[start:] if end < 0 else head[start:end], limit)


def clip(line: str, limit: int = 120) -> str:
    """One line of at most ``limit`` characters, cut in the middle at spaces: an error's end often says the
    most (``sqlalchemy.exc.OperationalError: … port 5432 failed: Connection refused``). Secrets are masked
    first: a token cut in two no longer matches the patterns that would mask it."""
    line = redact(" ".join(line.split()))
    if len(line) <= limit:
        return line
    keep_tail = (limit - 3) * 2 // 5
    head, tail = line[: max(0, limit - 3 - keep_tail)], line[len(line) - keep_tail:]
    cut = head.rfind(" ", len(head) // 2)
    head = head[:cut] if cut > 0 else head
    cut = tail.find(" ", 0, len(tail) // 2)
    tail = tail[cut + 1:] if cut >= 0 else tail
    return f"{head} … {tail}"


def first_line(text: str, limit: int = 120) -> str:
    """The first non-empty line of an error, trimmed: what the model actually read first."""
    for line in text[:HEAD_CHARS].splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
