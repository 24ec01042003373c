"""Time the offline path on a long session: load → analyze_session → render_text / render_html.

    PYTHONPATH=src python benchmarks/bench_report.py [--turns 5000] [--keep trace.jsonl]

Writes a synthetic seed-format trace (the article's line shapes plus our optional keys) with a mix of
reads, searches, edits and shell calls, some failing and some with large outputs, then prints seconds
per stage. Target: the whole pipeline under ~2 s for 5 000 turns.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from otel_agent_trace.detectors import analyze_session
from otel_agent_trace.files.importers import load
from otel_agent_trace.files.report import render_html, render_text
from otel_agent_trace.model.records import Session


def _call(rng: random.Random, n: int) -> tuple[str, dict[str, str], str]:
    path = f"src/pkg{rng.randrange(40)}/mod{rng.randrange(60)}.py"
    kind = rng.random()
    if kind < 0.45:
        body = "\n".join(f"def f{i}(x):\n    return x + {i}" for i in range(rng.randrange(5, 120)))
        return "Read", {"file_path": path}, body
    if kind < 0.65:
        return "Grep", {"pattern": f"symbol_{rng.randrange(300)}"}, f"{path}:{rng.randrange(1, 400)}"
    if kind < 0.85:
        if rng.random() < 0.3:
            return "Edit", {"file_path": path, "old_string": f"x + {n}", "new_string": f"x - {n}"}, \
                "Error: String to replace not found in file."
        return "Edit", {"file_path": path, "old_string": f"x + {n}", "new_string": f"x - {n}"}, \
            f"The file {path} has been updated."
    out = "ok\n" * rng.randrange(1, 40) if rng.random() < 0.97 else "FAILED test\n" * 4_000
    return "Bash", {"command": f"pytest tests/test_{rng.randrange(80)}.py -q"}, out


def write_trace(path: Path, turns: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    context = 3_000
    with path.open("w", encoding="utf-8") as f:
        f.write(json.dumps({"turn": 0, "event": "start", "task": "refactor the package", "session": "bench"}) + "\n")
        for n in range(1, turns + 1):
            last = n == turns
            name, tool_input, result = _call(rng, n)
            content: list[dict[str, object]] = [{"type": "text", "text": f"Step {n}: checking {name}."}]
            if not last:
                content.append({"type": "tool_use", "id": f"toolu_{n}", "name": name, "input": tool_input})
            cached = int(context * 0.9)
            f.write(json.dumps({
                "turn": n, "stop_reason": "end_turn" if last else "tool_use",
                "input_tokens": context - cached, "output_tokens": rng.randrange(40, 400),
                "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0,
                "model": "claude-sonnet-4-6", "content": content, "session": "bench",
                "start_ns": n * 2_000_000_000, "end_ns": n * 2_000_000_000 + 1_500_000_000,
            }) + "\n")
            if last:
                break
            f.write(json.dumps({"turn": n, "tool_results": [
                {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": result}], "session": "bench"}) + "\n")
            # Context grows with each result, and drops back now and then as if compacted.
            context = 3_000 if context > 180_000 else context + len(result) // 4 + 120


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=5_000)
    parser.add_argument("--keep", type=Path, default=None, help="write the trace here and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.jsonl"
        write_trace(path, args.turns)
        size = path.stat().st_size
        timings: dict[str, float] = {}
        start = time.perf_counter()
        sessions = [item for item in load(path) if isinstance(item, Session)]
        timings["load"] = time.perf_counter() - start
        (session,) = sessions
        start = time.perf_counter()
        findings = analyze_session(session)
        timings["analyze_session"] = time.perf_counter() - start
        start = time.perf_counter()
        text = render_text(session, findings, color=False)
        timings["render_text"] = time.perf_counter() - start
        start = time.perf_counter()
        page = render_html([(session, findings)])
        timings["render_html"] = time.perf_counter() - start
    print(f"{args.turns:,} turns, {len(session.tool_calls):,} tool calls, {size / 1e6:.1f} MB trace, "
          f"{len(findings):,} findings, text {len(text) / 1e3:.0f} kB, html {len(page) / 1e3:.0f} kB")
    for stage, seconds in timings.items():
        print(f"  {stage:<16} {seconds:7.3f} s")
    total = sum(timings.values())
    print(f"  {'total':<16} {total:7.3f} s  ({'within' if total < 2 else 'OVER'} the 2 s target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
