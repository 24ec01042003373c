"""What every importer shares: the malformed-line record, streaming line reader, and small parsers."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that could not be imported; the rest of the file still is."""

    file: str
    line_no: int  # 1-based; 0 when the problem is the whole file
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line_no}: {self.message}"


# One parsed line: (line number, object) or the error that replaced it.
Parsed = tuple[int, dict[str, Any]] | LineError


#: Limits on one line of a trace file: a line past them is reported and skipped, never loaded.
MAX_LINE_BYTES = 16 * 1024 * 1024  # Claude Code lines holding a screenshot run to a few MB
MAX_DEPTH = 100  # real transcripts nest about a dozen levels; json's own recursion gives out near 1,000
MAX_INT_DIGITS = 40  # no count or timestamp needs more; Python refuses to parse past 4,300 digits anyway
#: The largest token count taken from a file (more than any context window); beyond it, or below 0, counts
#: are clamped, so a hostile number cannot size a chart or overflow a float.
MAX_TOKENS = 100_000_000
#: Epoch nanoseconds must fit OTLP's signed 64-bit fields; others read as "unknown" (0).
MAX_NS = 2**63 - 1
_CHUNK = 1024 * 1024
_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class _Rejected(ValueError):
    """A line that is valid JSON but past one of the limits."""


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _Rejected(f"an integer of {len(digits.lstrip('-'))} digits (more than {MAX_INT_DIGITS})")
    return int(digits)


def _too_deep(raw: bytes) -> bool:
    """Whether brackets outside strings nest deeper than ``MAX_DEPTH`` (checked before parsing, so a deep
    line costs one regex pass instead of a RecursionError inside the parser or later in our own code)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for match in _BRACKETS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _parse(raw: bytes) -> dict[str, Any] | str:
    """One line's object, or why it was skipped."""
    if _too_deep(raw):
        return f"nested deeper than {MAX_DEPTH} levels"
    try:
        obj = json.loads(raw.decode("utf-8", errors="replace"), parse_int=_parse_int)
    except _Rejected as exc:
        return str(exc)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    except (ValueError, RecursionError, MemoryError) as exc:  # a plain ValueError has no .msg / .colno
        return f"not valid JSON ({type(exc).__name__})"
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    return obj


def _open_regular(path: Path) -> BinaryIO | str:
    """The file opened for reading, or why not: only regular files are read. A FIFO would block the open
    (and then the read) forever and a device like /dev/zero never ends; both are refused without reading."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return f"cannot open: {exc.strerror or exc}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return "not a regular file (a FIFO, device or directory); skipped"
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except OSError as exc:
        os.close(fd)
        return f"cannot open: {exc.strerror or exc}"


def parsed_lines(path: Path) -> Iterator[Parsed]:
    """JSON objects of a JSONL file, one at a time; blank lines skipped, bad ones reported, never raises.

    Each line is read with a length limit (a longer one is skipped in chunks, never held whole in memory),
    checked for nesting depth and integer size, then parsed."""
    name = str(path)
    handle = _open_regular(path)
    if isinstance(handle, str):
        yield LineError(name, 0, handle)
        return
    with handle:
        line_no = 0
        while True:
            try:
                raw = handle.readline(MAX_LINE_BYTES + 1)
            except OSError as exc:
                yield LineError(name, line_no + 1, f"cannot read: {exc.strerror or exc}")
                return
            if not raw:
                return
            line_no += 1
            if len(raw) > MAX_LINE_BYTES:
                skipped = len(raw)
                while raw and not raw.endswith(b"\n"):  # drop the rest of the line a chunk at a time
                    raw = handle.readline(_CHUNK)
                    skipped += len(raw)
                yield LineError(name, line_no, f"line longer than {MAX_LINE_BYTES} bytes ({skipped}); skipped")
                continue
            raw = raw.strip()
            if not raw:
                continue
            parsed = _parse(raw)
            if isinstance(parsed, str):
                yield LineError(name, line_no, parsed)
            else:
                yield line_no, parsed


def as_int(value: Any, low: int = 0, high: int = MAX_NS) -> int:
    """Ints (or int-valued floats) clamped to ``low..high``; anything else counts as ``low``."""
    if isinstance(value, bool):
        return low
    if isinstance(value, float):
        if not value.is_integer():  # also NaN and the infinities
            return low
        value = int(value)
    if not isinstance(value, int):
        return low
    return min(max(value, low), high)


def as_count(value: Any) -> int:
    """A token count: negative ones read as 0, absurd ones as ``MAX_TOKENS``."""
    return as_int(value, 0, MAX_TOKENS)


def as_ns(value: Any) -> int:
    """An epoch-nanosecond timestamp; out of OTLP's range it is unknown (0), not clamped to a made-up time."""
    number = as_int(value, -1, MAX_NS + 1)
    return number if 0 <= number <= MAX_NS else 0


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def iso_to_ns(value: Any) -> int:
    """``2025-06-01T10:00:00.123Z`` → epoch nanoseconds; 0 when absent or unparseable."""
    if not isinstance(value, str) or not value:
        return 0
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # Claude Code writes UTC; a bare time is taken as UTC
    # Integer arithmetic: float seconds would lose the last digits of a nanosecond timestamp.
    delta = moment - _EPOCH
    ns = ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1_000
    return ns if 0 <= ns <= MAX_NS else 0
