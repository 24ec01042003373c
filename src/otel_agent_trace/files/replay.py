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
from opentelemetry.trace import Span

from otel_agent_trace import semconv as sc
from otel_agent_trace.config import Settings
from otel_agent_trace.model.records import Session
from otel_agent_trace.pipeline.sink import RecordSink
from otel_agent_trace.pipeline.sink import replay_session as sink_replay

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


def replay_session(tracer: trace.Tracer, session: Session, settings: Settings, parent: Span | None = None
                   ) -> tuple[Span, int, int]:
    """Emit one session's spans through the same sink the live path uses. Returns the session span (for
    sub-agents), the number of spans and the number of findings."""
    _timeline(session)
    return sink_replay(RecordSink(tracer, settings), session, parent)


def import_files(paths: Sequence[str], tracer: trace.Tracer, *, settings: Settings | None = None,
                 progress: Any = None, errors: Any = None) -> ImportSummary:
    """Replay every session of ``paths``; malformed lines are reported (file:line) and skipped."""
    from otel_agent_trace.files.importers import LineError, load, trace_files
    from otel_agent_trace.files.overview import ReadLog

    settings = settings or Settings.from_env()
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
                span, spans, findings = replay_session(tracer, item, settings,
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


IMPORT_SERVICE = "otel-agent-trace-import"


def main(argv: Sequence[str] | None = None) -> int:
    """Replay the files and say what the backend accepted: exit 1 when spans were lost, 2 when nothing could
    be read."""
    from otel_agent_trace.cli import FORMATS_HELP

    parser = argparse.ArgumentParser(
        prog="otel-agent-trace import", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes:\n  0  every span accepted by the backend\n  1  spans lost on the way (endpoint down, "
               "batch refused)\n  2  unreadable input (missing path, no trace files, not JSONL) or bad usage",
        description="Replay trace files as OTLP traces to the endpoint the standard OTEL_EXPORTER_OTLP_*\n"
                    f"variables name, as service {IMPORT_SERVICE} unless OTEL_SERVICE_NAME is set.\n"
                    + FORMATS_HELP)
    parser.add_argument("files", nargs="+", metavar="PATH", help="trace file or directory")
    args = parser.parse_args(argv)
    from opentelemetry.sdk.trace import TracerProvider

    from otel_agent_trace.exporters.delivery import CountingDelivery, command_resource
    from otel_agent_trace.exporters.setup import build_exporter, export_target

    exporter = build_exporter()
    # A provider of our own, not the global one: its spans are counted as the exporter accepts them, and
    # they carry their own service.name so imported traces are told apart from live ones.
    provider = TracerProvider(resource=command_resource(IMPORT_SERVICE))
    counting = CountingDelivery(exporter) if exporter is not None else None
    if counting is not None:
        provider.add_span_processor(counting)
    tracer = provider.get_tracer(sc.INSTRUMENTATION_SCOPE)
    summary = _with_progress(args.files, tracer, after_file=counting.flush if counting is not None else None)
    print(f"imported {summary.files} file(s): {summary.sessions} session(s), {summary.turns} turn(s), "
          f"{summary.findings} finding(s); {len(summary.failures)} line(s) skipped")
    if counting is None:
        provider.shutdown()
        print("OTEL_TRACES_EXPORTER=none: the spans were not exported")
        return 2 if summary.failures and not summary.sessions else 0
    delivery = counting.flush()
    provider.shutdown()
    print(delivery.summary(export_target()))
    if delivery.accepted:
        print("find them by trace id or time range (service.name "
              f"{provider.resource.attributes.get('service.name')!s}):")
        print("\n".join(delivery.trace_lines()))
    if summary.failures and not summary.sessions:
        return 2  # unreadable input, as every command
    return 1 if delivery.lost else 0


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
