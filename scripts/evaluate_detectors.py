"""Precision / recall of the detectors on the labelled fixture sessions.

    python scripts/evaluate_detectors.py [--dir tests/fixtures/labelled] [--verbose]

Each fixture is a session in the dict form of ``otel_agent_trace.testing.scenario`` plus
``"expected": [{"kind": ..., "turn": N}]``. A finding matches an expected one of the same kind reported
within ±1 turn (each expected finding matches at most once). Prints a markdown table; exits non-zero
only when something crashes, so it can run in CI as a report.
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
    from otel_agent_trace.testing.scenario import session_from_dict
except ImportError:  # run from a checkout without installing: use the src layout next to this script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from otel_agent_trace.detectors import KINDS, analyze_session
    from otel_agent_trace.testing.scenario import session_from_dict

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "labelled"
TOLERANCE = 1  # turns


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[str] = field(default_factory=list)  # "fixture: kind@turn (fp|fn)"

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def load_fixtures(directory: Path = DEFAULT_DIR) -> list[tuple[str, dict[str, Any]]]:
    return [(path.stem, json.loads(path.read_text())) for path in sorted(directory.glob("*.json"))]


def evaluate(fixtures: list[tuple[str, dict[str, Any]]]) -> dict[str, Score]:
    """Per-kind scores over all fixtures."""
    scores = {kind: Score() for kind in KINDS}
    for name, data in fixtures:
        found = [(f.kind, f.turn) for f in analyze_session(session_from_dict(data, name))]
        expected = [(e["kind"], int(e["turn"])) for e in data.get("expected", [])]
        unmatched = list(expected)
        for kind, turn in found:
            score = scores.setdefault(kind, Score())
            hit = next((e for e in unmatched if e[0] == kind and abs(e[1] - turn) <= TOLERANCE), None)
            if hit is None:
                score.fp += 1
                score.misses.append(f"{name}: {kind}@{turn} (false positive)")
            else:
                unmatched.remove(hit)
                score.tp += 1
        for kind, turn in unmatched:
            score = scores.setdefault(kind, Score())
            score.fn += 1
            score.misses.append(f"{name}: {kind}@{turn} (missed)")
    return scores


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def markdown_table(scores: dict[str, Score]) -> str:
    rows = ["| kind | TP | FP | FN | precision | recall |", "|---|---:|---:|---:|---:|---:|"]
    for kind, s in scores.items():
        rows.append(f"| {kind} | {s.tp} | {s.fp} | {s.fn} | {_pct(s.precision)} | {_pct(s.recall)} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="directory of labelled *.json sessions")
    parser.add_argument("--verbose", action="store_true", help="list every false positive and miss")
    args = parser.parse_args(argv)
    fixtures = load_fixtures(args.dir)
    scores = evaluate(fixtures)
    print(f"{len(fixtures)} labelled sessions, match = same kind within ±{TOLERANCE} turn\n")
    print(markdown_table(scores))
    if args.verbose:
        for s in scores.values():
            for miss in s.misses:
                print(f"- {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
