#!/usr/bin/env python3
"""How far two independent labellings of the same sessions agree, with the scores' own matcher.

A second labelling (``labels_<part>_second.json`` next to labels.json, same schema) is compared with the
first (the part's entries in labels.json), both ways, as if one labeller's labels were findings scored
against the other's: of one side's non-borderline labels, how many match a label of the other (any tier),
and how many of the other's unambiguous and unambiguous + caveat labels it has. Matching is
evaluate_real_corpus.py's: same kind and turn ±1, or the same run for tool_loop and tool_avalanche.

The numbers say how repeatable the labels are, so how much a detector's precision against one labeller
can be expected to mean; they are not detector scores.

    python scripts/labeller_agreement.py tests/fixtures/real_claude_code/labels_holdout10_second.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_LABELS = HERE.parent / "tests" / "fixtures" / "real_claude_code" / "labels.json"


def _evaluation() -> Any:
    spec = importlib.util.spec_from_file_location("evaluate_real_corpus", HERE / "evaluate_real_corpus.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


_EV = _evaluation()


@dataclass
class Agreement:
    claims: int = 0  # one side's non-borderline labels
    matched: int = 0  # of those, matching a label of the other side, any tier
    reference_u: int = 0  # the other side's unambiguous labels
    found_u: int = 0
    reference_uc: int = 0  # the other side's unambiguous + caveat labels
    found_uc: int = 0

    def add(self, other: Agreement) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def agreement(side: Mapping[str, list[dict[str, Any]]], reference: Mapping[str, list[dict[str, Any]]]
              ) -> dict[str, Agreement]:
    """``side``'s labels scored against ``reference``'s, per kind; both map a session path to its labels."""
    out: dict[str, Agreement] = {}
    for path in side.keys() & reference.keys():
        theirs = [_EV.label_key(lab) for lab in reference[path]]
        every = [_EV.label_as_found(lab) for lab in side[path]]
        for found in every:
            if found.severity == "borderline":  # a borderline label claims nothing
                continue
            a = out.setdefault(found.kind, Agreement())
            a.claims += 1
            a.matched += any(_EV.matches(found, kind, turn, span) for kind, turn, span in theirs)
        for lab in reference[path]:
            if lab["confidence"] == "borderline":
                continue
            a = out.setdefault(lab["kind"], Agreement())
            kind, turn, span = _EV.label_key(lab)
            hit = any(_EV.matches(found, kind, turn, span) for found in every)  # at any tier, as a finding
            a.reference_uc += 1
            a.found_uc += hit
            if lab["confidence"] == "unambiguous":
                a.reference_u += 1
                a.found_u += hit
    return out


def unmatched(side: Mapping[str, list[dict[str, Any]]], reference: Mapping[str, list[dict[str, Any]]]
              ) -> list[str]:
    """``side``'s non-borderline labels that match no label of ``reference``: "path kind@turn"."""
    missing = []
    for path, labels in side.items():
        theirs = reference.get(path, [])
        for lab in labels:
            if lab["confidence"] != "borderline" and not _EV.label_matched(lab, theirs):
                missing.append(f"{path} {lab['kind']}@{lab['turn']}")
    return missing


def load_pair(second_path: Path, labels_path: Path = DEFAULT_LABELS
              ) -> tuple[str, dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """(part, first labelling, second labelling), each as session path → labels."""
    second = {s["path"]: s["labels"] for s in json.loads(second_path.read_text(encoding="utf-8"))["sessions"]}
    entries = [s for s in json.loads(labels_path.read_text(encoding="utf-8"))["sessions"] if s["path"] in second]
    parts = {s["split"] for s in entries}
    if len(parts) != 1 or len(entries) != len(second):
        raise SystemExit(f"{second_path.name}: its sessions must be exactly one part of labels.json"
                         f" (found parts {sorted(parts)}, {len(entries)} of {len(second)} sessions)")
    return parts.pop(), {s["path"]: s["labels"] for s in entries}, second


def _cell(a: int, b: int) -> str:
    return f"{a / b:.2f} ({a}/{b})" if b else "—"


def render(part: str, first: Mapping[str, list[dict[str, Any]]], second: Mapping[str, list[dict[str, Any]]]) -> str:
    lines = [f"### `{part}`: {len(first)} sessions labelled twice", "",
             "| kind | second's labels matching the first | first's labels matching the second |"
             " first's u / u+c the second has | second's u / u+c the first has |",
             "|---|---:|---:|---:|---:|"]
    forward, backward = agreement(second, first), agreement(first, second)
    total_f, total_b = Agreement(), Agreement()
    rows = [(f"`{kind}`", forward.get(kind, Agreement()), backward.get(kind, Agreement()))
            for kind in sorted(forward.keys() | backward.keys())]
    for _, f, b in rows:
        total_f.add(f)
        total_b.add(b)
    for name, f, b in [*rows, ("**all**", total_f, total_b)]:
        lines.append(f"| {name} | {_cell(f.matched, f.claims)} | {_cell(b.matched, b.claims)} | "
                     f"{_cell(f.found_u, f.reference_u)} / {_cell(f.found_uc, f.reference_uc)} | "
                     f"{_cell(b.found_u, b.reference_u)} / {_cell(b.found_uc, b.reference_uc)} |")
    for name, side, other in (("second", second, first), ("first", first, second)):
        missing = unmatched(side, other)
        if missing:
            lines += ["", f"The {name} labelling's labels the other does not have:", *(f"- `{m}`" for m in missing)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("second", nargs="+", type=Path, help="labels_<part>_second.json files")
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="labels.json (the first labelling)")
    args = parser.parse_args(argv)
    for path in args.second:
        part, first, second = load_pair(path, args.labels)
        print(render(part, first, second))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
