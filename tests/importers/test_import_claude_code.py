"""Claude Code session transcripts → Sessions (DESIGN §8), on small hand-made fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from otel_agent_trace.files.importers import load_sessions
from otel_agent_trace.files.importers.base import iso_to_ns
from otel_agent_trace.model.records import Session

CC = Path(__file__).resolve().parent.parent / "fixtures" / "claude_code"


def main_session(name: str) -> Session:
    return load_sessions(CC / name)[0]


def test_split_message_lines_merge_into_one_turn() -> None:
    """Lines sharing message.id are one turn: their blocks concatenated in order."""
    turns = main_session("split_messages.jsonl").turns
    assert len(turns) == 4
    assert [b["type"] for b in turns[1].content] == ["text", "tool_use", "tool_use"]
    assert turns[1].tool_names == ["Grep", "Bash"]
    assert turns[1].text.startswith("The field name is wrong")


def test_split_message_usage_is_the_largest_seen() -> None:
    """A split message's usage counts are the largest of its lines (output grows as it streams)."""
    usage = main_session("split_messages.jsonl").turns[1].usage
    assert (usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens,
            usage.output_tokens) == (6, 350, 13100, 131)


def test_one_hour_cache_writes_are_kept(tmp_path: Path) -> None:
    """Claude Code records the lifetime of each cache write (``usage.cache_creation``): the one-hour part
    is kept, so cache_miss knows a 20-minute pause should still have hit."""
    line = {"type": "assistant", "sessionId": "s", "uuid": "u1", "timestamp": "2026-01-01T00:00:00Z",
            "message": {"id": "msg_1", "model": "claude-opus-4-5", "role": "assistant", "stop_reason": "end_turn",
                        "content": [{"type": "text", "text": "ok"}],
                        "usage": {"input_tokens": 3, "output_tokens": 5, "cache_read_input_tokens": 0,
                                  "cache_creation_input_tokens": 23_420,
                                  "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                                     "ephemeral_1h_input_tokens": 23_420}}}}
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    (turn,) = load_sessions(path)[0].turns
    assert (turn.usage.cache_creation_input_tokens, turn.usage.cache_creation_1h_input_tokens) == (23_420, 23_420)


def test_null_stop_reason_is_inferred() -> None:
    """stop_reason null becomes tool_use when the message has tool_use blocks, else end_turn."""
    turns = main_session("split_messages.jsonl").turns
    assert [t.stop_reason for t in turns] == ["tool_use", "tool_use", "tool_use", "end_turn"]


def test_tool_results_in_user_lines_become_tool_calls() -> None:
    """tool_result blocks of later user lines join their tool_use: name, input, turn, result, is_error."""
    calls = {c.name: c for c in main_session("split_messages.jsonl").tool_calls}
    assert calls["Grep"].turn_index == 2 and calls["Grep"].result.startswith("Found 2 files")
    assert calls["Bash"].is_error is True and "Missing script" in calls["Bash"].result
    assert calls["Read"].input == {"file_path": "/repo/shop/auth/session.ts"}
    assert {c.source for c in calls.values()} == {"imported"}


def test_next_turn_carries_the_tool_results() -> None:
    """The turn after a tool_use turn carries its results, as the next API request did."""
    turns = main_session("split_messages.jsonl").turns
    assert [r.tool_use_id for r in turns[2].tool_results] == ["toolu_02Grep", "toolu_03Bash"]


def test_timestamps_become_turn_and_tool_times() -> None:
    """ISO timestamps give turn start/end and tool call start (tool_use line) / end (result line)."""
    session = main_session("split_messages.jsonl")
    first = session.turns[0]
    assert first.end_ns == iso_to_ns("2025-07-01T09:00:06.822Z")
    assert 0 < first.start_ns < first.end_ns
    read = session.tool_calls[0]
    assert read.start_ns == first.end_ns < read.end_ns


def test_iso_timestamps_keep_millisecond_precision() -> None:
    """Timestamps convert without float rounding."""
    assert iso_to_ns("1970-01-01T00:00:01.123Z") == 1_123_000_000


def test_task_is_the_first_user_prompt() -> None:
    """Session.task is the first real user prompt, not a title summary or a tool result."""
    assert main_session("split_messages.jsonl").task.startswith("Sessions never expire")


def test_session_id_comes_from_the_transcript() -> None:
    """The session id is the transcript's sessionId."""
    assert main_session("split_messages.jsonl").id == "0b6f2c1e-5d7a-4c1b-9e4f-3a2d1c0b9a81"


def test_title_summary_before_any_turn_is_not_a_compaction() -> None:
    """A summary line at the top of a file is the conversation title, not a compaction."""
    assert not any(t.after_compaction for t in main_session("split_messages.jsonl").turns)


def test_compact_boundary_marks_the_next_turn() -> None:
    """After a compact_boundary system line (and its isCompactSummary user line) the next turn is marked."""
    turns = main_session("compaction.jsonl").turns
    assert [t.after_compaction for t in turns[:3]] == [False, False, True]


def test_summary_after_turns_marks_the_next_turn() -> None:
    """A summary line in the middle of a conversation is a compaction."""
    assert main_session("compaction.jsonl").turns[3].after_compaction


def test_a_plan_implemented_in_a_cleared_context_starts_a_new_history(tmp_path: Path) -> None:
    """Leaving plan mode with "clear context" goes on in the same file with "Implement the following
    plan:": the history so far is replaced, as by a compaction, so the cache and the re-reads start over.
    The plan as the session's first prompt is only the task."""
    def assistant(n: int) -> dict:
        return {"type": "assistant", "sessionId": "s", "uuid": f"a{n}", "timestamp": f"2026-01-01T00:00:0{n}Z",
                "message": {"id": f"msg_{n}", "model": "claude-opus-4-5", "role": "assistant",
                            "stop_reason": "end_turn", "content": [{"type": "text", "text": "ok"}],
                            "usage": {"input_tokens": 10, "output_tokens": 5}}}

    def prompt(n: int, text: str, **extra: str) -> dict:
        return {"type": "user", "sessionId": "s", "uuid": f"u{n}", "timestamp": f"2026-01-01T00:00:0{n}Z",
                "message": {"role": "user", "content": text}, **extra}

    plan = "Implement the following plan:\n\n# Plan: fix the error handling"
    lines = [prompt(0, plan), assistant(1), prompt(2, "Plan it first"), assistant(3), prompt(4, plan),
             assistant(5), prompt(6, "Go on", planContent="# Plan"), assistant(7)]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    session = load_sessions(path)[0]
    assert [t.after_compaction for t in session.turns] == [False, False, True, True]
    assert session.task == plan


def test_compact_summary_is_not_the_task() -> None:
    """The 'continued from a previous conversation' message never replaces the task."""
    assert main_session("compaction.jsonl").task == "Add rate limiting to the login endpoint"


def test_inline_sidechains_become_child_sessions() -> None:
    """isSidechain lines become child sessions whose parent_id is the main session."""
    main, *children = load_sessions(CC / "inline_sidechain.jsonl")
    assert main.parent_id is None and len(children) == 2
    assert {c.parent_id for c in children} == {main.id}
    assert all(c.id.startswith(main.id + "/agent-") for c in children)


def test_interleaved_sidechains_are_split_by_parent_uuid() -> None:
    """Two sub-agents interleaved in one file are told apart by following parentUuid."""
    _, first, second = load_sessions(CC / "inline_sidechain.jsonl")
    assert first.task == "List date parsing in server/" and second.task == "List date parsing in client/"
    assert [c.input["path"] for c in first.tool_calls] == ["server"]
    assert [c.input["path"] for c in second.tool_calls] == ["client"]
    assert first.turns[-1].text.startswith("Two places in server/")


def test_sidechain_turns_stay_out_of_the_main_session() -> None:
    """The main session keeps only its own turns."""
    main = load_sessions(CC / "inline_sidechain.jsonl")[0]
    assert [t.tool_names for t in main.turns] == [["Task", "Task"], []]


def test_subagent_files_load_with_their_session() -> None:
    """``<session>/subagents/agent-*.jsonl`` next to the session file load as its child sessions."""
    main, child = load_sessions(CC / "with_subagents.jsonl")
    assert child.id == f"{main.id}/agent-5e1f9a2b" and child.parent_id == main.id
    assert child.source.endswith("agent-5e1f9a2b.jsonl")
    assert [t.tool_names for t in child.turns] == [["Read"], ["Bash"], []]
    assert child.end_reason == "end_turn"


def test_sibling_subagents_folder_is_a_fallback(tmp_path: Path) -> None:
    """A ``subagents/`` folder beside the session file is used for files that name the same sessionId."""
    shutil.copy(CC / "with_subagents.jsonl", tmp_path / "session.jsonl")
    (tmp_path / "subagents").mkdir()
    shutil.copy(CC / "with_subagents" / "subagents" / "agent-5e1f9a2b.jsonl", tmp_path / "subagents")
    other = json.loads((CC / "split_messages.jsonl").read_text().splitlines()[2])
    (tmp_path / "subagents" / "agent-other.jsonl").write_text(json.dumps(other) + "\n")
    ids = [s.id for s in load_sessions(tmp_path / "session.jsonl")]
    assert ids == ["3c9d8e7f-1a2b-4c5d-9e8f-7a6b5c4d3e2f", "3c9d8e7f-1a2b-4c5d-9e8f-7a6b5c4d3e2f/agent-5e1f9a2b"]


def test_loading_a_subagent_file_alone_gives_a_child_session() -> None:
    """A sub-agent file passed directly is still a sub-agent of the session it names."""
    (child,) = load_sessions(CC / "with_subagents" / "subagents" / "agent-5e1f9a2b.jsonl")
    assert child.parent_id == "3c9d8e7f-1a2b-4c5d-9e8f-7a6b5c4d3e2f"


def test_user_interruption_is_abandoned() -> None:
    """A conversation that ends with the user interrupting a tool call is abandoned."""
    main = main_session("with_subagents.jsonl")
    assert main.end_reason == "abandoned"
    assert main.tool_calls[-1].is_error  # the rejected Edit


def test_api_error_ends_with_error_and_makes_no_turn() -> None:
    """A synthetic API-error message is no model call; the session ends with error."""
    session = main_session("api_error.jsonl")
    assert session.end_reason == "error"
    assert [t.model for t in session.turns] == ["claude-sonnet-4-20250514"]


def test_finished_conversation_ends_with_end_turn() -> None:
    """A last message without tool_use (stop_reason inferred) ends the session with end_turn."""
    assert main_session("split_messages.jsonl").end_reason == "end_turn"
