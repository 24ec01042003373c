"""Detector state stays bounded over very long sessions."""

from __future__ import annotations

from otel_agent_trace.detectors import SessionAnalyzer, Thresholds
from otel_agent_trace.model.records import ToolCall, Turn, Usage

CAP = 64


def _feed(analyzer: SessionAnalyzer, start: int, stop: int) -> None:
    """Every turn touches new paths, commands and listings, the worst case for per-target indexes."""
    for i in range(start, stop):
        analyzer.observe_turn(Turn(session="s", index=i, stop_reason="tool_use", cache_control=True,
                                   usage=Usage(input_tokens=500, cache_read_input_tokens=1_000 + i,
                                               cache_creation_input_tokens=100)))
        calls = [
            ToolCall(session="s", tool_use_id=f"r{i}", name="Read", turn_index=i,
                     input={"file_path": f"src/m{i}.py"}, result=f"import lib/d{i}.py"),
            ToolCall(session="s", tool_use_id=f"e{i}", name="Edit", turn_index=i,
                     input={"file_path": f"src/m{i}.py", "old_string": f"a{i}", "new_string": f"b{i}"},
                     result="String to replace not found in file." if i % 7 == 0 else "ok"),
            ToolCall(session="s", tool_use_id=f"b{i}", name="Bash", turn_index=i,
                     input={"command": f"tool{i % 50} --x > out{i}.txt"}, result="Error: Exit code 1",
                     is_error=i % 3 == 0),
            ToolCall(session="s", tool_use_id=f"g{i}", name="Glob", turn_index=i, input={"pattern": "*"},
                     result="\n".join(f"pkg{i}/f{j}.py" for j in range(20))),
            ToolCall(session="s", tool_use_id=f"m{i}", name="Read", turn_index=i,
                     input={"file_path": f"nope{i}/x{i}.py"}, result="File does not exist.", is_error=True),
        ]
        for call in calls:
            analyzer.observe_tool(call)


class TestBoundedMemory:
    def test_state_sizes_stay_under_the_caps_for_10000_turns(self) -> None:
        """After 10 000 turns every detector tracks no more than its caps, and no more than at 2 000."""
        analyzer = SessionAnalyzer("s", Thresholds(max_tracked_targets=CAP), max_findings=100)
        _feed(analyzer, 1, 2_001)
        at_2000 = {d.kind: d.tracked() for d in analyzer.detectors}
        _feed(analyzer, 2_001, 10_001)
        at_10000 = {d.kind: d.tracked() for d in analyzer.detectors}
        for kind, size in at_10000.items():
            assert size <= 3 * CAP, kind  # at most three capped indexes per detector
            assert size <= max(at_2000[kind], 3 * CAP), kind
        assert len(analyzer.findings) == 100
        assert sum(analyzer.count_by_kind.values()) == 100 + analyzer.dropped
