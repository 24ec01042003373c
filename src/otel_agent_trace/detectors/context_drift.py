"""context_drift: the model repeats work it already did — re-reads an unchanged file, re-applies an edit.

The content is still in the context window; the model just no longer attends to it (lost in the
middle). Only what is really the same work counts:

* a whole-file read of a file read whole before: a partial read (offset/limit, ``head -n``) asks for the
  slice the model needs now, which is how edit-verify cycles look;
* of the same file: a path with a placeholder in it (``[REDACTED_PATH]``, ``<file>``, a glob, an
  unexpanded ``$VAR``) names no file in particular;
* of a file only the agent changes: a log or a background command's output file (``*.log``,
  ``tasks/b1.output``) is written by a running process, and re-reading it polls its progress;
* unchanged since: re-reading after an edit, a failed edit (re-reading is the cure for a string that no
  longer matches), a command that rewrites files, or a sub-agent run is normal and never reported. A
  formatter given files (``ruff format src/app.py``) changes those files, not every file; a change is
  matched to reads by the file's last two path parts, so a relative and an absolute path name one file;
* still in context: after a compaction, or a drop of the context that shows the history was replaced,
  the earlier reads are gone.

What the re-read returned is the best evidence of whether the file changed. A whole-file read that
returns other content than the earlier one (another length or hash) shows a change nobody traced (the
user, an editor, a process) and is never drift. One that returns the same content shows that whatever ran
in between (a sub-agent, a command that may rewrite files) left this file alone, so it is drift after
all; the agent's own edits of the file still make a re-read normal. Claude Code answering a re-read with
"file unchanged since your last Read" instead of the content says so itself.

A file the model keeps re-reading is one finding, at the first re-read: the later ones are the same
diagnosis (its evidence counts the reads so far). Once the file changes, the count starts again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from otel_agent_trace.detectors._util import BoundedDict, history_shrunk
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.detectors.roles import BASH, CHANGE_ROLES, READ, call_info
from otel_agent_trace.model.records import Finding, ToolCall, Turn

_EDITS_PER_PATH = 16  # distinct successful edits remembered per file
_SUBAGENT_TOOLS = frozenset({"task", "agent"})  # a sub-agent may change any file
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]*\]|REDACTED|<[^/>]*>|[*?]|\$|\.\.\.|…")
# Claude Code's answer to a whole-file re-read of a file it knows is unchanged (instead of the content).
_UNCHANGED_STUB = "file unchanged since your last read"


_OUTPUT_SUFFIXES = (".log", ".out", ".output", ".err")
_OUTPUT_DIRS = ("/logs/", "/log/", "/tasks/", "\\tasks\\", "\\logs\\")


def _change_key(path: str) -> str:
    """A file's last two path parts: `claude_code_log/renderer.py` changed by a command in the project
    directory is the `/home/u/app/claude_code_log/renderer.py` the model reads. Two files sharing them count
    as one, which can only hide a re-read, never invent one."""
    parts = path.replace("\\", "/").rsplit("/", 2)
    return "/".join(parts[-2:])


_HASHED_CHARS = 65_536  # of each end of a result: comparing contents stays O(1) per read


def _ends(text: str) -> str:
    """What of a read's result is compared (with its length): all of it, or both ends of a long one."""
    return text if len(text) <= 2 * _HASHED_CHARS else text[:_HASHED_CHARS] + text[-_HASHED_CHARS:]


def _is_file_identity(path: str) -> bool:
    """Does this path name one real file? Not when part of it is a placeholder or a pattern."""
    return _PLACEHOLDER.search(path) is None


def _is_output(path: str) -> bool:
    """A log or a background command's output file: a running process changes it; re-reading polls it."""
    low = path.lower()
    return low.endswith(_OUTPUT_SUFFIXES) or ".log." in low or any(d in f"/{low}" for d in _OUTPUT_DIRS)


@dataclass(slots=True)
class _Read:
    first_turn: int
    last_turn: int
    tool_use_id: str
    content: tuple[int, int] | None  # length and hash of what the read returned; None when not known
    count: int = 1
    reported: bool = False  # drift on this content was reported: later re-reads are the same finding


class ContextDrift(Detector):
    """A path re-read ≥ ``drift_min_turns`` after its last read, unchanged in between; a re-applied edit."""

    kind = "context_drift"

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        cap = self.thresholds.max_tracked_targets
        self.min_turns = self.thresholds.drift_min_turns
        self._reads: BoundedDict[str, _Read] = BoundedDict(cap)  # whole-file reads by path
        self._changed: BoundedDict[str, int] = BoundedDict(cap)  # path → turn of its last change
        # path → edit key → (turn, tool_use id) of successful edits
        self._edits: BoundedDict[str, dict[int, tuple[int, str]]] = BoundedDict(cap)
        self._global_change = 0  # turn of the last command that may have rewritten any file
        self._prev_context = 0

    def observe_turn(self, turn: Turn) -> list[Finding]:
        context = turn.usage.context_tokens
        if turn.after_compaction or history_shrunk(self._prev_context, context):
            # The history was replaced or cut (a summary, a cleared conversation, a microcompaction): the
            # earlier reads may be gone, so re-reading afterwards is expected, not repeated work.
            self._reads.clear()
            self._edits.clear()
        if context:
            self._prev_context = context
        return []

    def observe_tool(self, call: ToolCall) -> list[Finding]:
        info = call_info(call)
        role, t = info.role, call.turn_index
        if role.role == READ and role.path and info.error is None:
            if role.read_range is None and _is_file_identity(role.path) and not _is_output(role.path):
                return self._read(call, role.path)
            return []
        if role.role in CHANGE_ROLES and role.path:
            return self._edit(call, role.path, role.edit_key, role.revert_key, role.undo, info.error is None)
        if call.name.lower() in _SUBAGENT_TOOLS:
            self._global_change = t
            return []
        if role.role == BASH and info.error is None:
            for path in role.changed_paths:
                self._changed.put(_change_key(path), t)
            if role.global_change:
                self._global_change = t
                self._edits.clear()
        return []

    def _read(self, call: ToolCall, path: str) -> list[Finding]:
        t = call.turn_index
        result = call.result
        stub = len(result) < 200 and _UNCHANGED_STUB in result.lower()
        content = (len(result), hash(_ends(result))) if result and not stub else None
        prev = self._reads.touch(path)
        if prev is None:
            self._reads.put(path, _Read(t, t, call.tool_use_id, content))
            return []
        gap = t - prev.last_turn
        findings: list[Finding] = []
        if (self._changed.get(_change_key(path)) or 0) >= prev.last_turn:
            unchanged = False  # the agent changed it: re-reading after an edit is normal
        elif stub:
            unchanged = True
        elif content is not None and prev.content is not None:
            unchanged = content == prev.content
        else:
            unchanged = self._global_change < prev.last_turn
        if not unchanged:
            prev.reported = False  # new content: a later re-read of it is a new question
        elif gap >= self.min_turns and not prev.reported:
            prev.reported = True
            first = prev.first_turn
            earlier = f"first read at turn {first}" + (
                f", last at turn {prev.last_turn}" if prev.last_turn != first else "")
            findings.append(Finding(
                kind=self.kind, severity="warning", turn=t,
                turns=sorted({first, prev.last_turn, t}), tool_use_ids=[prev.tool_use_id, call.tool_use_id],
                message=(f"read {path} again at turn {t}; {earlier} ({gap} turn{'s' * (gap != 1)} earlier), unchanged"
                         " since — the content is still in context but no longer used: consider a sub-agent"
                         " or a summary of the file"),
                evidence={"reason": "reread", "path": path, "first_read_turn": first,
                          "previous_read_turn": prev.last_turn, "gap_turns": gap, "reads": prev.count + 1},
            ))
        prev.last_turn, prev.tool_use_id, prev.count = t, call.tool_use_id, prev.count + 1
        if content is not None:
            prev.content = content
        return findings

    def _edit(self, call: ToolCall, path: str, key: int | None, revert: int | None, undo: bool,
              ok: bool) -> list[Finding]:
        t = call.turn_index
        done = self._edits.touch(path)
        findings: list[Finding] = []
        earlier = done.get(key) if done and key is not None else None
        if earlier is not None and earlier[0] < t:
            first_turn, first_id = earlier
            outcome = "succeeded again" if ok else "failed, as the text was already replaced"
            findings.append(Finding(
                kind=self.kind, severity="warning", turn=t, turns=[first_turn, t],
                tool_use_ids=[first_id, call.tool_use_id],
                message=(f"re-applied the same edit to {path} at turn {t} ({outcome}); first made at turn"
                         f" {first_turn} ({t - first_turn} turn{'s' * (t - first_turn != 1)} earlier) — the model lost"
                         " track of its own changes: a running summary of changes or a smaller sub-task helps"),
                evidence={"reason": "repeated_edit", "path": path, "first_edit_turn": first_turn,
                          "gap_turns": t - first_turn, "succeeded": ok},
            ))
        self._changed.put(_change_key(path), t)  # a failed edit too: re-reading the file is how the model recovers
        if not ok:
            return findings
        if undo:
            self._edits.pop(path)
            return findings
        if done is None:
            done = {}
            self._edits.put(path, done)
        if revert is not None and revert in done:
            del done[revert]  # the earlier edit was undone: making it again later is legitimate
        elif key is not None and key not in done:
            if len(done) >= _EDITS_PER_PATH:
                del done[next(iter(done))]
            done[key] = (t, call.tool_use_id)
        return findings

    def tracked(self) -> int:
        return len(self._reads) + len(self._changed) + len(self._edits)
