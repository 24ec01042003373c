"""The JSONL exporter: the seed article's line shapes, round trips through the importer, concurrency."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from otel_agent_trace.files.importers import load_sessions
from otel_agent_trace.files.jsonl import JsonlTraceWriter, start_line, tool_results_line, turn_line
from otel_agent_trace.model.records import Finding, Session, ToolCall, ToolResult, ToolUse, Turn, Usage

SEED_TURN_KEYS = {"turn", "stop_reason", "input_tokens", "output_tokens", "content"}


def make_session(session_id: str = "s1", turns: int = 3, content: bool = True) -> Session:
    """A small session: each turn but the last reads one file; the last ends the run."""
    session = Session(id=session_id, agent_name="fixer", task="fix it", end_reason="end_turn")
    for n in range(1, turns + 1):
        last = n == turns
        uses = [] if last else [ToolUse(f"{session_id}-u{n}", "Read", {"file_path": f"src/m{n}.py"})]
        turn = Turn(session=session_id, index=n, model="claude-sonnet-4-6",
                    stop_reason="end_turn" if last else "tool_use",
                    usage=Usage(100 * n, 10 * n, 1000 * n, 50), tool_uses=uses, text=f"turn {n}",
                    response_id=f"msg_{n}", start_ns=1_000 * n, end_ns=1_000 * n + 500)
        if content:
            turn.content = [{"type": "text", "text": f"turn {n}"}] + [
                {"type": "tool_use", "id": u.id, "name": u.name, "input": u.input} for u in uses]
        session.turns.append(turn)
        for use in uses:
            session.tool_calls.append(ToolCall(session_id, use.id, "Read", n, use.input, result=f"body {n}",
                                               is_error=n == 2, start_ns=1_000 * n + 600, end_ns=1_000 * n + 900,
                                               source="dispatcher"))
    return session


def write_session(writer: JsonlTraceWriter, session: Session) -> None:
    writer.start(session.id, session.task, session.agent_name)
    for turn in session.turns:
        writer.turn(turn, [])
        calls = [c for c in session.tool_calls if c.turn_index == turn.index]
        if calls:
            results = [ToolResult(c.tool_use_id, c.result, c.is_error or None) for c in calls]
            writer.tool_results(session.id, turn.index, results, calls)
    writer.end(session)


def test_turn_line_has_the_seed_keys_and_ours() -> None:
    """A turn line carries the article's keys plus session, model, cache counts and findings."""
    turn = make_session().turns[0]
    finding = Finding("token_jump", "warning", 1, "big", session="s1", turns=[1])
    line = turn_line(turn, [finding])
    assert line.keys() >= SEED_TURN_KEYS
    assert (line["turn"], line["input_tokens"], line["cache_read_input_tokens"], line["session"]) == (1, 100, 1000,
                                                                                                     "s1")
    assert line["findings"][0]["kind"] == "token_jump"


def test_turn_line_without_captured_content_keeps_tool_uses() -> None:
    """With content capture off, the line still lists the tool_use blocks the records kept."""
    turn = make_session(content=False).turns[0]
    assert [b["type"] for b in turn_line(turn)["content"]] == ["text", "tool_use"]


def test_tool_results_line_is_the_seed_shape() -> None:
    """A tool-results line is ``{"turn": N, "tool_results": [tool_result blocks]}`` plus optional keys."""
    session = make_session()
    line = tool_results_line("s1", 1, [ToolResult("s1-u1", "body 1")], session.tool_calls[:1])
    block = line["tool_results"][0]
    assert (line["turn"], line["session"]) == (1, "s1")
    assert (block["type"], block["tool_use_id"], block["content"], block["name"]) == (
        "tool_result", "s1-u1", "body 1", "Read")


def test_start_line_is_turn_zero() -> None:
    """The start line is the article's ``{"turn": 0, "event": "start", "task": ...}`` plus session."""
    assert start_line("s1", "fix it", "fixer") == {"turn": 0, "event": "start", "task": "fix it",
                                                  "session": "s1", "agent": "fixer"}


def test_round_trip_keeps_turns_usage_and_tool_calls(tmp_path: Path) -> None:
    """Records written by the writer and read back by the importer are the same records."""
    original = make_session()
    writer = JsonlTraceWriter(tmp_path / "trace.jsonl")
    write_session(writer, original)
    writer.close()
    (loaded,) = load_sessions(tmp_path / "trace.jsonl")
    assert (loaded.id, loaded.task, loaded.agent_name, loaded.end_reason) == ("s1", "fix it", "fixer", "end_turn")
    for got, want in zip(loaded.turns, original.turns, strict=True):
        assert (got.index, got.model, got.stop_reason, got.usage, got.tool_uses, got.text, got.response_id,
                got.start_ns, got.end_ns) == (want.index, want.model, want.stop_reason, want.usage,
                                              want.tool_uses, want.text, want.response_id, want.start_ns,
                                              want.end_ns)
    assert [(c.tool_use_id, c.name, c.turn_index, c.input, c.result, c.is_error, c.start_ns, c.end_ns)
            for c in loaded.tool_calls] == [
        (c.tool_use_id, c.name, c.turn_index, c.input, c.result, c.is_error, c.start_ns, c.end_ns)
        for c in original.tool_calls]


def test_round_trip_keeps_recorded_findings(tmp_path: Path) -> None:
    """Findings on the end line come back on Session.findings."""
    session = make_session()
    session.findings = [Finding("tool_loop", "error", 2, "stuck", session="s1", turns=[1, 2],
                                evidence={"tool": "Read"})]
    writer = JsonlTraceWriter(tmp_path / "trace.jsonl")
    write_session(writer, session)
    (loaded,) = load_sessions(tmp_path / "trace.jsonl")
    assert [(f.kind, f.turns, f.evidence) for f in loaded.findings] == [("tool_loop", [1, 2], {"tool": "Read"})]


def test_writer_appends_and_each_line_is_flushed(tmp_path: Path) -> None:
    """Existing lines are kept and every written line is on disk before the writer is closed."""
    path = tmp_path / "trace.jsonl"
    path.write_text('{"turn": 0, "event": "start", "task": "earlier", "session": "old"}\n')
    writer = JsonlTraceWriter(path)
    writer.turn(make_session().turns[0])
    assert [json.loads(x)["session"] for x in path.read_text().splitlines()] == ["old", "s1"]
    writer.close()


def test_concurrent_sessions_never_interleave_within_a_line(tmp_path: Path) -> None:
    """Eight threads writing large lines at once leave only whole, valid JSON lines."""
    path = tmp_path / "trace.jsonl"
    writer = JsonlTraceWriter(path)
    big = "x" * 20_000  # larger than any I/O buffer, so a torn write would show

    def run(n: int) -> None:
        session = make_session(f"t{n}", turns=40)
        for turn in session.turns:
            turn.text = big
            turn.content = [{"type": "text", "text": big}]
        write_session(writer, session)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 8 * (1 + 40 + 39 + 1)
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert {s.id for s in load_sessions(path)} == {f"t{n}" for n in range(8)}


def test_writer_never_raises_and_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An unwritable path is logged once; every later write is silently dropped."""
    writer = JsonlTraceWriter(tmp_path)  # a directory cannot be opened for appending
    with caplog.at_level(logging.WARNING, logger="otel_agent_trace.files.jsonl"):
        session = make_session()
        write_session(writer, session)
        write_session(writer, session)
    assert len([r for r in caplog.records if "could not write" in r.getMessage()]) == 1
    writer.close()


def test_unserialisable_input_is_written_as_text(tmp_path: Path) -> None:
    """Tool inputs that are not JSON (objects, sets) are written with str() instead of failing."""
    session = make_session()
    session.turns[0].content = [{"type": "tool_use", "id": "u", "name": "Run", "input": {"obj": object()}}]
    writer = JsonlTraceWriter(tmp_path / "trace.jsonl")
    writer.turn(session.turns[0])
    writer.close()
    line = json.loads((tmp_path / "trace.jsonl").read_text())
    assert line["content"][0]["input"]["obj"].startswith("<object object")


def test_writes_after_close_are_dropped(tmp_path: Path) -> None:
    """A closed writer ignores late calls (e.g. sessions ended during interpreter shutdown)."""
    writer = JsonlTraceWriter(tmp_path / "trace.jsonl")
    writer.close()
    writer.turn(make_session().turns[0])
    assert not (tmp_path / "trace.jsonl").exists()
