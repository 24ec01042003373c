"""no_end_turn: the session stopped without the model finishing."""

from __future__ import annotations

import anthropic
import pytest

from otel_agent_trace import agent_session
from otel_agent_trace.detectors import SessionAnalyzer
from otel_agent_trace.testing.fake_api import Fault, tool_reply
from otel_agent_trace.testing.scenario import bash, edit, read, turn

from .conftest import Detect

K = "no_end_turn"


class TestNoEndTurn:
    def test_end_turn_is_clean(self, detect: Detect) -> None:
        """A last turn with stop_reason end_turn gives no finding."""
        assert detect(K, turn(read("a.py")), turn(), end_reason="end_turn") == []

    def test_turn_limit_is_an_error(self, detect: Detect) -> None:
        """Hitting the turn limit is an error at the last turn, listing the last turns."""
        found = detect(K, turn(read("a.py")), turn(edit("a.py", "x", "y")), turn(bash("pytest", "fail")),
                       end_reason="turn_limit")
        assert [(f.turn, f.severity, f.turns) for f in found] == [(3, "error", [1, 2, 3])]
        assert "turn limit" in found[0].message and "2: Edit" in found[0].message
        assert found[0].tool_use_ids == ["toolu_003_0"]

    def test_max_tokens_is_an_error(self, detect: Detect) -> None:
        """A response cut by max_tokens lost the run's answer: an error."""
        found = detect(K, turn(read("a.py")), turn(stop="max_tokens"), end_reason="max_tokens")
        assert [(f.turn, f.severity) for f in found] == [(2, "error")]
        assert "max_tokens" in found[0].message

    def test_error_end_is_an_error(self, detect: Detect) -> None:
        """A session that ended in an API error lost the run: an error naming the error."""
        found = detect(K, turn(read("a.py")), turn(stop=None, error_type="RateLimitError"),
                       end_reason="error")
        assert found[0].severity == "error" and "RateLimitError" in found[0].message

    def test_trace_ending_on_tool_use_is_a_warning(self, detect: Detect) -> None:
        """A last stop_reason of tool_use with no recorded end reason is a warning."""
        found = detect(K, turn(read("a.py")), turn(edit("a.py", "x", "y")), end_reason=None)
        assert [(f.turn, f.severity) for f in found] == [(2, "warning")]
        assert found[0].evidence["stop_reason"] == "tool_use"

    def test_abandoned_session_without_turns_is_silent(self) -> None:
        """No turns, nothing to report, whatever the end reason."""
        assert SessionAnalyzer("s", kinds=[K]).finish("abandoned") == []

    def test_stop_sequence_is_clean(self, detect: Detect) -> None:
        """stop_sequence is a normal end."""
        assert detect(K, turn(read("a.py")), turn(stop="stop_sequence"), end_reason=None) == []

    def test_unknown_stop_reason_is_not_guessed(self, detect: Detect) -> None:
        """With no stop_reason and no end reason there is nothing to claim."""
        assert detect(K, turn(stop=None), end_reason=None) == []


class TestRunEndingOnAFailedCall:
    """A run that gives up after a call failed ends with an error: live and on import, the finding is at
    the last turn the model took and names the error of the call that failed after it."""

    def test_offline(self, detect: Detect) -> None:
        [found] = detect(K, turn(read("a.py")), turn(stop=None, error_type="InternalServerError"), end_reason="error")
        assert (found.turn, found.severity) == (1, "error")
        assert "after turn 1 (InternalServerError)" in found.message

    def test_live(self, agent_trace, fake_anthropic) -> None:
        fake_anthropic.enqueue(tool_reply(("read_file", {"path": "a.py"})), Fault.server_error())
        client = fake_anthropic.client()
        messages = [{"role": "user", "content": "Fix a.py"}]
        with pytest.raises(anthropic.InternalServerError), agent_session("gives-up"):
            reply = client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=messages)
            use = reply.content[0]
            messages += [{"role": "assistant", "content": reply.content},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                       "content": "x = 1"}]}]
            client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=messages)
        [found] = agent_trace.findings.of(K)
        assert (found.turn, found.severity) == (1, "error")
        assert "after turn 1 (InternalServerError)" in found.message
