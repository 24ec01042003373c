"""token_jump: sharp context growth, attributed to the largest tool result."""

from __future__ import annotations

import pytest

from otel_agent_trace.detectors import SessionAnalyzer
from otel_agent_trace.testing.scenario import bash, edit, grep, read, session, turn

from .conftest import Detect

K = "token_jump"


class TestTokenJump:
    def test_big_test_output_mid_session_is_a_warning(self, detect: Detect) -> None:
        """52k chars of output at turn 4 raising context by 14k at turn 5 is a warning naming the tool."""
        found = detect(K, turn(read("a.py"), context=5_000), turn(edit("a.py", "x", "y"), context=5_400),
                       turn(grep("x", "a.py:1:x"), context=5_800),
                       turn(bash("pytest -vv", "PASSED", chars=52_310), context=6_000),
                       turn(context=20_000))
        assert [(f.turn, f.turns, f.severity) for f in found] == [(5, [4, 5], "warning")]
        f = found[0]
        assert "52,310 chars" in f.message and "14k" in f.message and "truncate" in f.message
        assert f.tool_use_ids == ["toolu_004_0"]
        assert f.evidence["tool"] == "Bash" and f.evidence["result_chars"] == 52_310
        assert f.evidence["growth_tokens"] == 14_000

    def test_the_largest_result_of_the_turn_is_blamed(self, detect: Detect) -> None:
        """Of several results in the causing turn, the biggest is named."""
        found = detect(K, turn(read("a.py"), context=5_000),
                       turn(read("small.py", chars=500), read("huge.json", chars=60_000), context=5_500),
                       turn(context=21_000))
        assert found[0].evidence["target"] == "huge.json" and found[0].tool_use_ids == ["toolu_002_1"]
        assert "grep" in found[0].message

    def test_steady_growth_is_not_a_jump(self, detect: Detect) -> None:
        """The article's clean run (3.2k → 7.2k over six turns) has no jump."""
        contexts = [3_200, 5_100, 5_800, 6_100, 6_400, 7_200]
        found = detect(K, *[turn(read(f"f{i}.ts"), context=c) for i, c in enumerate(contexts[:-1])],
                       turn(context=contexts[-1]))
        assert found == []

    def test_ratio_threshold_protects_large_contexts(self, detect: Detect) -> None:
        """At 100k tokens a 20k rise is under 40 % and not reported."""
        found = detect(K, turn(read("a.py", chars=80_000), context=100_000), turn(context=120_000))
        assert found == []

    def test_big_expected_first_read_is_info(self, detect: Detect) -> None:
        """A big file read at turn 1 builds the first context: info, not warning."""
        found = detect(K, turn(read("docs/spec.md", chars=60_000), context=3_200), turn(context=18_500))
        assert [(f.turn, f.severity) for f in found] == [(2, "info")]
        assert found[0].evidence["early_read"] is True

    def test_jump_without_a_tool_result_is_info(self, detect: Detect) -> None:
        """Growth with no large tool result behind it (a pasted message?) is info."""
        found = detect(K, turn(context=3_000, stop="end_turn"), turn(context=30_000))
        assert [(f.severity, f.tool_use_ids) for f in found] == [("info", [])]

    def test_compaction_is_not_a_jump(self, detect: Detect) -> None:
        """The turn after compaction starts from a new baseline."""
        found = detect(K, turn(read("a", chars=100), context=90_000), turn(read("b"), context=6_000,
                       after_compaction=True), turn(context=6_500))
        assert found == []

    @pytest.mark.parametrize(("min_tokens", "expected"), [(8_000, 1), (20_000, 0)])
    def test_min_tokens_is_a_setting(self, detect: Detect, min_tokens: int, expected: int) -> None:
        """jump_min_tokens moves the absolute threshold."""
        found = detect(K, turn(read("a", chars=60_000), context=3_000), turn(read("b"), context=5_000),
                       turn(bash("cat big.log", chars=60_000), context=5_500), turn(context=19_000),
                       jump_min_tokens=min_tokens)
        assert len(found) == expected

    def test_turn_records_alone_are_enough(self) -> None:
        """Fed turns only (no tool calls observed), the request's tool_results name the cause."""
        s = session(turn(read("a.py"), context=4_000), turn(bash("make", chars=48_000), context=4_500),
                    turn(context=17_000))
        analyzer = SessionAnalyzer("s", kinds=[K])
        found = [f for t in s.turns for f in analyzer.observe_turn(t)]
        assert found[0].evidence["tool"] == "Bash" and found[0].evidence["result_chars"] == 48_000


def test_an_early_cat_of_a_log_is_command_output_not_an_intended_read(detect: Detect) -> None:
    """`cat logs/worker.log` at turn 2 is command output: a warning, not the info of an intended first read."""
    found = detect(K, turn(read("README.md"), context=2_500),
                   turn(bash("cat logs/worker.log", "INFO start", chars=61_000), context=2_600), turn(context=20_000))
    assert [(f.turn, f.severity) for f in found] == [(3, "warning")]
    assert found[0].evidence["early_read"] is False and "truncate" in found[0].message


def test_an_early_read_of_a_log_file_is_a_warning(detect: Detect) -> None:
    """A log file is output however it is opened: a big early Read of it stays a warning."""
    found = detect(K, turn(read("logs/worker.log", "INFO start", chars=61_000), context=2_500), turn(context=20_000))
    assert [(f.turn, f.severity) for f in found] == [(2, "warning")]
