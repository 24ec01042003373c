"""The real Claude Code corpus: the scores may not fall below what the rules reached.

The floors are the numbers measured when the rules were last changed, set slightly below them; raise them
when a change improves a part, never lower them to let a change in. The labels are frozen and were
written without the detector code (tests/fixtures/real_claude_code). ``holdout``, ``holdout9``,
``holdout12``, ``holdout14`` and ``holdout15`` are held out; ``tune``, ``holdout2`` to ``holdout8``, ``holdout10`` and
(since 2026-12-03) ``holdout11`` and ``holdout13`` are tuning data (LABELS.md): their floors guard against
regressions, they are not an honest estimate.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "evaluate_real_corpus.py"
LABELS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "real_claude_code" / "labels.json"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPT.with_name(f"{name}.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


AGREEMENT = _load("labeller_agreement")

# Held-out part, all kinds together: (recall on unambiguous, recall with caveated, precision).
HOLDOUT_FLOORS = (0.92, 0.85, 0.74)
# holdout9 (18 sessions of entireio/cli, a ninth labeller) is held out too: never read after scoring. Its
# number on arrival, with the rules of 2026-12-02, was 1.00 / 0.94 / 0.88.
# 1.00 / 0.97 / 0.89 since tool_loop and tool_avalanche findings also match a label about the same run;
# 0.90 since a listing that finds a path missing as the session's first call is not reported.
HOLDOUT9_FLOORS = (1.0, 0.96, 0.89)
# holdout12 (16 long sessions of four projects also in the tuning data, four more labellers, one project
# each) is held out too, never read after scoring. Its number on arrival, with the rules holdout11 met, was
# 0.88 / 0.82 / 0.94 (7/8, 27/33, 34/36). Since output piped into greps that print nothing counts as a search
# finding nothing (a rule from the article, prompted by misses on sessions outside the corpus), 1.00 / 0.85 /
# 0.94 (8/8, 28/33, 34/36).
HOLDOUT12_FLOORS = (1.0, 0.84, 0.94)
# holdout14 (14 entireio/cli sessions picked without the detectors, seven more labellers) was declared held
# out before it was labelled: 1.00 / 1.00 / 1.00 on arrival (1/1, 8/8, 16/16), none on its seven clean sessions.
HOLDOUT14_FLOORS = (1.0, 1.0, 0.95)
# holdout15 (14 sessions of cc-backend, context-evaluator and chkit picked without the detectors, seven more
# labellers) was declared held out before it was labelled: 1.00 / 0.93 / 1.00 on arrival (5/5, 13/14, 15/15).
HOLDOUT15_FLOORS = (1.0, 0.92, 0.95)
# The held-out parts together, the honest number, against issue 16's aims (recall u >= 0.9, u+c >= 0.8,
# precision >= 0.9, nothing on clean sessions): 0.97 / 0.91 / 0.90 (39/40, 96/106, 160/177) since holdout15.
HELD_OUT_AIMS = (0.9, 0.8, 0.9)
HELD_OUT_FLOORS = {"holdout": HOLDOUT_FLOORS, "holdout9": HOLDOUT9_FLOORS, "holdout12": HOLDOUT12_FLOORS,
                   "holdout14": HOLDOUT14_FLOORS, "holdout15": HOLDOUT15_FLOORS}
# Tuning parts, all kinds together, measured 2026-12-02: tune 1.00 / 0.89 / 1.00; holdout2 (22 longer
# sessions from two other projects, held out until then, tuning data since) 1.00 / 1.00 / 1.00. Before
# that change holdout2 measured 0.43 / 0.75 / 0.92 with one finding on a clean session. holdout3 (20
# sessions, 617 turns, labelled by a third person) measured 1.00 / 0.93 / 0.79 with one finding on a clean
# session while it was held out (its honest number); tuned on since, it measures 1.00 / 1.00 / 1.00 with
# none. holdout4 (22 sessions, 697 turns, labelled by a fourth person) measured 1.00 / 0.96 / 0.75 with no
# finding on its clean session while it was held out (its honest number, recorded on 2026-12-02 before
# and after the rules were tuned on holdout3); tuned on since, it measures 1.00 / 0.96 / 0.96. holdout5 (19
# sessions, 571 turns, three more projects, labelled by a fifth person) measured 1.00 / 0.94 / 0.84 with no
# finding on its clean session on arrival (its honest number); tuned on since, 1.00 / 0.94 / 0.88 (0.91
# before `gh` reads counted as exploration, which added two matched avalanches elsewhere). holdout6
# (19 sessions, 668 turns, two more projects, a sixth labeller) measured 0.43 / 0.62 / 0.87 with none on its
# five clean sessions on arrival; tuned on since, 1.00 / 0.81 / 0.92. holdout7 (17 sessions, 602 turns, a
# seventh labeller) measured 0.71 / 0.80 / 0.84 with none on its five clean sessions on arrival; tuned on
# since, 0.86 / 0.84 / 0.87. holdout8 (18 sessions, 741 turns, an eighth labeller) measured 1.00 / 0.90 /
# 0.86 with none on its three clean sessions on arrival; tuned on since, 1.00 / 0.90 / 0.96.
TUNING_FLOORS: dict[str, tuple[float, float, float]] = {
    "tune": (0.95, 0.85, 0.95),
    "holdout2": (0.95, 0.95, 0.95),
    "holdout3": (0.95, 0.95, 0.95),
    "holdout4": (0.95, 0.95, 0.93),
    "holdout5": (0.95, 0.9, 0.85),
    "holdout6": (0.95, 0.9, 0.95),
    "holdout7": (0.85, 0.8, 0.85),
    "holdout8": (0.95, 0.85, 0.93),
    # holdout10 (16 short sessions of context-evaluator and chkit, a tenth labeller): 1.00 / 1.00 / 0.81 on
    # arrival; tuned on since, 1.00 / 1.00 / 0.94.
    "holdout10": (0.95, 0.95, 0.9),
    # holdout11 (14 long sessions of four projects also in the tuning data, an eleventh labeller) was held
    # out until holdout12 arrived: 1.00 / 0.68 / 0.72 on arrival with the rules tuned on holdout10 (1.00 /
    # 0.74 / 0.80 matching run kinds on the same run, as since 2026-12-03). Its details were read on
    # 2026-12-03; 1.00 / 0.84 / 1.00 since GitHub repositories the model made up count as invented inputs.
    "holdout11": (1.0, 0.83, 0.95),
    # holdout13 (14 entireio/cli sessions chosen by hallucinated_input findings, seven more labellers):
    # 0.75 / 0.77 / 0.92 on arrival; tuned on since, 1.00 / 0.86 / 1.00.
    "holdout13": (1.0, 0.85, 0.95),
}
CLEAN_FINDINGS_ALLOWED: dict[str, int] = {}
# Per kind on the held-out part: (recall u, recall u+c, precision); None where the part has no such label.
HOLDOUT_KIND_FLOORS: dict[str, tuple[float | None, float | None, float | None]] = {
    "context_drift": (1.0, 1.0, 0.5),
    "tool_loop": (0.75, 0.5, 1.0),
    "hallucinated_input": (1.0, 1.0, 0.66),
    "token_jump": (1.0, 1.0, 1.0),
    "tool_avalanche": (1.0, 1.0, 0.33),
    "no_end_turn": (1.0, 1.0, 1.0),
    "cache_miss": (1.0, 1.0, 0.66),
}


@pytest.fixture(scope="module")
def evaluation() -> ModuleType:
    return _load("evaluate_real_corpus")


@pytest.fixture(scope="module")
def result(evaluation: ModuleType) -> Any:
    return evaluation.evaluate(LABELS)


def _at_least(value: float | None, floor: float | None) -> bool:
    return floor is None or (value is not None and value >= floor)


class TestRealCorpus:
    def test_every_labelled_session_is_scored(self, result: Any) -> None:
        """Each session of labels.json, whatever its part, is loaded and scored."""
        sessions = json.loads(LABELS.read_text(encoding="utf-8"))["sessions"]
        assert sum(p.sessions for p in result.parts.values()) == len(sessions)
        assert {"tune", "holdout"} <= set(result.parts)

    def test_importer_and_labels_see_the_same_model_calls(self, result: Any) -> None:
        """Every finding maps to a labelled turn: the importer and the labels count the same calls."""
        assert result.numbering_mismatches == []

    def test_clean_sessions_have_no_findings(self, result: Any) -> None:
        """Sessions with no label at all get no finding, in every part."""
        for name, part in result.parts.items():
            assert len(part.clean_findings) <= CLEAN_FINDINGS_ALLOWED.get(name, 0), (name, part.clean_findings)

    @pytest.mark.parametrize("name", sorted(TUNING_FLOORS))
    def test_tuning_parts_stay_above_what_they_measured(self, result: Any, name: str) -> None:
        """The parts the rules were tuned on keep the scores they measured (a regression guard)."""
        total = result.parts[name].overall
        scores = (total.recall("unambiguous"), total.recall("unambiguous", "caveat"), total.precision)
        assert all(_at_least(v, f) for v, f in zip(scores, TUNING_FLOORS[name], strict=True)), scores

    @pytest.mark.parametrize("name", sorted(HELD_OUT_FLOORS))
    def test_held_out_scores_stay_above_the_floors(self, result: Any, name: str) -> None:
        """All kinds together, each held-out part keeps its recall and precision."""
        total = result.parts[name].overall
        scores = (total.recall("unambiguous"), total.recall("unambiguous", "caveat"), total.precision)
        assert all(_at_least(v, f) for v, f in zip(scores, HELD_OUT_FLOORS[name], strict=True)), scores

    def test_every_held_out_part_has_floors(self, evaluation: ModuleType) -> None:
        """The evaluation's list of held-out parts and the floors here name the same parts."""
        assert set(HELD_OUT_FLOORS) == set(evaluation.HELD_OUT)

    def test_the_held_out_parts_together_meet_the_aims(self, evaluation: ModuleType, result: Any) -> None:
        """Pooled, the sessions the rules were never tuned on reach the recall and precision the detectors
        are held to, with no finding on a clean session."""
        pooled = result.held_out
        assert pooled.sessions == sum(result.parts[name].sessions for name in evaluation.HELD_OUT)
        total = pooled.overall
        scores = (total.recall("unambiguous"), total.recall("unambiguous", "caveat"), total.precision)
        assert all(_at_least(v, f) for v, f in zip(scores, HELD_OUT_AIMS, strict=True)), scores
        assert total.clean_findings == 0

    def test_the_held_out_parts_misses_cannot_be_listed(self, evaluation: ModuleType,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
        """Whoever tunes the rules reads the tuning parts' misses only: --details refuses a held-out part."""
        with pytest.raises(SystemExit) as exit_info:
            evaluation.main(["--details", "holdout15"])
        assert exit_info.value.code == 2
        assert "held out" in capsys.readouterr().err

    @pytest.mark.parametrize("kind", sorted(HOLDOUT_KIND_FLOORS))
    def test_holdout_scores_per_kind_stay_above_the_floors(self, result: Any, kind: str) -> None:
        """Per kind, the held-out part keeps its recall and precision."""
        s = result.parts["holdout"].scores[kind]
        scores = (s.recall("unambiguous"), s.recall("unambiguous", "caveat"), s.precision)
        assert all(_at_least(v, f) for v, f in zip(scores, HOLDOUT_KIND_FLOORS[kind], strict=True)), scores

    def test_a_run_finding_matches_the_label_of_the_same_run(self, evaluation: ModuleType) -> None:
        """A tool_avalanche reported at the eighth turn it counted matches the labeller's run, whose
        eighth call came two turns earlier; a point kind still needs the turn ±1."""
        avalanche = evaluation.Found("tool_avalanche", 46, "warning", "", "c", first=39, last=46)
        assert evaluation.matches(avalanche, "tool_avalanche", 44, (37, 47))
        assert not evaluation.matches(avalanche, "tool_avalanche", 44, None)
        assert not evaluation.matches(avalanche, "tool_avalanche", 60, (55, 66))
        jump = evaluation.Found("token_jump", 46, "warning", "", "c", first=46, last=46)
        assert not evaluation.matches(jump, "token_jump", 44, (40, 47))

    @pytest.mark.parametrize(("part", "sessions", "second_matched", "first_matched"), [
        ("holdout10", 16, (15, 15), (15, 15)),
        ("holdout6", 19, (21, 22), (20, 21)),
        ("holdout7", 17, (25, 28), (25, 25)),
        ("holdout", 17, (19, 22), (19, 20)),
        ("holdout9", 18, (34, 37), (31, 31)),
        ("holdout11", 14, (17, 17), (19, 19)),
        ("holdout12", 16, (32, 32), (33, 33)),
    ])
    def test_two_independent_labellings_agree_as_labels_md_records(
            self, part: str, sessions: int, second_matched: tuple[int, int], first_matched: tuple[int, int]) -> None:
        """Seven parts were labelled twice, independently. Of each labelling's non-borderline labels, as many
        match a label of the other (the scores' own matcher) as LABELS.md records: the frozen labels are
        not one person's reading, except for about one label in fifteen to twenty."""
        name, first, second = AGREEMENT.load_pair(LABELS.with_name(f"labels_{part}_second.json"), LABELS)
        assert name == part and len(first) == sessions
        for side, other, expected in ((second, first, second_matched), (first, second, first_matched)):
            total = AGREEMENT.Agreement()
            for kind in AGREEMENT.agreement(side, other).values():
                total.add(kind)
            assert (total.matched, total.claims) == expected

    def test_a_part_labelled_twice_is_also_scored_against_the_second_labelling_and_either(
            self, evaluation: ModuleType) -> None:
        """With --second-labellings each part labelled twice gets two more rows; against either labelling a
        finding is correct when it matches a label of one of them, so precision is never below the first's."""
        both = evaluation.evaluate(LABELS, second_labellings=True)
        for part in ("holdout10", "holdout6", "holdout7", "holdout", "holdout9", "holdout11", "holdout12"):
            first, either = both.parts[part].overall, both.parts[f"{part}, either labelling"].overall
            second = both.parts[f"{part}, second labelling"]
            assert second.sessions == both.parts[part].sessions and second.overall.findings == first.findings
            assert either.findings == first.findings and either.correct >= first.correct
            assert either.correct >= second.overall.correct
        assert both.parts["holdout7, either labelling"].overall.correct > both.parts["holdout7"].overall.correct

    def test_script_prints_both_parts(self, evaluation: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
        """Running the script prints a table per part, tune first, and exits 0."""
        assert evaluation.main([]) == 0
        out = capsys.readouterr().out
        assert out.index("### tune") < out.index("### holdout")
        assert "| kind | found u | found c | found b | recall u | recall u+c | findings | precision |" in out
