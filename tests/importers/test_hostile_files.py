"""Hostile trace files never crash or run away: each bad line is one ``file:line: reason`` and the rest loads;
lines past the length, depth and integer limits are skipped; counts are clamped; only regular files are read."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from otel_agent_trace import cli
from otel_agent_trace.files.importers import LineError, load
from otel_agent_trace.files.importers import base as importer_base
from otel_agent_trace.files.importers.base import MAX_TOKENS
from otel_agent_trace.model.records import Session
from tests.reliability.support import hang_guard

START = {"turn": 0, "event": "start", "task": "fix the bug"}


def seed_turn(n: int, **extra: Any) -> dict[str, Any]:
    return {"turn": n, "stop_reason": "end_turn", "input_tokens": 100, "output_tokens": 10,
            "content": [{"type": "text", "text": f"turn {n}"}], **extra}


def write(path: Path, *lines: str | dict[str, Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def loaded(path: Path) -> tuple[list[Session], list[LineError]]:
    items = list(load(path))
    return ([i for i in items if isinstance(i, Session)], [i for i in items if isinstance(i, LineError)])


def test_a_findings_value_that_is_not_a_list_is_ignored(tmp_path: Path) -> None:
    """``"findings": 5`` does not stop the turn from loading (it used to raise TypeError)."""
    sessions, errors = loaded(write(tmp_path / "t.jsonl", START, seed_turn(1, findings=5)))
    assert errors == [] and len(sessions[0].turns) == 1


def test_a_finding_with_odd_turn_lists_still_loads(tmp_path: Path) -> None:
    """A recorded finding whose ``turns`` and ``tool_use_ids`` are not lists keeps its kind and turn."""
    finding = {"kind": "tool_loop", "turn": 1, "turns": 7, "tool_use_ids": {"a": 1}}
    sessions, errors = loaded(write(tmp_path / "t.jsonl", START, seed_turn(1, findings=[finding])))
    assert errors == [] and [(f.kind, f.turns) for f in sessions[0].findings] == [("tool_loop", [1])]


@pytest.mark.parametrize("digits", [400, 5_000])
def test_a_huge_integer_is_one_bad_line(tmp_path: Path, digits: int) -> None:
    """A 400- or 5,000-digit integer skips its line with a reason; the lines around it load."""
    huge = '{"turn": 2, "stop_reason": "end_turn", "input_tokens": ' + "9" * digits + "}"
    path = write(tmp_path / "t.jsonl", START, seed_turn(1), huge, seed_turn(3))
    sessions, errors = loaded(path)
    assert [str(e) for e in errors] == [f"{path}:3: an integer of {digits} digits (more than 40)"]
    assert [t.index for t in sessions[0].turns] == [1, 3]


def test_deep_nesting_is_one_bad_line(tmp_path: Path) -> None:
    """A line nested 100,000 levels deep is skipped with a reason instead of a RecursionError."""
    deep = '{"turn": 2, "content": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = write(tmp_path / "t.jsonl", START, deep, seed_turn(3))
    sessions, errors = loaded(path)
    assert [str(e) for e in errors] == [f"{path}:2: nested deeper than 100 levels"]
    assert [t.index for t in sessions[0].turns] == [3]


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    """Tool output full of brackets (inside a JSON string) is not mistaken for deep nesting."""
    sessions, errors = loaded(write(tmp_path / "t.jsonl", START, seed_turn(1, note="[[[{{{" * 500)))
    assert errors == [] and len(sessions[0].turns) == 1


def test_an_over_long_line_is_skipped_without_being_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line past the length limit is reported with its size and skipped; the next line loads."""
    monkeypatch.setattr(importer_base, "MAX_LINE_BYTES", 1_000)
    monkeypatch.setattr(importer_base, "_CHUNK", 100)
    long_line = json.dumps(seed_turn(1, note="x" * 5_000))
    path = write(tmp_path / "t.jsonl", START, long_line, seed_turn(2))
    sessions, errors = loaded(path)
    assert [str(e) for e in errors] == [f"{path}:2: line longer than 1000 bytes ({len(long_line) + 1}); skipped"]
    assert [t.index for t in sessions[0].turns] == [2]


@pytest.mark.parametrize("count", [-1, -10_000_000, -1_000_000_000_000, -1e12, 1e30, 10**39])
def test_absurd_token_counts_are_clamped(tmp_path: Path, count: float) -> None:
    """Negative token counts read as 0 and enormous ones as ``MAX_TOKENS``."""
    sessions, errors = loaded(write(tmp_path / "t.jsonl", START, seed_turn(1, input_tokens=count)))
    assert errors == [] and sessions[0].turns[0].usage.input_tokens == (0 if count < 0 else MAX_TOKENS)


@pytest.mark.parametrize("count", [-10_000_000, -1_000_000_000_000])
def test_the_report_of_a_negative_count_stays_small(tmp_path: Path, count: int,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``report`` on a turn with a hugely negative count prints a normal-sized page (it printed 750 MB or
    ran out of memory)."""
    path = write(tmp_path / "t.jsonl", START, seed_turn(1), seed_turn(2, input_tokens=count), seed_turn(3))
    assert cli.main(["report", "--no-color", str(path)]) == 0
    assert len(capsys.readouterr().out) < 20_000


def test_a_claude_code_count_below_zero_is_clamped(tmp_path: Path) -> None:
    """Claude Code usage takes the largest count seen per message, never a negative one."""
    line = {"type": "assistant", "sessionId": "s", "uuid": "a1", "timestamp": "2025-06-01T10:00:01Z",
            "message": {"id": "m1", "model": "claude-x", "content": [{"type": "text", "text": "hi"}],
                        "usage": {"input_tokens": -10_000_000, "output_tokens": 10**30}}}
    sessions, _ = loaded(write(tmp_path / "s.jsonl", line))
    usage = sessions[0].turns[0].usage
    assert (usage.input_tokens, usage.output_tokens) == (0, MAX_TOKENS)


@pytest.mark.parametrize("ns", [-5, 2**64, 10**30])
def test_out_of_range_timestamps_read_as_unknown(tmp_path: Path, ns: int) -> None:
    """A start time outside OTLP's signed 64-bit range reads as unknown (0), so export cannot reject it."""
    sessions, _ = loaded(write(tmp_path / "t.jsonl", START, seed_turn(1, start_ns=ns, end_ns=ns)))
    assert (sessions[0].turns[0].start_ns, sessions[0].turns[0].end_ns) == (0, 0)


def test_a_turn_number_past_any_session_is_one_bad_line(tmp_path: Path) -> None:
    """``"turn": 10**30`` is reported and skipped rather than sizing anything by it."""
    path = write(tmp_path / "t.jsonl", START, seed_turn(10**30), seed_turn(1))
    sessions, errors = loaded(path)
    assert len(errors) == 1 and errors[0].line_no == 2 and [t.index for t in sessions[0].turns] == [1]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A named pipe with no writer is refused at once instead of hanging the import."""
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with hang_guard(20):
        sessions, errors = loaded(fifo)
    assert sessions == []
    assert [e.message for e in errors] == ["not a regular file (a FIFO, device or directory); skipped"]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_an_endless_device_is_refused() -> None:
    """/dev/zero is refused without reading from it (it used to grow memory without bound)."""
    with hang_guard(20):
        sessions, errors = loaded(Path("/dev/zero"))
    assert sessions == [] and len(errors) == 1 and errors[0].line_no == 0


def test_many_lines_of_one_claude_code_message_merge_in_linear_time(tmp_path: Path) -> None:
    """20,000 lines sharing one message id become one turn with every block, without a hang (this took
    57 s when each block was compared with every earlier one)."""
    lines = [{"type": "assistant", "sessionId": "s", "uuid": f"a{i}", "timestamp": "2025-06-01T10:00:01Z",
              "message": {"id": "msg_same", "model": "claude-x", "content": [{"type": "text", "text": f"chunk {i}"}],
                          "usage": {"input_tokens": 10, "output_tokens": i}}} for i in range(20_000)]
    path = write(tmp_path / "s.jsonl", *lines)
    with hang_guard(60):
        sessions, errors = loaded(path)
    assert errors == [] and len(sessions[0].turns) == 1
    turn = sessions[0].turns[0]
    assert len(turn.content or []) == 20_000 and turn.usage.output_tokens == 19_999 and "chunk 19999" in turn.text


def test_repeated_blocks_are_merged_once(tmp_path: Path) -> None:
    """A later line repeating earlier blocks of the same message adds only its new block."""
    first = {"type": "text", "text": "first"}
    contents = [[first], [first, {"type": "text", "text": "b1"}]]
    lines = [{"type": "assistant", "sessionId": "s", "uuid": f"a{i}", "timestamp": "2025-06-01T10:00:01Z",
              "message": {"id": "m", "model": "claude-x", "content": content}} for i, content in enumerate(contents)]
    sessions, _ = loaded(write(tmp_path / "s.jsonl", *lines))
    assert [b["text"] for b in sessions[0].turns[0].content or []] == ["first", "b1"]


def test_a_line_that_breaks_an_importer_rule_costs_only_that_line(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An unforeseen exception while importing one line becomes that line's error; later lines load."""
    seed = sys.modules["otel_agent_trace.files.importers.seed"]
    real = seed.finding_from_dict

    def explode(data: Any, session: str) -> Any:
        if data == {"kind": "boom"}:
            raise ZeroDivisionError
        return real(data, session)

    monkeypatch.setattr(seed, "finding_from_dict", explode)
    path = write(tmp_path / "t.jsonl", START, seed_turn(1, findings=[{"kind": "boom"}]), seed_turn(2))
    sessions, errors = loaded(path)
    assert [str(e) for e in errors] == [f"{path}:2: could not import this line (ZeroDivisionError); skipped"]
    assert 2 in [t.index for t in sessions[0].turns]


def test_an_end_reason_with_braces_is_reported_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown end reason like ``{0}`` from the file is printed, not used as a format string."""
    path = write(tmp_path / "t.jsonl", START, seed_turn(1), {"event": "end", "end_reason": "{0} {x"})
    assert cli.main(["report", "--no-color", str(path)]) == 0
    assert "{0} {x" in capsys.readouterr().out
