"""Scoring shared by the evaluation scripts: one Score, one matcher, one number format.

A finding matches a label of the same kind reported within ``TOLERANCE`` turns. Pairs are taken closest
first (a finding at the exact turn wins over one a turn away), and each finding and each label is used
at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

TOLERANCE = 1  # turns


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[str] = field(default_factory=list)  # "fixture: kind@turn (false positive|missed)"

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn


def match(found: Sequence[tuple[str, int]], expected: Sequence[tuple[str, int]],
          tolerance: int = TOLERANCE) -> list[tuple[int, int]]:
    """(finding index, label index) pairs of the same kind within ``tolerance`` turns, closest first."""
    pairs = sorted((abs(f[1] - e[1]), fi, ei) for fi, f in enumerate(found) for ei, e in enumerate(expected)
                   if f[0] == e[0] and abs(f[1] - e[1]) <= tolerance)
    used_f: set[int] = set()
    used_e: set[int] = set()
    out: list[tuple[int, int]] = []
    for _, fi, ei in pairs:
        if fi in used_f or ei in used_e:
            continue
        used_f.add(fi)
        used_e.add(ei)
        out.append((fi, ei))
    return out


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"
