"""``otel_agent_trace.load``: a saved run as sessions with findings and rollups, as the CLI reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import otel_agent_trace
from otel_agent_trace import cli
from otel_agent_trace.config import Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STUCK = FIXTURES / "seed" / "turn_limit.jsonl"
SUBAGENTS = FIXTURES / "claude_code" / "with_subagents.jsonl"


def test_findings_are_the_ones_the_cli_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """``load`` and ``findings --json`` report the same findings for a file."""
    trace = otel_agent_trace.load(STUCK)
    cli.main(["findings", "--json", str(STUCK)])
    printed = [(r["session"], r["kind"], r["turn"]) for r in json.loads(capsys.readouterr().out)]
    assert printed and [(f.session, f.kind, f.turn) for f in trace.findings] == printed


def test_rollup_totals_the_turns() -> None:
    """A session's rollup counts its turns, tool calls, tokens and findings."""
    (run,) = otel_agent_trace.load(STUCK).sessions
    turns = run.session.turns
    assert run.rollup.turns == len(turns) > 0
    assert run.rollup.tool_calls == len(run.session.tool_calls)
    assert run.rollup.input_tokens == sum(t.usage.context_tokens for t in turns)
    assert run.rollup.output_tokens == sum(t.usage.output_tokens for t in turns)
    assert run.rollup.findings_count == len(run.findings) > 0


def test_cache_savings_follow_the_settings() -> None:
    """Rollups price cache reads with the prices given, like the live spans do."""
    (run,) = otel_agent_trace.load(SUBAGENTS, Settings(prices={"claude": 10.0})).sessions[:1]
    reads = sum(t.usage.cache_read_input_tokens for t in run.session.turns)
    assert reads > 0
    assert run.rollup.saved_usd == pytest.approx(reads * 10.0 * 0.9 / 1e6)


def test_skipped_lines_are_listed_not_raised(tmp_path: Path) -> None:
    """A malformed line becomes an error entry; the rest of the file still loads."""
    lines = STUCK.read_text(encoding="utf-8").splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n", encoding="utf-8")
    trace = otel_agent_trace.load(broken)
    assert [e.line_no for e in trace.errors] == [2]
    assert len(trace.sessions) == 1 and trace.findings


def test_a_missing_file_is_an_error_entry(tmp_path: Path) -> None:
    """A path that does not exist gives no sessions and one whole-file error."""
    trace = otel_agent_trace.load(tmp_path / "nope.jsonl")
    assert trace.sessions == [] and [(e.line_no, e.message) for e in trace.errors] == [(0, "no such file")]


def test_saved_runs_take_the_same_assertions_as_live_ones() -> None:
    """``sessions_of_file`` gives a file's sessions the plugin's SessionResult: turns, clean, findings."""
    from otel_agent_trace.testing import sessions_of_file

    (run,) = sessions_of_file(STUCK)
    assert (run.id, run.turns, run.end_reason) == ("turn_limit", 14, "turn_limit")
    assert not run.clean and "tool_loop" in run.findings.kinds
    assert run.tokens == run.input_tokens + run.output_tokens > 0
