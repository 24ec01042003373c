"""What a tool call does (read / edit / write / search / bash / other) and what it does it to.

Detectors compare calls by role and target rather than by tool name, so Claude Code's ``Read``,
Anthropic's text-editor ``view`` and ``cat FILE`` in a bash tool all count as the same read of FILE.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from otel_agent_trace.detectors.errors import classify_error
from otel_agent_trace.model.records import ToolCall, ToolUse

READ, EDIT, WRITE, SEARCH, BASH, OTHER = "read", "edit", "write", "search", "bash", "other"
CHANGE_ROLES = frozenset({EDIT, WRITE})


class ToolRole(NamedTuple):
    """A tool call reduced to what detectors compare (immutable; a tuple because it is built per call)."""

    role: str
    target: str | None = None  # path for read/edit/write, pattern (or path) for search, command for bash
    path: str | None = None
    # Identical edits share edit_key (a hash of old → new, or of the written content); revert_key is the
    # key of the edit that would undo this one. Process-local hashes: compared within a session only.
    edit_key: int | None = None
    revert_key: int | None = None
    read_range: str | None = None  # offset/limit, view_range, sed -n range: partial reads of one file differ
    program: str | None = None  # bash: "git status", "npx jest", "python -m pytest"
    changed_paths: tuple[str, ...] = ()  # paths a bash command may modify (sed -i, rm, mv, > file)
    global_change: bool = False  # bash that may rewrite any file (git checkout, formatters)
    undo: bool = False  # text-editor undo_edit
    # Shell commands, whatever role they were given (`git log` is a search, `cat x` a read):
    shell: bool = False
    command: str | None = None  # the command text (first 500 characters)
    invoked: str | None = None  # what it runs, as typed: "python scripts/export.py", "git log", "ls"


# What a search tool says when it found nothing; Claude Code's Bash tool answers an empty output with
# "(Bash completed with no output)".
_EMPTY_RESULTS = frozenset({"", "no files found", "no matches found", "no results found", "no results",
                            "found 0 files", "0 matches", "(bash completed with no output)"})
FINDERS = frozenset({"grep", "rg", "ag", "ack", "egrep", "fgrep", "find", "fd", "fdfind", "locate",
                     "select-string"})  # PowerShell's grep
LISTERS = FINDERS | {"ls", "tree", "dir", "get-childitem"}  # a listing that shows something grounds the next search


def is_finder(role: ToolRole, programs: frozenset[str] = FINDERS) -> bool:
    """A search tool (Grep, Glob, LS) or a finder program (grep, find …): one whose empty result means
    "nothing there", unlike `git diff`, `which` or `wc`."""
    return not role.shell or role.program in programs


# `pnpm lint 2>&1 | grep "no-explicit-any" | head`: whatever ran, the grep it was piped into is the search.
_PIPED_FINDER = re.compile(r"\|\s*(?:grep|rg|egrep|fgrep|ag|ack)\b")


def found_nothing(role: ToolRole, result: str) -> bool:
    """A search that ran and found nothing: the search tool's way of failing. A GitHub CLI read that
    prints nothing (a run's log that is not there) fetched nothing, the same way, and so does a command
    whose output was piped into a grep that printed nothing."""
    return (len(result) < 40 and result.strip().strip(".").lower() in _EMPTY_RESULTS
            and ((role.role == SEARCH and (is_finder(role) or (role.program or "").startswith("gh ")))
                 or (role.shell and _PIPED_FINDER.search(role.command or "") is not None)))


class CallInfo(NamedTuple):
    """A tool call's role plus its error class (None: success)."""

    role: ToolRole
    error: str | None


_EXACT: dict[str, str] = {
    **dict.fromkeys(("read", "read_file", "view_file", "open_file", "cat", "view", "readfile", "get_file",
                     "notebookread", "read_notebook", "file_read", "open"), READ),
    **dict.fromkeys(("edit", "multiedit", "edit_file", "replace_in_file", "str_replace", "apply_patch",
                     "patch", "notebookedit", "apply_diff", "search_replace", "file_edit", "edit_notebook"),
                    EDIT),
    **dict.fromkeys(("write", "write_file", "create_file", "save_file", "file_write", "write_to_file"),
                    WRITE),
    **dict.fromkeys(("grep", "glob", "ls", "list_dir", "list_files", "list_directory", "search", "find_files",
                     "find", "search_files", "file_search", "codebase_search", "ripgrep", "grep_search",
                     "find_file", "list"), SEARCH),
    **dict.fromkeys(("bash", "run_command", "run_bash", "shell", "execute", "exec", "terminal",
                     "run_terminal_cmd", "execute_command", "run_shell_command", "run_shell", "bash_tool",
                     "run", "sh", "command"), BASH),
    # Names that contain read/write/search words but touch no file. ToolSearch loads deferred tool schemas
    # (its answer is tool references, no text): not a search of the code.
    **dict.fromkeys(("todowrite", "todoread", "task", "agent", "webfetch", "websearch", "web_search",
                     "web_fetch", "exitplanmode", "think", "toolsearch"), OTHER),
}
_EDITOR_NAMES = ("str_replace_based_edit_tool", "str_replace_editor", "text_editor")
_EDITOR_COMMANDS = {"view": READ, "str_replace": EDIT, "create": EDIT, "insert": EDIT, "undo_edit": EDIT}
_WORD_ROLES = (  # fallback for unknown names, by word; only used when the input names a target
    (("edit", "replace", "patch", "modify"), EDIT),
    (("write", "create", "save"), WRITE),
    (("read", "view", "open", "cat", "show"), READ),
    (("grep", "glob", "search", "find", "list", "ls", "tree"), SEARCH),
    (("bash", "shell", "command", "exec", "execute", "terminal", "run"), BASH),
)
_PATH_KEYS = ("file_path", "path", "filename", "file", "filepath", "notebook_path", "target_file",
              "relative_path", "absolute_path", "file_name", "dir", "directory", "dir_path")
_PATTERN_KEYS = ("pattern", "query", "regex", "glob", "search", "search_term", "name")
_COMMAND_KEYS = ("command", "cmd", "script", "shell_command")
_RANGE_KEYS = ("offset", "limit", "view_range", "start_line", "end_line", "line_start", "line_end",
               "lines", "range")
_RANGE_SET = frozenset(_RANGE_KEYS)
_EMPTY: Mapping[str, Any] = {}
_OLD_KEYS = ("old_string", "old_str", "old", "search", "old_text")
_NEW_KEYS = ("new_string", "new_str", "new", "replace", "new_text", "content", "file_text", "text")
_SPLIT_NAME = re.compile(r"[_\-.\s]+|(?<=[a-z])(?=[A-Z])")
_PATCH_PATH = re.compile(r"^(?:\*\*\* (?:Update|Add|Delete) File: |\+\+\+ b/)(\S+)", re.MULTILINE)


def _key(*parts: object) -> int:
    """A process-local 64-bit key for edit contents (str hashes are cached, so this is cheap)."""
    return hash(parts)


# A Windows path: a drive (``D:\``), a UNC share (``\\host``) or names joined by backslashes (``src\a.go``).
# A backslash before a space or quote is a shell escape instead (``my\ file``), and stays.
# The look-behind starts a name only where one starts: a long run of letters is then scanned once, not
# once from each of its positions.
WINDOWS_PATH = re.compile(r"[A-Za-z]:\\|\\\\|(?<![\w.-])[\w.-]+\\[\w.-]")


def norm_path(path: Any) -> str | None:
    """'./src//a.py/' → 'src/a.py', 'D:\\src\\a.go' → 'D:/src/a.go'; keeps absolute paths absolute and does
    not resolve '..'."""
    if not isinstance(path, str):
        return None
    p = path.strip().strip("'\"`")
    if "\\" in p and WINDOWS_PATH.match(p):
        p = p.replace("\\", "/")  # one separator, so the same file has one spelling and its names split
    while p.startswith("./"):
        p = p[2:]
    p = p.replace("/./", "/")
    while "//" in p:
        p = p.replace("//", "/")
    if len(p) > 1:
        p = p.rstrip("/")
    return p or None


def _first(data: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """The value of the first of ``keys`` (in that order of preference) that ``data`` has, non-empty."""
    if len(data) < len(keys):  # tool inputs have a few keys: walk them, not the candidate list
        best, best_at = None, len(keys)
        for key, value in data.items():
            if key in keys and value is not None and value != "":
                at = keys.index(key)
                if at < best_at:
                    best, best_at = value, at
        return best
    for key in keys:
        value = data.get(key)
        if value not in (None, ""):
            return value
    return None


def _range(data: Mapping[str, Any]) -> str | None:
    for key in data:
        if key in _RANGE_SET:
            break
    else:
        return None
    parts = [f"{k}={data[k]}" for k in _RANGE_KEYS if data.get(k) not in (None, "")]
    return ",".join(parts) or None


def _edit_keys(data: Mapping[str, Any], role: str) -> tuple[int | None, int | None]:
    """(key of this edit, key of the edit that would revert it)."""
    edits = data.get("edits")
    if isinstance(edits, list) and edits:
        pairs = [(str(_first(e, _OLD_KEYS) or ""), str(_first(e, _NEW_KEYS) or ""))
                 for e in edits if isinstance(e, Mapping)]
        return _key("multi", *pairs), _key("multi", *((n, o) for o, n in reversed(pairs)))
    old, new = _first(data, _OLD_KEYS), _first(data, _NEW_KEYS)
    if role == EDIT and isinstance(data.get("insert_line"), int):
        return _key("insert", data["insert_line"], str(new or "")), None
    if old is None and new is None:
        patch = _first(data, ("patch", "diff", "input"))
        return (_key("patch", str(patch)), None) if patch else (None, None)
    if role == WRITE:
        return _key("write", str(new or "")), None
    old_s, new_s = str(old or ""), str(new or "")
    return _key("edit", old_s, new_s), _key("edit", new_s, old_s)


_NAME_ROLES: dict[str, str | None] = {}  # tool name → _role_from_name: a handful of names per agent
_NAME_ROLES_MAX = 1_024


def _role_from_name(name: str) -> str | None:
    try:
        return _NAME_ROLES[name]
    except KeyError:
        pass
    role = _name_role(name)
    if len(_NAME_ROLES) >= _NAME_ROLES_MAX:
        _NAME_ROLES.clear()
    _NAME_ROLES[name] = role
    return role


def _name_role(name: str) -> str | None:
    lowered = name.lower()
    # mcp__server__read_file, functions.read_file → read_file
    for sep in ("__", "."):
        if sep in lowered:
            lowered = lowered.rsplit(sep, 1)[-1]
    if lowered in _EXACT:
        return _EXACT[lowered]
    if lowered.startswith(_EDITOR_NAMES):
        return "editor"
    return None


def _role_from_words(name: str) -> str | None:
    words = {w.lower() for w in _SPLIT_NAME.split(name) if w}
    for keys, role in _WORD_ROLES:
        if words.intersection(keys):
            return role
    return None


def classify_tool(name: str | None, tool_input: Any) -> ToolRole:
    """Role and target of one tool call; never raises, unknown tools are ``other``."""
    name = name or ""
    data: Mapping[str, Any] = (tool_input if type(tool_input) is dict or isinstance(tool_input, Mapping)
                               else _EMPTY)
    role = _role_from_name(name)
    sub = data.get("command")
    if role == "editor" or (isinstance(sub, str) and sub in _EDITOR_COMMANDS and "path" in data):
        return _editor(data)
    if role is None:
        has_path = _first(data, _PATH_KEYS) is not None or isinstance(tool_input, str)
        has_target = has_path or _first(data, _PATTERN_KEYS + _COMMAND_KEYS) is not None
        role = _role_from_words(name) if has_target else None
        if role in (READ, EDIT, WRITE) and not has_path:
            role = None
        if role is None:
            if _first(data, _COMMAND_KEYS) is not None:
                role = BASH
            elif _first(data, ("old_string", "old_str")) is not None:
                role = EDIT
            else:
                role = OTHER
    if role == OTHER:
        return ToolRole(OTHER, target=name or None)
    if role == BASH:
        command = _first(data, _COMMAND_KEYS)
        if command is None and isinstance(tool_input, str):
            command = tool_input
        if isinstance(command, list):
            command = " ".join(str(c) for c in command)
        from otel_agent_trace.detectors.shell import classify_command  # local: shell imports ToolRole from here

        return classify_command(command if isinstance(command, str) else "")
    raw_path = _first(data, _PATH_KEYS)
    if raw_path is None and isinstance(tool_input, str) and role in (READ, EDIT, WRITE):
        raw_path = tool_input
    if raw_path is None and role == EDIT:
        match = _PATCH_PATH.search(str(_first(data, ("patch", "diff", "input")) or "")[:1024])
        raw_path = match.group(1) if match else None
    path = norm_path(raw_path)
    if role == SEARCH:
        pattern = _first(data, _PATTERN_KEYS)
        target = str(pattern) if pattern is not None else path
        return ToolRole(SEARCH, target=target, path=path)
    if role == READ:
        return ToolRole(READ, target=path, path=path, read_range=_range(data))
    key, revert = _edit_keys(data, role)
    return ToolRole(role, target=path, path=path, edit_key=key, revert_key=revert)


def _editor(data: Mapping[str, Any]) -> ToolRole:
    sub = data.get("command")
    path = norm_path(data.get("path"))
    if sub == "view":
        # Viewing a directory lists it: that is orientation, not a file read.
        if path in (".", "/") or (isinstance(data.get("path"), str) and data["path"].endswith("/")):
            return ToolRole(SEARCH, target=path, path=path)
        return ToolRole(READ, target=path, path=path, read_range=_range(data))
    if sub == "create":
        return ToolRole(WRITE, target=path, path=path, edit_key=_edit_keys(data, WRITE)[0])
    if sub == "undo_edit":
        return ToolRole(EDIT, target=path, path=path, undo=True)
    key, revert = _edit_keys(data, EDIT)
    return ToolRole(EDIT, target=path, path=path, edit_key=key, revert_key=revert)


def use_role(use: ToolUse) -> ToolRole:
    """The role of a response's ``tool_use`` block, classified once and kept on the block."""
    role = use.role
    if role is None or role[0] is not use.input:
        role = (use.input, classify_tool(use.name, use.input))
        use.role = role
    return role[1]


def call_info(call: ToolCall, use: ToolUse | None = None) -> CallInfo:
    """Role and error class of a recorded tool call, classified once and kept on the call (every detector
    of the session asks about it). ``use``: the ``tool_use`` block it answers, whose role is reused when
    the call ran with the same input. A call whose input or result was replaced is classified again."""
    kept = call.classified
    if kept is not None and kept[0] is call.input and kept[1] is call.result:
        return kept[2]  # type: ignore[no-any-return]
    role = use_role(use) if use is not None and use.input is call.input and use.name == call.name \
        else classify_tool(call.name, call.input)
    info = CallInfo(role, classify_error(call.result, call.is_error or None))
    call.classified = (call.input, call.result, info)
    return info
