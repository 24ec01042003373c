"""Leading with the failure: worst first, session choice, the HTML page's links, counts, help and version."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from otel_agent_trace import cli
from otel_agent_trace.detectors import analyze_session
from otel_agent_trace.files.report import render_html
from otel_agent_trace.testing.scenario import session_from_dict

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STUCK = FIXTURES / "seed" / "turn_limit.jsonl"
CLEAN = FIXTURES / "seed" / "clean_run.jsonl"
CLAUDE = FIXTURES / "claude_code"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def two_sessions(tmp_path: Path) -> Path:
    """One file holding a clean run first and a failing run second, as the demo writes them."""
    lines = []
    for source, sid, agent in ((CLEAN, "run-clean", "clean-agent"), (STUCK, "run-stuck", "flaky-agent")):
        for text in source.read_text().splitlines():
            line = {**json.loads(text), "session": sid}
            if line.get("event") == "start":
                line["agent"] = agent
            lines.append(json.dumps(line))
    path = tmp_path / "agent-trace.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_report_defaults_to_the_worst_session(capsys: pytest.CaptureFixture[str], two_sessions: Path) -> None:
    """With several sessions and no --session, the failing one is shown and the choice is explained."""
    code, out, err = run(capsys, "report", str(two_sessions))
    assert out.startswith("Session run-stuck") and code == 1
    assert "showing the worst of 2 sessions" in err


@pytest.mark.parametrize("wanted", ["run-clean", "run-c", "clean-agent"])
def test_session_accepts_an_id_a_prefix_or_an_agent_name(capsys: pytest.CaptureFixture[str], two_sessions: Path,
                                                         wanted: str) -> None:
    """``--session`` takes the full id, a unique prefix, or an agent name (its worst session)."""
    assert run(capsys, "report", str(two_sessions), "--session", wanted)[1].startswith("Session run-clean")


def test_an_ambiguous_prefix_is_refused(capsys: pytest.CaptureFixture[str], two_sessions: Path) -> None:
    """A prefix shared by several sessions exits 2 and lists them."""
    code, _, err = run(capsys, "report", str(two_sessions), "--session", "run-")
    assert code == 2 and "run-clean" in err and "run-stuck" in err


def test_html_puts_the_worst_session_first_with_labelled_navigation(two_sessions: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The page opens on the failing session; its nav names agent, outcome, turns and findings."""
    page_path = tmp_path / "page.html"
    run(capsys, "report", str(two_sessions), "--html", str(page_path))
    page = page_path.read_text()
    nav = page[page.index("<nav>"):page.index("</nav>")]
    labels = re.findall(r'<a class="\w+" href="#s\d" title="[^"]*">([^<]*)</a>', nav)
    assert labels == ["flaky-agent · ✗ turn_limit · 14 turns · 6 findings",
                      "clean-agent · ✓ end_turn · 6 turns · 0 findings"]
    assert page.index("<h2>run-stuck</h2>") < page.index("<h2>run-clean</h2>")


def test_every_finding_links_to_a_turn_card(two_sessions: Path) -> None:
    """Each finding row links to a card that exists on the page, however early its turn."""
    data = json.loads((FIXTURES / "labelled" / "mixed_failing_run.json").read_text())
    session = session_from_dict(data)
    page = render_html([(session, analyze_session(session))])
    links = re.findall(r'<td class="nw"><a href="#(s1-t\d+)">', page)
    assert links and all(f'id="{anchor}"' in page for anchor in links)
    assert "s1-t1" in links  # the turn-1 finding has a card although it is not among the last turns


def test_turns_without_findings_are_collapsed(two_sessions: Path) -> None:
    """Cards of turns with no finding and outside the last eight sit in a closed <details>."""
    session = session_from_dict(json.loads((FIXTURES / "labelled" / "drift_reread_at_turn_28.json").read_text()))
    page = render_html([(session, analyze_session(session))])
    folded = page[page.index('<details class="rest">'):page.index("</details>")]
    assert "other turns without findings" in folded and 'id="s1-t10"' in folded
    assert 'id="s1-t28"' not in folded and 'id="s1-t28"' in page


def test_chart_dots_mark_only_the_turns_findings_were_seen_at(two_sessions: Path) -> None:
    """A dot sits under a turn a warning or error was reported at, not under every turn a finding spans."""
    session = session_from_dict(json.loads((FIXTURES / "labelled" / "mixed_failing_run.json").read_text()))
    findings = analyze_session(session)
    page = render_html([(session, findings)])
    dots = page.count("<circle")
    at = {f.turn for f in findings if f.severity != "info" and f.kind != "no_end_turn"}
    assert dots == len(at) < len(session.turns) // 2


def test_a_directory_counts_the_files_it_read(capsys: pytest.CaptureFixture[str]) -> None:
    """``findings DIR`` reports the number of files read, not the number of arguments."""
    out = run(capsys, "findings", str(FIXTURES / "heldout"))[1]
    files = len(list((FIXTURES / "heldout").glob("*.jsonl")))
    assert out.rstrip().endswith(f"from {files} files")


def test_orphan_subagent_files_are_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A subagents/ transcript whose parent file is absent is still read."""
    folder = tmp_path / "project" / "3c9d8e7f-1a2b-4c5d-9e8f-7a6b5c4d3e2f" / "subagents"
    folder.mkdir(parents=True)
    for file in (CLAUDE / "with_subagents" / "subagents").glob("*.jsonl"):
        shutil.copy(file, folder / file.name)
    code, out, _ = run(capsys, "findings", "--json", "--fail-on", "none", str(tmp_path / "project"))
    assert code == 0  # read, not "no trace files"
    code, out, err = run(capsys, "findings", str(tmp_path / "project"))
    assert "1 session from 1 file" in out, err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """``--version`` prints the installed version and exits 0."""
    code, out, _ = run(capsys, "--version")
    assert code == 0 and re.fullmatch(r"otel-agent-trace \d+\.\d+\.\d+\S*\n", out)


@pytest.mark.parametrize("command", [[], ["findings"], ["report"], ["watch"]])
def test_help_documents_exit_codes_without_module_paths(capsys: pytest.CaptureFixture[str],
                                                        command: list[str]) -> None:
    """Every help text lists the exit codes and shows no module path or reST markup."""
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert "0  done" in out and "1  findings at or above --fail-on" in out and "2  unreadable input" in out
    assert "otel_agent_trace." not in out and "``" not in out and ":main" not in out


def test_plurals_read_right(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Counts of one are singular in totals and headings."""
    out = run(capsys, "findings", str(STUCK))[1]
    assert "in 1 session from 1 file" in out
    text = run(capsys, "report", str(CLEAN))[1]
    assert "LAST 6 TURNS" in text and "1 turns" not in text


def test_the_instrumented_path_never_imports_rich() -> None:
    """Importing and instrumenting the package leaves rich unloaded; only the CLI pays for it."""
    code = ("import sys, otel_agent_trace\n"
            "from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor\n"
            "AnthropicAgentInstrumentor().instrument(); AnthropicAgentInstrumentor().uninstrument()\n"
            "print('rich' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_a_parallel_scan_finds_what_a_serial_one_does(capsys: pytest.CaptureFixture[str]) -> None:
    """``--jobs 2`` spreads files over processes and prints the same findings, in the same order."""
    folder = str(FIXTURES / "heldout")
    serial = run(capsys, "findings", "--json", "--jobs", "1", folder)
    parallel = run(capsys, "findings", "--json", "--jobs", "2", folder)
    assert json.loads(serial[1]) and serial == parallel


@pytest.mark.parametrize("command", ["demo", "import"])
def test_hand_off_commands_have_plain_help_with_exit_codes(capsys: pytest.CaptureFixture[str], command: str) -> None:
    """``demo --help`` and ``import --help`` read as prose: exit codes, no reST markup or module paths."""
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and "exit codes:" in out
    assert "``" not in out and "otel_agent_trace." not in out
