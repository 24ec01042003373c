"""The ``otel-agent-trace`` command: findings, reports and a live view of agent trace files.

``demo`` and ``import`` live in their own modules and get their own arguments; the rest is here.
rich (the terminal renderer) is imported only inside commands, never by the instrumented path.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from otel_agent_trace.model.findings import finding_to_dict
from otel_agent_trace.model.records import Finding, Session

EXIT_CLEAN, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2
FAIL_LEVELS = ("info", "warning", "error", "none")
DEFAULT_FAIL_ON = "error"

EXIT_CODES_HELP = f"""\
exit codes (the same for every command):
  0  done, no finding at or above --fail-on (default: {DEFAULT_FAIL_ON})
  1  findings at or above --fail-on
  2  unreadable input (missing path, no trace files, not JSONL) or bad usage
"""

FORMATS_HELP = ("Trace files: the seed article's JSONL, this package's own live JSONL, or Claude Code\n"
                "transcripts (auto-detected); a directory means every *.jsonl below it.")

# Subcommands implemented in other modules, handed their own argv so they own their options.
_PASSTHROUGH = {
    "demo": ("otel_agent_trace.cli.demo", "run a scripted agent against a local fake Messages API, no key needed"),
    "import": ("otel_agent_trace.files.replay", "replay trace files as OTLP spans to the configured endpoint"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] in _PASSTHROUGH:
            return _passthrough(args_list[0], args_list[1:])
        parser = _parser()
        try:
            args = parser.parse_args(args_list)
        except SystemExit as exit_:  # argparse: --help/--version exit 0, usage errors 2
            return int(exit_.code or 0)
        if not getattr(args, "handler", None):
            parser.print_help(sys.stderr)
            return EXIT_INPUT
        return int(args.handler(args))
    except BrokenPipeError:
        # `... | head`: the reader left; exit quietly instead of a traceback on interpreter shutdown.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CLEAN
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def package_version() -> str:
    try:
        return version("otel-agent-trace")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="otel-agent-trace", formatter_class=formatter, epilog=EXIT_CODES_HELP,
        description="Debug coding-agent runs from their traces: which run went wrong, where, and what it cost.\n"
                    + FORMATS_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=f"{description}\n{FORMATS_HELP}",
                                  epilog=EXIT_CODES_HELP, formatter_class=formatter)
        return sub

    findings = command("findings", "what the detectors find, sessions ranked worst first",
                       "List findings. Over many sessions (a Claude Code projects folder) a table ranks them\n"
                       "by outcome, findings, tokens and estimated cost.")
    findings.add_argument("paths", nargs="+", metavar="PATH", help="trace file or directory")
    findings.add_argument("--json", action="store_true",
                          help="print a JSON array, one object per finding (control characters escaped)")
    findings.add_argument("--jobs", type=int, default=0, metavar="N",
                          help="worker processes (default: one per CPU, up to 8, from 64 files on)")
    findings.add_argument("--top", type=int, default=20, metavar="N",
                          help="rank at most N sessions in the table (default 20; 0 for all)")
    _fail_on(findings)
    findings.set_defaults(handler=_cmd_findings)

    report = command("report", "work backwards through one session, the worst by default",
                     "Outcome, likely decision turn, the turns with findings and the last turns (newest\n"
                     "first), findings worst first, and the token budget per turn.")
    report.add_argument("path", metavar="PATH", help="trace file or directory")
    report.add_argument("--session", metavar="ID", help="session id, a unique prefix of it, or an agent name")
    report.add_argument("--html", metavar="OUT", help="write a self-contained HTML page (every session, worst "
                                                      "first, unless --session picks one)")
    report.add_argument("--no-color", action="store_true", help="no colour even on a terminal (also NO_COLOR)")
    _fail_on(report)
    report.set_defaults(handler=_cmd_report)

    watch = command("watch", "follow a live trace file or a Claude Code projects folder",
                    "Show turns, tokens, cache reads and findings as they are written, then a summary of\n"
                    "the sessions seen. Stop with Ctrl-C.")
    watch.add_argument("path", metavar="PATH", help="trace file (may not exist yet) or directory")
    watch.add_argument("--interval", type=float, default=0.5, metavar="SECONDS", help="poll interval (0.5)")
    watch.add_argument("--timeout", type=float, metavar="SECONDS",
                       help="stop after SECONDS with nothing new (default: run until Ctrl-C)")
    watch.add_argument("--once", action="store_true", help="read what is there now, summarise, and exit")
    watch.add_argument("--no-color", action="store_true", help="no colour even on a terminal (also NO_COLOR)")
    _fail_on(watch)
    watch.set_defaults(handler=_cmd_watch)

    for name, (_module, text) in _PASSTHROUGH.items():
        # Listed for --help only: main() dispatches these before argparse sees their options.
        commands.add_parser(name, help=f"{text} (see {name} --help)", add_help=False)
    return parser


def _fail_on(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail-on", choices=FAIL_LEVELS, default=DEFAULT_FAIL_ON, metavar="LEVEL",
                        help=f"exit 1 when a finding is at least this severe: info, warning, error or none "
                             f"(default {DEFAULT_FAIL_ON})")


def _passthrough(command: str, rest: list[str]) -> int:
    module_name = _PASSTHROUGH[command][0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"otel-agent-trace {command}: not available in this installation ({exc})", file=sys.stderr)
        return EXIT_INPUT
    try:
        return int(module.main(rest) or 0)
    except SystemExit as exit_:  # their argparse: --help exits 0, usage errors 2
        return exit_.code if isinstance(exit_.code, int) else EXIT_CLEAN if exit_.code is None else EXIT_INPUT


# -- shared ---------------------------------------------------------------------------------------------
def exit_code(findings: Sequence[Finding], fail_on: str, unreadable: bool = False) -> int:
    """The documented exit code: unreadable input first, then findings at or above ``fail_on``."""
    from otel_agent_trace.files.report.summary import SEVERITY_RANK

    if unreadable:
        return EXIT_INPUT
    floor = SEVERITY_RANK.get(fail_on)
    if floor is not None and any(SEVERITY_RANK.get(f.severity, 0) >= floor for f in findings):
        return EXIT_FINDINGS
    return EXIT_CLEAN


def output_problem(path: str) -> str | None:
    """Why a file cannot be written at ``path`` (checked before any work), or None."""
    target = Path(path)
    if target.is_dir():
        return f"{path} is a directory; give a file name"
    parent = target.parent
    if not parent.exists():
        return f"cannot write {path}: the directory {parent} does not exist"
    if not parent.is_dir():
        return f"cannot write {path}: {parent} is not a directory"
    if not os.access(parent, os.W_OK):
        return f"cannot write {path}: no permission to write in {parent}"
    return None


def finding_row(file: str, finding: Finding, session_id: str) -> dict[str, Any]:
    """One finding as ``findings --json`` prints it: where it is, then the one dict form of a finding."""
    return {"file": file, "session": finding.session or session_id, **finding_to_dict(finding)}


def _console(color: bool) -> Any:
    from otel_agent_trace.files.report.terminal import console

    return console(sys.stdout, color=color)


# -- findings -------------------------------------------------------------------------------------------
def _cmd_findings(args: argparse.Namespace) -> int:
    from otel_agent_trace.files.overview import ReadLog, ranked, ranked_table, scan_paths
    from otel_agent_trace.files.report.summary import top_findings
    from otel_agent_trace.files.report.terminal import json_text, use_color

    log = ReadLog(sys.stderr)
    with _progress("reading sessions") as progress:
        scanned = list(scan_paths(args.paths, log, _jobs(args), progress))
    table_rows = [row for row, _ in scanned]
    every = [f for _, findings in scanned for f in findings]
    if args.json:
        rows = [finding_row(row.file, f, row.session) for row, findings in scanned
                for f in top_findings(findings, len(findings))]
        sys.stdout.write(json_text(rows) + "\n")
    else:
        out = _console(use_color(sys.stdout))
        if len(scanned) == 1:
            _print_findings(out, *scanned[0])
        elif table_rows:
            shown = ranked(table_rows)[:args.top] if args.top > 0 else ranked(table_rows)
            out.print(_ranked_title(len(table_rows), len(shown)))
            out.print(ranked_table(shown))
            worst = shown[0]
            out.print(f"\nworst: otel-agent-trace report {_quote(worst.file)} --session {_quote(worst.session)}",
                      style="dim", soft_wrap=True)  # a command to copy: never broken over lines
        out.print(_totals(len(every), len(table_rows), len(log.files)))
    if not log.sessions_in and not log.unreadable:
        print("no sessions found", file=sys.stderr)
    return exit_code(every, args.fail_on, bool(log.unreadable) or not log.sessions_in)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A transient rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _jobs(args: argparse.Namespace) -> int:
    """Worker processes for a scan: as asked, else one per CPU once there are enough files to share."""
    if args.jobs:
        return max(1, args.jobs)
    from otel_agent_trace.files.importers import trace_files

    files = sum(len(trace_files(path)) for path in args.paths)
    return min(os.cpu_count() or 1, 8) if files >= 64 else 1


def _ranked_title(total: int, shown: int) -> str:
    from otel_agent_trace.files.report.summary import plural

    head = f"{plural(total, 'session')}, worst first"
    return head + (f" (the worst {shown}; --top 0 for all)" if shown < total else "")


def _totals(findings: int, sessions: int, files: int) -> str:
    from otel_agent_trace.files.report.summary import plural

    return f"{plural(findings, 'finding')} in {plural(sessions, 'session')} from {plural(files, 'file')}"


def _quote(text: str) -> str:
    import shlex

    from otel_agent_trace.files.report.terminal import clean

    return shlex.quote(clean(text, one_line=True))


def _print_findings(out: Any, row: Any, findings: Sequence[Finding]) -> None:
    """One session's findings, worst first, one wrapped line each under a ``file · session`` heading."""
    from rich.table import Table
    from rich.text import Text

    from otel_agent_trace.files.report.summary import one_line, top_findings, turns_label

    if not findings:
        return
    out.print(Text(f"{one_line(row.file, 200)} · session {one_line(row.session, 80)}", "bold"))
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1, 0, 2))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    tone = {"error": "red", "warning": "yellow", "info": "dim"}
    for finding in top_findings(findings, len(findings)):
        table.add_row(turns_label(finding), Text(one_line(finding.severity, 10), tone.get(finding.severity, "")),
                      Text(one_line(finding.kind, 24)), Text(one_line(finding.message, 2_000)))
    out.print(table)
    out.print()


# -- report ---------------------------------------------------------------------------------------------
def _cmd_report(args: argparse.Namespace) -> int:
    from otel_agent_trace.files.overview import ReadLog, read_paths
    from otel_agent_trace.files.report import render_html, render_text, worst_first
    from otel_agent_trace.files.report.summary import plural
    from otel_agent_trace.files.report.terminal import clean, use_color, width_of

    if args.html and (problem := output_problem(args.html)):
        print(f"report: {problem}", file=sys.stderr)
        return EXIT_INPUT
    log = ReadLog(sys.stderr)
    pairs = worst_first(list(read_paths([args.path], log)))
    if not pairs:
        if not log.unreadable:
            print(f"{clean(args.path, one_line=True)}: no sessions found", file=sys.stderr)
        return EXIT_INPUT
    chosen = _choose(pairs, args.session)
    if isinstance(chosen, str):
        print(f"{clean(args.path, one_line=True)}: {chosen}", file=sys.stderr)
        return EXIT_INPUT
    if args.html:
        selected = [chosen] if args.session else pairs
        title = f"otel-agent-trace · {Path(args.path).name}"
        try:
            Path(args.html).write_text(render_html(selected, title=title), encoding="utf-8")
        except OSError as exc:
            print(f"report: cannot write {args.html}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_INPUT
        print(f"wrote {args.html} ({plural(len(selected), 'session')}, worst first)", file=sys.stderr)
        return exit_code([f for _, found in selected for f in found], args.fail_on, bool(log.unreadable))
    if len(pairs) > 1 and not args.session:
        others = len(pairs) - 1
        print(f"showing the worst of {plural(len(pairs), 'session')}: {clean(chosen[0].id, one_line=True)} "
              f"({plural(others, 'other')}: --session ID, prefix or agent name; findings {args.path} ranks "
              "them all)", file=sys.stderr)
    color = use_color(sys.stdout, args.no_color)
    sys.stdout.write(render_text(*chosen, color=color, width=width_of(sys.stdout)))
    return exit_code(chosen[1], args.fail_on, bool(log.unreadable))


def _choose(pairs: list[tuple[Session, list[Finding]]],
            wanted: str | None) -> tuple[Session, list[Finding]] | str:
    """The worst session, or the one ``wanted`` names (id, unique id prefix, or agent name: its worst)."""
    from otel_agent_trace.files.report.terminal import clean

    if not wanted:
        return pairs[0]
    for matches in ([p for p in pairs if p[0].id == wanted],
                    [p for p in pairs if p[0].agent_name == wanted][:1]):
        if matches:
            return matches[0]
    prefixed = [p for p in pairs if p[0].id.startswith(wanted)]
    if len(prefixed) == 1:
        return prefixed[0]
    names = ", ".join(clean(f"{p[0].id} ({p[0].agent_name})", one_line=True) for p in (prefixed or pairs)[:10])
    what = "more than one session starts with" if prefixed else "no session id, prefix or agent name matches"
    return f"{what} {clean(wanted, one_line=True)!r} (sessions: {names})"


# -- watch ----------------------------------------------------------------------------------------------
def _cmd_watch(args: argparse.Namespace) -> int:
    from otel_agent_trace.cli.watch import watch
    from otel_agent_trace.files.report.terminal import use_color

    return watch(args.path, out=_console(use_color(sys.stdout, args.no_color)), errors=sys.stderr,
                 interval=args.interval, timeout=args.timeout, once=args.once, fail_on=args.fail_on)
