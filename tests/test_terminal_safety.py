"""Terminal injection: control sequences and bidi controls from a transcript never reach the terminal raw."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from otel_agent_trace import cli
from otel_agent_trace.files.report.terminal import clean, json_text

PAYLOADS = {
    "clear screen": "\x1b[2J\x1b[H",
    "window title": "\x1b]0;owned\x07",
    "OSC 52 clipboard write": "\x1b]52;c;cm0gLXJmIH4=\x07",
    "OSC 8 link": "\x1b]8;;https://evil.example/\x1b\\docs\x1b]8;;\x1b\\",
    "C1 CSI": "\x9b2J\x9d0;owned\x9c",
    "bidi override": "\u202eexe.txt\u202c\u2066x\u2069",
}
ALL = "".join(PAYLOADS.values())
SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own colour codes: the only escapes allowed out
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def hostile_trace(path: Path) -> Path:
    """A seed-format session whose every file-borne field carries every payload."""
    sid = f"s{ALL}"
    lines = [{"turn": 0, "event": "start", "task": f"task {ALL}", "session": sid, "agent": f"agent{ALL}"}]
    for n in range(1, 5):
        target = f"src/{ALL}missing{n}.py" if n == 1 else f"build {ALL}"
        name = "Read" if n == 1 else "Bash"
        key = "file_path" if n == 1 else "command"
        lines.append({"turn": n, "stop_reason": "tool_use", "input_tokens": 1000 * n, "output_tokens": 50,
                      "model": f"claude-sonnet-4-6{ALL}", "session": sid,
                      "content": [{"type": "text", "text": f"thinking {ALL}"},
                                  {"type": "tool_use", "id": f"u{n}", "name": name, "input": {key: target}}]})
        lines.append({"turn": n, "session": sid, "tool_results": [
            {"type": "tool_result", "tool_use_id": f"u{n}", "is_error": True,
             "content": f"Error: no such file or directory {ALL}"}]})
    lines.append({"turn": 5, "stop_reason": "end_turn", "input_tokens": 6000, "output_tokens": 50, "session": sid,
                  "content": [{"type": "text", "text": f"done {ALL}"}]})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def assert_inert(text: str) -> None:
    """Nothing but SGR colour codes may act on the terminal."""
    assert text, "expected output"
    stray = UNSAFE.findall(SGR.sub("", text))
    assert not stray, f"raw control characters reached the output: {sorted(set(stray))!r}"


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    return hostile_trace(tmp_path / "hostile.jsonl")


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_clean_makes_each_payload_visible(name: str) -> None:
    """Each payload comes out as visible escapes with no control or bidi character left."""
    cleaned = clean(PAYLOADS[name])
    assert not UNSAFE.search(cleaned)
    assert "\\x" in cleaned or "\\u" in cleaned


def test_clean_keeps_newlines_and_tabs_unless_one_line() -> None:
    """Newline and tab are layout, kept by default and escaped on one-line fields."""
    assert clean("a\n\tb") == "a\n\tb"
    assert clean("a\n\tb", one_line=True) == "a\\x0a\\x09b"


@pytest.mark.parametrize("color", [False, True])
def test_report_is_inert(trace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                         color: bool) -> None:
    """``report`` (coloured on a terminal, and with --no-color) prints the payloads only as escapes."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    cli.main(["report", str(trace), *([] if color else ["--no-color"])])
    out, err = capsys.readouterr()
    assert ("\x1b[" in out) is color
    assert_inert(out)
    assert_inert(err + "x")
    assert "\\x1b]52;c;" in out  # still there for a reader to see, as text


def test_findings_table_is_inert(trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The one-session findings list and the ranked table of many sessions print the payloads as escapes."""
    cli.main(["findings", str(trace)])
    single = capsys.readouterr()
    other = hostile_trace(tmp_path / "second.jsonl")
    cli.main(["findings", str(trace), str(other)])
    ranked = capsys.readouterr()
    for text in (single.out, ranked.out, single.err + "x", ranked.err + "x"):
        assert_inert(text)
    assert "hallucinated_input" in single.out and "sessions, worst first" in ranked.out


def test_findings_json_escapes_and_round_trips(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``findings --json`` holds no raw control or bidi character, and decodes back to the original text."""
    cli.main(["findings", "--json", str(trace)])
    out = capsys.readouterr().out
    assert not UNSAFE.search(out.replace("\n", ""))
    rows = json.loads(out)
    assert rows and all(row["session"] == f"s{ALL}" for row in rows)


def test_json_text_escapes_c1_and_bidi() -> None:
    """C1 and bidi characters, which json.dumps leaves raw with ensure_ascii=False, become \\uXXXX."""
    text = json_text({"m": "\x9b\u202e"}, indent=None)
    assert text == '{"m": "\\u009b\\u202e"}' and json.loads(text) == {"m": "\x9b\u202e"}


def test_watch_is_inert(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``watch`` prints turns and findings of a hostile file as escapes."""
    cli.main(["watch", "--once", str(trace)])
    out, err = capsys.readouterr()
    assert_inert(out)
    assert_inert(err + "x")
    assert "T4" in out


def test_html_report_escapes_markup_and_controls(trace: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The HTML page carries no raw control character either (a copied snippet stays inert)."""
    page = tmp_path / "page.html"
    cli.main(["report", str(trace), "--html", str(page)])
    assert not UNSAFE.search(page.read_text().replace("\n", ""))
