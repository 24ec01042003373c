"""Trace files → Sessions: the seed article's JSONL, ours, and Claude Code transcripts (auto-detected).

``load(path)`` streams a file line by line (or every ``*.jsonl`` of a directory, one file at a time) and
yields each Session when it is complete, plus a ``LineError`` for every line it had to skip::

    for item in load("trace.jsonl"):
        if isinstance(item, LineError):
            print(item, file=sys.stderr)   # "trace.jsonl:17: not valid JSON (...)"
        else:
            analyze_session(item)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from otel_agent_trace.files.importers.base import LineError, Parsed, parsed_lines
from otel_agent_trace.files.importers.claude_code import import_claude_code
from otel_agent_trace.files.importers.seed import import_seed
from otel_agent_trace.model.records import Session

__all__ = ["Format", "LineError", "detect_format", "load", "load_sessions"]

Format = Literal["seed", "claude_code"]
_PEEK_LINES = 1_000  # Claude Code files can open with many UI-state lines before the first message
_CLAUDE_TYPES = {"user", "assistant", "system", "summary"}
_CLAUDE_ONLY_TYPES = {"file-history-snapshot", "queue-operation"}


def _kind_of(obj: dict[str, Any]) -> Format | None:
    if obj.get("type") in _CLAUDE_ONLY_TYPES:
        return "claude_code"
    if obj.get("type") in _CLAUDE_TYPES and ("sessionId" in obj or "uuid" in obj or "leafUuid" in obj):
        return "claude_code"
    if "turn" in obj or "tool_results" in obj or obj.get("event") in ("start", "end"):
        return "seed"
    return None


def detect_format(lines: list[Parsed]) -> Format | None:
    """The format of the first recognisable line among ``lines``."""
    for item in lines:
        if not isinstance(item, LineError):
            kind = _kind_of(item[1])
            if kind is not None:
                return kind
    return None


def load(path: str | Path) -> Iterator[Session | LineError]:
    """Sessions (and skipped-line errors) of a trace file, or of every ``*.jsonl`` in a directory."""
    target = Path(path)
    if target.is_dir():
        for file in sorted(target.rglob("*.jsonl")):
            if file.parent.name != "subagents":  # loaded with the session that owns them
                yield from _load_file(file)
        return
    yield from _load_file(target)


def load_sessions(path: str | Path) -> list[Session]:
    """Every session of ``path``, ignoring skipped lines (for tests and small files)."""
    return [item for item in load(path) if isinstance(item, Session)]


def _load_file(path: Path) -> Iterator[Session | LineError]:
    if not path.exists():
        yield LineError(str(path), 0, "no such file")
        return
    lines = parsed_lines(path)
    # Peek at a few lines to pick the reader, then hand it the same stream with the peeked lines in front.
    head: list[Parsed] = []
    kind: Format | None = None
    for item in itertools.islice(lines, _PEEK_LINES):
        head.append(item)
        if not isinstance(item, LineError) and (kind := _kind_of(item[1])) is not None:
            break
    stream = itertools.chain(head, lines)
    if kind == "claude_code":
        yield from import_claude_code(path, stream)
    elif kind == "seed":
        yield from import_seed(path, stream)
    else:
        errors = [item for item in head if isinstance(item, LineError)]
        yield from errors
        if len(errors) < len(head):
            yield LineError(str(path), 0, "not a recognised trace format (seed JSONL or a Claude Code "
                                          "transcript)")
