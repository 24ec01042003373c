"""``otel-agent-trace demo``: a scripted coding agent against the embedded fake Messages API — no key, no
network. Runs a clean session and a failing one, prints each turn, the span tree with findings, and the
work-backwards report of the failing run; writes the JSONL trace; exports over OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``LANGFUSE_*``) is set.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from otel_agent_trace import semconv as sc
from otel_agent_trace.testing import demo_agent as agent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="otel-agent-trace demo", description=__doc__)
    parser.add_argument("--jsonl", default="agent-trace.jsonl", help="where to write the per-turn JSONL trace")
    parser.add_argument("--html", metavar="OUT", help="also write the HTML report of both sessions")
    parser.add_argument("--no-color", action="store_true")
    args = parser.parse_args(argv)

    import anthropic
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_agent_trace import agent_session
    from otel_agent_trace.config import Settings
    from otel_agent_trace.exporters.delivery import CountingDelivery, command_resource
    from otel_agent_trace.exporters.setup import build_exporter
    from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
    from otel_agent_trace.testing.fake_api import FakeMessagesAPI

    color = not args.no_color and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    jsonl = Path(args.jsonl)
    jsonl.unlink(missing_ok=True)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=command_resource("otel-agent-trace-demo"))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    endpoint = _export_target()
    counting: CountingDelivery | None = None
    if endpoint:
        exporter = build_exporter()
        if exporter is not None:
            # Exported by the command itself, batch by batch, so it can say what the backend accepted.
            counting = CountingDelivery(exporter)
            provider.add_span_processor(counting)
    settings = Settings.from_env(jsonl=str(jsonl))
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=settings)
    try:
        with FakeMessagesAPI(agent.scripted_model) as api:
            client = anthropic.Anthropic(api_key="demo-key", base_url=api.base_url, max_retries=2)
            for name, task in (("clean-run", agent.CLEAN_TASK), ("flaky-run", agent.FAILING_TASK)):
                agent.workspace.set(agent.make_workspace())
                try:
                    with agent_session(name):
                        agent.run_agent(client, task, max_turns=11)
                except RuntimeError as error:
                    print(f"[{name}] the agent stopped: {error}")
    finally:
        instrumentor.uninstrument()
    spans = memory.get_finished_spans()
    _print_turns(jsonl, color)
    print()
    print(_bold("Span tree", color) + " (what Jaeger, Tempo, Langfuse or Phoenix show):")
    print(render_tree(spans))
    _print_report(jsonl, color, args.html)
    lost = 0
    if counting is not None:
        delivery = counting.flush()
        lost = delivery.lost
        print(f"\n{delivery.summary(endpoint or 'the exporter')}")
        if delivery.accepted:
            print("\n".join(delivery.trace_lines()))
    elif endpoint:
        print("\nOTEL_TRACES_EXPORTER=none: the spans were not exported")
    else:
        print("\nset OTEL_EXPORTER_OTLP_ENDPOINT to also send these spans to a collector or backend")
    provider.shutdown()
    print(f"JSONL trace written to {jsonl} — try: otel-agent-trace report {jsonl}")
    return 1 if lost else 0


def _export_target() -> str | None:
    env = os.environ
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if env.get("LANGFUSE_PUBLIC_KEY") and env.get("LANGFUSE_SECRET_KEY"):
        return "Langfuse"
    return None


def _bold(text: str, color: bool) -> str:
    return f"\x1b[1m{text}\x1b[0m" if color else text


def _print_turns(jsonl: Path, color: bool) -> None:
    """The seed's per-turn listing, from the JSONL trace the run just wrote."""
    from otel_agent_trace.files.importers import LineError, load
    from otel_agent_trace.files.report import target_of

    for session in load(jsonl):
        if isinstance(session, LineError):
            continue
        print()
        print(_bold(f"{session.agent_name} ({session.id[:8]}) — {session.end_reason}", color))
        results = {c.tool_use_id: c for c in session.tool_calls}
        for turn in session.turns:
            line = f"Turn {turn.index}: stop_reason={turn.stop_reason}, input_tokens={turn.usage.context_tokens:,}"
            print(line)
            for use in turn.tool_uses:
                call = results.get(use.id)
                mark = "  ✗ error" if call is not None and call.is_error else ""
                print(f"  → calls {use.name} {target_of(use.input)}{mark}")


def render_tree(spans: Sequence[Any]) -> str:
    """An indented span tree with the numbers and findings a person scans for."""
    by_parent: dict[int | None, list[Any]] = {}
    ids = {s.context.span_id for s in spans}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
        by_parent.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in by_parent.get(parent, []):
            a = span.attributes or {}
            detail = ""
            operation = a.get(sc.OPERATION_NAME)
            if operation == sc.OP_CHAT:
                detail = (f"turn {a.get(sc.TURN_INDEX)} · {a.get(sc.STOP_REASON)} · "
                          f"in {a.get(sc.USAGE_INPUT_TOKENS, 0):,} · out {a.get(sc.USAGE_OUTPUT_TOKENS, 0):,} · "
                          f"cache hit {a.get(sc.CACHE_HIT_RATIO, 0):.0%}")
            elif operation == sc.OP_EXECUTE_TOOL:
                detail = f"{a.get(sc.TOOL_RESULT_CHARS, 0):,} chars" + (" · error" if a.get(sc.TOOL_IS_ERROR) else "")
            elif operation == sc.OP_INVOKE_AGENT:
                detail = (f"{a.get(sc.TURNS)} turns · {a.get(sc.END_REASON)} · "
                          f"{a.get(sc.FINDINGS_COUNT, 0)} findings · saved ${a.get(sc.CACHE_SAVED_USD, 0):.4f}")
            lines.append(f"{'  ' * depth}{span.name}  [{detail}]")
            for event in span.events:
                if event.name == sc.FINDING_EVENT and (operation != sc.OP_INVOKE_AGENT
                                                       or event.attributes.get(sc.FINDING_KIND) == "no_end_turn"):
                    e = event.attributes
                    lines.append(f"{'  ' * (depth + 1)}⚠ {e.get(sc.FINDING_KIND)}: {e.get(sc.FINDING_MESSAGE)}")
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


def _print_report(jsonl: Path, color: bool, html: str | None) -> None:
    from otel_agent_trace.detectors import analyze_session
    from otel_agent_trace.files.importers import LineError, load
    from otel_agent_trace.files.report import render_html, render_text

    sessions = [s for s in load(jsonl) if not isinstance(s, LineError)]
    analysed = [(s, analyze_session(s)) for s in sessions]
    failing = next((pair for pair in analysed if pair[0].end_reason != "end_turn"), None)
    if failing is not None:
        print()
        print(_bold("Report of the failing run, read from its end backwards:", color))
        print(render_text(failing[0], failing[1], color=color))
    if html:
        Path(html).write_text(render_html(analysed, title="otel-agent-trace demo"), encoding="utf-8")
        print(f"HTML report written to {html}")
