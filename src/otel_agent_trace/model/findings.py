"""A Finding as a plain dict and back: the one form JSONL lines, ``findings --json`` and span events share.

    {"kind": "tool_loop", "severity": "warning", "turn": 7, "turns": [5, 6, 7], "message": "...",
     "tool_use_ids": ["toolu_..."], "evidence": {...}}

Reading is lenient (files are written by other versions and by hand): a missing or odd field gets a
default, and only an object without a ``kind`` is refused.
"""

from __future__ import annotations

from typing import Any

from otel_agent_trace.model.records import Finding, Severity

SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")
SEVERITY_ORDER = {severity: rank for rank, severity in enumerate(SEVERITIES)}


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    """``finding`` as a JSON-ready dict (``evidence`` may still hold values that need ``default=str``)."""
    return {
        "kind": finding.kind,
        "severity": finding.severity,
        "turn": finding.turn,
        "turns": list(finding.turns or [finding.turn]),
        "message": finding.message,
        "tool_use_ids": list(finding.tool_use_ids),
        "evidence": finding.evidence,
    }


def finding_from_dict(data: Any, session: str) -> Finding | None:
    """The Finding a dict describes, or None when it is not one (no string ``kind``)."""
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    severity = data.get("severity")
    listed, ids = data.get("turns"), data.get("tool_use_ids")  # a hand-written file may hold anything here
    listed = listed if isinstance(listed, list | tuple) else ()
    ids = ids if isinstance(ids, list | tuple) else ()
    turns = [t for t in listed if isinstance(t, int) and not isinstance(t, bool)]
    turn = data.get("turn") if isinstance(data.get("turn"), int) else (turns[-1] if turns else 0)
    return Finding(
        kind=data["kind"],
        severity=severity if severity in SEVERITY_ORDER else "warning",
        turn=turn,
        message=str(data.get("message", "")),
        session=session,
        turns=turns or [turn],
        tool_use_ids=[str(i) for i in ids if isinstance(i, str | int)],
        evidence=data.get("evidence") if isinstance(data.get("evidence"), dict) else {},
    )
