#!/usr/bin/env python3
"""Score the detectors on the real Claude Code corpus in tests/fixtures/real_claude_code/.

Every session listed in its labels.json is scored, whatever its split or origin (tune, holdout, or a
part added later with the same schema). Each file is loaded with the project's own Claude Code importer
(``otel_agent_trace.files.importers.load``; only the conversations of that file: sub-agent files are corpus
entries of their own), every conversation in it (main and inline sidechains) is analysed, and findings
are matched to labels on kind and turn (±1). The two kinds whose labels name a run of turns
(``tool_loop``: first to last attempt; ``tool_avalanche``: the run; LABELS.md's ``span``) also match a
finding about the same run: one whose own turns (``Finding.turns``) overlap the label's span (±1). Their
label turn is the third attempt or the eighth call, which a detector that counts parallel calls as one
step, or that starts the run after a large read, places a few turns away while naming the same run.
Until 2026-12-03 every kind matched on turn ±1 only; README gives the parts' arrival numbers both ways,
each re-scored with the detector code of its arrival commit.

Turn numbers: the labels count the N-th distinct ``message.id`` of the file, in file order, across all
conversations (scripts/count_claude_code_turns.py). The importer numbers turns per conversation, so an
inline sidechain restarts at 1. A finding's turn is mapped to the file's numbering through the turn's
``response_id`` (its ``message.id``); the script checks, per file, that both sides see the same calls
and reports any file where they do not.

Scores, per kind and per part, with the confidence tiers of LABELS.md:

* recall on unambiguous labels, and on unambiguous + caveat labels (a label is found when a finding of
  its kind is within ±1 turn, or about the same run); borderline labels are reported but never count as
  misses;
* precision: a finding that matches any label of its kind (borderline included) is correct, one
  matching nothing is a false positive;
* findings on clean sessions (sessions with no label at all), which should be none.

    python scripts/evaluate_real_corpus.py [--labels PATH] [--details PART …] [--json] [--second-labellings]

``--second-labellings`` also scores each part that was labelled a second time, independently
(``labels_<part>_second.json``, LABELS.md "Second labellings"), against that labelling and against either
labelling: the first's labels plus the second's that the first does not have, so a finding is correct
when either labeller saw the failure. The first labelling stays the reference; these are a check on how
much of a part's precision is one labeller's reading.

Parts: ``tune``, ``holdout2`` to ``holdout8``, ``holdout10`` and (since 2026-12-03) ``holdout11`` and
``holdout13`` are tuning data; ``holdout``, ``holdout9``, ``holdout12``, ``holdout14`` and ``holdout15`` are
held out (see the corpus's LABELS.md), and are also scored together as "held out, together": the honest
number. ``--details tune holdout2 … holdout8 holdout10 holdout11 holdout13`` lists the false positives and
misses of the tuning parts; it refuses a held-out part: whoever tunes the rules must not read the held-out
parts' misses, only their aggregate and per-kind rows. A fresh collection is scored on arrival, before
anyone reads its details:
that is the honest number for the rules it met; only then may it join the tuning data.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared scoring module next to this script
from _scoring import TOLERANCE, pct

try:
    from otel_agent_trace.detectors import KINDS, analyze_session
    from otel_agent_trace.files.importers import LineError, load
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from otel_agent_trace.detectors import KINDS, analyze_session
    from otel_agent_trace.files.importers import LineError, load

DEFAULT_LABELS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real_claude_code" / "labels.json"
# The parts the rules were never tuned on; their misses and false alarms are not to be read (--details).
HELD_OUT = ("holdout", "holdout9", "holdout12", "holdout14", "holdout15")
TIERS = ("unambiguous", "caveat", "borderline")


def _turn_counter() -> Any:
    """The labels' own reference numbering (a standalone script that does not import the package)."""
    path = Path(__file__).resolve().parent / "count_claude_code_turns.py"
    spec = importlib.util.spec_from_file_location("count_claude_code_turns", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_COUNTER = _turn_counter()


@dataclass
class KindScore:
    labels: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    findings: int = 0
    correct: int = 0  # findings that match a label of their kind, any tier
    clean_findings: int = 0  # findings on sessions with no label at all

    def recall(self, *tiers: str) -> float | None:
        total = sum(self.labels[t] for t in tiers)
        return sum(self.found[t] for t in tiers) / total if total else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.findings if self.findings else None

    def add(self, other: KindScore) -> None:
        for t in TIERS:
            self.labels[t] += other.labels[t]
            self.found[t] += other.found[t]
        self.findings += other.findings
        self.correct += other.correct
        self.clean_findings += other.clean_findings


@dataclass
class Part:
    name: str
    sessions: int = 0
    turns: int = 0
    clean_sessions: int = 0
    scores: dict[str, KindScore] = field(default_factory=lambda: {k: KindScore() for k in KINDS})
    false_positives: list[dict[str, Any]] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)
    clean_findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def overall(self) -> KindScore:
        total = KindScore()
        for s in self.scores.values():
            total.add(s)
        return total


@dataclass
class Result:
    parts: dict[str, Part] = field(default_factory=dict)
    held_out: Part = field(default_factory=lambda: Part("held out, together (" + ", ".join(HELD_OUT) + ")"))
    numbering_mismatches: list[str] = field(default_factory=list)
    load_errors: list[str] = field(default_factory=list)


@dataclass
class Found:
    kind: str
    turn: int  # in the labels' file-wide numbering
    severity: str
    message: str
    conversation: str
    first: int = 0  # the earliest and latest turn the finding names (its run), same numbering
    last: int = 0


# Kinds whose label is a run of turns (LABELS.md: ``span`` = first to last attempt, or the run): a
# finding about the same run is the same failure even when its reported turn is not the label's.
RUN_KINDS = frozenset({"tool_loop", "tool_avalanche"})


def matches(f: Found, kind: str, turn: int, span: tuple[int, int] | None) -> bool:
    """Same kind, and the same turn (±1) or, for a run kind, overlapping runs (±1)."""
    if f.kind != kind:
        return False
    if abs(f.turn - turn) <= TOLERANCE:
        return True
    return (kind in RUN_KINDS and span is not None
            and f.first - TOLERANCE <= span[1] and span[0] <= f.last + TOLERANCE)


def findings_of(path: Path, result: Result) -> list[Found]:
    """Every finding of every conversation in one file, at the labels' turn numbers."""
    ids = [message_id for message_id, _ in _COUNTER.turn_ids(path)]
    file_turn = {message_id: n for n, message_id in enumerate(ids, start=1)}
    seen: set[str] = set()
    out: list[Found] = []
    for item in load(path):
        if isinstance(item, LineError):
            result.load_errors.append(str(item))
            continue
        if item.source != str(path):
            continue  # a sub-agent file found next to this one: it is scored as its own corpus entry
        by_index = {t.index: t.response_id for t in item.turns}
        seen.update(r for r in by_index.values() if r)
        for f in analyze_session(item):
            response_id = by_index.get(f.turn)
            turn = file_turn.get(response_id or "")
            if turn is None:
                result.numbering_mismatches.append(f"{path.name}: {f.kind} at importer turn {f.turn} of"
                                                   f" {item.id} has no message id in the file's numbering")
                continue
            run = [n for n in (file_turn.get(by_index.get(t) or "") for t in f.turns) if n is not None]
            out.append(Found(f.kind, turn, str(f.severity), f.message, item.id,
                             min(run, default=turn), max(run, default=turn)))
    if seen != set(ids):
        result.numbering_mismatches.append(
            f"{path.name}: importer turns {len(seen)}, label turns {len(ids)},"
            f" {len(seen ^ set(ids))} message ids on one side only")
    return out


def evaluate(labels_path: Path = DEFAULT_LABELS, second_labellings: bool = False) -> Result:
    """Every part of labels.json; with ``second_labellings`` also each part labelled a second time
    (``labels_<part>_second.json`` next to it), against that labelling and against either labelling."""
    data = json.loads(labels_path.read_text(encoding="utf-8"))
    root = labels_path.parent
    result = Result()
    found: dict[str, list[Found]] = {}
    for entry in data["sessions"]:
        found[entry["path"]] = findings_of(root / entry["path"], result)
        _score_entry(result, entry["split"], entry, found[entry["path"]])
    for name in HELD_OUT:
        if name in result.parts:
            _merge_counts(result.held_out, result.parts[name])
    if second_labellings:
        first = {entry["path"]: entry for entry in data["sessions"]}
        for second_path in sorted(root.glob("labels_*_second.json")):
            for entry in json.loads(second_path.read_text(encoding="utf-8"))["sessions"]:
                part = first[entry["path"]]["split"]
                path_found = found[entry["path"]]
                _score_entry(result, f"{part}, second labelling", entry, path_found)
                theirs = first[entry["path"]]["labels"]
                extra = [lab for lab in entry["labels"] if not label_matched(lab, theirs)]
                either = {**entry, "labels": theirs + extra}
                _score_entry(result, f"{part}, either labelling", either, path_found)
    return result


def label_key(label: dict[str, Any]) -> tuple[str, int, tuple[int, int] | None]:
    """(kind, turn, span or None): what a label is matched on."""
    span = label.get("span")
    return label["kind"], int(label["turn"]), (int(span[0]), int(span[-1])) if span else None


def label_as_found(label: dict[str, Any]) -> Found:
    """A label in a finding's shape, to match it against another labelling's labels."""
    kind, turn, span = label_key(label)
    first, last = span or (turn, turn)
    return Found(kind, turn, str(label["confidence"]), "", "", first, last)


def label_matched(label: dict[str, Any], others: Iterable[dict[str, Any]]) -> bool:
    """Whether another labelling has this label: one of ``others`` matches it as a finding would."""
    found = label_as_found(label)
    return any(matches(found, *label_key(other)) for other in others)


def _score_entry(result: Result, name: str, entry: dict[str, Any], found: list[Found]) -> None:
    part = result.parts.setdefault(name, Part(name))
    part.sessions += 1
    part.turns += int(entry.get("turns", 0))
    clean = not entry["labels"]
    part.clean_sessions += clean
    _score_session(entry, found, part, clean)


def _score_session(entry: dict[str, Any], found: list[Found], part: Part, clean: bool) -> None:
    labels = [(kind, turn, lab["confidence"], span) for lab in entry["labels"] for kind, turn, span in [label_key(lab)]]
    for f in found:
        s = part.scores.setdefault(f.kind, KindScore())
        s.findings += 1
        record = {"file": entry["path"], "kind": f.kind, "turn": f.turn, "severity": f.severity,
                  "message": f.message}
        if any(matches(f, kind, turn, span) for kind, turn, _, span in labels):
            s.correct += 1
        else:
            part.false_positives.append(record)
        if clean:
            s.clean_findings += 1
            part.clean_findings.append(record)
    for kind, turn, tier, span in labels:
        s = part.scores.setdefault(kind, KindScore())
        s.labels[tier] += 1
        if any(matches(f, kind, turn, span) for f in found):
            s.found[tier] += 1
        elif tier != "borderline":
            part.missed.append({"file": entry["path"], "kind": kind, "turn": turn, "confidence": tier})


def _merge_counts(into: Part, part: Part) -> None:
    """Add ``part``'s counts, not its lists of false positives and misses, to ``into``."""
    into.sessions += part.sessions
    into.turns += part.turns
    into.clean_sessions += part.clean_sessions
    for kind, score in part.scores.items():
        into.scores[kind].add(score)


def _tier_cell(s: KindScore, tier: str) -> str:
    return f"{s.found[tier]}/{s.labels[tier]}" if s.labels[tier] else "—"


def render_part(part: Part, verbose: bool = False) -> str:
    out = [f"### {part.name}: {part.sessions} sessions, {part.turns} turns, {part.clean_sessions} clean", "",
           "| kind | found u | found c | found b | recall u | recall u+c | findings | precision |"
           " on clean |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows: Iterable[tuple[str, KindScore]] = [*part.scores.items(), ("**all**", part.overall)]
    for kind, s in rows:
        name = kind if kind.startswith("*") else f"`{kind}`"
        out.append(f"| {name} | {_tier_cell(s, 'unambiguous')} | {_tier_cell(s, 'caveat')} |"
                   f" {_tier_cell(s, 'borderline')} | {pct(s.recall('unambiguous'))} |"
                   f" {pct(s.recall('unambiguous', 'caveat'))} | {s.findings} | {pct(s.precision)} |"
                   f" {s.clean_findings} |")
    if verbose:
        out += ["", f"False positives ({len(part.false_positives)}):"]
        out += [f"- `{x['file']}` turn {x['turn']} `{x['kind']}` ({x['severity']}): {x['message']}"
                for x in part.false_positives]
        out += ["", f"Missed unambiguous/caveat labels ({len(part.missed)}):"]
        out += [f"- `{x['file']}` turn {x['turn']} `{x['kind']}` ({x['confidence']})" for x in part.missed]
    return "\n".join(out)


def render(result: Result, details: Iterable[str] = ()) -> str:
    out = [f"Real Claude Code corpus, match = same kind and turn ±{TOLERANCE} (tool_loop, tool_avalanche: or"
           f" the same run ±{TOLERANCE}); u = unambiguous, c = caveat, b = borderline (never a miss)", ""]
    if result.held_out.sessions:
        out += [render_part(result.held_out), ""]
    for name in sorted(result.parts, key=lambda n: (n != "tune", n)):
        out += [render_part(result.parts[name], name in details), ""]
    if result.numbering_mismatches:
        out += ["Turn numbering disagreements:"] + [f"- {m}" for m in result.numbering_mismatches] + [""]
    if result.load_errors:
        out += [f"Lines skipped while loading: {len(result.load_errors)}", ""]
    return "\n".join(out)


def as_json(result: Result) -> dict[str, Any]:
    def score(s: KindScore) -> dict[str, Any]:
        return {"labels": s.labels, "found": s.found, "findings": s.findings, "correct": s.correct,
                "recall_unambiguous": s.recall("unambiguous"),
                "recall_with_caveat": s.recall("unambiguous", "caveat"), "precision": s.precision,
                "clean_findings": s.clean_findings}

    def counts(p: Part) -> dict[str, Any]:
        return {"sessions": p.sessions, "turns": p.turns, "clean_sessions": p.clean_sessions,
                "scores": {k: score(s) for k, s in p.scores.items()}, "overall": score(p.overall)}

    return {"held_out": counts(result.held_out),
            "parts": {name: {**counts(p), "false_positives": p.false_positives, "missed": p.missed}
                      for name, p in result.parts.items()},
            "numbering_mismatches": result.numbering_mismatches, "load_errors": len(result.load_errors)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="labels.json of the corpus")
    parser.add_argument("--details", nargs="*", default=[], metavar="PART",
                        help="list the false positives and misses of these parts (tuning parts only:"
                             " tune, holdout2 … holdout8, holdout10, holdout11, holdout13)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--second-labellings", action="store_true",
                        help="also score each part labelled twice against its second labelling, and against"
                             " either labelling (a finding is correct when it matches a label of either)")
    args = parser.parse_args(argv)
    if held := sorted(set(args.details) & set(HELD_OUT)):
        parser.error(f"--details {' '.join(held)}: held out; only its scores may be read, not its misses")
    result = evaluate(args.labels, args.second_labellings)
    if args.json:
        print(json.dumps(as_json(result), indent=2))
    else:
        print(render(result, args.details), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
