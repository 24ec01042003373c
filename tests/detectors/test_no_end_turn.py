"""no_end_turn: the session stopped without the model finishing."""

from __future__ import annotations

from otel_agent_trace.detectors import SessionAnalyzer
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

    def test_max_tokens_is_a_warning(self, detect: Detect) -> None:
        """A response cut by max_tokens is a warning."""
        found = detect(K, turn(read("a.py")), turn(stop="max_tokens"), end_reason="max_tokens")
        assert [(f.turn, f.severity) for f in found] == [(2, "warning")]
        assert "max_tokens" in found[0].message

    def test_error_end_is_a_warning(self, detect: Detect) -> None:
        """A session that ended in an API error is a warning naming the error."""
        found = detect(K, turn(read("a.py")), turn(stop=None, error_type="RateLimitError"),
                       end_reason="error")
        assert found[0].severity == "warning" and "RateLimitError" in found[0].message

    def test_trace_ending_on_tool_use_is_a_warning(self, detect: Detect) -> None:
        """A last stop_reason of tool_use with no recorded end reason is a warning."""
        found = detect(K, turn(read("a.py")), turn(edit("a.py", "x", "y")), end_reason=None)
        assert [(f.turn, f.severity) for f in found] == [(2, "warning")]
        assert found[0].evidence["stop_reason"] == "tool_use"

    def test_abandoned_session_without_turns_is_silent(self) -> None:
        """No turns, nothing to report, whatever the end reason."""
        assert SessionAnalyzer("s", kinds=[K]).finish(None, "abandoned") == []

    def test_stop_sequence_is_clean(self, detect: Detect) -> None:
        """stop_sequence is a normal end."""
        assert detect(K, turn(read("a.py")), turn(stop="stop_sequence"), end_reason=None) == []

    def test_unknown_stop_reason_is_not_guessed(self, detect: Detect) -> None:
        """With no stop_reason and no end reason there is nothing to claim."""
        assert detect(K, turn(stop=None), end_reason=None) == []
