"""The seed article's JSONL (and ours) → Sessions."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from otel_agent_trace.files.importers import LineError, load, load_sessions
from otel_agent_trace.model.records import Session

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def one(path: Path) -> Session:
    sessions = load_sessions(path)
    assert len(sessions) == 1
    return sessions[0]


def turn(n: int, stop: str = "tool_use", tools: tuple[str, ...] = ("Read",), **extra: Any) -> dict[str, Any]:
    content = (
        [
            {"type": "tool_use", "id": f"t{n}{i}", "name": name, "input": {"file_path": f"f{n}.py"}}
            for i, name in enumerate(tools)
        ]
        if stop == "tool_use"
        else [{"type": "text", "text": "done"}]
    )
    return {
        "turn": n,
        "stop_reason": stop,
        "input_tokens": 1000 * n,
        "output_tokens": 50,
        "content": content,
        **extra,
    }


def results(n: int, *texts: str) -> dict[str, Any]:
    return {
        "turn": n,
        "tool_results": [
            {"type": "tool_result", "tool_use_id": f"t{n}{i}", "content": text}
            for i, text in enumerate(texts)
        ],
    }


def test_fixture_is_what_the_article_loop_writes(tmp_path: Path) -> None:
    """Re-running the article's loop on the scripted fake client reproduces the committed fixtures."""
    pytest.importorskip("anthropic")
    spec = importlib.util.spec_from_file_location("make_fixtures", SEED / "make_fixtures.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_all(tmp_path)
    for name in ("clean_run.jsonl", "turn_limit.jsonl"):
        fresh, committed = one(tmp_path / name), one(SEED / name)
        assert [(t.index, t.stop_reason, t.usage, t.tool_uses) for t in fresh.turns] == [
            (t.index, t.stop_reason, t.usage, t.tool_uses) for t in committed.turns
        ]
        assert [(c.tool_use_id, c.result) for c in fresh.tool_calls] == [
            (c.tool_use_id, c.result) for c in committed.tool_calls
        ]


def test_turn_numbers_are_the_files() -> None:
    """Turn.index is the ``turn`` number the loop logged (1-based, the start line is turn 0)."""
    session = one(SEED / "turn_limit.jsonl")
    assert [t.index for t in session.turns] == list(range(1, 15))


def test_usage_and_content_come_from_the_turn_line() -> None:
    """Token counts, stop_reason, tool_use blocks and text are read from each turn line."""
    first, second = one(SEED / "turn_limit.jsonl").turns[:2]
    assert (first.usage.input_tokens, first.usage.output_tokens) == (2426, 72)
    assert first.stop_reason == "tool_use"
    assert [(u.name, u.input) for u in first.tool_uses] == [("Read", {"file_path": "src/auth/sessions.ts"})]
    assert second.text == "Let me look at the layout first."


def test_tool_results_join_the_tool_use_of_their_turn() -> None:
    """A tool_results line for turn N becomes ToolCalls named and shaped by turn N's tool_use blocks."""
    call = one(SEED / "turn_limit.jsonl").tool_calls[1]
    assert (call.turn_index, call.name, call.input, call.source) == (
        2,
        "Bash",
        {"command": "ls auth"},
        "imported",
    )
    assert call.result == "middleware.ts\nsession.test.ts\nsession.ts\nstore.ts"


def test_results_travel_with_the_following_turn() -> None:
    """Turn N+1's ``tool_results`` are the results of turn N's tools, as in the next request."""
    session = one(SEED / "turn_limit.jsonl")
    assert session.turns[0].tool_results == []
    assert [r.tool_use_id for r in session.turns[1].tool_results] == ["toolu_010"]


def test_error_results_are_recognised_without_a_flag() -> None:
    """The article logs no is_error, so failures are recognised from the result text."""
    calls = one(SEED / "turn_limit.jsonl").tool_calls
    assert calls[0].is_error  # ENOENT
    assert not calls[1].is_error
    assert all(c.is_error for c in calls[8:])  # String to replace not found


def test_explicit_is_error_wins(tmp_path: Path) -> None:
    """An ``is_error`` key on the tool_result block is kept on the ToolResult and the ToolCall."""
    line = results(1, "all good")
    line["tool_results"][0]["is_error"] = True
    session = one(write_lines(tmp_path / "t.jsonl", [turn(1), line, turn(2, "end_turn")]))
    assert session.tool_calls[0].is_error is True
    assert session.turns[1].tool_results[0].is_error is True


def test_list_content_is_joined_text(tmp_path: Path) -> None:
    """tool_result content given as text blocks is imported as their text."""
    line = results(1, "x")
    line["tool_results"][0]["content"] = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    session = one(write_lines(tmp_path / "t.jsonl", [turn(1), line]))
    assert session.tool_calls[0].result == "a\nb"


def test_task_comes_from_the_start_line() -> None:
    """The start line's task becomes Session.task."""
    assert one(SEED / "clean_run.jsonl").task.startswith("Sessions never expire")


def test_unkeyed_lines_form_one_session_named_after_the_file() -> None:
    """Without ``session`` keys the whole file is one session whose id is the file stem."""
    session = one(SEED / "clean_run.jsonl")
    assert session.id == "clean_run" and session.source.endswith("clean_run.jsonl")


def test_clean_run_ends_with_end_turn() -> None:
    """A last turn with stop_reason end_turn gives end_reason end_turn."""
    assert one(SEED / "clean_run.jsonl").end_reason == "end_turn"


def test_tool_use_then_logged_results_is_the_turn_limit() -> None:
    """The article's loop stops after a tool_use turn's results only at its turn limit."""
    assert one(SEED / "turn_limit.jsonl").end_reason == "turn_limit"


def test_tool_use_without_results_is_abandoned(tmp_path: Path) -> None:
    """A trace that stops right after a tool_use turn (process died mid-tool) is abandoned."""
    assert one(write_lines(tmp_path / "t.jsonl", [turn(1)])).end_reason == "abandoned"


def test_max_tokens_end_reason(tmp_path: Path) -> None:
    """A last turn cut off by max_tokens gives end_reason max_tokens."""
    assert one(write_lines(tmp_path / "t.jsonl", [turn(1, "max_tokens")])).end_reason == "max_tokens"


def test_end_line_sets_end_reason_and_findings(tmp_path: Path) -> None:
    """Our end line's end_reason and findings are taken as recorded."""
    finding = {"kind": "tool_loop", "severity": "error", "turn": 1, "turns": [1], "message": "m"}
    session = one(
        write_lines(
            tmp_path / "t.jsonl",
            [
                {"turn": 0, "event": "start", "task": "x", "session": "s1"},
                {**turn(1), "session": "s1"},
                {"event": "end", "session": "s1", "end_reason": "error", "findings": [finding]},
            ],
        )
    )
    assert session.end_reason == "error"
    assert [(f.kind, f.severity, f.turns) for f in session.findings] == [("tool_loop", "error", [1])]


def test_sessions_are_told_apart_by_their_key(tmp_path: Path) -> None:
    """Interleaved lines of concurrent sessions are split by the ``session`` key."""
    lines = [
        {**turn(1), "session": "a"},
        {**turn(1), "session": "b"},
        {**results(1, "ok"), "session": "a"},
        {**turn(2, "end_turn"), "session": "a"},
        {**results(1, "ok"), "session": "b"},
    ]
    sessions = {s.id: s for s in load_sessions(write_lines(tmp_path / "t.jsonl", lines))}
    assert [t.index for t in sessions["a"].turns] == [1, 2]
    assert [c.session for c in sessions["b"].tool_calls] == ["b"]


def test_ended_sessions_are_yielded_before_the_file_ends(tmp_path: Path) -> None:
    """A session with an end line comes out when that line is read, before still-open ones."""
    lines = [
        {**turn(1), "session": "open"},
        {**turn(1, "end_turn"), "session": "done"},
        {"event": "end", "session": "done", "end_reason": "end_turn"},
        {**turn(2), "session": "open"},
    ]
    assert [s.id for s in load_sessions(write_lines(tmp_path / "t.jsonl", lines))] == ["done", "open"]


def test_a_second_start_line_starts_a_new_session(tmp_path: Path) -> None:
    """Two runs appended to one file without session keys become two sessions."""
    start = {"turn": 0, "event": "start", "task": "x"}
    sessions = load_sessions(write_lines(tmp_path / "t.jsonl", [start, turn(1, "end_turn"), start, turn(1)]))
    assert [s.id for s in sessions] == ["t", "t#2"]


def test_duplicate_turn_is_reported_and_skipped(tmp_path: Path) -> None:
    """A turn number seen twice in one session is a LineError; the first one is kept."""
    items = list(load(write_lines(tmp_path / "t.jsonl", [turn(1), turn(1, "end_turn")])))
    errors = [i for i in items if isinstance(i, LineError)]
    assert [e.line_no for e in errors] == [2]
    assert [s.turns[0].stop_reason for s in items if isinstance(s, Session)] == ["tool_use"]


def test_line_after_the_end_line_is_reported(tmp_path: Path) -> None:
    """A line for a session that already ended is reported instead of silently reopening it."""
    lines = [
        {**turn(1, "end_turn"), "session": "s"},
        {"event": "end", "session": "s", "end_reason": "end_turn"},
        {**results(1, "late"), "session": "s"},
    ]
    errors = [i for i in load(write_lines(tmp_path / "t.jsonl", lines)) if isinstance(i, LineError)]
    assert len(errors) == 1 and "after its end line" in errors[0].message
