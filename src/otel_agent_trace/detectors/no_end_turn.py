"""no_end_turn: the session stopped without the model saying it was done.

A turn limit, a max_tokens cut or an error ends the trace mid-task; the last turns show what the
model was doing right before — the place to start reading backwards.
"""

from __future__ import annotations

from collections import deque

from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.model.records import Finding, Severity, ToolUse, Turn

_CLEAN_STOPS = frozenset({"end_turn", "stop_sequence"})
# The agent was cut off (turn limit, output limit, API error): the run's result is lost, an error. A
# trace that just stops (the user interrupted, the file ends on a tool call) may have been stopped on
# purpose: a warning.
_BAD_ENDS: dict[str, Severity] = {"turn_limit": "error", "max_tokens": "error", "error": "error"}
_RECENT = 3


class NoEndTurn(Detector):
    """At finish: the last stop_reason is not end_turn, or the end was a turn limit, max_tokens or error."""

    kind = "no_end_turn"

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        self._recent: deque[tuple[int, list[ToolUse]]] = deque(maxlen=_RECENT)  # (turn, its tool_uses)
        self._failed: Turn | None = None  # the call after the last turn, when it failed

    def observe_turn(self, turn: Turn) -> list[Finding]:
        self._recent.append((turn.index, turn.tool_uses))  # names are only needed at the end
        self._failed = None  # the conversation went on: an earlier failure was retried
        return []

    def observe_failed_attempt(self, turn: Turn) -> None:
        self._failed = turn

    def finish(self, last_turn: Turn | None, end_reason: str | None) -> list[Finding]:
        if last_turn is None:
            # No turn: nothing ran, or the only call failed, which its error span and the session's status
            # already say. There are no last turns to read backwards from.
            return []
        failed = self._failed
        stop = last_turn.stop_reason
        bad_end = _BAD_ENDS.get(end_reason or "")
        if bad_end is None and (stop is None or stop in _CLEAN_STOPS):
            return []
        severity: Severity = bad_end or ("error" if stop == "max_tokens" else "warning")
        t = last_turn.index
        if end_reason == "turn_limit":
            what = f"hit the turn limit at turn {t} without end_turn"
        elif end_reason == "max_tokens" or stop == "max_tokens":
            what = f"ran out of output tokens (max_tokens) at turn {t}"
        elif end_reason == "error":
            error_type = failed.error_type if failed is not None else last_turn.error_type
            what = f"ended with an error after turn {t}" if failed is not None else f"ended with an error at turn {t}"
            if error_type:
                what += f" ({error_type})"
        else:
            what = f"ended at turn {t} with stop_reason={stop} instead of end_turn"
        recent = [f"{i}: {', '.join(use.name for use in uses) or 'text'}" for i, uses in self._recent]
        return [Finding(
            kind=self.kind, severity=severity, turn=t, turns=[i for i, _ in self._recent] or [t],
            tool_use_ids=[use.id for use in last_turn.tool_uses],
            message=(f"session {what} — work backwards from the last turns ({'; '.join(recent)}): what was"
                     " the model stuck on, and was its last tool result complete?"),
            evidence={"stop_reason": stop, "end_reason": end_reason, "last_turn": t,
                      "last_tools": list(last_turn.tool_names),
                      "error_type": failed.error_type if failed is not None else last_turn.error_type},
        )]

    def tracked(self) -> int:
        return len(self._recent)
