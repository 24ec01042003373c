"""The offline CLI: ``findings`` and ``report`` on trace files, and the ``demo`` / ``import`` hand-off."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from otel_agent_trace import cli

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STUCK = FIXTURES / "seed" / "turn_limit.jsonl"
CLEAN = FIXTURES / "seed" / "clean_run.jsonl"
SUBAGENTS = FIXTURES / "claude_code" / "with_subagents.jsonl"
FINDING_KEYS = {"file", "session", "kind", "severity", "turn", "turns", "message", "tool_use_ids", "evidence"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_findings_json_schema_on_the_seed_fixture(capsys: pytest.CaptureFixture[str]) -> None:
    """``findings --json`` prints one object per finding with exactly the documented keys and types."""
    code, out, _ = run(capsys, "findings", "--json", str(STUCK))
    rows = json.loads(out)
    assert code == 0 and rows
    for row in rows:
        assert set(row) == FINDING_KEYS
        assert isinstance(row["turn"], int) and all(isinstance(t, int) for t in row["turns"])
        assert row["severity"] in {"info", "warning", "error"} and isinstance(row["evidence"], dict)
        assert (row["file"], row["session"]) == (str(STUCK), "turn_limit")
    assert {"tool_loop", "no_end_turn", "token_jump"} <= {row["kind"] for row in rows}


def test_findings_json_on_a_claude_code_transcript(capsys: pytest.CaptureFixture[str]) -> None:
    """Claude Code transcripts are auto-detected; findings name the transcript and its session id."""
    code, out, _ = run(capsys, "findings", "--json", str(SUBAGENTS))
    rows = json.loads(out)
    assert code == 0
    assert [(r["kind"], r["session"], r["turn"]) for r in rows] == [
        ("no_end_turn", "3c9d8e7f-1a2b-4c5d-9e8f-7a6b5c4d3e2f", 2)]
    assert set(rows[0]) == FINDING_KEYS and rows[0]["file"] == str(SUBAGENTS)


def test_no_findings_is_an_empty_array_and_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """A clean run prints ``[]`` and still exits 0."""
    assert run(capsys, "findings", "--json", str(CLEAN))[:2] == (0, "[]\n")


def test_findings_table_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json findings are grouped by file and session, one line per finding, plus a total."""
    code, out, _ = run(capsys, "findings", str(STUCK), str(CLEAN))
    assert code == 0
    assert f"{STUCK} · session turn_limit" in out
    assert "tool_loop" in out and out.rstrip().endswith("6 findings in 2 sessions from 2 files")


def test_malformed_lines_go_to_stderr_and_are_skipped(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    """A broken line is reported as ``file:line: message`` on stderr; findings still come from the rest."""
    path = tmp_path / "broken.jsonl"
    lines = STUCK.read_text().splitlines()
    path.write_text("\n".join([*lines[:3], "{oops", *lines[3:]]) + "\n")
    code, out, err = run(capsys, "findings", "--json", str(path))
    assert code == 0
    assert err.startswith(f"{path}:4: not valid JSON")
    assert "tool_loop" in {row["kind"] for row in json.loads(out)}


def test_unreadable_file_exits_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A missing file is reported and the exit code is 1; other files are still processed."""
    code, out, err = run(capsys, "findings", "--json", str(tmp_path / "missing.jsonl"), str(STUCK))
    assert code == 1 and "missing.jsonl:0: no such file" in err and json.loads(out)


def test_report_prints_the_work_backwards_view(capsys: pytest.CaptureFixture[str]) -> None:
    """``report`` prints outcome, decision turn, last turns, findings and chart, without colour off a TTY."""
    code, out, _ = run(capsys, "report", str(STUCK))
    assert code == 0 and "\x1b[" not in out
    positions = [out.index(s) for s in ("OUTCOME", "LIKELY DECISION TURN", "LAST 8 TURNS", "FINDINGS",
                                        "TOKEN BUDGET")]
    assert positions == sorted(positions)


def test_report_colours_a_terminal_unless_told_not_to(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """On a TTY the report is coloured; --no-color turns that off."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert "\x1b[" in run(capsys, "report", str(STUCK))[1]
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert "\x1b[" not in run(capsys, "report", "--no-color", str(STUCK))[1]


def test_report_picks_the_main_session_and_names_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    """With sub-agents in the file the main session is shown and stderr says how to pick another."""
    code, out, err = run(capsys, "report", str(SUBAGENTS))
    assert code == 0 and out.startswith("Session 3c9d8e7f-1a2b-4c5d-9e8f-7a6b5c4d3e2f ")
    assert "--session" in err


def test_report_session_option_selects_a_sub_agent(capsys: pytest.CaptureFixture[str]) -> None:
    """--session accepts a full id (or unique prefix) and reports that session."""
    code, out, _ = run(capsys, "report", "--session", "3c9d8e7f-1a2b-4c5d-9e8f-7a6b5c4d3e2f/agent", str(SUBAGENTS))
    assert code == 0 and "sub-agent of 3c9d8e7f" in out


def test_report_unknown_session_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    """Asking for a session the file does not hold is an error with the available ids."""
    code, _, err = run(capsys, "report", "--session", "nope", str(STUCK))
    assert code == 1 and "turn_limit" in err


def test_report_html_writes_a_page(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--html writes the self-contained page with every session of the file."""
    out_file = tmp_path / "report.html"
    code, out, err = run(capsys, "report", str(SUBAGENTS), "--html", str(out_file))
    page = out_file.read_text()
    assert code == 0 and out == "" and "wrote" in err
    assert 'id="token-chart"' in page and page.count("<section") == 2


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Running without a command prints help and exits 2."""
    code, _, err = run(capsys)
    assert code == 2 and "findings" in err


@pytest.mark.parametrize(("command", "module"), [("demo", "otel_agent_trace.cli.demo"),
                                                 ("import", "otel_agent_trace.files.replay")])
def test_demo_and_import_hand_their_arguments_over(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch, command: str,
                                                   module: str) -> None:
    """``demo`` and ``import`` call ``main(args)`` of their module with the rest of the command line."""
    seen: list[list[str]] = []
    fake = types.ModuleType(module)
    fake.main = lambda args: seen.append(args) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module, fake)
    assert run(capsys, command, "--flag", "x.jsonl")[0] == 0
    assert seen == [["--flag", "x.jsonl"]]


def test_missing_hand_off_module_exits_two(capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """When the module behind ``demo`` is not installed the CLI says so and exits 2."""
    monkeypatch.setitem(cli._PASSTHROUGH, "demo", ("otel_agent_trace.no_such_module", "x"))
    code, _, err = run(capsys, "demo")
    assert code == 2 and "not available" in err
