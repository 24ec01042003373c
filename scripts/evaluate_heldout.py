#!/usr/bin/env python3
"""Score the detectors against the held-out labelled sessions in tests/fixtures/heldout/.

The held-out set was written from the failure descriptions only (seed article, DESIGN §6, README
"Findings"), not from the detectors' code or their own fixtures; see tests/fixtures/heldout/README.md.

For every file: load it with ``otel_agent_trace.files.importers.load``, run ``analyze_session`` on the main
session (sub-agents skipped), and match findings to the labels of labels.json: same kind, turn within
±1, one finding per label (closest turn first). Unmatched findings are false positives (a second
finding for an already matched label is still a false positive, tagged "duplicate"); unmatched labels
are false negatives. Prints a markdown table per kind plus every FP and FN, and exits 0.

    python scripts/evaluate_heldout.py [DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from otel_agent_trace.detectors import KINDS, analyze_session
    from otel_agent_trace.files.importers import LineError, load
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from otel_agent_trace.detectors import KINDS, analyze_session
    from otel_agent_trace.files.importers import LineError, load

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "heldout"
TOLERANCE = 1  # turns


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


@dataclass
class Result:
    scores: dict[str, Score] = field(default_factory=dict)
    false_positives: list[dict[str, Any]] = field(default_factory=list)
    false_negatives: list[dict[str, Any]] = field(default_factory=list)
    true_positives: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    load_errors: list[str] = field(default_factory=list)

    @property
    def overall(self) -> Score:
        total = Score()
        for s in self.scores.values():
            total.tp += s.tp
            total.fp += s.fp
            total.fn += s.fn
        return total


def _findings_of(path: Path, errors: list[str]) -> list[Any]:
    mains = []
    for item in load(path):
        if isinstance(item, LineError):
            errors.append(str(item))
        elif item.parent_id is None:
            mains.append(item)
    findings: list[Any] = []
    for session in mains:
        findings.extend(analyze_session(session))
    return findings


def evaluate(directory: Path = DEFAULT_DIR) -> Result:
    labels: dict[str, Any] = json.loads((directory / "labels.json").read_text(encoding="utf-8"))
    result = Result(scores={kind: Score() for kind in KINDS})
    for name in sorted(labels):
        path = directory / name
        result.files += 1
        findings = _findings_of(path, result.load_errors)
        expected = [dict(e) for e in labels[name]["expected"]]
        for e in expected:
            result.scores.setdefault(e["kind"], Score())
        for f in findings:
            result.scores.setdefault(f.kind, Score())
        # Closest pairs first, so a finding at the exact turn wins over one a turn away.
        pairs = sorted(((abs(f.turn - e["turn"]), fi, ei) for fi, f in enumerate(findings)
                        for ei, e in enumerate(expected)
                        if f.kind == e["kind"] and abs(f.turn - e["turn"]) <= TOLERANCE))
        used_f: set[int] = set()
        used_e: set[int] = set()
        for _, fi, ei in pairs:
            if fi in used_f or ei in used_e:
                continue
            used_f.add(fi)
            used_e.add(ei)
            f = findings[fi]
            result.scores[f.kind].tp += 1
            result.true_positives.append({"file": name, "kind": f.kind, "turn": f.turn,
                                          "label_turn": expected[ei]["turn"], "message": f.message})
        for fi, f in enumerate(findings):
            if fi in used_f:
                continue
            result.scores[f.kind].fp += 1
            duplicate = any(abs(f.turn - expected[ei]["turn"]) <= TOLERANCE and expected[ei]["kind"] == f.kind
                            for ei in used_e)
            result.false_positives.append({"file": name, "kind": f.kind, "turn": f.turn, "turns": list(f.turns),
                                           "severity": str(f.severity), "message": f.message,
                                           "duplicate": duplicate})
        for ei, e in enumerate(expected):
            if ei in used_e:
                continue
            result.scores[e["kind"]].fn += 1
            same_kind = sorted(f.turn for f in findings if f.kind == e["kind"])
            result.false_negatives.append({"file": name, "kind": e["kind"], "turn": e["turn"],
                                           "same_kind_findings_at": same_kind, "note": labels[name]["note"]})
    return result


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def render(result: Result) -> str:
    out = [f"Held-out evaluation: {result.files} sessions, match = same kind and turn ±{TOLERANCE}", "",
           "| kind | TP | FP | FN | precision | recall |", "|---|---:|---:|---:|---:|---:|"]
    for kind, s in result.scores.items():
        out.append(f"| `{kind}` | {s.tp} | {s.fp} | {s.fn} | {_pct(s.precision)} | {_pct(s.recall)} |")
    o = result.overall
    out.append(f"| **all** | {o.tp} | {o.fp} | {o.fn} | {_pct(o.precision)} | {_pct(o.recall)} |")
    out += ["", f"### False positives ({len(result.false_positives)})", ""]
    for fp in result.false_positives:
        dup = " (duplicate of a matched label)" if fp["duplicate"] else ""
        out.append(f"- `{fp['file']}` turn {fp['turn']} `{fp['kind']}`{dup}: {fp['message']}")
    out += ["", f"### False negatives ({len(result.false_negatives)})", ""]
    for fn in result.false_negatives:
        near = (f" (same-kind findings at turns {fn['same_kind_findings_at']})" if fn["same_kind_findings_at"]
                else " (no finding of this kind in the file)")
        out.append(f"- `{fn['file']}` turn {fn['turn']} `{fn['kind']}`{near} — label note: {fn['note']}")
    if result.load_errors:
        out += ["", "### Lines skipped while loading", ""] + [f"- {e}" for e in result.load_errors]
    return "\n".join(out) + "\n"


def as_json(result: Result) -> dict[str, Any]:
    return {"scores": {k: {"tp": s.tp, "fp": s.fp, "fn": s.fn, "precision": s.precision, "recall": s.recall}
                       for k, s in result.scores.items()},
            "overall": {"tp": result.overall.tp, "fp": result.overall.fp, "fn": result.overall.fn,
                        "precision": result.overall.precision, "recall": result.overall.recall},
            "false_positives": result.false_positives, "false_negatives": result.false_negatives,
            "true_positives": result.true_positives, "load_errors": result.load_errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    result = evaluate(args.directory)
    if args.json:
        print(json.dumps(as_json(result), indent=2))
    else:
        print(render(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
