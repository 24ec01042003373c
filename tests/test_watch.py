"""``watch``: a live JSONL file (our own writer's format) or a Claude Code folder, followed as it grows."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_agent_trace.cli.watch import Watcher, watch
from otel_agent_trace.files.jsonl import JsonlTraceWriter
from otel_agent_trace.files.report.terminal import console
from otel_agent_trace.model.records import Session, ToolCall, ToolResult, ToolUse, Turn, Usage

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SID = "live-1"


def steps(writer: JsonlTraceWriter) -> Iterator[str]:
    """Write a failing run one line at a time, as the instrumented agent does; yields what was written."""
    writer.start(SID, "fix the flaky test", agent_name="live-agent")
    yield "start"
    for n in range(1, 5):
        use = ToolUse(f"u{n}", "Edit", {"file_path": "auth/session.ts", "old_string": f"x{n}"})
        turn = Turn(SID, n, model="claude-sonnet-4-6", stop_reason="tool_use",
                    usage=Usage(2_000 + 100 * n, 60, cache_read_input_tokens=1_500), tool_uses=[use],
                    start_ns=time.time_ns())
        writer.turn(turn)
        yield f"turn {n}"
        call = ToolCall(SID, use.id, "Edit", n, use.input, "Error: String to replace not found in file.",
                        is_error=True)
        writer.tool_results(SID, n, [ToolResult(use.id, call.result, True)], [call])
        yield f"results {n}"
    session = Session(SID, agent_name="live-agent", end_reason="turn_limit")
    writer.end(session)
    yield "end"


def capture() -> tuple[io.StringIO, object]:
    buffer = io.StringIO()
    return buffer, console(buffer, color=False, width=160)


def test_each_poll_shows_only_what_was_appended(tmp_path: Path) -> None:
    """A turn appended between two polls appears in the second poll and only there."""
    path = tmp_path / "live.jsonl"
    writer = JsonlTraceWriter(path)
    lines = steps(writer)
    watcher = Watcher(path)
    assert "not there yet" in watcher.start()
    next(lines), next(lines)  # start + turn 1
    first = " ".join(str(line) for line in watcher.poll())
    next(lines), next(lines)  # results 1 + turn 2
    second = " ".join(str(line) for line in watcher.poll())
    writer.close()
    assert "T1" in first and "T2" not in first
    assert "T2" in second and "T1 " not in second
    assert "Edit auth/session.ts failed" in second  # turn 1's failed result arrived after turn 1 was shown
    assert watcher.poll() == []


def test_watch_follows_a_file_written_by_another_thread(tmp_path: Path) -> None:
    """Lines appended by another thread while ``watch`` runs show up live, then a summary with findings."""
    path = tmp_path / "live.jsonl"
    writer = JsonlTraceWriter(path)
    go, done = threading.Event(), threading.Event()
    finished = threading.Event()

    def write() -> None:
        for _ in steps(writer):
            done.set()
            go.wait()
            go.clear()
        writer.close()
        finished.set()
        done.set()

    def sleep(_: float) -> None:  # each poll interval lets the writer thread append one more line
        if not finished.is_set():
            done.clear()
            go.set()
            done.wait(30)

    thread = threading.Thread(target=write, daemon=True)
    buffer, out = capture()
    thread.start()
    done.wait(30)
    code = watch(str(path), out=out, errors=io.StringIO(), interval=0, timeout=0.2, sleep=sleep)
    thread.join(30)
    text = buffer.getvalue()
    assert [f"T{n}" in text for n in range(1, 5)] == [True] * 4
    assert text.index("T1 ") < text.index("T4 ")
    assert "tool_loop" in text  # found live, from the appended failures
    assert "1 session, 4 turns" in text and "live-agent" in text
    assert code == 0  # warnings only: below the default --fail-on error


def test_watch_a_projects_folder_shows_only_new_turns(tmp_path: Path) -> None:
    """In a directory, files there at the start are a baseline; a session file added later is shown whole."""
    project = tmp_path / "projects" / "-home-me-repo"
    project.mkdir(parents=True)
    shutil.copy(FIXTURES / "claude_code" / "split_messages.jsonl", project / "old.jsonl")
    watcher = Watcher(tmp_path / "projects")
    assert "1 trace file" in watcher.start()
    assert watcher.poll() == []
    shutil.copy(FIXTURES / "claude_code" / "compaction.jsonl", project / "new.jsonl")
    shown = " ".join(str(line) for line in watcher.poll())
    assert "claude-code" in shown and "T1" in shown


def test_once_prints_the_summary_and_exits(tmp_path: Path) -> None:
    """``--once`` reads what is there, prints it and the ranked summary, and returns."""
    buffer, out = capture()
    code = watch(str(FIXTURES / "seed" / "turn_limit.jsonl"), out=out, errors=io.StringIO(), once=True)
    text = buffer.getvalue()
    assert "T14" in text and "1 session, 14 turns" in text and code == 1


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery")
def test_ctrl_c_stops_cleanly_with_a_summary(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) ends ``watch`` with the summary and the exit code, never a traceback."""
    path = tmp_path / "live.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    # A shell that starts the test run in the background makes it ignore SIGINT, and the child would inherit
    # that: give it the default disposition a terminal's Ctrl-C meets.
    process = subprocess.Popen([sys.executable, "-m", "otel_agent_trace.cli", "watch", str(path),
                                "--interval", "0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert process.stdout is not None
        assert "watching" in process.stdout.readline()
        writer = JsonlTraceWriter(path)
        lines = steps(writer)
        for _ in range(3):
            next(lines)  # start, turn 1, results 1
        writer.close()
        seen = ""
        while "T1" not in seen:
            seen = process.stdout.readline()
            assert seen, "watch exited early"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in err
    assert "1 session, 1 turn" in out
    assert process.returncode == 0


def test_a_half_written_first_line_is_not_called_a_bad_file(tmp_path: Path) -> None:
    """A line still being written is waited for; the file is only judged once its lines are complete."""
    path = tmp_path / "live.jsonl"
    path.write_text('{"turn": 0, "event": "sta')
    watcher = Watcher(path)
    watcher.start()
    watcher.poll()
    assert watcher.problems == []
    with path.open("a") as handle:
        handle.write('rt", "session": "s1", "task": "t"}\n')
    watcher.poll()
    assert watcher.problems == [] and (str(path), "s1") in watcher.sessions


def test_a_file_already_in_the_folder_shows_only_its_appended_turns(tmp_path: Path) -> None:
    """Turns written before the watch began are history; appended ones show, even without timestamps."""
    folder = tmp_path / "traces"
    folder.mkdir()
    lines = (FIXTURES / "seed" / "clean_run.jsonl").read_text().splitlines(keepends=True)
    path = folder / "run.jsonl"
    path.write_text("".join(lines[:-2]))  # everything but the last turn
    watcher = Watcher(folder)
    watcher.start()
    with path.open("a") as handle:
        handle.write("".join(lines[-2:]))
    shown = [str(line) for line in watcher.poll()]
    assert [m.group() for line in shown if (m := re.search(r"\bT\d+\b", line))] == ["T6"]
