"""``is_error`` of a tool call: an explicit flag wins, else the result text decides — live and on import alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_agent_trace.config import Settings
from otel_agent_trace.detectors.errors import tool_result_is_error
from otel_agent_trace.files.importers import load_sessions
from otel_agent_trace.testing import text_reply, tool_reply

# (result text, explicit is_error flag or None, what the call is) — one of each way the rule can go.
RESULTS = {
    "flag_false_error_text": ("cat: a.py: No such file or directory", False, False),
    "flag_true_plain_text": ("all good", True, True),
    "no_flag_error_text": ("Error: No such file or directory: c.py", None, True),
    "no_flag_plain_text": ("def main(): pass", None, False),
}


@pytest.mark.parametrize("name", list(RESULTS))
def test_the_rule(name: str) -> None:
    """The flag decides when present; the text only when the flag is absent."""
    text, flag, expected = RESULTS[name]
    assert tool_result_is_error(text, flag) is expected


@pytest.fixture
def agent_trace_settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, jsonl=str(tmp_path / "run.jsonl"))


def test_live_and_imported_calls_agree(agent_trace, fake_anthropic) -> None:
    """Inferred live tool spans and the same run read back from its JSONL flag the same calls."""
    uses = [{"name": name, "input": {"path": name}, "id": f"toolu_{name}"} for name in RESULTS]
    fake_anthropic.enqueue(tool_reply(*uses), text_reply("done"))
    client = fake_anthropic.client()
    messages: list[dict] = [{"role": "user", "content": "look around"}]
    response = client.messages.create(model="claude-sonnet-4-6", max_tokens=256, messages=messages)
    messages.append({"role": "assistant", "content": [b.model_dump() for b in response.content]})
    blocks = []
    for block in response.content:
        if block.type == "tool_use":
            text, flag, _ = RESULTS[block.name]
            blocks.append({"type": "tool_result", "tool_use_id": block.id, "content": text}
                          | ({} if flag is None else {"is_error": flag}))
    messages.append({"role": "user", "content": blocks})
    client.messages.create(model="claude-sonnet-4-6", max_tokens=256, messages=messages)
    live = {s.attributes["gen_ai.tool.name"]: s.attributes["agent_trace.tool.is_error"]
            for s in agent_trace.spans_of("execute_tool")}
    (session,) = load_sessions(agent_trace.settings.jsonl)
    imported = {call.name: call.is_error for call in session.tool_calls}
    expected = {name: want for name, (_, _, want) in RESULTS.items()}
    assert live == expected
    assert imported == expected
