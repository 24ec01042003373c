"""``otel-agent-trace import``: transcripts replayed as OTLP traces — session → turns → tool calls, with
findings — using the original timestamps where the file has them.

Spans are built from records with the same attribute functions the live path uses, so an imported
transcript and a live run look the same in a backend.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from . import semconv as sc
from .config import Settings
from .detectors.base import Thresholds
from .records import Finding, Session, ToolCall, Turn
from .spans import (
    Rollup,
    attach_findings,
    failure_description,
    session_span_name,
    session_start_attributes,
    tool_attributes,
    tool_span_name,
    turn_request_attributes,
    turn_response_attributes,
    turn_span_name,
)

_STEP_NS = 1_000_000_000  # synthetic spacing of turns for files without timestamps


@dataclass
class ImportSummary:
    files: int = 0
    sessions: int = 0
    turns: int = 0
    findings: int = 0
    spans: int = 0
    failures: list[str] = field(default_factory=list)


def _timeline(session: Session) -> None:
    """Give every turn and tool call a start and end: original ones kept, the gaps filled in order."""
    missing = [t for t in session.turns if not t.start_ns]
    if not missing:
        return
    clock = time.time_ns() - (len(session.turns) + 1) * _STEP_NS
    for turn in session.turns:
        if not turn.start_ns:
            turn.start_ns = clock
        if not turn.end_ns:
            turn.end_ns = turn.start_ns + _STEP_NS // 2
        clock = max(clock, turn.end_ns) + _STEP_NS // 2
    ends = {t.index: t.end_ns for t in session.turns}
    for call in session.tool_calls:
        if not call.start_ns:
            call.start_ns = ends.get(call.turn_index, clock) + 1_000_000
        if not call.end_ns:
            call.end_ns = call.start_ns + _STEP_NS // 4


def replay_session(tracer: trace.Tracer, session: Session, settings: Settings, thresholds: Thresholds | None,
                   parent: Span | None = None) -> tuple[Span, int, int]:
    """Emit one session's spans, running the detectors event by event exactly as the live path does, so
    each finding lands on the same span it would have live. Returns the session span (for sub-agents),
    the number of spans and the number of findings."""
    from .detectors import SessionAnalyzer, session_events

    _timeline(session)
    start = min((t.start_ns for t in session.turns), default=time.time_ns())
    end = max([start, *(max(t.end_ns, t.start_ns) for t in session.turns), *(c.end_ns for c in session.tool_calls)])
    context = trace.set_span_in_context(parent) if parent is not None else None
    session_span = tracer.start_span(
        session_span_name(session.agent_name), context=context, kind=SpanKind.INTERNAL,
        attributes=session_start_attributes(session.id, session.agent_name, session.parent_id), start_time=start,
    )
    analyzer = SessionAnalyzer(session.id, thresholds) if settings.detectors else None
    turn_spans: dict[int, Span] = {}
    last: Turn | None = None
    rollup = Rollup()
    for event in session_events(session):
        if isinstance(event, Turn):
            findings = analyzer.observe_turn(event) if analyzer else []
            turn_spans[event.index], saved = _turn_span(tracer, session, event, session_span, findings, settings)
            rollup.add_turn(event, saved)
            last = event
        else:
            findings = analyzer.observe_tool(event) if analyzer else []
            _tool_span(tracer, session, event, turn_spans.get(event.turn_index, session_span), findings)
            rollup.tool_calls += 1
    final = analyzer.finish(last, session.end_reason) if analyzer else []
    if final:
        attach_findings(session_span, final, timestamp=end)
    all_findings = analyzer.findings if analyzer else []
    session.findings = list(all_findings)
    rollup.add_findings(all_findings)
    session_span.set_attributes(rollup.attributes(session.end_reason))
    failed = failure_description(session.end_reason)
    if failed:
        session_span.set_status(Status(StatusCode.ERROR, failed))
    session_span.end(end_time=end)
    return session_span, 1 + len(turn_spans) + rollup.tool_calls, len(all_findings)


def _turn_span(tracer: trace.Tracer, session: Session, turn: Turn, parent: Span, findings: Sequence[Finding],
               settings: Settings) -> tuple[Span, float]:
    attributes = turn_request_attributes(turn, session.id, sc.PROVIDER_ANTHROPIC)
    saved = settings.cache_saving_usd(turn.model, turn.usage.cache_read_input_tokens)
    attributes.update(turn_response_attributes(turn, saved))
    span = tracer.start_span(turn_span_name(turn.model), context=trace.set_span_in_context(parent),
                             kind=SpanKind.CLIENT, attributes=attributes, start_time=turn.start_ns)
    if findings:
        attach_findings(span, findings, timestamp=turn.end_ns)
    if turn.error_type:
        span.set_status(Status(StatusCode.ERROR, turn.error_type))
    span.end(end_time=max(turn.end_ns, turn.start_ns))
    return span, saved


def _tool_span(tracer: trace.Tracer, session: Session, call: ToolCall, parent: Span,
               findings: Sequence[Finding]) -> None:
    span = tracer.start_span(tool_span_name(call.name), context=trace.set_span_in_context(parent),
                             kind=SpanKind.INTERNAL, attributes=tool_attributes(call, session.id),
                             start_time=call.start_ns)
    if findings:
        attach_findings(span, findings, timestamp=call.end_ns)
    if call.is_error:
        span.set_status(Status(StatusCode.ERROR, "tool reported an error"))
    span.end(end_time=max(call.end_ns, call.start_ns))


def import_files(paths: Sequence[str], tracer: trace.Tracer, *, settings: Settings | None = None,
                 progress: Any = None, errors: Any = None) -> ImportSummary:
    """Replay every session of ``paths``; malformed lines are reported (file:line) and skipped."""
    from .detectors import thresholds_from_env
    from .importers import LineError, load

    settings = settings or Settings.from_env()
    thresholds = thresholds_from_env(**settings.thresholds)
    summary = ImportSummary()
    for path in paths:
        summary.files += 1
        session_spans: dict[str, Span] = {}
        try:
            for item in load(path):
                if isinstance(item, LineError):
                    summary.failures.append(str(item))
                    if errors is not None:
                        print(item, file=errors)
                    continue
                span, spans, findings = replay_session(tracer, item, settings, thresholds,
                                                       parent=session_spans.get(item.parent_id or ""))
                session_spans[item.id] = span
                summary.sessions += 1
                summary.turns += len(item.turns)
                summary.findings += findings
                summary.spans += spans
        except OSError as error:
            summary.failures.append(f"{path}: {error}")
            if errors is not None:
                print(f"{path}: {error}", file=errors)
        if progress is not None:
            progress()
    return summary


IMPORT_SERVICE = "otel-agent-trace-import"


def main(argv: Sequence[str] | None = None) -> int:
    """Replay the files and say what the backend accepted: exit 1 when spans were lost or nothing loaded."""
    parser = argparse.ArgumentParser(prog="otel-agent-trace import",
                                     description="Replay trace files as OTLP traces to the endpoint the "
                                                 "standard OTEL_EXPORTER_OTLP_* variables name.")
    parser.add_argument("files", nargs="+", metavar="FILE")
    args = parser.parse_args(argv)
    from opentelemetry.sdk.trace import TracerProvider

    from .exporters.delivery import CountingDelivery, command_resource
    from .exporters.setup import build_exporter, export_target

    exporter = build_exporter()
    if exporter is None:
        print("OTEL_TRACES_EXPORTER=none: nothing would be exported; not importing", file=sys.stderr)
        return 2
    # A provider of our own, not the global one: its spans are counted as the exporter accepts them, and
    # they carry their own service.name so imported traces are told apart from live ones.
    provider = TracerProvider(resource=command_resource(IMPORT_SERVICE))
    counting = CountingDelivery(exporter)
    provider.add_span_processor(counting)
    tracer = provider.get_tracer(sc.INSTRUMENTATION_SCOPE)
    summary = _with_progress(args.files, tracer, after_file=counting.flush)
    delivery = counting.flush()
    provider.shutdown()
    print(f"imported {summary.files} file(s): {summary.sessions} session(s), {summary.turns} turn(s), "
          f"{summary.findings} finding(s); {len(summary.failures)} line(s) skipped")
    print(delivery.summary(export_target()))
    if delivery.accepted:
        print("find them by trace id or time range (service.name "
              f"{provider.resource.attributes.get('service.name')!s}):")
        print("\n".join(delivery.trace_lines()))
    return 1 if delivery.lost or (summary.failures and not summary.sessions) else 0


def _with_progress(files: Sequence[str], tracer: trace.Tracer, after_file: Any = None) -> ImportSummary:
    try:
        from rich.progress import Progress  # the optional "cli" extra
    except ImportError:
        Progress = None
    if Progress is None or len(files) < 2 or not sys.stderr.isatty():
        return import_files(files, tracer, errors=sys.stderr, progress=after_file)

    with Progress(transient=True) as bar:
        task = bar.add_task("importing", total=len(files))

        def advance() -> None:
            if after_file is not None:
                after_file()
            bar.advance(task)

        return import_files(files, tracer, errors=sys.stderr, progress=advance)
