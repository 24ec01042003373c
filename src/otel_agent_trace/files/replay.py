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


IMPORT_SERVICE_NAME = "otel-agent-trace-import"


def _names_a_service(environ: Any) -> bool:
    attributes = environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    return bool(environ.get("OTEL_SERVICE_NAME")) or any(
        part.split("=", 1)[0].strip() == "service.name" for part in attributes.split(","))


def main(argv: Sequence[str] | None = None) -> int:
    from otel_agent_trace.cli import FORMATS_HELP

    parser = argparse.ArgumentParser(
        prog="otel-agent-trace import", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes:\n  0  done\n  2  unreadable input (missing path, no trace files, not JSONL) or bad usage",
        description="Replay trace files as OTLP traces to the endpoint the standard OTEL_EXPORTER_OTLP_*\n"
                    f"variables name, as service {IMPORT_SERVICE_NAME} unless OTEL_SERVICE_NAME is set.\n"
                    + FORMATS_HELP)
    parser.add_argument("files", nargs="+", metavar="PATH", help="trace file or directory")
    args = parser.parse_args(argv)
    from otel_agent_trace.exporters.setup import ensure_tracer_provider

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
