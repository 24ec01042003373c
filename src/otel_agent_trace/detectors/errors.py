"""Tool-result error classes and path-like tokens, from the first few KB of a result only.

Tools report errors in prose ("cat: x: No such file or directory", "String to replace not found in
file."), and hand-written dispatchers often forget ``is_error``. A short error class lets detectors
compare failures ("three no_match edits") without comparing whole messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
        "unknown argument", "unexpected argument")),
    _Rule("permission", (
        "permission denied", "eacces", "eperm", "permissionerror", "operation not permitted", "access denied",
        "access is denied")),
    _Rule("not_found", (
        "no such file", "enoent", "filenotfounderror", "file not found", "path not found",
        "directory not found", "does not exist", "cannot find the file", "cannot find file",
        "cannot find the path", "cannot find path", "cannot find module", "could not find file",
        "could not find path", "could not find directory",
        "cannot access '", "not found: /", "file or directory not found", "can't open file")),
    _Rule("traceback", ("traceback (most recent call last)",),
          re.compile(r"^(?:panic: |exception in thread|\w+(?:\.\w+)*(?:error|exception): )", _M),
          ("panic: ", "exception", "error: ")),
    _Rule("nonzero_exit", ("returned non-zero", "non-zero exit", "command failed"),
          re.compile(r"exit(?:ed)?(?: with)? (?:code|status)[:=]? *-?[1-9]|return ?code[:=]? *-?[1-9]"),
          ("exit", "return")),
)
_ERROR_PREFIX = re.compile(r"\A\s*(?:<error>|error\b[:\s]|\[error\]|failed\b[:\s])", re.IGNORECASE)


def _window(text: str, is_error_flag: bool | None) -> str:
    if is_error_flag:
        return text[:HEAD_CHARS]
    if len(text) <= 2 * EDGE_CHARS:
        return text
    # Bash tools print "exit code 1" either first or last; check both edges of long outputs.
    return text[:EDGE_CHARS] + "\n" + text[-EDGE_CHARS:]


def classify_error(result_text: str | None, is_error_flag: bool | None = None) -> str | None:
    """A short error class for a tool result, or None when it looks like a success.

    ``is_error_flag`` True with no recognised pattern → ``other_error``; False or None still lets a clear
    error text ("No such file or directory") through, since many dispatchers never set the flag.
    """
    text = result_text or ""
    low = _window(text, is_error_flag).lower()
    for rule in _RULES:
        if rule.find(low) >= 0:
            return rule.name
    if is_error_flag or _ERROR_PREFIX.match(text[:EDGE_CHARS]):
        return "other_error"
    return None


# Path-like tokens: anything with a slash, or a name with a short extension ("session.ts"; "Makefile"
# is missed on purpose: bare words are too common to count as evidence). Whitespace splitting first and
# a regex only on candidates is several times faster than one regex scan over the whole text.
_PATH_TOKEN = re.compile(r"[\w@.+~-]*(?:/[\w@.+~-]+)+/?|[\w@+~-][\w@.+~-]*\.[A-Za-z][A-Za-z0-9]{0,7}\b")
_PUNCT = "'\"`()[]{}<>,;:!?*"
_FLAG = re.compile(
    r"(?:option|argument|arguments|flag)[:\s]+['\"`‘]?(--?[\w-]+)"
    r"|(?:--?[\w-]+)(?=['\"`’]?:? *(?:unknown|invalid))|invalid option -- '?(\w)"
)


def path_tokens(text: str, limit_chars: int = 4_096, max_tokens: int = 256) -> list[str]:
    """Path-like tokens in the first ``limit_chars`` of ``text`` (bounded work per result)."""
    found: list[str] = []
    for raw in text[:limit_chars].split():
        if "/" not in raw and "." not in raw:
            continue
        match = _PATH_TOKEN.match(raw.strip(_PUNCT))
        if match:
            found.append(match.group(0))
            if len(found) >= max_tokens:
                break
    return found


def bad_flag(text: str) -> str | None:
    """The offending flag in an "unknown option --foo" style message, when it names one."""
    match = _FLAG.search(text[:HEAD_CHARS])
    if not match:
        return None
    if match.group(2):
        return "-" + match.group(2)
    return match.group(1) or match.group(0)


_BY_CLASS = {rule.name: rule for rule in _RULES}


def error_line(text: str, error: str | None, limit: int = 120) -> str:
    """The line that shows the error (``unrecognized arguments: --cov``), not a usage banner above it."""
    head = text[:HEAD_CHARS]
    rule = _BY_CLASS.get(error or "")
    at = rule.find(head.lower()) if rule else -1
    if at < 0:
        return first_line(text, limit)
    start = head.rfind("\n", 0, at) + 1
    end = head.find("\n", at)
    return first_line(head[start:] if end < 0 else head[start:end], limit)


def first_line(text: str, limit: int = 120) -> str:
    """The first non-empty line of an error, trimmed: what the model actually read first."""
    for line in text[:HEAD_CHARS].splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
