"""Reports: the terminal text (work backwards from the end) and the self-contained HTML page."""

from __future__ import annotations

import importlib.util
import re
import types
from pathlib import Path

import pytest

from otel_agent_trace.detectors import analyze_session
from otel_agent_trace.files.importers import load_sessions
from otel_agent_trace.files.report import decision_turn, render_html, render_text
from otel_agent_trace.model.records import Finding, Session, ToolCall, ToolUse, Turn, Usage

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "fixtures" / "seed"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def stuck() -> tuple[Session, list[Finding]]:
    (session,) = load_sessions(SEED / "turn_limit.jsonl")
    return session, analyze_session(session)


@pytest.fixture(scope="module")
def stuck_text(stuck: tuple[Session, list[Finding]]) -> str:
    return render_text(*stuck, color=False, width=100)


def synthetic(turns: int, failing_from: int | None = None) -> Session:
    """A session of Read calls; from ``failing_from`` on, every call fails."""
    session = Session(id="syn", end_reason="turn_limit")
    for n in range(1, turns + 1):
        use = ToolUse(f"u{n}", "Read", {"file_path": f"f{n}.py"})
        session.turns.append(Turn("syn", n, stop_reason="tool_use", usage=Usage(1000 + 10 * n, 20),
                                  tool_uses=[use]))
        failed = failing_from is not None and n >= failing_from
        session.tool_calls.append(ToolCall("syn", use.id, "Read", n, use.input,
                                           "Error: no such file" if failed else "ok", is_error=failed))
    return session


def test_outcome_comes_first(stuck_text: str) -> None:
    """The outcome is the first section, before any turn."""
    assert stuck_text.index("OUTCOME") < stuck_text.index("turn limit reached") < stuck_text.index("T14")
    assert "after 14 turns" in stuck_text


def test_tokens_and_tool_errors_are_summarised(stuck_text: str) -> None:
    """The outcome section totals tokens, the peak context and failed tool calls."""
    assert "159,910 in" in stuck_text and "1,029 out" in stuck_text
    assert "peak context: 16,710 tokens at turn 14" in stuck_text
    assert "14 (7 failed)" in stuck_text


def test_last_turns_are_newest_first(stuck_text: str) -> None:
    """The last eight turns are listed newest first, then the earlier turns that have findings."""
    section = stuck_text[stuck_text.index("LAST 8 TURNS AND 4 EARLIER WITH FINDINGS"):stuck_text.index("FINDINGS (6)")]
    order = [int(m) for m in re.findall(r"^T(\d+)", section, re.MULTILINE)]
    assert order == [*range(14, 6, -1), 6, 5, 4, 1]
    assert "2 earlier turns without findings not shown" in section


def test_turns_show_tools_targets_and_errors(stuck_text: str) -> None:
    """Each turn shows its tool calls with their targets, and failed results marked ✗."""
    assert "calls Edit auth/middleware.ts" in stuck_text
    assert "✗ Error: String to replace not found in file." in stuck_text


def test_findings_are_listed_with_their_turns(stuck_text: str) -> None:
    """Every finding appears with its kind and turn range."""
    section = stuck_text[stuck_text.index("FINDINGS"):stuck_text.index("TOKEN BUDGET")]
    assert re.search(r"tool_loop\s+T9–14", section)
    assert "hallucinated_input" in section and "no_end_turn" in section


def test_decision_turn_is_where_the_final_trouble_began(stuck_text: str) -> None:
    """The loop still running at the end followed a context-blowing test output: the decision is that call."""
    section = stuck_text[stuck_text.index("LIKELY DECISION TURN"):stuck_text.index("LAST 8 TURNS")]
    assert "◆ turn 5" in section and "npx jest auth" in section
    assert "began at turn 9: tool_loop" in " ".join(section.split())
    assert "it had just read:" in section and "Read auth/middleware.ts" in section


def test_token_chart_has_a_row_per_turn_and_marks_the_jump(stuck_text: str) -> None:
    """The chart has one bar per turn; the turn after the huge jest output is marked ▲."""
    chart = stuck_text[stuck_text.index("TOKEN BUDGET"):]
    rows = [line for line in chart.splitlines() if re.match(r"\s*T\d+ ", line)]
    assert len(rows) == 14
    assert [r.split()[0] for r in rows if "▲" in r] == ["T6"]
    assert "█" in rows[-1]


def test_long_sessions_bucket_the_chart() -> None:
    """A 500-turn session draws at most 40 chart rows, each naming its turn range."""
    text = render_text(synthetic(500), [], color=False)
    chart = text[text.index("TOKEN BUDGET"):]
    rows = [line for line in chart.splitlines() if re.match(r"\s*T\d+–\d+", line)]
    assert 0 < len(rows) <= 40


def test_plain_text_has_no_escape_codes_and_fits_the_width(stuck: tuple[Session, list[Finding]]) -> None:
    """Without colour the report is plain text no wider than asked."""
    text = render_text(*stuck, color=False, width=90)
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 90


def test_colour_uses_ansi_codes(stuck: tuple[Session, list[Finding]]) -> None:
    """With colour on, the same text is wrapped in ANSI codes."""
    coloured = render_text(*stuck, color=True)
    assert "\x1b[31m" in coloured
    assert ANSI.sub("", coloured) == render_text(*stuck, color=False)


def test_clean_run_reports_success_and_no_decision_turn() -> None:
    """A run that ended with end_turn and no findings says so."""
    (session,) = load_sessions(SEED / "clean_run.jsonl")
    text = render_text(session, analyze_session(session), color=False)
    assert "✓ finished normally (end_turn) after 6 turns" in text
    assert "none: the run ended normally" in text


def test_cache_savings_are_shown() -> None:
    """Cache reads are reported with the money they saved."""
    session = synthetic(3)
    for turn in session.turns:
        turn.model, turn.usage.cache_read_input_tokens = "claude-sonnet-4-6", 100_000
    assert "300,000 tokens served from cache ≈ $0.81 saved" in render_text(session, [], color=False)


def test_decision_turn_from_a_failing_streak() -> None:
    """Without findings, a run of all-failing tool calls up to the end points at its first turn."""
    assert decision_turn(synthetic(10, failing_from=6), []).turn == 6


def test_decision_turn_prefers_trouble_reaching_the_end() -> None:
    """An early finding that ended long ago loses to one still going on at the end."""
    session = synthetic(20)
    early = Finding("hallucinated_input", "warning", 1, "early", turns=[1])
    late = Finding("tool_loop", "error", 19, "late", turns=[15, 19])
    assert decision_turn(session, [early, late]).turn == 15


def test_no_end_turn_alone_is_not_a_cause() -> None:
    """no_end_turn is the symptom being explained, so it never becomes the decision turn."""
    assert decision_turn(synthetic(5), [Finding("no_end_turn", "error", 5, "x", turns=[5])]).turn is None


def test_html_is_self_contained(stuck: tuple[Session, list[Finding]]) -> None:
    """The page has inline CSS and SVG, no scripts and no external resources."""
    page = render_html([stuck])
    assert page.startswith("<!doctype html>") and "<style>" in page
    assert "<script" not in page and not re.search(r"(src|href)=\"https?:", page)


def test_html_chart_has_a_bar_per_turn(stuck: tuple[Session, list[Finding]]) -> None:
    """The ``token-chart`` SVG draws the turns as rects and the jump as a path."""
    page = render_html([stuck])
    svg = page[page.index('<svg id="token-chart"'):page.index("</svg>")]
    assert svg.count("<g><title>T") == 14 and "<rect" in svg and "<path" in svg


def test_html_has_outcome_decision_findings_and_turns(stuck: tuple[Session, list[Finding]]) -> None:
    """The page holds the same sections as the text report."""
    page = render_html([stuck])
    for text in ("turn limit reached", "Likely decision turn", "<b>Turn 5</b>", "Findings (6), worst first",
                 "Turns with findings and the last turns, newest first", "Turn 14"):
        assert text in page
    assert page.index("Turn 14") < page.index("Turn 13")


def test_html_escapes_content() -> None:
    """Tool output is escaped, never interpreted as markup."""
    session = synthetic(1)
    session.tool_calls[0].result = "<script>alert(1)</script>"
    page = render_html([(session, [])])
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_html_with_several_sessions_has_one_chart_each() -> None:
    """Each session gets its own section and chart; the first chart is ``token-chart``."""
    page = render_html([(synthetic(3), []), (synthetic(4), [])])
    assert page.count("<section") == 2
    assert 'id="token-chart"' in page and 'id="token-chart-2"' in page


def _screenshot_helpers() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("screenshot_report", ROOT / "scripts" / "screenshot_report.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_html_report_renders_in_headless_chromium(tmp_path: Path,
                                                  stuck: tuple[Session, list[Finding]]) -> None:
    """Headless Chromium renders the page to a real screenshot and its DOM holds the chart's shapes."""
    helpers = _screenshot_helpers()
    chromium = helpers.find_chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    html_path, png = tmp_path / "report.html", tmp_path / "report.png"
    html_path.write_text(render_html([stuck]), encoding="utf-8")
    result = helpers.screenshot(chromium, html_path, png)
    assert png.exists(), result.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 50_000  # a blank 1200x1600 page compresses to a few KB
    dom = helpers.dump_dom(chromium, html_path)
    chart = dom[dom.index('id="token-chart"'):]
    chart = chart[:chart.index("</svg>")]
    assert chart.count("<rect") >= 14 and "<path" in chart


def test_long_paths_are_clipped_to_the_width() -> None:
    """Long absolute paths end a line with … at the width instead of spilling onto a line of their own."""
    sessions = load_sessions(ROOT / "tests" / "fixtures" / "heldout" / "cc13_docs_drift_max_tokens.jsonl")
    lines = render_text(sessions[0], analyze_session(sessions[0]), color=False, width=80).splitlines()
    assert max(len(line) for line in lines) <= 80
    seen = lines.index("  it had just read:")
    assert lines[seen + 1].endswith("…") and lines[seen + 2] == "  and then:"  # one Edit call, one line
