"""``otel-agent-trace import``: transcripts replayed as OTLP traces — session → turns → tool calls, with
findings — using the original timestamps where the file has them.

Spans are built from records with the same attribute functions the live path uses, so an imported
transcript and a live run look the same in a backend.
"""

from __future__ import annotations

import argparse
import os
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
    from .importers import LineError, load, trace_files
    from .overview import ReadLog

    settings = settings or Settings.from_env()
    thresholds = thresholds_from_env(**settings.thresholds)
    summary = ImportSummary()
    log = ReadLog(errors if errors is not None else open(os.devnull, "w"))  # noqa: SIM115
    for path in paths:
        summary.files += 1
        session_spans: dict[str, Span] = {}
        if not trace_files(path):
            summary.failures.append(f"{path}: no *.jsonl trace files in this directory")
            log.line_error(str(path), 0, "no *.jsonl trace files in this directory")
        try:
            for item in load(path):
                if isinstance(item, LineError):
                    summary.failures.append(str(item))
                    log.line_error(item.file, item.line_no, item.message)  # one summary per unreadable file
                    continue
                log.sessions_in[item.source or str(path)] += 1
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
    log.finish()
    return summary


IMPORT_SERVICE_NAME = "otel-agent-trace-import"


def _names_a_service(environ: Any) -> bool:
    attributes = environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    return bool(environ.get("OTEL_SERVICE_NAME")) or any(
        part.split("=", 1)[0].strip() == "service.name" for part in attributes.split(","))


def main(argv: Sequence[str] | None = None) -> int:
    from .cli import FORMATS_HELP

    parser = argparse.ArgumentParser(
        prog="otel-agent-trace import", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes:\n  0  done\n  2  unreadable input (missing path, no trace files, not JSONL) or bad usage",
        description="Replay trace files as OTLP traces to the endpoint the standard OTEL_EXPORTER_OTLP_*\n"
                    f"variables name, as service {IMPORT_SERVICE_NAME} unless OTEL_SERVICE_NAME is set.\n"
                    + FORMATS_HELP)
    parser.add_argument("files", nargs="+", metavar="PATH", help="trace file or directory")
    args = parser.parse_args(argv)
    from .exporters.setup import ensure_tracer_provider

    if not _names_a_service(os.environ):
        # Findable in a backend: imported traces are not "unknown_service:python3".
        os.environ["OTEL_SERVICE_NAME"] = IMPORT_SERVICE_NAME
    provider = ensure_tracer_provider()
    tracer = provider.get_tracer(sc.INSTRUMENTATION_SCOPE)
    summary = _with_progress(args.files, tracer)
    flushed = provider.force_flush() if hasattr(provider, "force_flush") else True
    print(f"imported {summary.files} file(s): {summary.sessions} session(s), {summary.turns} turn(s), "
          f"{summary.findings} finding(s), {summary.spans} span(s) sent"
          f"{'' if flushed else ' (export did not confirm)'}; {len(summary.failures)} line(s) skipped")
    return 2 if summary.failures and not summary.sessions else 0  # 2: unreadable input, as every command


def _with_progress(files: Sequence[str], tracer: trace.Tracer) -> ImportSummary:
    try:
        from rich.progress import Progress  # the optional "cli" extra
    except ImportError:
        Progress = None
    if Progress is None or len(files) < 2 or not sys.stderr.isatty():
        return import_files(files, tracer, errors=sys.stderr)

    with Progress(transient=True) as bar:
        task = bar.add_task("importing", total=len(files))
        return import_files(files, tracer, errors=sys.stderr, progress=lambda: bar.advance(task))
