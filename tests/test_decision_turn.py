"""The decision-turn rule against sessions labelled by reading them (fixtures in tests/fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otel_agent_trace.detectors import analyze_session
from otel_agent_trace.files.importers import load_sessions
from otel_agent_trace.files.report import decision_turn, render_text
from otel_agent_trace.model.records import Session
from otel_agent_trace.testing.scenario import session_from_dict

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LABELLED = FIXTURES / "labelled"

# Labels for the failed runs, from each fixture's description, not from the rule's output:
# the turn whose tool output blew the context, the first failed attempt of a loop, the cut response.
FAILED_RUNS: dict[str, int | None] = {
    "labelled/mixed_failing_run": 6,  # 50k chars of test output at 6; drift, loop and the limit follow
    "labelled/no_end_turn_max_tokens": 3,  # the response that was cut off
    "labelled/no_end_turn_limit": None,  # twelve productive edit/test cycles: nothing derailed it
    "labelled/no_end_turn_stops_on_tool_use": None,  # the trace just stops: nothing to trace back
    "heldout/cc04_edit_loop_abandoned.jsonl": 3,  # first of the failing string-match edits (3-5)
    "heldout/cc13_docs_drift_max_tokens.jsonl": 9,  # the response that was cut off, not the re-read
    "heldout/seed04_build_loop_turn_limit.jsonl": 3,  # first run of the failing build loop (3-6)
    "heldout/seed10_avalanche_turn_limit.jsonl": 1,  # nine read-only turns from the start, no commitment
    "seed/turn_limit.jsonl": 5,  # 42k chars of jest output, then the edit loop still going at the end
}


def load(name: str) -> Session:
    folder, _, stem = name.partition("/")
    if folder == "labelled":
        return session_from_dict(json.loads((LABELLED / f"{stem}.json").read_text()))
    (session,) = [s for s in load_sessions(FIXTURES / folder / stem) if s.parent_id is None]
    return session


def clean_endings() -> list[str]:
    """Every labelled session that ended normally (end_turn), with findings or without."""
    return sorted(f"labelled/{p.stem}" for p in LABELLED.glob("*.json")
                  if json.loads(p.read_text()).get("end_reason", "end_turn") == "end_turn")


@pytest.mark.parametrize("name", list(FAILED_RUNS))
def test_failed_runs_point_at_the_labelled_turn(name: str) -> None:
    """A failed run's decision turn is the labelled one (or none), and a reason is always given."""
    session = load(name)
    decision = decision_turn(session, analyze_session(session))
    assert decision.turn == FAILED_RUNS[name], decision.reason
    assert decision.reason


@pytest.mark.parametrize("name", clean_endings())
def test_runs_that_ended_normally_have_no_decision_turn(name: str) -> None:
    """A run that ended with end_turn has no decision turn, even with findings, and says why."""
    session = load(name)
    decision = decision_turn(session, analyze_session(session))
    assert decision.turn is None and "ended normally" in decision.reason


def test_the_report_shows_the_reason() -> None:
    """The report's decision section carries the reason, for a decision and for none."""
    failing, clean = load("labelled/mixed_failing_run"), load("labelled/clean_article_six_turns")
    text = render_text(failing, analyze_session(failing), width=120)
    section = " ".join(text[text.index("LIKELY DECISION TURN"):text.index("LAST ")].split())
    assert "◆ turn 6 — its tool output blew the context" in section and "began at turn" in section
    clean_text = render_text(clean, analyze_session(clean), width=120)
    assert "none: the run ended normally (end_turn)" in clean_text
