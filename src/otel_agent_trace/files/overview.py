"""Reading trace paths for the CLI, and the ranked table of sessions (``findings DIR``, ``watch``).

``read_paths`` streams sessions with their findings and keeps what went wrong on the way: files that
could not be read at all, and lines skipped, summarised per file so a file that is not JSONL gives one
message instead of one per line. ``SessionRow`` keeps only the numbers a table needs, so a scan of
thousands of sessions never holds their turns in memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from otel_agent_trace.files.report.summary import SEVERITY_RANK, badness, one_line, plural, session_cost_usd
from otel_agent_trace.model.records import Finding, Session

MAX_LINE_ERRORS_SHOWN = 3  # per file; the rest are counted


@dataclass
class ReadLog:
    """What reading the paths found besides sessions: files read, unreadable ones, skipped lines."""

    errors: TextIO
    files: set[str] = field(default_factory=set)
    unreadable: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    sessions_in: Counter[str] = field(default_factory=Counter)

    def line_error(self, file: str, line_no: int, message: str) -> None:
        self.files.add(file)
        if line_no == 0:
            self.unreadable.append(file)
            print(f"{one_line(file, 300)}: {one_line(message, 300)}", file=self.errors)
            return
        self.skipped[file] += 1
        if self.skipped[file] <= MAX_LINE_ERRORS_SHOWN:
            print(f"{one_line(file, 300)}:{line_no}: {one_line(message, 300)}", file=self.errors)

    def finish(self) -> None:
        """One closing line per file with skipped lines: how many, and what it means."""
        for file, count in self.skipped.items():
            if not self.sessions_in[file]:
                self.unreadable.append(file)
                print(f"{one_line(file, 300)}: not a JSONL trace: none of its {plural(count, 'line')} could be "
                      "read (one JSON object per line is expected; a pretty-printed JSON document or a binary "
                      "file is not)", file=self.errors)
            elif count > MAX_LINE_ERRORS_SHOWN:
                print(f"{one_line(file, 300)}: {count - MAX_LINE_ERRORS_SHOWN} more unreadable lines skipped "
                      f"({count} in all)", file=self.errors)


def read_paths(paths: Iterable[str], log: ReadLog) -> Iterator[tuple[Session, list[Finding]]]:
    """Sessions of every path with their findings, in file order; problems go to ``log``."""
    from otel_agent_trace.detectors import analyze_session, thresholds_from_env
    from otel_agent_trace.files.importers import LineError, load, trace_files

    thresholds = thresholds_from_env()
    for path in paths:
        files = trace_files(path)
        if not files:
            log.unreadable.append(str(path))
            print(f"{one_line(path, 300)}: no *.jsonl trace files in this directory", file=log.errors)
            continue
        log.files.update(str(f) for f in files)
        for item in load(path):
            if isinstance(item, LineError):
                log.line_error(item.file, item.line_no, item.message)
                continue
            source = item.source or str(path)
            log.files.add(source)
            log.sessions_in[source] += 1
            yield item, analyze_session(item, thresholds)
    log.finish()


def scan_paths(paths: Iterable[str], log: ReadLog, jobs: int = 1,
               progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[SessionRow, list[Finding]]]:
    """Table rows with their findings for every session of ``paths``, files spread over ``jobs`` processes.

    Sessions are turned into rows inside the worker, so only the numbers and findings cross back;
    ``progress(done, total)`` is called after each file of a parallel scan.
    """
    from otel_agent_trace.files.importers import trace_files

    if jobs <= 1:
        for session, findings in read_paths(paths, log):
            yield session_row(session, findings), findings
        return
    files: list[str] = []
    for path in paths:
        found = trace_files(path)
        if not found:
            log.unreadable.append(str(path))
            print(f"{one_line(path, 300)}: no *.jsonl trace files in this directory", file=log.errors)
        files.extend(str(f) for f in found)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        chunks = max(1, len(files) // (jobs * 8))
        for done, (file, errors, rows) in enumerate(pool.map(_scan_file, files, chunksize=chunks), 1):
            if progress is not None:
                progress(done, len(files))
            log.files.add(file)
            for error in errors:
                log.line_error(*error)
            for row, findings in rows:
                log.files.add(row.file)
                log.sessions_in[row.file] += 1
                yield row, findings
    log.finish()


def _scan_file(file: str) -> tuple[str, list[tuple[str, int, str]], list[tuple[SessionRow, list[Finding]]]]:
    """One file in a worker process: its unreadable lines, and a row and findings per session."""
    from otel_agent_trace.detectors import analyze_session, thresholds_from_env
    from otel_agent_trace.files.importers import LineError, load

    thresholds = thresholds_from_env()
    errors, rows = [], []
    for item in load(file):
        if isinstance(item, LineError):
            errors.append((item.file, item.line_no, item.message))
        else:
            findings = analyze_session(item, thresholds)
            rows.append((session_row(item, findings, file), findings))
    return file, errors, rows


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session as the ranked table shows it."""

    file: str
    session: str
    agent: str
    end_reason: str
    turns: int
    tokens_in: int
    tokens_out: int
    cache_read: int
    cost_usd: float
    severities: tuple[int, int, int]  # errors, warnings, info
    worst_kind: str
    rank: tuple[int, int, int, int]

    @property
    def findings(self) -> int:
        return sum(self.severities)


def session_row(session: Session, findings: Sequence[Finding], file: str = "") -> SessionRow:
    tokens_in = sum(t.usage.context_tokens for t in session.turns)
    counts = Counter(f.severity for f in findings)
    worst = max(findings, key=lambda f: (SEVERITY_RANK.get(f.severity, 0), -f.turn), default=None)
    return SessionRow(
        file=session.source or file, session=session.id, agent=session.agent_name or "",
        end_reason=session.end_reason or "unknown", turns=len(session.turns), tokens_in=tokens_in,
        tokens_out=sum(t.usage.output_tokens for t in session.turns),
        cache_read=sum(t.usage.cache_read_input_tokens for t in session.turns),
        cost_usd=session_cost_usd(session), severities=(counts["error"], counts["warning"], counts["info"]),
        worst_kind=worst.kind if worst is not None else "", rank=badness(session, findings))


def ranked(rows: Iterable[SessionRow]) -> list[SessionRow]:
    """Worst first: failed outcome, worst severity, failure findings, tokens."""
    return sorted(rows, key=lambda r: r.rank, reverse=True)


def ranked_table(rows: Sequence[SessionRow], *, title: str | None = None) -> Any:
    """A rich Table of sessions, worst first; every cell sanitized (ids and paths come from files)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", header_style="bold", pad_edge=False, box=None,
                  show_edge=False, padding=(0, 1, 0, 0))
    for name, justify in (("session", "left"), ("agent", "left"), ("outcome", "left"),
                          ("turns", "right"), ("tokens in", "right"), ("cache", "right"),
                          ("≈ cost", "right"), ("findings", "left"), ("worst", "left")):
        table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
    for row in rows:
        errors, warnings, infos = row.severities
        found = Text()
        for count, mark, style in ((errors, "✗", "red"), (warnings, "!", "yellow"), (infos, "·", "dim")):
            if count:
                found.append(f"{count}{mark} ", style)
        good = row.end_reason == "end_turn"
        cache = f"{row.cache_read / row.tokens_in:.0%}" if row.tokens_in else "–"
        table.add_row(Text(one_line(row.session, 13)), Text(one_line(row.agent, 14)),
                      Text(("✓ " if good else "✗ ") + one_line(row.end_reason, 14), "green" if good else "red"),
                      f"{row.turns:,}", _short(row.tokens_in), cache,
                      f"${row.cost_usd:,.2f}" if row.cost_usd else "–",  # –: no model named, so no price
                      found, Text(one_line(row.worst_kind, 18)))
    return table


def _short(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1e6:.1f}M"
    return f"{value / 1e3:.1f}k" if value >= 10_000 else f"{value:,}"
