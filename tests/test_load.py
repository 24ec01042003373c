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
    assert printed and sorted((f.session, f.kind, f.turn) for f in trace.findings) == sorted(printed)


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


def test_rollups_are_the_ones_an_import_puts_on_the_session_span(tmp_path: Path) -> None:
    """A call that failed before any response is not a turn in ``load`` either, as on the imported span."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_agent_trace.files.replay import import_files

    path = tmp_path / "trace.jsonl"
    lines = [{"turn": 0, "event": "start", "task": "fix it"},
             {"turn": 1, "stop_reason": "end_turn", "input_tokens": 10, "output_tokens": 5,
              "content": [{"type": "text", "text": "done"}]},
             {"turn": 2, "stop_reason": None, "error_type": "RateLimitError", "input_tokens": 0,
              "output_tokens": 0, "content": []}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    import_files([str(path)], provider.get_tracer("test"), settings=Settings.from_env({}))
    (session_span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("invoke_agent")]
    (run,) = otel_agent_trace.load(path).sessions
    assert run.rollup.turns == session_span.attributes["agent_trace.turns"] == 1
