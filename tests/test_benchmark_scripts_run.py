"""The benchmark scripts run against the current code (they are not collected by pytest otherwise, so an
API change could break them unnoticed). Small sizes: this checks that they work, not their numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(("script", "args", "expect"), [
    ("bench_detectors.py", ["--turns", "300"], "µs/turn"),
    ("bench_report.py", ["--turns", "200"], "turns"),
])
def test_benchmark_script_runs(script: str, args: list[str], expect: str) -> None:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expect in done.stdout


def test_overhead_benchmark_smoke_run_writes_its_tables(tmp_path: Path) -> None:
    """One quick interleaved run of bare, native, floor and ours, with the decomposition section."""
    pytest.importorskip("httpx2", reason="the overhead benchmark's in-process transport is httpx2's")
    out = tmp_path / "RESULTS.md"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_overhead.py"), "--quick", "--decompose",
                           "--modes", "bare,native,floor,ours", "--paths", "sync", "--workloads", "agent",
                           "--source", "installed", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "| agent | sync `create` |" in text and "floor ÷ native" in text
    assert "## Where ours' time goes" in text and "floor + detectors" in text
    split = text.split("## Where ours' time goes", 1)[1]
    row = next(line for line in split.splitlines() if line.startswith("| agent | sync `create` |"))
    detectors = float(row.split("|")[5].strip().lstrip("+").rstrip("×"))
    assert detectors > 0, row  # timed inside ours' own calls: the detectors ran and were clocked
    assert "### Our own time, by module" in text and "`instrumentation/recorder.py`" in text
    parts = text.split("### The detectors' share, part by part", 1)[1]
    assert "| classifying the call |" in parts and "| `tool_loop` |" in parts  # every detector has its row
    whole = next(line for line in parts.splitlines() if line.startswith("| **the whole turn** |"))
    assert float(whole.split("|")[2].strip().strip("*")) > 0, whole
