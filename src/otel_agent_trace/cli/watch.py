"""``otel-agent-trace watch``: follow a live trace file or a Claude Code projects folder.

Each poll re-reads only the files whose size or time changed, through the same importers as every other
command (so Claude Code messages split over several lines merge the same way), and prints what is new:
sessions, turns with their tokens and cache reads, failed tool calls, findings. ``no_end_turn`` is left
out until the writer records it (our JSONL's end line): a session being written has not ended yet.
Ctrl-C, ``--timeout`` (seconds with nothing new) or ``--once`` end it with a ranked summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from otel_agent_trace.files.report.summary import SEVERITY_RANK, one_line, plural, target_of, top_findings, turns_label
from otel_agent_trace.files.report.terminal import styled
from otel_agent_trace.model.records import Finding, Session, Turn

_LIVE_SKIPPED = {"no_end_turn"}


@dataclass
class _FileState:
    signature: tuple[int, int] = (-1, -1)  # (size, mtime_ns)
    baseline: int = 0  # bytes there before the watch began: their turns are history, not shown


@dataclass
class Watcher:
    """Polls ``path`` (a file, maybe not there yet, or a directory) and turns changes into display lines."""

    path: Path
    files: dict[Path, _FileState] = field(default_factory=dict)
    sessions: dict[tuple[str, str], tuple[Session, list[Finding]]] = field(default_factory=dict)
    shown_turns: set[tuple[str, str, int]] = field(default_factory=set)  # read (maybe before the watch began)
    printed_turns: set[tuple[str, str, int]] = field(default_factory=set)
    shown_results: set[tuple[str, str]] = field(default_factory=set)
    shown_findings: set[tuple[str, str, str, int]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)  # files that are not traces, one line each
    snapshot: bool = False  # --once: nothing is being written, so every file can be judged as it is

    def start(self) -> str:
        """Take the directory's current files as the baseline; returns a line saying what is watched."""
        if not self.path.is_dir():
            return f"watching {one_line(self.path, 200)}" + ("" if self.path.exists() else " (not there yet)")
        for file in self._trace_files():
            try:
                size = file.stat().st_size
            except OSError:
                size = 0
            self.files[file] = _FileState(baseline=size)
        return (f"watching {one_line(self.path, 200)}: {plural(len(self.files), 'trace file')}; "
                "new turns appear below")

    def poll(self) -> list[Any]:
        """Lines (rich Text) for everything new since the last poll."""
        lines: list[Any] = []
        for file in self._trace_files():
            state = self.files.setdefault(file, _FileState())
            try:
                info = file.stat()
            except OSError:
                continue
            signature = (info.st_size, info.st_mtime_ns)
            if signature == state.signature:
                continue
            state.signature = signature
            lines.extend(self._reload(file, state))
        return lines

    def _trace_files(self) -> list[Path]:
        from otel_agent_trace.files.importers import trace_files

        if not self.path.is_dir():
            return [self.path] if self.path.exists() else []
        return trace_files(self.path)

    def _reload(self, file: Path, state: _FileState) -> list[Any]:
        from otel_agent_trace.detectors import analyze_session
        from otel_agent_trace.files.importers import LineError, load

        if state.baseline:
            self._absorb(file, state.baseline)
            state.baseline = 0
        lines: list[Any] = []
        bad, read = 0, 0
        for item in load(file):
            if isinstance(item, LineError):
                # A line being written is incomplete until its newline: it is read again next time.
                bad += 1
                continue
            read += 1
            key = (str(file), item.id)
            new = key not in self.sessions
            # no_end_turn only once the writer itself said so (our JSONL's end line records it).
            ended = {f.kind for f in item.findings} & _LIVE_SKIPPED
            findings = [f for f in analyze_session(item) if f.kind not in _LIVE_SKIPPED - ended]
            self.sessions[key] = (item, findings)
            fresh = [t for t in item.turns if (key[0], item.id, t.index) not in self.shown_turns]
            if not fresh and not new:
                lines.extend(self._findings(key, findings))
                continue
            visible = {t.index for t in fresh}
            if new:
                lines.append(styled(("● ", "bold cyan"), (_name(item), "bold"),
                                   (f"  {one_line(item.task, 80)}" if item.task else "", "dim")))
            previous = {t.index: item.turns[n - 1] for n, t in enumerate(item.turns) if n}
            failed: dict[int, list[Any]] = {}
            for call in item.tool_calls:
                mark = (key[0] + "\0" + item.id, call.tool_use_id)
                if mark in self.shown_results:
                    continue
                self.shown_results.add(mark)
                if call.is_error and (call.turn_index in visible
                                      or (key[0], item.id, call.turn_index) in self.printed_turns):
                    failed.setdefault(call.turn_index, []).append(
                        styled("      ", ("✗ ", "red"), (one_line(call.name, 30), "cyan"),
                              f" {one_line(target_of(call.input), 40)} failed: ", (one_line(call.result, 80), "red")))
            for index in sorted(i for i in failed if i not in visible):  # results of turns shown earlier
                lines.extend(failed[index])
            for turn in fresh:
                self.shown_turns.add((key[0], item.id, turn.index))
                if turn.index in visible:
                    self.printed_turns.add((key[0], item.id, turn.index))
                    lines.append(_turn_line(item, turn, previous.get(turn.index)))
                    lines.extend(failed.get(turn.index, ()))
            lines.extend(self._findings(key, findings))
        if bad and not read and (self.snapshot or _ends_a_line(file)) and not any(
                p.startswith(f"{one_line(file, 300)}:") for p in self.problems):
            self.problems.append(f"{one_line(file, 300)}: not a JSONL trace ({plural(bad, 'line')} that could not "
                                 "be read; one JSON object per line is expected)")
        return lines

    def _absorb(self, file: Path, size: int) -> None:
        """Mark what the first ``size`` bytes of ``file`` hold as already seen, without printing it."""
        import tempfile

        from otel_agent_trace.detectors import analyze_session
        from otel_agent_trace.files.importers import LineError, load

        with tempfile.TemporaryDirectory(prefix="otel-agent-trace-watch-") as folder:
            prefix = Path(folder) / file.name  # same name: sessions named after their file keep their id
            with open(file, "rb") as source, open(prefix, "wb") as target:
                target.write(source.read(size))
            for item in load(prefix):
                if isinstance(item, LineError):
                    continue
                key = (str(file), item.id)
                findings = [f for f in analyze_session(item) if f.kind not in _LIVE_SKIPPED]
                self.sessions[key] = (item, findings)
                self.shown_turns.update((key[0], item.id, t.index) for t in item.turns)
                self.shown_results.update((key[0] + "\0" + item.id, c.tool_use_id) for c in item.tool_calls)
                self.shown_findings.update((key[0], item.id, f.kind, f.turn) for f in findings)

    def _findings(self, key: tuple[str, str], findings: list[Finding]) -> list[Any]:
        lines = []
        for finding in top_findings(findings, len(findings)):
            mark = (key[0], key[1], finding.kind, finding.turn)
            if mark in self.shown_findings:
                continue
            self.shown_findings.add(mark)
            style = {"error": "red", "warning": "yellow"}.get(finding.severity, "dim")
            lines.append(styled("      ", (f"{finding.severity} {one_line(finding.kind, 24)} "
                                          f"{turns_label(finding)}: ", style),
                               one_line(finding.message, 160)))
        return lines


def _ends_a_line(file: Path) -> bool:
    """False while a writer is half-way through a line: its bad JSON is not a verdict on the file yet."""
    try:
        with open(file, "rb") as handle:
            handle.seek(-1, 2)
            return handle.read(1) == b"\n"
    except OSError:
        return True


def _name(session: Session) -> str:
    agent = session.agent_name or "session"
    return f"{one_line(agent, 30)} ({one_line(session.id[:8], 8)})"


def _turn_line(session: Session, turn: Turn, previous: Turn | None) -> Any:
    u = turn.usage
    delta = u.context_tokens - previous.usage.context_tokens if previous is not None else 0
    cache = f"cache {u.cache_read_input_tokens / u.context_tokens:.0%}" if u.context_tokens else "cache –"
    clock = datetime.fromtimestamp(turn.start_ns / 1e9).strftime("%H:%M:%S") if turn.start_ns else "--:--:--"
    tools = ", ".join(f"{one_line(use.name, 20)} {one_line(target_of(use.input), 40)}".strip()
                      for use in turn.tool_uses[:3])
    more = f" +{len(turn.tool_uses) - 3}" if len(turn.tool_uses) > 3 else ""
    line = styled((clock, "dim"), "  ", (_name(session), "bold"), f"  T{turn.index:<3} ",
                 (f"{one_line(turn.stop_reason, 10) or '?':<9}", "green" if turn.stop_reason == "end_turn" else ""),
                 f" in {u.context_tokens:>8,}")
    if previous is not None:
        line.append(f" ({delta:+,})", "bold red" if delta >= 8_000 else "dim")
    line.append(f"  {cache}", "green" if u.cache_read_input_tokens else "dim")
    line.append(f"  out {u.output_tokens:,}")
    if turn.error_type:
        line.append(f"  ✗ {one_line(turn.error_type, 40)}", "red")
    if tools:
        line.append(f"  → {tools}{more}", "cyan")
    return line


def watch(path: str, *, out: Any, errors: TextIO, interval: float = 0.5, timeout: float | None = None,
          once: bool = False, fail_on: str = "error", sleep: Callable[[float], None] = time.sleep) -> int:
    """Follow ``path`` until Ctrl-C, ``timeout`` idle seconds or (``once``) one read; returns the exit code."""
    from otel_agent_trace.cli import EXIT_INPUT, exit_code

    target = Path(path)
    if target.is_dir() and not any(target.rglob("*.jsonl")) and once:
        print(f"{one_line(path, 300)}: no *.jsonl trace files in this directory", file=errors)
        return EXIT_INPUT
    if not target.exists() and once:
        print(f"{one_line(path, 300)}: no such file or directory", file=errors)
        return EXIT_INPUT
    if target.exists() and not target.is_dir() and not target.is_file():
        print(f"{one_line(path, 300)}: not a regular file", file=errors)
        return EXIT_INPUT
    watcher = Watcher(target, snapshot=once)
    if once:
        watcher.files = {}  # a snapshot: everything there counts as new
    else:
        out.print(watcher.start(), style="dim")
    idle_since = time.monotonic()
    try:
        while True:
            reported = len(watcher.problems)
            lines = watcher.poll()
            for problem in watcher.problems[reported:]:
                print(problem, file=errors)
            for line in lines:
                out.print(line, no_wrap=True, overflow="ellipsis")
            if once:
                break
            now = time.monotonic()
            if lines:
                idle_since = now
            elif timeout is not None and now - idle_since >= timeout:
                break
            sleep(interval)
    except KeyboardInterrupt:
        out.print()
    return _summary(watcher, out, fail_on, exit_code)


def _summary(watcher: Watcher, out: Any, fail_on: str, exit_code: Callable[..., int]) -> int:
    from otel_agent_trace.files.overview import ranked, ranked_table, session_row

    pairs = list(watcher.sessions.values())
    if not pairs:
        out.print("no sessions seen", style="dim")
        return exit_code([], fail_on, bool(watcher.problems) or not watcher.path.exists())
    rows = ranked([session_row(s, f) for s, f in pairs])
    turns = sum(r.turns for r in rows)
    tokens = sum(r.tokens_in for r in rows)
    cache = sum(r.cache_read for r in rows)
    findings = [f for _, found in pairs for f in found]
    worst = max((SEVERITY_RANK.get(f.severity, 0) for f in findings), default=0)
    out.print()
    out.print(f"{plural(len(rows), 'session')}, {plural(turns, 'turn')}, {tokens:,} context tokens "
              f"({cache / tokens if tokens else 0:.0%} from cache), {plural(len(findings), 'finding')}",
              style="bold red" if worst >= 3 else "bold")
    out.print(ranked_table(rows[:20]))
    return exit_code(findings, fail_on)
