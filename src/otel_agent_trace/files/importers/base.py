"""What every importer shares: the malformed-line record, streaming line reader, and small parsers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


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


def parsed_lines(path: Path) -> Iterator[Parsed]:
    """JSON objects of a JSONL file, one at a time; blank lines skipped, bad ones reported, never raises."""
    name = str(path)
    try:
        handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    except OSError as exc:
        yield LineError(name, 0, f"cannot open: {exc.strerror or exc}")
        return
    with handle:
        for line_no, raw in enumerate(handle, 1):
            text = raw.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                yield LineError(name, line_no, f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(obj, dict):
                yield LineError(name, line_no, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield line_no, obj


def as_int(value: Any) -> int:
    """Token counts and timestamps: ints (or int-valued floats); anything else counts as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0


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
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1_000
