"""The benchmark scripts run against the current code (they are not collected by pytest otherwise, so an
API change could break them unnoticed). Small sizes: this checks that they work, not their numbers."""

from __future__ import annotations

import json
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
    """One quick interleaved run of bare, native, both floors and ours, with the decomposition section."""
    pytest.importorskip("httpx2", reason="the overhead benchmark's in-process transport is httpx2's")
    out = tmp_path / "RESULTS.md"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_overhead.py"), "--quick", "--decompose",
                           "--modes", "bare,native,floor,floor-read,ours", "--paths", "sync", "--workloads", "agent",
                           "--source", "installed", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "| agent | sync `create` |" in text and "floor ÷ native" in text and "reading floor ÷ native" in text
    assert "## Where ours' time goes" in text and "reading floor + detectors" in text
    split = text.split("## Where ours' time goes", 1)[1]
    row = next(line for line in split.splitlines() if line.startswith("| agent | sync `create` |"))
    floor, _, detectors = (float(row.split("|")[k].strip().lstrip("+").rstrip("×")) for k in (3, 4, 5))
    assert floor > 0 and detectors > 0, row  # timed inside ours' own calls: the detectors ran and were clocked
    assert "### Our own time, by module" in text and "`instrumentation/recorder.py`" in text
    parts = text.split("### The detectors' share, part by part", 1)[1]
    assert "| classifying the call |" in parts and "| `tool_loop` |" in parts  # every detector has its row
    whole = next(line for line in parts.splitlines() if line.startswith("| **the whole turn** |"))
    assert float(whole.split("|")[2].strip().strip("*")) > 0, whole


_COMPARE_FLOORS = r'''
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
import bench_overhead as bench
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

spans = {}
for path in ("sync", "async", "stream", "helper"):
    for mode in ("floor-read", "ours"):
        switchboard = bench.Switchboard()
        harness = switchboard.install(mode)
        memory = InMemorySpanExporter()
        harness.provider.add_span_processor(SimpleSpanProcessor(memory))
        switchboard.activate(mode)
        workload, client, aclient = bench.AgentWorkload("t"), harness.sync_client(), harness.async_client()
        streamed = path in ("stream", "helper")
        for k in range(22):  # a whole task of 20 turns, and the first two turns of the next
            kwargs, body, sse = workload.call(k)
            harness.api.prepared(sse if streamed else body, streamed)
            if path == "sync":
                client.messages.create(**kwargs)
            elif path == "async":
                asyncio.run(aclient.messages.create(**kwargs))
            elif path == "stream":
                for _ in client.messages.create(stream=True, **kwargs):
                    pass
            else:
                with client.messages.stream(**kwargs) as stream:
                    stream.get_final_message()
        harness.end_sessions()
        switchboard.activate("bare")
        harness.close()
        spans[f"{path} {mode}"] = [[s.name.split()[0], dict(s.attributes)] for s in memory.get_finished_spans()]
print(json.dumps(spans))
'''


def test_the_reading_floor_emits_ours_attributes_with_ours_values() -> None:
    """The reading floor is a lower bound only if it emits what ours emits: the same spans, and on each the
    same attributes with the same values, except what cannot match (fresh session ids, ours' findings) and
    what it skips to stay a lower bound (the helper's time to first chunk)."""
    pytest.importorskip("httpx2", reason="the overhead benchmark's in-process transport is httpx2's")
    done = subprocess.run([sys.executable, "-c", _COMPARE_FLOORS, str(BENCHMARKS)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    unequal = {"gen_ai.conversation.id", "session.id", "gen_ai.response.time_to_first_chunk",
               "langfuse.observation.completion_start_time"}
    findings = {"agent_trace.findings.count", "agent_trace.findings.kinds", "langfuse.observation.level",
                "langfuse.observation.status_message"}
    for path in ("sync", "async", "stream", "helper"):
        floor, ours = spans[f"{path} floor-read"], spans[f"{path} ours"]
        assert [name for name, _ in floor] == [name for name, _ in ours], path
        skipped = {"gen_ai.response.time_to_first_chunk", "langfuse.observation.completion_start_time"}
        for (name, read), (_, theirs) in zip(floor, ours, strict=True):
            ignored = findings if name == "invoke_agent" else set()
            expected = set(theirs) - ignored - (skipped if path == "helper" else set())
            assert set(read) - ignored == expected, (path, name, (set(read) - ignored) ^ expected)
            assert {k: v for k, v in read.items() if k not in unequal | ignored} == \
                {k: (list(v) if isinstance(v, tuple) else v) for k, v in theirs.items()
                 if k in read and k not in unequal | ignored}, (path, name)
