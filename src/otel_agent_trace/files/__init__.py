"""Trace files as analysed sessions: the one path ``findings``, ``report`` and ``otel_agent_trace.load`` share.

    trace = otel_agent_trace.load("trace.jsonl")     # seed JSONL, ours, or a Claude Code transcript
    for run in trace.sessions:
        print(run.id, run.rollup.turns, [f.kind for f in run.findings])

Detectors run with the thresholds of ``OTEL_AGENT_TRACE_*`` (and ``settings.thresholds``), rollups are
the totals the session's ``invoke_agent`` span would carry. ``analyzed`` streams one session at a time
for large files and directories; ``load`` collects them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from otel_agent_trace.config import Settings
from otel_agent_trace.files.importers import LineError
from otel_agent_trace.files.importers import load as read_sessions
from otel_agent_trace.model.records import Finding, Session
from otel_agent_trace.pipeline.spans import Rollup


@dataclass(slots=True)
class AnalyzedSession:
    """One session of a file with its findings (also on ``session.findings``) and rollup."""

    session: Session
    rollup: Rollup

    @property
    def id(self) -> str:
        return self.session.id

    @property
    def findings(self) -> list[Finding]:
        return self.session.findings


@dataclass(slots=True)
class TraceFile:
    """What ``load`` read: the sessions, and every line (or file) it had to skip."""

    path: str
    sessions: list[AnalyzedSession] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for run in self.sessions for f in run.findings]


def analyzed(path: str | Path, settings: Settings | None = None) -> Iterator[AnalyzedSession | LineError]:
    """Each session of ``path`` (file or directory of ``*.jsonl``) analysed as it is read, and each
    skipped line as a ``LineError`` (line 0: the whole file)."""
    from otel_agent_trace.detectors import analyze_session, thresholds_from_env

    if settings is None:
        try:
            settings = Settings.from_env()
        except (TypeError, ValueError):  # a malformed OTEL_AGENT_TRACE_* value must not stop a report
            settings = Settings()
    thresholds = thresholds_from_env(**settings.thresholds)
    for item in read_sessions(path):
        if isinstance(item, LineError):
            yield item
            continue
        # Always analysed: ``settings.detectors`` switches live detection off, not the point of a file read.
        analyze_session(item, thresholds)
        yield AnalyzedSession(item, Rollup.of(item, settings))


def load(path: str | Path, settings: Settings | None = None) -> TraceFile:
    """Every session of a trace file (or directory), with findings and rollups, and the lines skipped."""
    trace = TraceFile(str(path))
    for item in analyzed(path, settings):
        (trace.errors if isinstance(item, LineError) else trace.sessions).append(item)  # type: ignore[arg-type]
    return trace
