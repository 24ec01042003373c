"""``load``: format detection, streaming, directories and malformed lines."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

from otel_agent_trace.files.importers import LineError, detect_format, load, load_sessions
from otel_agent_trace.files.importers.base import parsed_lines
from otel_agent_trace.model.records import Session

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_seed_format_is_detected() -> None:
    """A file whose lines carry ``turn`` keys is read as the seed format."""
    assert detect_format(list(parsed_lines(FIXTURES / "seed" / "clean_run.jsonl"))) == "seed"


def test_claude_code_format_is_detected() -> None:
    """A file of typed lines with uuid/sessionId is read as a Claude Code transcript."""
    lines = list(parsed_lines(FIXTURES / "claude_code" / "compaction.jsonl"))
    assert detect_format(lines) == "claude_code"


def test_claude_code_is_detected_past_leading_ui_state_lines(tmp_path: Path) -> None:
    """Many file-history snapshots before the first message do not hide the format."""
    snapshot = json.dumps({"type": "file-history-snapshot", "messageId": "m", "snapshot": {}})
    body = (FIXTURES / "claude_code" / "compaction.jsonl").read_text()
    path = tmp_path / "t.jsonl"
    path.write_text((snapshot + "\n") * 120 + body)
    assert len(load_sessions(path)[0].turns) == 4


def test_load_is_lazy() -> None:
    """``load`` returns an iterator: nothing is read until it is consumed."""
    assert isinstance(load(FIXTURES / "seed" / "clean_run.jsonl"), Iterator)


def test_malformed_line_is_reported_and_the_rest_imported(tmp_path: Path) -> None:
    """A broken line yields a LineError naming file:line; every other line still imports."""
    lines = (FIXTURES / "seed" / "turn_limit.jsonl").read_text().splitlines()
    lines.insert(5, '{"turn": 3, "stop_reason": "tool_use", "input_tok')
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n")
    items = list(load(path))
    errors = [i for i in items if isinstance(i, LineError)]
    assert [(e.file, e.line_no) for e in errors] == [(str(path), 6)]
    assert str(errors[0]).startswith(f"{path}:6: not valid JSON")
    (session,) = [i for i in items if isinstance(i, Session)]
    assert len(session.turns) == 14 and len(session.tool_calls) == 14


def test_malformed_line_in_a_claude_code_file(tmp_path: Path) -> None:
    """Claude Code transcripts report broken lines the same way and keep the rest."""
    lines = (FIXTURES / "claude_code" / "split_messages.jsonl").read_text().splitlines()
    lines.insert(4, "not json at all")
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n")
    items = list(load(path))
    assert [i.line_no for i in items if isinstance(i, LineError)] == [5]
    assert len(next(i for i in items if isinstance(i, Session)).turns) == 4


def test_non_object_line_is_reported(tmp_path: Path) -> None:
    """A valid JSON value that is not an object is a LineError too."""
    path = tmp_path / "t.jsonl"
    path.write_text('{"turn": 1, "stop_reason": "end_turn", "content": []}\n[1, 2]\n')
    errors = [i for i in load(path) if isinstance(i, LineError)]
    assert [(e.line_no, "expected a JSON object" in e.message) for e in errors] == [(2, True)]


def test_unrecognised_file_is_one_error(tmp_path: Path) -> None:
    """A JSONL file in neither format yields a file-level LineError (line 0) and no session."""
    path = tmp_path / "other.jsonl"
    path.write_text('{"hello": "world"}\n')
    assert [(type(i).__name__, i.line_no) for i in load(path)] == [("LineError", 0)]


def test_missing_file_is_an_error_not_an_exception(tmp_path: Path) -> None:
    """A path that does not exist yields a LineError."""
    (error,) = list(load(tmp_path / "nope.jsonl"))
    assert isinstance(error, LineError) and error.message == "no such file"


def test_empty_file_has_no_sessions(tmp_path: Path) -> None:
    """An empty file yields nothing."""
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    assert list(load(path)) == []


def test_directory_loads_each_file_and_subagents_once(tmp_path: Path) -> None:
    """A directory loads every *.jsonl once; sub-agent files come with their session, not on their own."""
    shutil.copytree(FIXTURES / "claude_code", tmp_path / "cc")
    ids = [s.id for s in load_sessions(tmp_path / "cc")]
    assert len(ids) == len(set(ids)) == 8
    assert ids.count("3c9d8e7f-1a2b-4c5d-9e8f-7a6b5c4d3e2f/agent-5e1f9a2b") == 1
