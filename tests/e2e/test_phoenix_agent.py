"""The example agent's failing run, traced every way the README offers, read back from a real Phoenix.

* zero code: ``opentelemetry-instrument python examples/agent.py --failing`` over OTLP/HTTP and OTLP/gRPC;
* one line: ``otel_agent_trace.instrument()`` in the process (tests/e2e/agent_runner.py), over OTLP/HTTP;
* after the fact: ``otel-agent-trace import FILE`` of a JSONL transcript.

Every run is a subprocess configured only through the standard ``OTEL_*`` variables, and every
assertion is on what Phoenix stored: the span tree (AGENT ``invoke_agent`` → LLM ``chat`` → TOOL
``execute_tool``), the attributes, and the ``agent_trace.finding`` events.

The failing scenario (otel_agent_trace.testing.demo_agent.FAILING_SCRIPT) runs 11 turns, each asking for one
tool; the loop raises ``RuntimeError("Turn limit reached")`` before the 11th tool result is sent back.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otel_agent_trace.testing.demo_agent import CLEAN_SCRIPT, FAILING_SCRIPT, MODEL

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "agent.py"
RUNNER = Path(__file__).with_name("agent_runner.py")

TURNS = 11
CHAT = f"chat {MODEL}"
FINDING = "agent_trace.finding"
# Tool asked for at each turn of the failing run (turn 11's is dispatched, its result never sent).
FAILING_TOOLS = {turn: step[0] for turn, step in enumerate(FAILING_SCRIPT, start=1)}
EXPECTED_KINDS = {"hallucinated_input", "cache_miss", "token_jump", "context_drift", "tool_loop", "no_end_turn"}
# Turns whose tool fails: the guessed path, then three edits of a string the first edit already replaced.
FAILING_TOOL_ERRORS = frozenset({1, 7, 8, 9})
RUN_TIMEOUT = 60

# Inherited variables that would redirect or reconfigure the traced run.
_STRIPPED_PREFIXES = ("OTEL_", "ANTHROPIC_", "LANGFUSE_", "PHOENIX_")


# -- running things ------------------------------------------------------------------------------------
def _script(name: str) -> str:
    """A console script of the test interpreter's environment (the venv's bin/), else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed next to {sys.executable} nor on PATH")
    return found


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _otlp_env(phoenix: Any, project: str, protocol: str = "http/protobuf", **extra: str) -> dict[str, str]:
    """The standard OTEL_* configuration of a process exporting to Phoenix's ``project``."""
    return _clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=phoenix.grpc_endpoint if protocol == "grpc" else phoenix.http_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="otel-agent-trace-e2e",
        OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={project}",
        # Export in several batches while the agent runs, as a long run would, not only in the exit flush.
        OTEL_BSP_SCHEDULE_DELAY="200",
        **extra,
    )


def _run(cmd: Sequence[str], env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), env=dict(env), cwd=cwd, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL, check=False)


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"


def _assert_failed_at_turn_limit(done: subprocess.CompletedProcess[str]) -> None:
    """The example raises RuntimeError("Turn limit reached") at the end: that, and nothing else."""
    assert done.returncode != 0, _output(done)
    assert "RuntimeError: Turn limit reached" in done.stderr, _output(done)
    assert "could not export" not in done.stderr, _output(done)
    assert "Failed to export" not in done.stderr, _output(done)


def _project(label: str) -> str:
    return f"e2e-agent-{label}-{uuid.uuid4().hex[:8]}"


def _session_traces(phoenix: Any, project: str, sessions: int = 1, timeout: float = 30) -> list[list[dict]]:
    """The complete trace of each session in ``project``: waits for the session spans, then for as many
    spans as each session says it has (itself + its turns + its tool calls)."""
    spans = phoenix.spans(project, wait_for=sessions, timeout=timeout)
    roots: list[dict] = []
    while True:
        roots = [s for s in spans if s["kind"] == "AGENT" and s["parent_id"] is None]
        if len(roots) >= sessions:
            break
        spans = phoenix.spans(project, wait_for=len(spans) + 1, timeout=timeout)
    traces = []
    for root in roots:
        a = root["attributes"]
        expected = 1 + int(a["agent_trace.turns"]) + int(a["agent_trace.tool_calls"])
        traces.append(phoenix.spans(project, trace_id=root["trace_id"], wait_for=expected, timeout=timeout))
    return traces


# -- what the failing run must look like ---------------------------------------------------------------
def _turn(span: Mapping[str, Any]) -> int | None:
    return span["attributes"].get("agent_trace.turn.index")


def _root(spans: Sequence[dict]) -> dict:
    [root] = [s for s in spans if s["parent_id"] is None]
    return root


def _findings(spans: Sequence[Mapping[str, Any]]) -> list[tuple[dict, dict]]:
    """(span, event attributes) of every finding event."""
    return [(span, event["attributes"]) for span in spans for event in span["events"] if event["name"] == FINDING]


def _placement(spans: Sequence[Mapping[str, Any]]) -> set[tuple[str, int, str, int | None]]:
    """Where each finding sits: (kind, reported turn, span name, span's turn index)."""
    return {
        (e["agent_trace.finding.kind"], e["agent_trace.finding.turn"], span["name"], _turn(span))
        for span, e in _findings(spans)
    }


def assert_failing_run(spans: Sequence[dict], *, agent: str = "agent", tool_source: str,
                       error_turns: frozenset[int] | None = None, findings_on_their_turn: bool = True) -> None:
    """The trace of the example's failing run, as Phoenix returns it.

    ``error_turns``: turns whose tool span is an error, when known: the failing tools are turn 1's
    guessed path and the three edits of turns 7-9, but the live path marks them only when the loop flags
    ``is_error`` (demo_agent's does, the seed-style example doesn't: the result text decides then).
    ``findings_on_their_turn``: every finding event sits on a span of the turn it reports (the live
    path attaches a finding to the turn or tool span being observed when the detector fires).
    """
    by_id = {s["span_id"]: s for s in spans}
    names = Counter(s["name"] for s in spans)

    # The session: one AGENT root, ended by the turn limit, with the findings rolled up.
    agents = [s for s in spans if s["kind"] == "AGENT"]
    assert [s["name"] for s in agents] == [f"invoke_agent {agent}"], names
    root = agents[0]
    ra = root["attributes"]
    assert root["parent_id"] is None
    assert {s["trace_id"] for s in spans} == {root["trace_id"]}
    assert ra["gen_ai.operation.name"] == "invoke_agent"
    assert ra["gen_ai.agent.name"] == agent
    assert ra["agent_trace.end_reason"] == "turn_limit", ra
    assert ra["agent_trace.turns"] == TURNS
    assert ra["agent_trace.findings.count"] >= 4, ra
    assert set(ra["agent_trace.findings.kinds"]) >= EXPECTED_KINDS, ra["agent_trace.findings.kinds"]
    conversation = ra["gen_ai.conversation.id"]
    assert conversation and ra.get("session.id") == conversation

    # 11 turns: LLM spans, children of the session, numbered 1..11, with usage.
    chats = sorted((s for s in spans if s["kind"] == "LLM"), key=lambda s: _turn(s) or 0)
    assert [s["name"] for s in chats] == [CHAT] * TURNS, names
    assert [_turn(s) for s in chats] == list(range(1, TURNS + 1))
    assert {s["parent_id"] for s in chats} == {root["span_id"]}
    for chat in chats:
        a = chat["attributes"]
        where = f"turn {_turn(chat)}: {a}"
        assert a["gen_ai.operation.name"] == "chat", where
        assert a["gen_ai.provider.name"] == "anthropic", where
        assert a["gen_ai.request.model"] == MODEL, where
        assert a["gen_ai.conversation.id"] == conversation, where
        assert a["gen_ai.response.finish_reasons"] == ["tool_use"], where
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0, where
        # The failing scenario rewrites the prompt cache every turn and never reads it (→ cache_miss).
        assert a["gen_ai.usage.cache_creation.input_tokens"] > 0, where
        assert a["gen_ai.usage.cache_read.input_tokens"] == 0, where
        assert a["agent_trace.tool_use.names"] == [FAILING_TOOLS[_turn(chat)]], where
        # Phoenix derives its own token counts from ours.
        assert a.get("llm.token_count.prompt") == a["gen_ai.usage.input_tokens"], where
    assert ra["agent_trace.tokens.output"] == sum(c["attributes"]["gen_ai.usage.output_tokens"] for c in chats)
    assert ra["agent_trace.tokens.cache_write"] == sum(
        c["attributes"]["gen_ai.usage.cache_creation.input_tokens"] for c in chats)
    assert ra["agent_trace.tokens.cache_read"] == 0

    # Tool calls: TOOL spans under the chat span that asked for them.
    tools = [s for s in spans if s["kind"] == "TOOL"]
    assert len(tools) == ra["agent_trace.tool_calls"]
    assert len(spans) == 1 + TURNS + len(tools), names
    for tool in tools:
        a = tool["attributes"]
        parent = by_id.get(tool["parent_id"])
        assert parent is not None and parent["kind"] == "LLM", (tool, parent)
        assert tool["name"] == f"execute_tool {a['gen_ai.tool.name']}"
        assert a["gen_ai.operation.name"] == "execute_tool"
        assert a["gen_ai.tool.name"] in parent["attributes"]["agent_trace.tool_use.names"], (tool, parent)
        assert a["gen_ai.tool.call.id"].startswith("toolu_")
        assert a["agent_trace.tool.source"] == tool_source
        assert _turn(tool) == _turn(parent)
        assert a["gen_ai.conversation.id"] == conversation
    # Turns 1-10 each ran their tool; turn 11's result was never sent, so its span is optional.
    tool_turns = Counter(_turn(t) for t in tools)
    assert set(tool_turns) - {TURNS} == set(range(1, TURNS)), tool_turns
    assert max(tool_turns.values()) == 1, tool_turns
    if error_turns is not None:  # turn 11 (`npm test`) depends on the machine: not checked
        errors = {_turn(t) for t in tools if t["attributes"].get("agent_trace.tool.is_error")} - {TURNS}
        assert errors == error_turns, errors
        assert {_turn(t) for t in tools if t["status_code"] == "ERROR"} - {TURNS} == error_turns

    # Findings: one event per finding, with its attributes, on the span it is about.
    events = _findings(spans)
    assert len(events) == ra["agent_trace.findings.count"], _placement(spans)
    assert {e["agent_trace.finding.kind"] for _, e in events} == set(ra["agent_trace.findings.kinds"])
    for _span, e in events:
        assert e["agent_trace.finding.severity"] in ("info", "warning", "error"), e
        assert isinstance(e["agent_trace.finding.turn"], int) and 1 <= e["agent_trace.finding.turn"] <= TURNS, e
        assert isinstance(e["agent_trace.finding.message"], str) and e["agent_trace.finding.message"], e

    def spans_with(kind: str) -> list[tuple[dict, dict]]:
        found = [(span, e) for span, e in events if e["agent_trace.finding.kind"] == kind]
        assert found, f"no {kind} event: {_placement(spans)}"
        return found

    [(span, e)] = spans_with("no_end_turn")
    assert span is root and e["agent_trace.finding.severity"] == "error"
    assert span["attributes"].get("langfuse.observation.level") == "ERROR"
    [(span, e)] = spans_with("hallucinated_input")
    assert span["name"] == "execute_tool read_file" and _turn(span) == 1, span
    assert "src/auth/session.ts" in e["agent_trace.finding.message"]
    for span, _ in spans_with("tool_loop"):
        assert span["name"] == "execute_tool edit_file", span
    for span, _ in spans_with("context_drift"):
        assert span["name"] in ("execute_tool edit_file", "execute_tool read_file"), span
    for span, _ in spans_with("cache_miss"):
        assert span["kind"] == "LLM", span
    for span, _ in spans_with("token_jump"):
        assert span["kind"] in ("LLM", "TOOL"), span
    if findings_on_their_turn:
        misplaced = {p for p in _placement(spans) if p[2] != root["name"] and p[1] != p[3]}
        assert not misplaced, f"findings on a span of another turn: {misplaced}"


def assert_clean_run(spans: Sequence[dict], *, agent: str) -> None:
    [root] = [s for s in spans if s["kind"] == "AGENT"]
    assert root["name"] == f"invoke_agent {agent}"
    ra = root["attributes"]
    turns = len(CLEAN_SCRIPT)
    assert ra["agent_trace.end_reason"] == "end_turn"
    assert ra["agent_trace.turns"] == turns
    assert ra["agent_trace.findings.count"] == 0
    assert _findings(spans) == []
    chats = sorted((s for s in spans if s["kind"] == "LLM"), key=lambda s: _turn(s) or 0)
    assert [_turn(s) for s in chats] == list(range(1, turns + 1))
    assert {s["parent_id"] for s in chats} == {root["span_id"]}
    assert chats[-1]["attributes"]["gen_ai.response.finish_reasons"] == ["end_turn"]
    tools = [s for s in spans if s["kind"] == "TOOL"]
    chat_ids = {c["span_id"]: c for c in chats}
    assert sorted((_turn(t), t["attributes"]["gen_ai.tool.name"]) for t in tools) == [
        (turn, step[0]) for turn, step in enumerate(CLEAN_SCRIPT[:-1], start=1)]
    for tool in tools:
        assert tool["attributes"]["gen_ai.tool.name"] in (
            chat_ids[tool["parent_id"]]["attributes"]["agent_trace.tool_use.names"])


# -- the runs ------------------------------------------------------------------------------------------
@dataclass
class LiveRun:
    project: str
    jsonl: Path
    spans: list[dict]


@pytest.fixture(scope="module")
def zero_code_http_run(phoenix: Any, tmp_path_factory: pytest.TempPathFactory) -> LiveRun:
    """The failing example under opentelemetry-instrument over OTLP/HTTP, also writing its JSONL trace."""
    workdir = tmp_path_factory.mktemp("zero-code-http")
    project = _project("zero-code-http")
    jsonl = workdir / "agent-trace.jsonl"
    done = _run([_script("opentelemetry-instrument"), sys.executable, str(EXAMPLE), "--failing"],
                _otlp_env(phoenix, project, OTEL_AGENT_TRACE_JSONL=str(jsonl)), workdir)
    _assert_failed_at_turn_limit(done)
    [spans] = _session_traces(phoenix, project)
    return LiveRun(project, jsonl, spans)


def test_zero_code_failing_agent_over_otlp_http(zero_code_http_run: LiveRun) -> None:
    assert_failing_run(zero_code_http_run.spans, tool_source="inferred")


def test_zero_code_failing_agent_over_otlp_grpc(phoenix: Any, tmp_path: Path) -> None:
    project = _project("zero-code-grpc")
    done = _run([_script("opentelemetry-instrument"), sys.executable, str(EXAMPLE), "--failing"],
                _otlp_env(phoenix, project, protocol="grpc"), tmp_path)
    _assert_failed_at_turn_limit(done)
    [spans] = _session_traces(phoenix, project)
    assert_failing_run(spans, tool_source="inferred")


def test_zero_code_with_tool_dispatcher(phoenix: Any, tmp_path: Path) -> None:
    """OTEL_AGENT_TRACE_TOOL_DISPATCHER names the example's dispatch_tool: tool spans are the real
    executions (turn 11's too), and failing tools are errors."""
    project = _project("dispatcher")
    env = _otlp_env(phoenix, project, OTEL_AGENT_TRACE_TOOL_DISPATCHER="agent:dispatch_tool")
    done = _run([_script("opentelemetry-instrument"), sys.executable, str(EXAMPLE), "--failing"], env, tmp_path)
    _assert_failed_at_turn_limit(done)
    [spans] = _session_traces(phoenix, project)
    assert_failing_run(spans, tool_source="dispatcher", error_turns=FAILING_TOOL_ERRORS)
    assert sorted(_turn(s) for s in spans if s["kind"] == "TOOL") == list(range(1, TURNS + 1))


def test_one_line_instrument_failing_agent_over_otlp_http(phoenix: Any, tmp_path: Path) -> None:
    project = _project("instrument")
    done = _run([sys.executable, str(RUNNER), "--failing"], _otlp_env(phoenix, project), tmp_path)
    _assert_failed_at_turn_limit(done)
    [spans] = _session_traces(phoenix, project)
    assert_failing_run(spans, tool_source="inferred")


def test_import_demo_transcript(phoenix: Any, tmp_path: Path) -> None:
    """``otel-agent-trace demo --jsonl`` writes a clean and a failing session; ``import`` replays both."""
    cli = _script("otel-agent-trace")
    jsonl = tmp_path / "t.jsonl"
    demo = _run([cli, "demo", "--jsonl", str(jsonl), "--no-color"], _clean_env(), tmp_path)
    assert demo.returncode == 0, _output(demo)
    assert "set OTEL_EXPORTER_OTLP_ENDPOINT" in demo.stdout, "the demo exported although no endpoint was set"
    assert jsonl.stat().st_size > 0

    project = _project("import")
    done = _run([cli, "import", str(jsonl)], _otlp_env(phoenix, project), tmp_path)
    assert done.returncode == 0, _output(done)
    summary = re.search(r"imported 1 file\(s\): 2 session\(s\), (\d+) turn\(s\), (\d+) finding\(s\); "
                        r"0 line\(s\) skipped\n(\d+) span\(s\) accepted by ", done.stdout)
    assert summary is not None, _output(done)
    turns, findings, sent = map(int, summary.groups())
    assert turns == len(CLEAN_SCRIPT) + TURNS

    traces = {_root(t)["attributes"]["gen_ai.agent.name"]: t for t in _session_traces(phoenix, project, sessions=2)}
    assert set(traces) == {"clean-run", "flaky-run"}
    assert sum(len(t) for t in traces.values()) == sent
    assert _root(traces["clean-run"])["trace_id"] != _root(traces["flaky-run"])["trace_id"]
    assert_clean_run(traces["clean-run"], agent="clean-run")
    flaky = traces["flaky-run"]
    # Errors: the guessed path, and the three edits after the fix was already applied.
    assert_failing_run(flaky, agent="flaky-run", tool_source="imported", error_turns=FAILING_TOOL_ERRORS,
                       findings_on_their_turn=False)
    assert findings == len(_findings(flaky))
    # The replay keeps the recorded timestamps: turns in order, inside their session.
    root = _root(flaky)
    chats = sorted((s for s in flaky if s["kind"] == "LLM"), key=_turn)
    starts = [c["start_time"] for c in chats]
    assert starts == sorted(starts)
    assert root["start_time"] <= starts[0] and chats[-1]["end_time"] <= root["end_time"]


@pytest.fixture(scope="module")
def reimported(phoenix: Any, zero_code_http_run: LiveRun, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The JSONL the zero-code run wrote (OTEL_AGENT_TRACE_JSONL), imported into a project of its own."""
    project = _project("reimport")
    done = _run([_script("otel-agent-trace"), "import", str(zero_code_http_run.jsonl)],
                _otlp_env(phoenix, project), tmp_path_factory.mktemp("reimport"))
    assert done.returncode == 0, _output(done)
    [spans] = _session_traces(phoenix, project)
    return spans


def _shape(trace: Sequence[dict]) -> list[tuple[Any, ...]]:
    by_id = {s["span_id"]: s for s in trace}
    return sorted((s["kind"], s["name"], _turn(s), by_id[s["parent_id"]]["name"] if s["parent_id"] else None)
                  for s in trace)


def test_live_transcript_reimported_has_the_live_tree(zero_code_http_run: LiveRun, reimported: list[dict]) -> None:
    """A transcript captured live and imported later shows the same tree, rollups and findings."""
    live = zero_code_http_run.spans
    assert _shape(reimported) == _shape(live)
    assert_failing_run(reimported, tool_source="imported", error_turns=FAILING_TOOL_ERRORS,
                       findings_on_their_turn=False)
    keys = ("agent_trace.turns", "agent_trace.tool_calls", "agent_trace.findings.count", "agent_trace.end_reason",
            "agent_trace.tokens.input", "agent_trace.tokens.output", "agent_trace.tokens.cache_write")
    assert {k: _root(reimported)["attributes"][k] for k in keys} == {k: _root(live)["attributes"][k] for k in keys}
    assert sorted(p[:2] for p in _placement(reimported)) == sorted(p[:2] for p in _placement(live))


def test_live_and_reimported_tool_errors_agree(zero_code_http_run: LiveRun, reimported: list[dict]) -> None:
    def errors(trace: Sequence[dict]) -> set[tuple[int | None, str]]:
        return {(_turn(s), s["status_code"]) for s in trace if s["kind"] == "TOOL"}

    assert errors(zero_code_http_run.spans) == errors(reimported)
    assert_failing_run(zero_code_http_run.spans, tool_source="inferred", error_turns=FAILING_TOOL_ERRORS)


def test_live_and_reimported_findings_sit_on_the_same_spans(
        zero_code_http_run: LiveRun, reimported: list[dict]) -> None:
    assert _placement(reimported) == _placement(zero_code_http_run.spans)
