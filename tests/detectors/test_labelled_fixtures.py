"""The labelled fixture sessions: precision and recall per kind must stay ≥ 0.8."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from otel_agent_trace.detectors import KINDS

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "evaluate_detectors.py"
MIN_SCORE = 0.8


@pytest.fixture(scope="module")
def evaluation() -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaluate_detectors", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


class TestLabelledFixtures:
    def test_every_kind_has_positives_and_the_set_has_clean_runs(self, evaluation: ModuleType) -> None:
        """Each kind is expected somewhere, and several sessions expect nothing at all."""
        fixtures = evaluation.load_fixtures()
        expected = {e["kind"] for _, data in fixtures for e in data["expected"]}
        assert expected == set(KINDS)
        assert sum(1 for _, data in fixtures if not data["expected"]) >= 10

    @pytest.mark.parametrize("kind", KINDS)
    def test_precision_and_recall(self, evaluation: ModuleType, kind: str) -> None:
        """Findings match the labels (same kind, ±1 turn) with precision and recall ≥ 0.8."""
        score = evaluation.evaluate(evaluation.load_fixtures())[kind]
        assert score.precision is not None and score.precision >= MIN_SCORE, score.misses
        assert score.recall is not None and score.recall >= MIN_SCORE, score.misses

    def test_script_prints_a_markdown_table(self, evaluation: ModuleType,
                                            capsys: pytest.CaptureFixture[str]) -> None:
        """Running the script prints one table row per kind and exits 0."""
        assert evaluation.main([]) == 0
        out = capsys.readouterr().out
        assert "| kind | TP | FP | FN | precision | recall |" in out
        assert all(f"| {kind} |" in out for kind in KINDS)
