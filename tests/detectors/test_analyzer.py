"""SessionAnalyzer, analyze_session and thresholds_from_env."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest

from otel_agent_trace.detectors import (
    ALL_DETECTORS,
    KINDS,
    Detector,
    SessionAnalyzer,
    Thresholds,
    analyze_session,
    thresholds_from_env,
)
from otel_agent_trace.model.records import Finding, ToolCall, Turn
from otel_agent_trace.testing.scenario import bash, edit, read, session, turn

MISSING = "File does not exist."


def _failing_session():
    return session(turn(read("x/a.ts", MISSING, error=True), context=4_000),
                   turn(read("y/a.ts", MISSING, error=True), context=4_200),
                   turn(read("z/a.ts", MISSING, error=True), context=4_400),
                   turn(bash("cat big.log", chars=60_000), context=4_600), turn(context=20_000),
                   end_reason="turn_limit")


class Boom(Detector):
    kind = "boom"

    def observe_turn(self, turn: Turn) -> list[Finding]:
        raise RuntimeError("detector bug")


class TestSessionAnalyzer:
    def test_every_kind_has_one_detector(self) -> None:
        """The seven documented kinds, one class each."""
        assert set(KINDS) == {"context_drift", "tool_loop", "hallucinated_input", "token_jump",
                              "tool_avalanche", "no_end_turn", "cache_miss"}
        assert len(KINDS) == len(ALL_DETECTORS)

    def test_findings_carry_the_session_and_are_counted(self) -> None:
        """Each finding gets the analyzer's session id; counts are kept per kind."""
        found = analyze_session(_failing_session())
        assert {f.session for f in found} == {"s"}
        assert {f.kind for f in found} == {"hallucinated_input", "tool_loop", "token_jump", "no_end_turn"}

    def test_kinds_selects_detectors(self) -> None:
        """kinds=[...] runs only those detectors."""
        analyzer = SessionAnalyzer("s", kinds=["no_end_turn"])
        assert [d.kind for d in analyzer.detectors] == ["no_end_turn"]

    def test_a_failing_detector_never_breaks_the_analyzer(self, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
        """A detector that raises is skipped for that event and logged once at debug level."""
        import otel_agent_trace.detectors.analyzer as module

        monkeypatch.setattr(module, "ALL_DETECTORS", (Boom, *ALL_DETECTORS))
        caplog.set_level(logging.DEBUG, logger=module.__name__)
        found = analyze_session(_failing_session())
        assert {f.kind for f in found} >= {"tool_loop", "no_end_turn"}
        assert len([r for r in caplog.records if "boom" in r.getMessage()]) == 1

    def test_kept_findings_are_bounded(self) -> None:
        """Beyond max_findings, findings are counted but not kept."""
        analyzer = SessionAnalyzer("s", kinds=["hallucinated_input"], max_findings=2)
        for i in range(1, 6):
            analyzer.observe_turn(Turn(session="s", index=i))
            analyzer.observe_tool(ToolCall(session="s", tool_use_id=f"m{i}", name="Read", turn_index=i,
                                           input={"file_path": f"d{i}/x{i}.py"}, result=MISSING))
            analyzer.observe_tool(ToolCall(session="s", tool_use_id=f"ok{i}", name="Read", turn_index=i,
                                           input={"file_path": "README"}, result="hi"))
        assert len(analyzer.findings) == 2 and analyzer.dropped == 3
        assert analyzer.count_by_kind == {"hallucinated_input": 5}

    def test_evidence_is_json_serialisable(self) -> None:
        """Every finding of a busy session survives json.dumps."""
        for f in analyze_session(_failing_session()):
            json.dumps({"kind": f.kind, "turns": f.turns, "evidence": f.evidence, "message": f.message})


class TestAnalyzeSession:
    def test_stores_findings_on_the_session(self) -> None:
        """analyze_session returns the findings and also sets session.findings."""
        s = _failing_session()
        found = analyze_session(s)
        assert s.findings == found and found

    def test_tool_calls_follow_their_turn(self) -> None:
        """Tool calls are fed after their own turn even when stored out of order."""
        s = _failing_session()
        s.tool_calls.reverse()
        assert [(f.kind, f.turn) for f in analyze_session(s)] == [
            (f.kind, f.turn) for f in analyze_session(_failing_session())]

    def test_sessions_without_tool_calls_are_rebuilt_from_turns(self) -> None:
        """tool_uses plus the next request's tool_results stand in for missing ToolCall records."""
        s = _failing_session()
        s.tool_calls = []
        assert "tool_loop" in {f.kind for f in analyze_session(s)}

    def test_clean_article_run_has_no_findings(self) -> None:
        """The article's clean six-turn bug fix is clean for every detector."""
        s = session(turn(read("auth/session.ts"), context=3_200),
                    turn(read("auth/middleware.ts"), context=5_100),
                    turn(bash("grep -rn expireSession auth", "auth/session.ts:1:x"), context=5_800),
                    turn(edit("auth/session.ts", "a", "b"), context=6_100),
                    turn(bash("npx jest auth", "PASS"), context=6_400), turn(context=7_200))
        assert analyze_session(s) == []


class TestThresholdsFromEnv:
    def test_defaults(self) -> None:
        """No environment → the documented defaults."""
        assert thresholds_from_env({}) == Thresholds()

    def test_env_values_are_parsed_by_type(self) -> None:
        """OTEL_AGENT_TRACE_<FIELD> sets ints and floats."""
        env = {"OTEL_AGENT_TRACE_DRIFT_MIN_TURNS": "6", "OTEL_AGENT_TRACE_JUMP_MIN_RATIO": "0.5",
               "OTEL_AGENT_TRACE_JUMP_MIN_TOKENS": "12_000"}
        assert thresholds_from_env(env) == replace(Thresholds(), drift_min_turns=6, jump_min_ratio=0.5,
                                                   jump_min_tokens=12_000)

    def test_overrides_win_over_env(self) -> None:
        """Keyword overrides (instrument(...)) beat the environment; None keeps the env value."""
        env = {"OTEL_AGENT_TRACE_LOOP_MIN_REPEATS": "4"}
        assert thresholds_from_env(env, loop_min_repeats=5).loop_min_repeats == 5
        assert thresholds_from_env(env, loop_min_repeats=None).loop_min_repeats == 4

    def test_malformed_env_keeps_the_default(self, caplog: pytest.LogCaptureFixture) -> None:
        """A non-numeric value is ignored with a warning, never raised into the agent."""
        assert thresholds_from_env({"OTEL_AGENT_TRACE_CACHE_MIN_TURN": "soon"}).cache_min_turn == 2
        assert "OTEL_AGENT_TRACE_CACHE_MIN_TURN" in caplog.text

    def test_unknown_override_raises(self) -> None:
        """A misspelt keyword is a programming error."""
        with pytest.raises(TypeError):
            thresholds_from_env({}, drift_turns=3)
