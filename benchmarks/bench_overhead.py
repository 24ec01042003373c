#!/usr/bin/env python3
"""Per-call overhead of tracing an Anthropic-SDK agent loop: ours vs the SDK's native spans vs the peers.

The real ``anthropic`` client talks to an in-process ``httpx2.MockTransport`` (no sockets), so what is
left to measure is the SDK plus whatever instruments it. Every call has the same shape: a 20-message
agent history (tool_use / tool_result pairs), four tools offered, a cached system prompt, and a response
that asks for one more tool. Each call answers the previous response's ``tool_use`` (a real agent loop),
so our implicit session continues from call to call and our tool spans are inferred as they would be.

Modes (each in its own subprocess, so instrumentors never see each other):
  bare            client with ``open_telemetry=False``; nothing instrumented
  native          the SDK's own spans (``open_telemetry={"tracer_provider": tp}``), metadata only
  native-content  the SDK's own spans with ``traces.content_mode="content"``
  ours            AnthropicAgentInstrumentor, metadata only, detectors on (client still asks for native
                  spans: our guard must suppress them, so the chat span count stays 1)
  ours-content    ours with message content capture on
  ours-jsonl      ours, metadata-only spans, plus the live JSONL trace file
  openllmetry     opentelemetry-instrumentation-anthropic, its defaults
  official        opentelemetry-instrumentation-genai-anthropic, its defaults
  openinference   openinference-instrumentation-anthropic, its defaults
Peers run on a client with ``open_telemetry=False``, so only their own spans are timed.

Call paths: ``sync`` (``messages.create``), ``async`` (``AsyncAnthropic.messages.create``), ``stream``
(``create(stream=True)``, iterated to the end) and ``helper`` (``with messages.stream() as s:
s.get_final_message()``).

The parent runs interleaved rounds (a shuffled order of every mode each round, the path order rotated),
measures ``bare`` in every round, and reports overhead = median(mode) - median(bare of the same round),
then the median of those over the rounds. Spans go through a BatchSpanProcessor to an in-memory counting
exporter (spans, attributes, events per span; whether any attribute carries the request's content).

  python benchmarks/bench_overhead.py --out benchmarks/RESULTS.md     # full run (~8 min on 2 cores)
  python benchmarks/bench_overhead.py --quick                         # smoke run, prints the table
  python benchmarks/bench_overhead.py --mode ours --json              # one child, JSON on stdout
  python benchmarks/bench_overhead.py --soak                          # 10 000-turn session, flat?
  python benchmarks/bench_overhead.py --profile sync                  # cProfile of ours (sync|stream)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import gc
import json
import logging
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

MODES = ("bare", "native", "native-content", "ours", "ours-content", "ours-jsonl",
         "openllmetry", "official", "openinference")
PATHS = ("sync", "async", "stream", "helper")
PATH_LABEL = {"sync": "sync `create`", "async": "async `create`", "stream": "`create(stream=True)`",
              "helper": "`.stream()` helper"}
PEERS = {
    # mode: (distribution, module, class)
    "openllmetry": ("opentelemetry-instrumentation-anthropic", "opentelemetry.instrumentation.anthropic",
                    "AnthropicInstrumentor"),
    "official": ("opentelemetry-instrumentation-genai-anthropic",
                 "opentelemetry.instrumentation.genai.anthropic", "AnthropicInstrumentor"),
    "openinference": ("openinference-instrumentation-anthropic", "openinference.instrumentation.anthropic",
                      "AnthropicInstrumentor"),
}
VERSIONED = ("anthropic", "httpx2", "opentelemetry-api", "opentelemetry-sdk", "opentelemetry-instrumentation",
             "wrapt", "pydantic", "otel-agent-trace", *(p[0] for p in PEERS.values()),
             "opentelemetry-semantic-conventions-ai", "opentelemetry-util-genai", "openinference-instrumentation")
# Settings that would change what a mode does are removed from the children's environment.
SCRUBBED_ENV_PREFIXES = ("OTEL_", "ANTHROPIC_", "TRACELOOP_", "OPENINFERENCE_")

MODEL = "claude-sonnet-5"  # not on the SDK's deprecated list: no DeprecationWarning per call
MARKER = "BENCHMARK-CONTENT-MARKER-7f3a"  # in the first user message
# Any of these in a string attribute means the mode captured message content: the first user message, the
# system prompt, a tool result, the response text. (Several, because an instrumentation that hits the
# SDK's 128-attribute limit drops its oldest attributes, which may be the first message.)
CONTENT_MARKERS = (MARKER, "careful coding agent", "def helper_", "next I will use a tool")


# ------------------------------------------------------------------------------------------------------
# The canned conversation: request kwargs and response bodies for call k (built outside the timed region)
# ------------------------------------------------------------------------------------------------------

TOOLS = [
    {"name": "read_file", "description": "Read a file of the repository and return its text with line numbers.",
     "input_schema": {"type": "object", "properties": {"path": {"type": "string"},
                                                        "offset": {"type": "integer"},
                                                        "limit": {"type": "integer"}},
                      "required": ["path"]}},
    {"name": "edit_file", "description": "Replace one exact occurrence of old_str with new_str in a file.",
     "input_schema": {"type": "object", "properties": {"path": {"type": "string"},
                                                        "old_str": {"type": "string"},
                                                        "new_str": {"type": "string"}},
                      "required": ["path", "old_str", "new_str"]}},
    {"name": "bash", "description": "Run a shell command in the repository and return its output.",
     "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                      "required": ["command"]}},
    {"name": "grep", "description": "Search the repository for a regular expression.",
     "input_schema": {"type": "object", "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}},
                      "required": ["pattern"]},
     "cache_control": {"type": "ephemeral"}},
]
SYSTEM = [{"type": "text", "cache_control": {"type": "ephemeral"},
           "text": "You are a careful coding agent working in a Python repository. Use the tools to read, "
                   "search and edit files, run the tests, and stop when the task is done. " * 4}]
# Source code as a read tool returns it. It says "key" like most code does, which is one of the words that
# make content redaction look for `key = value` secrets.
_CODE = "".join(f"{i:4d}\tdef helper_{i}(value, cache):\n\t    key = (value, {i})\n"
                f"\t    return cache.get(key, value * {i} + 1)\n" for i in range(1, 13))


def tool_use_for(k: int, tag: str) -> dict[str, Any]:
    """The tool call of response k: read, edit, run, search in turn; paths cycle over 500 files, edits
    never repeat, nothing fails — a healthy loop, so detectors run but should find nothing."""
    role, file = k % 4, f"src/pkg/mod_{(k // 4) % 500}.py"
    if role == 0:
        name, tool_input = "read_file", {"path": file}
    elif role == 1:
        name, tool_input = "edit_file", {"path": file, "old_str": f"return value * {k}",
                                         "new_str": f"return value * {k + 1}"}
    elif role == 2:
        name, tool_input = "bash", {"command": f"python -m pytest -q tests/test_mod_{(k // 4) % 500}.py"}
    else:
        name, tool_input = "grep", {"pattern": f"def helper_{k % 97}\\b", "path": "src"}
    return {"type": "tool_use", "id": f"toolu_{tag}_{k:07d}", "name": name, "input": tool_input}


def tool_result_text(k: int) -> str:
    role = k % 4
    if role == 0:
        return _CODE
    if role == 1:
        return f"The file src/pkg/mod_{(k // 4) % 500}.py has been edited. Here is a snippet:\n" + _CODE[:300]
    if role == 2:
        return "....................................                [100%]\n36 passed in 0.41s\n"
    return "\n".join(f"src/pkg/mod_{j}.py:{j + 3}:def helper_{k % 97}(value):" for j in range(12))


def assistant_message(k: int, tag: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [
        {"type": "text", "text": f"Step {k}: next I will use a tool to make progress on the task."},
        tool_use_for(k, tag)]}


def user_result_message(k: int, tag: str) -> dict[str, Any]:
    return {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": f"toolu_{tag}_{k:07d}", "content": tool_result_text(k)}]}


FIRST_MESSAGE = {"role": "user", "content": f"[{MARKER}] The test suite fails in tests/test_mod_3.py: "
                                            "find out why and fix it without changing the tests."}
CONTEXT_MESSAGE = {"role": "user", "content": [{"type": "text", "text": "Repository layout: src/pkg/mod_*.py, "
                                                                          "tests/test_mod_*.py. Python 3.11."}]}


class Conversation:
    """Request kwargs for call k of one path: a fixed 18-message prefix + the previous response and its
    result (so call k answers the tool_use of response k-1, as an agent loop does), 20 messages in all."""

    def __init__(self, tag: str, window: int = 20) -> None:
        self.tag = tag
        self.prefix = [FIRST_MESSAGE, CONTEXT_MESSAGE]
        for j in range(-9, -1):  # 8 pairs of history with their own ids
            self.prefix += [assistant_message(j, tag + "h"), user_result_message(j, tag + "h")]
        assert len(self.prefix) + 2 == window

    def kwargs(self, k: int) -> dict[str, Any]:
        messages = [*self.prefix, assistant_message(k - 1, self.tag), user_result_message(k - 1, self.tag)]
        return {"model": MODEL, "max_tokens": 4096, "system": SYSTEM, "tools": TOOLS, "messages": messages}


USAGE = {"input_tokens": 412, "output_tokens": 87, "cache_read_input_tokens": 9_120,
         "cache_creation_input_tokens": 305}


def message_body(k: int, tag: str) -> bytes:
    use = tool_use_for(k, tag)
    return json.dumps({
        "id": f"msg_{tag}_{k:07d}", "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": f"Step {k}: next I will use a tool to make progress on the task."},
                    use],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": USAGE,
    }).encode()


def sse_body(k: int, tag: str) -> bytes:
    """message_start, a text block in 8 deltas, a tool_use block in 4 input_json deltas, message_delta,
    message_stop (and a ping), as the API sends them."""
    use = tool_use_for(k, tag)
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {
            "id": f"msg_{tag}_{k:07d}", "type": "message", "role": "assistant", "model": MODEL, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {**USAGE, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
    ]
    words = f"Step {k}: next I will use a tool to make progress on the task.".split(" ")
    for i in range(0, len(words), 2):
        delta = {"type": "text_delta", "text": " ".join(words[i:i + 2]) + " "}
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": use["id"], "name": use["name"], "input": {}}}))
    raw = json.dumps(use["input"])
    step = max(1, len(raw) // 4 + 1)
    for i in range(0, len(raw), step):
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 1,
                                               "delta": {"type": "input_json_delta", "partial_json": raw[i:i + step]}}))
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 1}))
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use",
                                                                        "stop_sequence": None},
                                     "usage": {"output_tokens": USAGE["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


class MockAPI:
    """The transport's handler: returns the body the harness prepared for the call in flight."""

    JSON_HEADERS = {"content-type": "application/json", "request-id": "req_benchmark"}
    SSE_HEADERS = {"content-type": "text/event-stream", "request-id": "req_benchmark"}

    def __init__(self) -> None:
        import httpx2

        self._response = httpx2.Response
        self.body = b""
        self.stream = False
        self.transport = httpx2.MockTransport(self.handle)

    def prepare(self, k: int, tag: str, stream: bool) -> None:
        self.stream = stream
        self.body = sse_body(k, tag) if stream else message_body(k, tag)

    def handle(self, request: Any) -> Any:
        return self._response(200, headers=self.SSE_HEADERS if self.stream else self.JSON_HEADERS,
                              content=self.body)


# ------------------------------------------------------------------------------------------------------
# Tracing setup per mode
# ------------------------------------------------------------------------------------------------------

class CountingExporter:
    """A SpanExporter that only counts (spans by kind of operation, attributes, events) and checks whether
    any attribute carries the request's content (the marker in the first user message)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.spans = 0
        self.attributes = 0
        self.events = 0
        self.by_kind: dict[str, int] = {}
        self.names: dict[str, int] = {}
        self.content_seen = False
        self.dropped_attributes = 0
        self._checked = 0

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        with self.lock:
            for span in spans:
                self.spans += 1
                attributes = span.attributes or {}
                self.attributes += len(attributes)
                self.events += len(span.events)
                name = span.name.split(" ", 1)[0]
                kind = {"chat": "chat", "execute_tool": "tool", "invoke_agent": "session"}.get(name, "other")
                self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
                self.names[span.name] = self.names.get(span.name, 0) + 1
                if self._checked < 64:  # enough to tell, cheap afterwards
                    self._checked += 1
                    if not self.content_seen:
                        self.content_seen = any(isinstance(v, str) and any(m in v for m in CONTENT_MARKERS)
                                                for v in attributes.values())
                self.dropped_attributes += getattr(span, "dropped_attributes", 0)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class _DropCounter(logging.Handler):
    """Counts the BatchSpanProcessor's "Queue full, dropping" warnings."""

    instance: _DropCounter | None = None

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Queue full" in record.getMessage():
            self.count += 1

    @classmethod
    def install(cls) -> _DropCounter:
        if cls.instance is None:
            cls.instance = cls()
            logging.getLogger("opentelemetry").addHandler(cls.instance)
        return cls.instance


class Harness:
    """A TracerProvider + counting exporter, the mode's instrumentation, and clients on the mock transport."""

    def __init__(self, mode: str) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.mode = mode
        self.exporter = CountingExporter()
        self.provider = TracerProvider()
        # Defaults except a larger queue: the default 2048 can overflow between two worker wake-ups at
        # thousands of spans per second, and a dropped span is cheaper than an exported one. Drops are
        # counted (the SDK logs "Queue full") and reported.
        self.processor = BatchSpanProcessor(self.exporter, max_queue_size=65_536)
        self.drops = _DropCounter.install()
        self.provider.add_span_processor(self.processor)
        trace.set_tracer_provider(self.provider)
        self.api = MockAPI()
        self.instrumentor: Any = None
        self.hub_getter: Callable[[], Any] = lambda: None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.client_options: Any = False
        if mode == "native":
            self.client_options = {"tracer_provider": self.provider}
        elif mode == "native-content":
            self.client_options = {"tracer_provider": self.provider, "traces": {"content_mode": "content"}}
        elif mode.startswith("ours"):
            from otel_agent_trace.config import Settings
            from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor, active_hub

            environ = {}
            if mode == "ours-content":
                environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
            if mode == "ours-jsonl":
                self._tmpdir = tempfile.TemporaryDirectory(prefix="bench-jsonl-")
                environ["OTEL_AGENT_TRACE_JSONL"] = os.path.join(self._tmpdir.name, "trace.jsonl")
            self.instrumentor = AnthropicAgentInstrumentor()
            self.instrumentor.instrument(tracer_provider=self.provider, settings=Settings.from_env(environ))
            self.hub_getter = active_hub
            # The client asks for the SDK's own spans too: inside our turn the guard must suppress them.
            self.client_options = {"tracer_provider": self.provider}
        elif mode in PEERS:
            import importlib

            _, module, cls = PEERS[mode]
            self.instrumentor = getattr(importlib.import_module(module), cls)()
            self.instrumentor.instrument(tracer_provider=self.provider)
        elif mode != "bare":
            raise SystemExit(f"unknown mode {mode!r}")

    def sync_client(self) -> Any:
        import anthropic

        return anthropic.Anthropic(api_key="sk-ant-benchmark", max_retries=0, open_telemetry=self.client_options,
                                   http_client=anthropic.DefaultHttpxClient(transport=self.api.transport))

    def async_client(self) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key="sk-ant-benchmark", max_retries=0, open_telemetry=self.client_options,
            http_client=anthropic.DefaultAsyncHttpxClient(transport=self.api.transport))

    def end_sessions(self) -> None:
        """Our implicit session of a path ends with it, so its span is counted with that path."""
        hub = self.hub_getter()
        if hub is not None:
            hub.sessions.end_all("end_turn")

    def flush(self) -> None:
        self.provider.force_flush()

    def close(self) -> None:
        if self.instrumentor is not None:
            self.instrumentor.uninstrument()
        self.provider.shutdown()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()


def run_path(h: Harness, path: str, warmup: int, calls: int, tag: str) -> list[int]:
    """Warm-up then ``calls`` timed calls on one path; returns each timed call's duration in ns."""
    conv = Conversation(tag)
    api = h.api
    total = warmup + calls
    times: list[int] = []
    clock = time.perf_counter_ns
    stream = path in ("stream", "helper")
    if path == "async":
        client = h.async_client()

        async def loop() -> None:
            create = client.messages.create
            for k in range(total):
                kwargs = conv.kwargs(k)
                api.prepare(k, tag, False)
                t0 = clock()
                await create(**kwargs)
                times.append(clock() - t0)
            await client.close()

        asyncio.run(loop())
    else:
        client = h.sync_client()
        messages = client.messages
        for k in range(total):
            kwargs = conv.kwargs(k)
            api.prepare(k, tag, stream)
            if path == "sync":
                t0 = clock()
                messages.create(**kwargs)
            elif path == "stream":
                t0 = clock()
                for _ in messages.create(stream=True, **kwargs):
                    pass
            else:
                t0 = clock()
                with messages.stream(**kwargs) as s:
                    s.get_final_message()
            times.append(clock() - t0)
        client.close()
    return times[warmup:]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = (len(ordered) - 1) * q
    low = int(index)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def child(mode: str, paths: list[str], warmup: int, calls: int) -> dict[str, Any]:
    """One mode in this process: every requested path, in the given order."""
    if mode in PEERS:
        try:
            import importlib

            importlib.import_module(PEERS[mode][1])
        except Exception as error:  # missing or incompatible: reported, not fatal
            return {"mode": mode, "unavailable": f"{type(error).__name__}: {error}"[:200]}
    h = Harness(mode)
    out: dict[str, Any] = {"mode": mode, "paths": {}}
    try:
        for path in paths:
            h.exporter.reset()
            total = warmup + calls
            times = run_path(h, path, warmup, calls, tag=path)
            h.end_sessions()
            h.flush()
            e = h.exporter
            us = [t / 1000 for t in times]
            out["paths"][path] = {
                "n": len(us), "median_us": statistics.median(us), "p90_us": percentile(us, 0.9),
                "mean_us": statistics.fmean(us),
                "spans_per_call": e.spans / total, "by_kind": {k: v / total for k, v in e.by_kind.items()},
                "attrs_per_span": e.attributes / e.spans if e.spans else 0.0,
                "events_per_call": e.events / total, "content_seen": e.content_seen,
                "dropped_attributes_per_span": e.dropped_attributes / e.spans if e.spans else 0.0,
                "dropped_spans": h.drops.count,
                "span_names": dict(sorted(e.names.items(), key=lambda kv: -kv[1])[:4]),
            }
    finally:
        h.close()
    return out


# ------------------------------------------------------------------------------------------------------
# Parent: interleaved rounds, aggregation, markdown
# ------------------------------------------------------------------------------------------------------

_SNAPSHOT: str | None = None  # a copy of the package that every child imports (see snapshot_package)


def snapshot_package(source: str) -> str:
    """Put a fixed copy of the package first on the children's PYTHONPATH, so that every round measures
    the same code even while someone edits src/ during the run. ``head``: the last commit of the git
    checkout this script sits in (a half-saved edit can never be measured); ``worktree``: the installed
    package as it is now; ``installed``: no copy, whatever each child imports."""
    import importlib.util
    import shutil

    global _SNAPSHOT
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if source == "head":
        target = tempfile.mkdtemp(prefix="bench-src-")
        archive = subprocess.run(["git", "-C", root, "archive", "HEAD", "src/otel_agent_trace"],
                                 capture_output=True, timeout=60)
        if archive.returncode == 0:
            import io
            import tarfile

            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(target, filter="data")
            _SNAPSHOT = os.path.join(target, "src")
            head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True, timeout=10).stdout.strip()
            dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "src"], capture_output=True,
                                   text=True, timeout=10).stdout.strip()
            return f"commit {head}" + (" (uncommitted changes in src/ not measured)" if dirty else "")
        shutil.rmtree(target, ignore_errors=True)
        source = "worktree"  # not a git checkout: fall back to the installed package
    if source == "worktree":
        spec = importlib.util.find_spec("otel_agent_trace")
        if spec is not None and spec.origin:
            target = tempfile.mkdtemp(prefix="bench-src-")
            shutil.copytree(os.path.dirname(spec.origin), os.path.join(target, "otel_agent_trace"),
                            ignore=shutil.ignore_patterns("__pycache__"))
            _SNAPSHOT = target
            return "the installed package as it was at the start (" + source_state() + ")"
    return "the installed package (" + source_state() + ")"


def drop_snapshot() -> None:
    import shutil

    global _SNAPSHOT
    if _SNAPSHOT is not None:
        top = _SNAPSHOT[: -len(os.sep + "src")] if _SNAPSHOT.endswith(os.sep + "src") else _SNAPSHOT
        shutil.rmtree(top, ignore_errors=True)
        _SNAPSHOT = None


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV_PREFIXES)}
    env["PYTHONHASHSEED"] = "0"
    if _SNAPSHOT is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_SNAPSHOT, env.get("PYTHONPATH")) if p)
    return env


def run_child(mode: str, paths: list[str], warmup: int, calls: int) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--mode", mode, "--json", "--paths", ",".join(paths),
           "--warmup", str(warmup), "--calls", str(calls)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"mode": mode, "unavailable": f"child failed: {tail[:200]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "os": f"{platform.system()} {platform.release()}", "cpu": cpu, "cores": str(os.cpu_count())}


def source_state() -> str:
    """The commit the package was measured at, and whether src/ had uncommitted changes."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "src"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return f"{head}" + (f" with uncommitted changes in {len(dirty.splitlines())} file(s) under src/" if dirty else "")


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    modes = [m for m in args.modes.split(",") if m]
    if "bare" not in modes:
        modes.insert(0, "bare")
    paths = [p for p in args.paths.split(",") if p]
    rng = random.Random(args.seed)
    rounds: list[dict[str, Any]] = []
    unavailable: dict[str, str] = {}
    started = time.monotonic()
    load_start = _loadavg()
    source = getattr(args, "source_note", None) or source_state()
    for r in range(args.rounds):
        order = [m for m in modes if m not in unavailable]
        rng.shuffle(order)
        rotated = paths[r % len(paths):] + paths[:r % len(paths)]
        results: dict[str, Any] = {}
        for mode in order:
            t0 = time.monotonic()
            result = run_child(mode, rotated, args.warmup, args.calls)
            if "unavailable" in result:
                unavailable[mode] = result["unavailable"]
                print(f"  round {r + 1}: {mode:15s} unavailable: {result['unavailable']}", file=sys.stderr)
                continue
            results[mode] = result["paths"]
            med = " ".join(f"{p}={result['paths'][p]['median_us']:.0f}" for p in paths)
            print(f"  round {r + 1}/{args.rounds}: {mode:15s} {time.monotonic() - t0:5.1f}s  median µs: {med}",
                  file=sys.stderr, flush=True)
        rounds.append(results)
    return {"modes": modes, "paths": paths, "rounds": rounds, "unavailable": unavailable,
            "elapsed_s": time.monotonic() - started, "load": (load_start, _loadavg()), "source": source}


def _loadavg() -> str:
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def aggregate(run: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """mode → path → overheads (median over rounds of same-round differences) and span counts."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for mode in run["modes"]:
        if mode in run["unavailable"]:
            continue
        table[mode] = {}
        for path in run["paths"]:
            per_round = [rd for rd in run["rounds"] if mode in rd and "bare" in rd]
            if not per_round:
                continue
            over = [rd[mode][path]["median_us"] - rd["bare"][path]["median_us"] for rd in per_round]
            over90 = [rd[mode][path]["p90_us"] - rd["bare"][path]["p90_us"] for rd in per_round]
            last = per_round[-1][mode][path]
            table[mode][path] = {
                "median_us": statistics.median(rd[mode][path]["median_us"] for rd in per_round),
                "p90_us": statistics.median(rd[mode][path]["p90_us"] for rd in per_round),
                "overhead_us": statistics.median(over), "overhead_min": min(over), "overhead_max": max(over),
                "overhead_p90_us": statistics.median(over90),
                "spans_per_call": last["spans_per_call"], "by_kind": last["by_kind"],
                "attrs_per_span": last["attrs_per_span"], "events_per_call": last["events_per_call"],
                "content_seen": last["content_seen"], "span_names": last["span_names"],
                "dropped_attributes_per_span": last.get("dropped_attributes_per_span", 0.0),
                "dropped_spans": max(rd[mode][path].get("dropped_spans", 0) for rd in per_round),
            }
    return table


LABEL = {
    "bare": "bare (no tracing)",
    "native": "anthropic native spans",
    "native-content": "anthropic native spans, content",
    "ours": "**ours**, metadata, detectors on",
    "ours-content": "**ours**, content capture",
    "ours-jsonl": "**ours**, metadata + JSONL file",
    "openllmetry": "OpenLLMetry (`opentelemetry-instrumentation-anthropic`)",
    "official": "official (`opentelemetry-instrumentation-genai-anthropic`)",
    "openinference": "OpenInference (`openinference-instrumentation-anthropic`)",
}


def _ratio(value: float, base: float | None) -> str:
    if base is None or base <= 0:
        return "–"
    return f"{value / base:.2f}×"


def markdown(run: dict[str, Any], table: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    paths = run["paths"]
    native = table.get("native", {})
    native_c = table.get("native-content", {})
    vers = versions()
    mach = machine()
    lines = [
        "# Per-call overhead: ours vs the SDK's native spans vs the peers",
        "",
        f"Generated {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by "
        "`benchmarks/bench_overhead.py` (see `benchmarks/README.md` for the method and caveats).",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['os']}, {mach['implementation']} {mach['python']}.",
        f"Code measured: otel-agent-trace, {run.get('source', 'unknown')}.",
        f"Method: {args.rounds} interleaved rounds × {len(run['modes'])} modes × {len(paths)} call paths; "
        f"each child does {args.warmup} warm-up + {args.calls} timed calls per path; "
        f"wall time {run['elapsed_s'] / 60:.1f} min; load average (1/5/15 min) {run['load'][0]} at the start, "
        f"{run['load'][1]} at the end (other work on the machine shows up as noise; interleaving spreads it "
        "over all modes).",
        "Overhead = median µs/call of the mode − median µs/call of `bare` in the same round, then the median over "
        "rounds (range in brackets). ×native = overhead ÷ the native spans' overhead on the same path "
        "(×native-content likewise, for content modes). Targets: ours ≤ 0.5× native, ours-content ≤ 0.5× "
        "native-content.",
        "",
        "## Overhead per call (µs over bare) and ratio to the SDK's native spans",
        "",
        "| mode | " + " | ".join(PATH_LABEL[p] for p in paths) + " |",
        "|---|" + "---:|" * len(paths),
    ]
    for mode in run["modes"]:
        if mode in run["unavailable"]:
            lines.append(f"| {LABEL.get(mode, mode)} | " + " | ".join("n/a" for _ in paths) + " |")
            continue
        cells = []
        for path in paths:
            row = table[mode].get(path)
            if row is None:
                cells.append("–")
                continue
            if mode == "bare":
                cells.append(f"{row['median_us']:.0f} µs/call (p90 {row['p90_us']:.0f})")
                continue
            base = native_c.get(path) if mode.endswith("content") else native.get(path)
            base_name = "native-content" if mode.endswith("content") else "native"
            ratio = "" if mode == base_name else \
                f" · **{_ratio(row['overhead_us'], base and base['overhead_us'])}**"
            cells.append(f"{row['overhead_us']:+.0f} [{row['overhead_min']:.0f}–{row['overhead_max']:.0f}]"
                         f"{ratio}")
        lines.append(f"| {LABEL.get(mode, mode)} | " + " | ".join(cells) + " |")
    checks = []
    targets = (("ours", native, "≤ 0.5× native"), ("ours-content", native_c, "≤ 0.5× native-content"))
    for mode, base_table, goal in targets:
        if mode not in table:
            continue
        ratios = {p: table[mode][p]["overhead_us"] / base_table[p]["overhead_us"]
                  for p in paths if p in table[mode] and p in base_table and base_table[p]["overhead_us"] > 0}
        met = [p for p, r in ratios.items() if r <= 0.5]
        checks.append(f"`{mode}` {goal}: met on {', '.join(met) if met else 'no path'} "
                      f"(ratios {', '.join(f'{p} {r:.2f}' for p, r in ratios.items())}).")
    lines += [
        "",
        "The `bare` row is the absolute cost of the SDK call on the mock transport. Ratios in bold: content "
        "modes (`…content`) against native-content, all others against native metadata-only spans.",
        "",
        "Targets: " + " ".join(checks),
        "",
        "## p90 overhead (µs over bare's p90, median over rounds)",
        "",
        "| mode | " + " | ".join(PATH_LABEL[p] for p in paths) + " |",
        "|---|" + "---:|" * len(paths),
    ]
    for mode in run["modes"]:
        if mode == "bare" or mode in run["unavailable"]:
            continue
        lines.append(f"| {LABEL.get(mode, mode)} | " + " | ".join(
            f"{table[mode][p]['overhead_p90_us']:+.0f}" if p in table[mode] else "–" for p in paths) + " |")
    lines += [
        "",
        "## What each mode emits (per call, from the counting exporter)",
        "",
        "Values for " + " / ".join(paths) + " when they differ. Spans per call are split into chat + "
        "execute_tool + invoke_agent + other (the native and peer spans have other names); ours amortizes one "
        "session span over the path's calls. Content: whether any attribute carried message text.",
        "",
        "| mode | span names | spans/call (chat + tool + session + other) | attrs/span | dropped attrs/span | "
        "events/call | content |",
        "|---|---|---|---:|---:|---:|---|",
    ]

    def joined(mode: str, key: str, fmt: str) -> str:
        values = [fmt.format(table[mode][p][key]) for p in paths if p in table[mode]]
        return values[0] if len(set(values)) == 1 else " / ".join(values)

    for mode in run["modes"]:
        if mode == "bare" or mode in run["unavailable"]:
            continue
        rows = [table[mode][p] for p in paths if p in table[mode]]
        if not rows:
            continue
        kinds = rows[0]["by_kind"]
        split = " + ".join(f"{kinds.get(x, 0):.3g}" for x in ("chat", "tool", "session", "other"))
        names = sorted({n for r in rows for n in r["span_names"]})
        shown = ", ".join(f"`{n}`" for n in names[:3]) + (" …" if len(names) > 3 else "")
        content = {r["content_seen"] for r in rows}
        lines.append(
            f"| {LABEL.get(mode, mode)} | {shown} | {joined(mode, 'spans_per_call', '{:.3g}')} ({split}) | "
            f"{joined(mode, 'attrs_per_span', '{:.1f}')} | {joined(mode, 'dropped_attributes_per_span', '{:.0f}')} | "
            f"{joined(mode, 'events_per_call', '{:.2g}')} | "
            f"{'yes' if content == {True} else 'no' if content == {False} else 'some paths'} |")
    drops = {m: max(r["dropped_spans"] for r in table[m].values()) for m in table if table[m]}
    if any(drops.values()):
        lines += ["", "Spans dropped by the BatchSpanProcessor (queue full): "
                  + ", ".join(f"{m}: {n}" for m, n in drops.items() if n)]
    if run["unavailable"]:
        lines += ["", "## Not measured", ""]
        for mode, reason in run["unavailable"].items():
            lines.append(f"- {LABEL.get(mode, mode)}: {reason}")
    lines += ["", "## Versions", "", "| package | version |", "|---|---|"]
    lines += [f"| {name} | {version} |" for name, version in vers.items()]
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------
# Soak and profile
# ------------------------------------------------------------------------------------------------------

def rss_kib() -> int:
    """Current resident set size (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _short_path(filename: str) -> str:
    """A file name without this machine's directories: package-relative, stdlib-relative, or its base name."""
    import sysconfig

    for marker in ("site-packages" + os.sep, os.sep + "src" + os.sep):
        if marker in filename:
            return filename.split(marker)[-1]
    stdlib = sysconfig.get_paths().get("stdlib", "")
    if stdlib and filename.startswith(stdlib):
        return filename[len(stdlib):].lstrip(os.sep)
    return os.path.basename(filename)


def soak(mode: str, turns: int, window: int = 20, traced_turns: int = 2_000) -> dict[str, Any]:
    """One agent session of ``turns`` calls with a sliding window of ``window`` messages (the first two
    kept), each answering the previous tool_use. Times every call and samples RSS; then runs
    ``traced_turns`` more under tracemalloc to show what, if anything, still grows."""
    import tracemalloc

    h = Harness(mode)
    api = h.api
    client = h.sync_client()
    tag = "soak"
    history: list[dict[str, Any]] = []
    times: list[int] = []
    rss: dict[int, int] = {}
    clock = time.perf_counter_ns
    checkpoints = {100, 1_000, 2_500, 5_000, 7_500, turns}

    def turn(k: int) -> int:
        nonlocal history
        if k:
            history += [assistant_message(k - 1, tag), user_result_message(k - 1, tag)]
            del history[:max(0, len(history) - (window - 2))]
        messages = [FIRST_MESSAGE, CONTEXT_MESSAGE, *history] if k else [FIRST_MESSAGE]
        api.prepare(k, tag, False)
        t0 = clock()
        client.messages.create(model=MODEL, max_tokens=4096, system=SYSTEM, tools=TOOLS, messages=messages)
        return clock() - t0

    gc.collect()
    rss[0] = rss_kib()
    growth: list[dict[str, Any]] = []
    traced_kib: list[int] = []
    try:
        for k in range(turns):
            times.append(turn(k))
            if k + 1 in checkpoints:
                rss[k + 1] = rss_kib()
        h.flush()
        gc.collect()
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
        traced_kib = [tracemalloc.get_traced_memory()[0] // 1024]
        step = max(1, traced_turns // 4)
        for k in range(turns, turns + traced_turns):
            turn(k)
            if (k + 1 - turns) % step == 0:
                h.flush()
                gc.collect()
                traced_kib.append(tracemalloc.get_traced_memory()[0] // 1024)
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        package = [tracemalloc.Filter(True, "*" + os.sep + "otel_agent_trace" + os.sep + "*")]
        for stat in after.filter_traces(package).compare_to(before.filter_traces(package), "lineno")[:4]:
            frame = stat.traceback[0]
            growth.append({"where": f"{_short_path(frame.filename)}:{frame.lineno}",
                           "kib": round(stat.size_diff / 1024, 1), "blocks": stat.count_diff})
        state: dict[str, Any] = {}
        hub = h.hub_getter()
        if hub is not None:
            tracker = hub.sessions
            state = {name: len(getattr(tracker, name, ())) for name in ("_open", "_by_tool_use", "_by_fingerprint")}
            for session in list(getattr(tracker, "_open", {}).values()):
                state["session.turns"] = session.turns
                state["session.pending"] = len(session.pending)
                analyzer = session.analyzer
                if analyzer is not None:
                    state["detector entries"] = {d.kind: d.tracked() for d in analyzer.detectors
                                                 if hasattr(d, "tracked")}
        h.end_sessions()
        h.flush()
        spans = h.exporter.spans
    finally:
        client.close()
        h.close()
    us = [t / 1000 for t in times]
    early, late = us[9:100], us[-100:]
    tenth = max(1, turns // 10)
    return {"mode": mode, "turns": turns, "early_median_us": statistics.median(early),
            "early_p90_us": percentile(early, 0.9), "late_median_us": statistics.median(late),
            "late_p90_us": percentile(late, 0.9), "overall_median_us": statistics.median(us),
            "deciles_us": [statistics.median(us[i * tenth:(i + 1) * tenth]) for i in range(10)],
            "rss_kib": rss, "spans": spans, "state": state, "growth": growth, "traced_turns": traced_turns,
            "traced_kib": traced_kib}


def soak_report(turns: int) -> str:
    results = {}
    for mode in ("bare", "ours"):
        print(f"soak: {mode}, {turns} turns …", file=sys.stderr, flush=True)
        cmd = [sys.executable, os.path.abspath(__file__), "--soak-child", mode, "--soak-turns", str(turns)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=900)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    bare, ours = results["bare"], results["ours"]
    lines = [
        f"## Soak: one session of {turns:,} turns, 20-message sliding window (ours: metadata, detectors on)",
        "",
        "| | turns 10–100 median (p90) µs | last 100 turns median (p90) µs | "
        "RSS after 100 → after last turn (KiB) | spans |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in (("bare", bare), ("ours", ours)):
        rss = r["rss_kib"]
        lines.append(f"| {name} | {r['early_median_us']:.0f} ({r['early_p90_us']:.0f}) | "
                     f"{r['late_median_us']:.0f} ({r['late_p90_us']:.0f}) | "
                     f"{rss['100']:,} → {rss[str(turns)]:,} (+{rss[str(turns)] - rss['100']:,}) | {r['spans']:,} |")
    lines += [
        "",
        f"Overhead of ours: turns 10–100 +{ours['early_median_us'] - bare['early_median_us']:.0f} µs, last 100 "
        f"turns +{ours['late_median_us'] - bare['late_median_us']:.0f} µs.",
        "",
        "Median µs/call per tenth of the run — bare: " + ", ".join(f"{v:.0f}" for v in bare["deciles_us"])
        + "; ours: " + ", ".join(f"{v:.0f}" for v in ours["deciles_us"]) + ".",
        "",
        "RSS (KiB) at turn — bare: " + ", ".join(f"{k}: {v:,}" for k, v in bare["rss_kib"].items())
        + "; ours: " + ", ".join(f"{k}: {v:,}" for k, v in ours["rss_kib"].items()) + ".",
        "",
        f"Our tracker state at the end (before the session is ended): {ours['state']}.",
        "",
        f"Memory traced by tracemalloc over {ours['traced_turns']:,} further turns (KiB live after a collection, "
        f"every {ours['traced_turns'] // 4:,} turns) — bare: {bare['traced_kib']}; ours: {ours['traced_kib']}. "
        "Where ours still grows (lines of our package): "
        + ", ".join(f"`{g['where']}` {g['kib']:+} KiB" for g in ours["growth"]) + ". tracemalloc only sees "
        "what was allocated after it started, so a bounded structure that replaces old (untraced) entries with "
        "new ones shows as growth until it has turned over; RSS and the tracker sizes above are the test for a "
        "leak. The detectors' caps (per session: 4 096 targets per index, 16 edits per file) bound their state.",
        "",
    ]
    return "\n".join(lines)


# The functions of our hot path that --breakdown times (owner module, attribute path). A missing one is
# skipped, so the list can name functions that a refactor removes.
BREAKDOWN_TARGETS = (
    ("otel_agent_trace.instrumentation.recorder", "AgentTracer.start_turn"),
    ("otel_agent_trace.instrumentation.recorder", "AgentTracer.infer_tool_calls"),
    ("otel_agent_trace.instrumentation.recorder", "AgentTracer.record_tool_span"),
    ("otel_agent_trace.instrumentation.recorder", "AgentTracer.complete_turn"),
    ("otel_agent_trace.instrumentation.recorder", "TurnCall.adopt"),
    ("otel_agent_trace.instrumentation.recorder", "TurnCall.on_event"),
    ("otel_agent_trace.instrumentation.recorder", "TurnCall.finish_stream"),
    ("otel_agent_trace.instrumentation.recorder", "AgentTracer._request_content"),
    ("otel_agent_trace.instrumentation.sessions", "SessionTracker.resolve"),
    ("otel_agent_trace.instrumentation.sessions", "SessionTracker.expect_tool_uses"),
    ("otel_agent_trace.detectors.analyzer", "SessionAnalyzer.observe_turn"),
    ("otel_agent_trace.detectors.analyzer", "SessionAnalyzer.observe_tool"),
    ("otel_agent_trace.instrumentation.recorder", "apply_message"),
    ("otel_agent_trace.instrumentation.recorder", "turn_response_attributes"),
    ("otel_agent_trace.pipeline.metrics", "AgentMetrics.turn"),
    ("opentelemetry.sdk.trace", "Tracer.start_span"),
    ("opentelemetry.sdk.trace", "Span.set_attributes"),
    ("opentelemetry.sdk.trace", "Span.end"),
)


def breakdown(mode: str, path: str, calls: int) -> str:
    """Median µs per call spent in each function of BREAKDOWN_TARGETS (nested ones are also counted in
    their callers), measured with plain timers around them: no profiler hook, so little distortion."""
    import importlib

    clock = time.perf_counter_ns
    current: dict[str, int] = {}
    per_call: dict[str, list[int]] = {}
    restore: list[tuple[Any, str, Any]] = []
    for module_name, attr_path in BREAKDOWN_TARGETS:
        try:
            owner: Any = importlib.import_module(module_name)
            *parents, name = attr_path.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            original = getattr(owner, name)
        except (ImportError, AttributeError):
            continue
        label = f"{module_name.rsplit('.', 1)[-1]}.{attr_path}"

        def timed(*args: Any, __fn: Any = original, __label: str = label, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                return __fn(*args, **kwargs)
            finally:
                current[__label] = current.get(__label, 0) + clock() - t0

        restore.append((owner, name, original))
        setattr(owner, name, timed)
    h = Harness(mode)
    prepare = h.api.prepare

    def prepare_and_collect(*args: Any, **kwargs: Any) -> None:  # called once before every call
        for label, ns in current.items():
            per_call.setdefault(label, []).append(ns)
        current.clear()
        prepare(*args, **kwargs)

    h.api.prepare = prepare_and_collect  # type: ignore[method-assign]
    try:
        times = run_path(h, path, 200, calls, tag=path)
    finally:
        h.close()
        for owner, name, original in restore:
            setattr(owner, name, original)
    lines = [f"Breakdown, mode={mode}, path={path}, {calls} calls (median {statistics.median(times) / 1000:.0f} "
             "µs/call including the timers): median and mean µs per call in each function; nested functions "
             "count in their callers too.", "", "| function | median µs | mean µs |", "|---|---:|---:|"]
    rows = [(label, values[200:]) for label, values in per_call.items() if values[200:]]
    for label, values in sorted(rows, key=lambda r: -statistics.median(r[1])):
        lines.append(f"| `{label}` | {statistics.median(values) / 1000:.1f} | {statistics.fmean(values) / 1000:.1f} |")
    return "\n".join(lines)


def profile(path: str, calls: int, top: int) -> str:
    """cProfile of ours (metadata, detectors on) on one path: our functions by self time. cProfile's hook
    inflates small Python functions (every call costs ~1 µs more), so read it for *where*, and --breakdown
    for *how much*."""
    import cProfile
    import io
    import pstats

    h = Harness("ours")
    package = os.sep + "otel_agent_trace" + os.sep
    try:
        run_path(h, path, 200, 100, tag=path + "w")  # warm
        profiler = cProfile.Profile()
        profiler.enable()
        run_path(h, path, 0, calls, tag=path)
        profiler.disable()
    finally:
        h.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime")
    ours_c = [(fn, st) for fn, st in stats.stats.items() if package in fn[0]]  # type: ignore[attr-defined]
    total_ours = sum(st[2] for _, st in ours_c)
    lines = [f"cProfile, ours (metadata, detectors on), path={path}, {calls} calls; "
             f"total self time in otel_agent_trace: {total_ours / calls * 1e6:.1f} µs/call",
             f"{'self µs/call':>12} {'cum µs/call':>11} {'calls/call':>10}  function"]
    for fn, st in sorted(ours_c, key=lambda item: -item[1][2])[:top]:
        lines.append(f"{st[2] / calls * 1e6:12.2f} {st[3] / calls * 1e6:11.2f} {st[1] / calls:10.1f}  "
                     f"{fn[0].split(package)[-1]}:{fn[1]} {fn[2]}")
    lines += ["", "All functions by self time (top 25):"]
    stats.strip_dirs().sort_stats("tottime").print_stats(25)
    lines.append(out.getvalue())
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write the markdown report here (else print it)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--source", choices=("head", "worktree", "installed"), default="head",
                        help="code the children measure: the last commit (default), src/ now, or as installed")
    parser.add_argument("--quick", action="store_true", help="2 rounds × 50 + 300 calls: a smoke run")
    parser.add_argument("--mode", help="child: run one mode in this process")
    parser.add_argument("--json", action="store_true", help="child: print the result as JSON")
    parser.add_argument("--soak", action="store_true", help="also run the 10 000-turn soak (bare vs ours)")
    parser.add_argument("--soak-only", action="store_true", help="run only the soak")
    parser.add_argument("--soak-turns", type=int, default=10_000)
    parser.add_argument("--soak-child", help=argparse.SUPPRESS)
    parser.add_argument("--profile", choices=PATHS, help="cProfile ours on one path and print the top list")
    parser.add_argument("--profile-calls", type=int, default=2_000)
    parser.add_argument("--breakdown", choices=PATHS, help="time each function of our hot path on one path")
    parser.add_argument("--breakdown-mode", default="ours", help="ours | ours-content | ours-jsonl")
    args = parser.parse_args()

    if args.soak_child:
        print(json.dumps(soak(args.soak_child, args.soak_turns)))
        return
    if args.mode:
        result = child(args.mode, [p for p in args.paths.split(",") if p], args.warmup, args.calls)
        print(json.dumps(result) if args.json else json.dumps(result, indent=2))
        return
    if args.breakdown:
        print(breakdown(args.breakdown_mode, args.breakdown, args.profile_calls))
        return
    if args.profile:
        print(profile(args.profile, args.profile_calls, 25))
        return
    if args.quick:
        args.rounds, args.warmup, args.calls = 2, 50, 300
    command = "python " + " ".join(["benchmarks/bench_overhead.py", *sys.argv[1:]])
    report = ""
    args.source_note = snapshot_package(args.source)
    try:
        if not args.soak_only:
            print(f"{args.rounds} rounds × modes [{args.modes}] × paths [{args.paths}], "
                  f"{args.warmup}+{args.calls} calls each …", file=sys.stderr, flush=True)
            run = orchestrate(args)
            report = markdown(run, aggregate(run), args, command)
        if args.soak or args.soak_only:
            soak_md = soak_report(args.soak_turns)
            if args.soak_only and args.out and os.path.exists(args.out):
                with open(args.out, encoding="utf-8") as f:  # keep the overhead tables, replace the soak
                    report = f.read().split("## Soak", 1)[0].rstrip("\n") + "\n"
            report += "\n" + soak_md
    finally:
        drop_snapshot()
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(report)
        print(f"wrote {args.out}", file=sys.stderr)
    print(report)


if __name__ == "__main__":
    main()
