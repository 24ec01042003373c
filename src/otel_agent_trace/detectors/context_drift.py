"""context_drift: the model repeats work it already did — re-reads an unchanged file, re-applies an edit.

The content is still in the context window; the model just no longer attends to it (lost in the
middle). Re-reading after an edit is normal and never reported: the file changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_agent_trace.detectors._util import BoundedDict
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.detectors.roles import BASH, CHANGE_ROLES, READ, call_info
from otel_agent_trace.model.records import Finding, ToolCall, Turn

_EDITS_PER_PATH = 16  # distinct successful edits remembered per file


@dataclass(slots=True)
class _Read:
    first_turn: int
    last_turn: int
    tool_use_id: str
    count: int = 1


class ContextDrift(Detector):
    """A path re-read ≥ ``drift_min_turns`` after its last read, unchanged in between; a re-applied edit."""

    kind = "context_drift"

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        cap = self.thresholds.max_tracked_targets
        self.min_turns = self.thresholds.drift_min_turns
        self._reads: BoundedDict[tuple[str, str | None], _Read] = BoundedDict(cap)
        self._changed: BoundedDict[str, int] = BoundedDict(cap)  # path → turn of its last change
        # path → edit key → (turn, tool_use id) of successful edits
        self._edits: BoundedDict[str, dict[int, tuple[int, str]]] = BoundedDict(cap)
        self._global_change = 0  # turn of the last command that may have rewritten any file

    def observe_turn(self, turn: Turn) -> list[Finding]:
        if turn.after_compaction:
            # Compaction replaced the history with a summary: re-reading afterwards is expected.
            self._reads.clear()
            self._edits.clear()
        return []

    def observe_tool(self, call: ToolCall) -> list[Finding]:
        info = call_info(call)
        role, t = info.role, call.turn_index
        if role.role == READ and role.path and info.error is None:
            return self._read(call, role.path, role.read_range)
        if role.role in CHANGE_ROLES and role.path:
            return self._edit(call, role.path, role.edit_key, role.revert_key, role.undo, info.error is None)
        if role.role == BASH and info.error is None:
            for path in role.changed_paths:
                self._changed.put(path, t)
            if role.global_change:
                self._global_change = t
                self._edits.clear()
        return []

    def _read(self, call: ToolCall, path: str, read_range: str | None) -> list[Finding]:
        t = call.turn_index
        key = (path, read_range)
        prev = self._reads.touch(key)
        if prev is None:
            self._reads.put(key, _Read(t, t, call.tool_use_id))
            return []
        last_change = max(self._changed.get(path) or 0, self._global_change)
        gap = t - prev.last_turn
        findings: list[Finding] = []
        if gap >= self.min_turns and last_change < prev.last_turn:
            first = prev.first_turn
            earlier = f"first read at turn {first}" + (
                f", last at turn {prev.last_turn}" if prev.last_turn != first else "")
            part = f" ({read_range})" if read_range else ""
            findings.append(Finding(
                kind=self.kind, severity="warning", turn=t,
                turns=sorted({first, prev.last_turn, t}), tool_use_ids=[prev.tool_use_id, call.tool_use_id],
                message=(f"read {path}{part} again at turn {t}; {earlier} ({gap} turns earlier), unchanged"
                         " since — the content is still in context but no longer used: consider a sub-agent"
                         " or a summary of the file"),
                evidence={"reason": "reread", "path": path, "range": read_range, "first_read_turn": first,
                          "previous_read_turn": prev.last_turn, "gap_turns": gap, "reads": prev.count + 1},
            ))
        prev.last_turn, prev.tool_use_id, prev.count = t, call.tool_use_id, prev.count + 1
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
                         f" {first_turn} ({t - first_turn} turns earlier) — the model lost track of its own"
                         " changes: a running summary of changes or a smaller sub-task helps"),
                evidence={"reason": "repeated_edit", "path": path, "first_edit_turn": first_turn,
                          "gap_turns": t - first_turn, "succeeded": ok},
            ))
        if not ok:
            return findings
        self._changed.put(path, t)
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
