"""Per-turn cost and memory of the detectors over one synthetic 10 000-turn session.

    python benchmarks/bench_detectors.py [--turns 10000] [--fresh-results]

A flat µs/turn from the first hundred turns to the last hundred shows the O(1) amortized cost per
event; tracemalloc's retained memory after the run shows the state stays bounded (the kept findings
list, capped at 1 000, is most of it).

By default the file reads and listings return the same string objects turn after turn, as a session
re-reading the same files does. ``--fresh-results`` makes every result a new, distinct string (a turn
number in front), as when no output repeats: nothing can be served by a cache keyed on a result's
identity or content, and the window of recent results the hallucination check searches stays full.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

try:
    from otel_agent_trace.detectors import SessionAnalyzer
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from otel_agent_trace.detectors import SessionAnalyzer
from otel_agent_trace.model.records import ToolCall, Turn, Usage

WINDOWS = ((10, 100), (1_000, 1_100), (9_900, 10_000))
SOURCE = "".join(f"{n}\tdef handler_{n}(request):\n" for n in range(1, 60))  # ~1.7 KB file read
LISTING = "\n".join(f"src/pkg{n}/module_{n}.py" for n in range(40))


def _calls(i: int, fresh: bool = False) -> list[ToolCall]:
    """A realistic mix per turn: reads, edits, searches, bash runs; errors every few turns."""
    mod = f"src/pkg{i % 300}/module_{i % 900}.py"
    source, listing = (f"# turn {i}\n{SOURCE}", f"turn_{i}.txt\n{LISTING}") if fresh else (SOURCE, LISTING)
    kind = i % 6
    if kind == 0:
        specs = [("Read", {"file_path": mod}, source, False)]
    elif kind == 1:
        specs = [("Grep", {"pattern": f"handler_{i % 50}"}, listing, False),
                 ("Read", {"file_path": f"src/missing_{i}.py"}, "File does not exist.", True)]
    elif kind == 2:
        failed = i % 12 == 2
        specs = [("Edit", {"file_path": mod, "old_string": f"v = {i}", "new_string": f"v = {i + 1}"},
                  "String to replace not found in file." if failed else "The file has been updated.", failed)]
    elif kind == 3:
        failed = i % 9 == 3
        output = "FAILED tests/test_x.py::test_y\nError: Exit code 1" if failed else "42 passed in 1.2s"
        specs = [("Bash", {"command": "cd /repo && python -m pytest -q tests"}, output, failed)]
    elif kind == 4:
        specs = [("Glob", {"pattern": "**/*.py"}, listing, False),
                 ("Bash", {"command": f"cat {mod} | head -40"}, source, False)]
    else:
        specs = [("str_replace_based_edit_tool",
                  {"command": "str_replace", "path": mod, "old_str": f"w = {i}", "new_str": f"w = {i}0"},
                  "The file has been edited.", False)]
    return [ToolCall(session="bench", tool_use_id=f"toolu_{i}_{k}", name=name, turn_index=i, input=inp,
                     result=result, is_error=err) for k, (name, inp, result, err) in enumerate(specs)]


def _turn(i: int) -> Turn:
    # Context grows ~300 tokens a turn with a compaction every 400 turns, as long agent runs do.
    context = 6_000 + (i % 400) * 300 + (25_000 if i % 97 == 0 else 0)
    return Turn(session="bench", index=i, stop_reason="tool_use", cache_control=True,
                after_compaction=i % 400 == 0,
                usage=Usage(input_tokens=context // 10, output_tokens=200,
                            cache_read_input_tokens=context * 8 // 10 if i % 50 else 0,
                            cache_creation_input_tokens=context // 10))


def _events(turns: int, fresh: bool = False) -> Iterator[tuple[Turn, list[ToolCall]]]:
    for i in range(1, turns + 1):
        yield _turn(i), _calls(i, fresh)


def time_per_turn(turns: int, fresh: bool = False) -> dict[int, float]:
    """µs spent in the analyzer for each turn (its Turn plus its tool calls); event building not counted."""
    analyzer = SessionAnalyzer("bench")
    cost: dict[int, float] = {}
    clock = time.perf_counter_ns
    for turn, calls in _events(turns, fresh):
        start = clock()
        analyzer.observe_turn(turn)
        for call in calls:
            analyzer.observe_tool(call)
        cost[turn.index] = (clock() - start) / 1_000
    analyzer.finish("turn_limit")
    print(f"findings: {sum(analyzer.count_by_kind.values())} "
          f"({', '.join(f'{k}={v}' for k, v in sorted(analyzer.count_by_kind.items()))}); "
          f"kept {len(analyzer.findings)}, dropped {analyzer.dropped}")
    return cost


def memory(turns: int, fresh: bool = False) -> tuple[int, int, int, dict[str, int]]:
    """Bytes: peak while running, retained after, retained without the kept findings; tracked entries."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    analyzer = SessionAnalyzer("bench")
    for turn, calls in _events(turns, fresh):
        analyzer.observe_turn(turn)
        for call in calls:
            analyzer.observe_tool(call)
        del turn, calls
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    analyzer.findings.clear()
    gc.collect()
    state = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return peak - base, current - base, state - base, {d.kind: d.tracked() for d in analyzer.detectors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--fresh-results", action="store_true",
                        help="every tool result a new, distinct string (no output repeats)")
    args = parser.parse_args(argv)
    cost = time_per_turn(args.turns, args.fresh_results)
    print(f"\n{args.turns} turns, {sum(cost.values()) / 1_000:.0f} ms in the analyzer "
          f"({sum(cost.values()) / len(cost):.1f} µs/turn overall)\n")
    # Median and p95 first: on a shared machine single turns can stall for milliseconds (other processes,
    # GC), which moves the mean but says nothing about the detectors' cost.
    print("| turns | median µs/turn | p95 µs/turn | mean µs/turn |")
    print("|---|---:|---:|---:|")
    for lo, hi in WINDOWS:
        window = [cost[i] for i in range(lo, hi) if i in cost]
        if window:
            mean, median = statistics.fmean(window), statistics.median(window)
            p95 = statistics.quantiles(window, n=20)[-1]
            print(f"| {lo}-{hi} | {median:.1f} | {p95:.1f} | {mean:.1f} |")
    print("\n| after turns | tracemalloc peak | retained | retained without kept findings |")
    print("|---:|---:|---:|---:|")
    for n in sorted({min(1_000, args.turns), args.turns}):
        peak, retained, state, tracked = memory(n, args.fresh_results)
        print(f"| {n} | {peak / 1024:.0f} KiB | {retained / 1024:.0f} KiB | {state / 1024:.0f} KiB |")
    print("\ntracked entries per detector: " + ", ".join(f"{k}={v}" for k, v in tracked.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
