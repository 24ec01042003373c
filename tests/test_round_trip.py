"""Live run → JSONL → findings, report and import agree with what the live spans showed."""

from __future__ import annotations

from pathlib import Path

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_agent_trace
from otel_agent_trace import agent_session
from otel_agent_trace.config import Settings
from otel_agent_trace.detectors import analyze_session
from otel_agent_trace.files.importers import LineError, load
from otel_agent_trace.files.replay import import_files
from otel_agent_trace.files.report import render_text
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing import demo_agent as demo
from otel_agent_trace.testing import findings_of, span_tree
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, text_reply


@pytest.fixture
def agent_trace_settings(tmp_path):
    """The plugin's instrumentation, with the JSONL writer on."""
    return Settings.from_env({}, jsonl=str(tmp_path / "trace.jsonl"))


@pytest.fixture
def live_run(agent_trace, fake_anthropic):
    """The demo's two sessions, traced live with the JSONL writer on."""
    fake_anthropic.respond_with(demo.scripted_model)
    client = fake_anthropic.client(max_retries=2)
    for name, task in (("clean-run", demo.CLEAN_TASK), ("flaky-run", demo.FAILING_TASK)):
        demo.workspace.set(demo.make_workspace())
        with pytest.raises(RuntimeError) if "flaky" in task else _nothing(), agent_session(name):
            demo.run_agent(client, task, max_turns=11)
    return Path(agent_trace.settings.jsonl), agent_trace.spans


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _sessions(path):
    items = list(load(path))
    assert not [i for i in items if isinstance(i, LineError)]
    return items


def test_jsonl_holds_every_turn_of_both_sessions(live_run):
    """The file has both sessions, every turn with usage, and each end reason."""
    path, _ = live_run
    sessions = {s.agent_name: s for s in _sessions(path)}
    assert [t.index for t in sessions["clean-run"].turns] == list(range(1, 8))
    assert [t.index for t in sessions["flaky-run"].turns] == list(range(1, 12))
    assert sessions["clean-run"].end_reason == "end_turn"
    assert sessions["flaky-run"].end_reason == "turn_limit"
    assert sessions["flaky-run"].turns[5].usage.context_tokens > 20_000


def test_offline_findings_agree_with_live_findings(live_run):
    """Detectors over the file find the same (kind, turn) pairs the live spans carried."""
    path, spans = live_run
    live = {(f["agent_trace.finding.kind"], f["agent_trace.finding.turn"]) for f in findings_of(spans)}
    offline = {(f.kind, f.turn) for s in _sessions(path) for f in analyze_session(s)}
    assert live == offline
    assert {kind for kind, _ in live} >= {"hallucinated_input", "token_jump", "tool_loop", "context_drift",
                                          "no_end_turn", "cache_miss"}


def test_load_reports_what_the_live_sessions_carried(live_run, agent_trace):
    """``otel_agent_trace.load`` of the file gives each session's live findings and span totals."""
    path, _ = live_run
    live = {s.agent_name: s for s in agent_trace.sessions}
    for run in otel_agent_trace.load(path).sessions:
        session = live[run.session.agent_name]
        assert sorted((f.kind, f.turn) for f in run.findings) == sorted((f.kind, f.turn) for f in session.findings)
        assert (run.rollup.turns, run.rollup.tool_calls) == (session.turns, session.tool_calls)
        assert (run.rollup.input_tokens, run.rollup.output_tokens) == (session.input_tokens, session.output_tokens)
        assert run.rollup.saved_usd == pytest.approx(session.rollup.saved_usd)


def test_report_of_the_file_names_the_outcome_and_findings(live_run):
    """The work-backwards report of the failing session leads with the turn limit and lists its findings."""
    path, _ = live_run
    flaky = next(s for s in _sessions(path) if s.agent_name == "flaky-run")
    text = render_text(flaky, analyze_session(flaky))
    assert text.index("turn limit") < text.index("T11") < text.index("T10")
    for kind in ("tool_loop", "token_jump", "context_drift"):
        assert kind in text


def test_import_rebuilds_the_live_span_tree(live_run):
    """Replaying the file gives the same session → turn → tool tree as the live run."""
    path, spans = live_run
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    summary = import_files([str(path)], provider.get_tracer("test"), settings=Settings.from_env({}))
    assert summary.sessions == 2 and summary.turns == 18 and not summary.failures
    replayed = exporter.get_finished_spans()
    assert span_tree(replayed) == span_tree(spans)
    live_findings = sorted((f["agent_trace.finding.kind"], f["agent_trace.finding.turn"]) for f in findings_of(spans))
    replay_findings = sorted((f["agent_trace.finding.kind"], f["agent_trace.finding.turn"])
                             for f in findings_of(replayed))
    assert replay_findings == live_findings


# What only a live call knows: the client's endpoint and request options, the HTTP attempts, stream timing.
LIVE_ONLY = {"server.address", "server.port", "gen_ai.request.max_tokens", "gen_ai.request.stream",
             "agent_trace.http.attempts", "gen_ai.response.time_to_first_chunk",
             "langfuse.observation.completion_start_time"}


def _flat(spans):
    """Each span as (depth, name, attributes without the live-only ones, event names), in tree order."""
    children: dict = {}
    ids = {s.context.span_id for s in spans}
    for span in sorted(spans, key=lambda s: (s.start_time or 0, s.name)):
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    out = []

    def walk(parent, depth):
        for span in children.get(parent, []):
            attributes = {k: v for k, v in span.attributes.items() if k not in LIVE_ONLY}
            if attributes.get("agent_trace.tool.source") in ("dispatcher", "inferred"):
                attributes["agent_trace.tool.source"] = "imported"
            out.append((depth, span.name, attributes, [e.name for e in span.events], span.status.status_code))
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return out


@pytest.mark.parametrize("dispatcher", [False, True], ids=["inferred-tools", "dispatched-tools"])
def test_live_and_imported_spans_are_identical(tmp_path, provider, exporter, dispatcher):
    """Span for span — names, parents, attributes, events, status — an imported JSONL file gives what the
    live run gave, tool calls from a dispatcher included; only what a file cannot know is left out."""
    path = tmp_path / "trace.jsonl"
    options = {"tool_dispatcher": "otel_agent_trace.testing.demo_agent:dispatch_tool"} if dispatcher else {}
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=Settings.from_env({}, jsonl=str(path), **options))
    try:
        with FakeMessagesAPI(demo.scripted_model) as api:
            client = anthropic.Anthropic(api_key="k", base_url=api.base_url)
            demo.workspace.set(demo.make_workspace())
            with pytest.raises(RuntimeError), agent_session("flaky-run"):
                demo.run_agent(client, demo.FAILING_TASK, max_turns=11,
                               dispatch=lambda name, tool_input: demo.dispatch_tool(name, tool_input))
    finally:
        instrumentor.uninstrument()
    live = exporter.get_finished_spans()
    replayed = InMemorySpanExporter()
    replay_provider = TracerProvider()
    replay_provider.add_span_processor(SimpleSpanProcessor(replayed))
    import_files([str(path)], replay_provider.get_tracer("test"), settings=Settings.from_env({}))
    sources = {s.attributes.get("agent_trace.tool.source") for s in live if s.name.startswith("execute_tool")}
    assert sources == ({"dispatcher"} if dispatcher else {"inferred"})
    for replayed_span, live_span in zip(_flat(replayed.get_finished_spans()), _flat(live), strict=True):
        assert replayed_span == live_span


def test_one_hour_cache_writes_reach_the_record_and_survive_the_file(agent_trace, fake_anthropic):
    """`usage.cache_creation.ephemeral_1h_input_tokens`, read from the real client's response, is kept on the
    turn and in the JSONL line, so cache_miss judges a pause by the same lifetime live and offline."""
    usage = {"cache_creation_input_tokens": 9_800,
             "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 9_800}}
    fake_anthropic.enqueue(text_reply("done", usage=usage))
    fake_anthropic.client().messages.create(model="claude-sonnet-4-5", max_tokens=64,
                                            messages=[{"role": "user", "content": "hi"}])
    (session,) = _sessions(Path(agent_trace.settings.jsonl))
    assert [(t.usage.cache_creation_input_tokens, t.usage.cache_creation_1h_input_tokens)
            for t in session.turns] == [(9_800, 9_800)]
