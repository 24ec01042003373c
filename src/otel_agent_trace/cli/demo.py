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
from otel_agent_trace.files.report.terminal import styled
from otel_agent_trace.testing import demo_agent as agent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="otel-agent-trace demo",
        epilog="exit codes:\n  0  done\n  1  spans lost on the way to the backend\n"
               "  2  an output that cannot be written, or bad usage",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a scripted coding agent against a local fake Messages API (no key, no network): a\n"
                    "clean session and a failing one. Prints each turn, the span tree with findings and the\n"
                    "report of the failing run, writes the JSONL trace, and exports over OTLP when\n"
                    "OTEL_EXPORTER_OTLP_ENDPOINT (or LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY) is set.")
    parser.add_argument("--jsonl", default="agent-trace.jsonl", help="where to write the per-turn JSONL trace")
    parser.add_argument("--html", metavar="OUT", help="also write the HTML report of both sessions")
    parser.add_argument("--no-color", action="store_true", help="no colour even on a terminal (also NO_COLOR)")
    args = parser.parse_args(argv)
    from otel_agent_trace.cli import output_problem

    # Checked before the run: a bad output path should not cost the whole demo, then fail at the end.
    for option, path in (("--jsonl", args.jsonl), ("--html", args.html)):
        if path and (problem := output_problem(path)):
            print(f"demo {option}: {problem}", file=sys.stderr)
            return 2

    import anthropic
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_agent_trace import agent_session
    from otel_agent_trace.config import Settings
    from otel_agent_trace.exporters.delivery import CountingDelivery, command_resource
    from otel_agent_trace.exporters.setup import build_exporter
    from otel_agent_trace.files.report.terminal import console, use_color
    from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
    from otel_agent_trace.testing.fake_api import FakeMessagesAPI

    color = use_color(sys.stdout, args.no_color)
    out = console(sys.stdout, color=color)
    out.print("Running two scripted sessions of a coding agent against a local fake Messages API (no key, "
              "no network): clean-run, then flaky-run, which goes wrong on purpose.", style="bold")
    stopped: dict[str, str] = {}
    jsonl = Path(args.jsonl)
    jsonl.unlink(missing_ok=True)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=command_resource("otel-agent-trace-demo"))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    counting: CountingDelivery | None = None
    endpoint = _export_target()
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
                    stopped[name] = str(error)  # shown with the session's turns, once there is context
    finally:
        instrumentor.uninstrument()
    spans = memory.get_finished_spans()
    _print_turns(jsonl, out, stopped)
    out.print()
    out.print(styled(("Span tree", "bold"), " (what Jaeger, Tempo, Langfuse or Phoenix show):", clip=False))
    for line in tree_lines(spans, out.width):
        out.print(line, no_wrap=True, overflow="ellipsis")
    _print_report(jsonl, out, color, args.html)
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


def _print_turns(jsonl: Path, out: Any, stopped: dict[str, str]) -> None:
    """The seed's per-turn listing, from the JSONL trace the run just wrote."""
    from otel_agent_trace.files.importers import LineError, load
    from otel_agent_trace.files.report import one_line, target_of

    for session in load(jsonl):
        if isinstance(session, LineError):
            continue
        good = session.end_reason == "end_turn"
        out.print()
        out.print(styled((f"{one_line(session.agent_name, 40)} ({one_line(session.id[:8], 8)})", "bold"),
                             " — ", (one_line(session.end_reason, 20), "green" if good else "bold red"), clip=False))
        results = {c.tool_use_id: c for c in session.tool_calls}
        for turn in session.turns:
            out.print(styled((f"Turn {turn.index}", "bold"), f": stop_reason={one_line(turn.stop_reason, 20)}, "
                                 f"input_tokens={turn.usage.context_tokens:,}", clip=False))
            for use in turn.tool_uses:
                call = results.get(use.id)
                failed = call is not None and call.is_error
                out.print(styled("  → calls ", (one_line(use.name, 40), "cyan"),
                                 f" {one_line(target_of(use.input), 60)}", ("  ✗ error", "red") if failed else ""))
        if session.agent_name in stopped:
            out.print(styled(("the agent loop stopped: ", "red"), one_line(stopped[session.agent_name], 200),
                             clip=False))


def render_tree(spans: Sequence[Any]) -> str:
    """An indented span tree with the numbers and findings a person scans for (plain text)."""
    return "\n".join(line.plain for line in tree_lines(spans, 10_000))


def tree_lines(spans: Sequence[Any], width: int) -> list[Any]:
    """The span tree as rich lines: names by kind in colour, findings wrapped under their span."""
    import textwrap

    from otel_agent_trace.files.report import one_line

    by_parent: dict[int | None, list[Any]] = {}
    ids = {s.context.span_id for s in spans}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
        by_parent.setdefault(parent, []).append(span)
    lines: list[Any] = []
    style_of = {sc.OP_INVOKE_AGENT: "bold magenta", sc.OP_CHAT: "blue", sc.OP_EXECUTE_TOOL: "cyan"}

    def walk(parent: int | None, depth: int) -> None:
        for span in by_parent.get(parent, []):
            a = span.attributes or {}
            detail = ""
            operation = a.get(sc.OPERATION_NAME)
            error = False
            if operation == sc.OP_CHAT:
                detail = (f"turn {a.get(sc.TURN_INDEX)} · {a.get(sc.STOP_REASON)} · "
                          f"in {a.get(sc.USAGE_INPUT_TOKENS, 0):,} · out {a.get(sc.USAGE_OUTPUT_TOKENS, 0):,} · "
                          f"cache hit {a.get(sc.CACHE_HIT_RATIO, 0):.0%}")
            elif operation == sc.OP_EXECUTE_TOOL:
                error = bool(a.get(sc.TOOL_IS_ERROR))
                detail = f"{a.get(sc.TOOL_RESULT_CHARS, 0):,} chars" + (" · error" if error else "")
            elif operation == sc.OP_INVOKE_AGENT:
                error = a.get(sc.END_REASON) != "end_turn"
                detail = (f"{a.get(sc.TURNS)} turns · {a.get(sc.END_REASON)} · "
                          f"{a.get(sc.FINDINGS_COUNT, 0)} findings · saved ${a.get(sc.CACHE_SAVED_USD, 0):.4f}")
            indent = "  " * depth
            lines.append(styled(indent, (one_line(span.name, 80), style_of.get(operation, "")),
                                    ("  [" + one_line(detail, 200) + "]", "red" if error else "dim"), clip=False))
            for event in span.events:
                if event.name == sc.FINDING_EVENT and (operation != sc.OP_INVOKE_AGENT
                                                       or event.attributes.get(sc.FINDING_KIND) == "no_end_turn"):
                    e = event.attributes
                    lead = f"{indent}  ⚠ {one_line(e.get(sc.FINDING_KIND), 30)}: "
                    message = one_line(str(e.get(sc.FINDING_MESSAGE, "")), 2_000)
                    wrapped = textwrap.wrap(message, max(30, width - len(lead))) or [""]
                    lines.append(styled((lead, "yellow"), wrapped[0], clip=False))
                    lines.extend(styled(" " * len(lead) + rest, clip=False) for rest in wrapped[1:])
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return lines


def _print_report(jsonl: Path, out: Any, color: bool, html: str | None) -> None:
    from otel_agent_trace.detectors import analyze_session
    from otel_agent_trace.files.importers import LineError, load
    from otel_agent_trace.files.report import render_html, render_text, worst_first

    sessions = [s for s in load(jsonl) if not isinstance(s, LineError)]
    analysed = worst_first([(s, analyze_session(s)) for s in sessions])
    failing = next((pair for pair in analysed if pair[0].end_reason != "end_turn"), None)
    if failing is not None:
        out.print()
        out.print("Report of the failing run, read from its end backwards:", style="bold")
        out.file.write(render_text(failing[0], failing[1], color=color, width=out.width))
        out.file.flush()
    if html:
        Path(html).write_text(render_html(analysed, title="otel-agent-trace demo"), encoding="utf-8")
        out.print(f"HTML report written to {html}")
