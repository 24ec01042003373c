"""``otel-agent-trace``: findings and reports from trace files; ``demo`` and ``import`` live elsewhere.

    otel-agent-trace findings FILE... [--json]
    otel-agent-trace report FILE [--session ID] [--html OUT] [--no-color]
    otel-agent-trace demo ...      (otel_agent_trace.cli.demo:main)
    otel-agent-trace import ...    (otel_agent_trace.files.replay:main)

Files are the seed article's JSONL, ours, or Claude Code transcripts (auto-detected). Lines that cannot
be read are reported on stderr as ``file:line: message`` and skipped. Exit codes: 0 done (findings or
not); 1 a file could not be read or the requested session does not exist; 2 usage errors, or ``demo`` /
``import`` not installed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from otel_agent_trace.model.records import Finding, Session

# Subcommands implemented in other modules, handed their own argv so they own their options.
_PASSTHROUGH = {
    "demo": ("otel_agent_trace.cli.demo", "run a scripted agent against the embedded fake Messages API"),
    "import": ("otel_agent_trace.files.replay", "replay trace files as OTLP spans to the configured endpoint"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in _PASSTHROUGH:
        return _passthrough(args_list[0], args_list[1:])
    parser = _parser()
    args = parser.parse_args(args_list)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # `... | head`: the reader left; exit quietly instead of a traceback on interpreter shutdown.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-agent-trace",
        description="Debug coding-agent runs from their message traces (seed JSONL, ours, Claude Code).")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    findings = commands.add_parser("findings", help="list what the detectors find in trace files")
    findings.add_argument("files", nargs="+", metavar="FILE", help="trace file or directory of *.jsonl")
    findings.add_argument("--json", action="store_true", help="print a JSON array, one object per finding")
    findings.set_defaults(handler=_cmd_findings)

    report = commands.add_parser("report", help="work backwards through one session: outcome, last turns, "
                                                "findings, decision turn, token budget")
    report.add_argument("file", metavar="FILE")
    report.add_argument("--session", metavar="ID", help="session id (or a unique prefix of it)")
    report.add_argument("--html", metavar="OUT", help="write a self-contained HTML page instead")
    report.add_argument("--no-color", action="store_true", help="no ANSI colour even on a terminal")
    report.set_defaults(handler=_cmd_report)

    for name, (module, text) in _PASSTHROUGH.items():
        # Listed for --help only: main() dispatches these before argparse sees their options.
        commands.add_parser(name, help=f"{text} ({module}:main)", add_help=False)
    return parser


def _passthrough(command: str, rest: list[str]) -> int:
    module_name = _PASSTHROUGH[command][0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"otel-agent-trace {command}: not available in this installation ({exc})", file=sys.stderr)
        return 2
    return int(module.main(rest) or 0)


# -- shared ---------------------------------------------------------------------------------------------
def _sessions(path: str, errors: TextIO, problems: list[str]) -> Iterator[Session]:
    """Analysed sessions of ``path`` (findings on ``session.findings``); skipped lines go to ``errors``,
    unreadable files also to ``problems``."""
    from otel_agent_trace.files import analyzed
    from otel_agent_trace.files.importers import LineError

    for item in analyzed(path):
        if isinstance(item, LineError):
            print(item, file=errors)
            if item.line_no == 0:
                problems.append(str(item))
        else:
            yield item.session


def finding_row(file: str, finding: Finding, session_id: str) -> dict[str, Any]:
    """One finding as ``findings --json`` prints it (DESIGN §7)."""
    from otel_agent_trace.model.findings import finding_to_dict

    return {"file": file, "session": finding.session or session_id, **finding_to_dict(finding)}


def _use_color(stream: TextIO, disabled: bool = False) -> bool:
    return not disabled and "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def _width() -> int:
    return max(60, min(160, shutil.get_terminal_size((100, 24)).columns))


# -- findings -------------------------------------------------------------------------------------------
def _cmd_findings(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    sessions = 0
    for path in args.files:
        for session in _sessions(path, sys.stderr, problems):
            sessions += 1
            # Sub-agent sessions come from their own files: report the file the turns are in.
            source = session.source or str(path)
            rows.extend(finding_row(source, f, session.id) for f in session.findings)
    if args.json:
        json.dump(rows, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(_findings_table(rows, sessions, len(args.files), _use_color(sys.stdout)))
    return 1 if problems else 0


def _findings_table(rows: list[dict[str, Any]], sessions: int, files: int, color: bool) -> str:
    """Findings grouped under a ``file · session`` heading, one wrapped line per finding."""
    import textwrap

    tone = {"error": "\x1b[31m", "warning": "\x1b[33m"}
    width = _width()
    lines: list[str] = []
    group: tuple[str, str] | None = None
    for row in rows:
        if (row["file"], row["session"]) != group:
            group = (row["file"], row["session"])
            heading = f"{row['file']} · session {row['session']}"
            lines.extend(["", f"\x1b[1m{heading}\x1b[0m" if color else heading])
        turns = row["turns"]
        where = f"T{turns[0]}" if turns[0] == turns[-1] else f"T{turns[0]}–{turns[-1]}"
        severity = f"{row['severity']:<8}"
        if color and row["severity"] in tone:
            severity = f"{tone[row['severity']]}{severity}\x1b[0m"
        lead = f"  {where:<9} {row['severity']:<8} {row['kind']:<19}"
        wrapped = textwrap.wrap(" ".join(str(row["message"]).split()), max(30, width - len(lead) - 1)) or [""]
        lines.append(f"  {where:<9} {severity} {row['kind']:<19}{wrapped[0]}")
        lines.extend(" " * len(lead) + line for line in wrapped[1:])
    count = len(rows)
    lines.append(("\n" if rows else "") + f"{count} finding{'s' * (count != 1)} in {sessions} "
                 f"session{'s' * (sessions != 1)} from {files} file{'s' * (files != 1)}")
    return "\n".join(lines).lstrip("\n") + "\n"


# -- report ---------------------------------------------------------------------------------------------
def _cmd_report(args: argparse.Namespace) -> int:
    from otel_agent_trace.files.report import render_html, render_text

    problems: list[str] = []
    sessions = list(_sessions(args.file, sys.stderr, problems))
    if not sessions:
        print(f"{args.file}: no sessions found", file=sys.stderr)
        return 1
    chosen = _choose(sessions, args.session)
    if chosen is None:
        ids = ", ".join(s.id for s in sessions[:10])
        print(f"{args.file}: no session {args.session!r} (sessions: {ids})", file=sys.stderr)
        return 1
    if args.html:
        selected = [chosen] if args.session else sessions
        title = f"otel-agent-trace · {Path(args.file).name}"
        page = render_html([(s, s.findings) for s in selected], title=title)
        Path(args.html).write_text(page, encoding="utf-8")
        print(f"wrote {args.html} ({len(selected)} session{'s' * (len(selected) != 1)})", file=sys.stderr)
        return 0
    if len(sessions) > 1 and not args.session:
        others = len(sessions) - 1
        print(f"note: {args.file} holds {others} more session{'s' * (others != 1)}; showing {chosen.id} "
              f"(pick one with --session ID)", file=sys.stderr)
    text = render_text(chosen, chosen.findings, color=_use_color(sys.stdout, args.no_color), width=_width())
    sys.stdout.write(text)
    return 0


def _choose(sessions: list[Session], wanted: str | None) -> Session | None:
    if not wanted:
        # The main conversation, not one of its sub-agents.
        return next((s for s in sessions if s.parent_id is None), sessions[0])
    exact = [s for s in sessions if s.id == wanted]
    if exact:
        return exact[0]
    prefixed = [s for s in sessions if s.id.startswith(wanted)]
    return prefixed[0] if len(prefixed) == 1 else None
