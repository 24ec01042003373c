#!/usr/bin/env python3
"""Number the model calls ("turns") in a Claude Code session JSONL file.

Standalone on purpose: the labels in tests/fixtures/real_claude_code/labels.json
were written against this numbering, and it must not depend on the package whose
detectors those labels are meant to score.

Counting rule: turn N is the N-th distinct ``message.id`` among lines whose
``type`` is ``"assistant"``, in file order. Claude Code writes one API response
as several lines (one per content block) that share a ``message.id``; they count
once, at the position of their first line. Lines whose ``message.model`` is
``"<synthetic>"`` are written by Claude Code itself (interrupts, API errors),
not by a model call, so they are not counted. Lines without a ``message.id``
are not counted either.

Usage: count_claude_code_turns.py FILE.jsonl [--detail]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def turn_ids(path: Path) -> list[tuple[str, int]]:
    """Return (message id, 1-based line number of its first line) per turn."""
    seen: set[str] = set()
    turns: list[tuple[str, int]] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, raw in enumerate(handle, start=1):
            raw = raw.strip()
            if not raw:
                continue
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if not isinstance(entry, dict) or entry.get("type") != "assistant":
                continue
            message = entry.get("message")
            if not isinstance(message, dict):
                continue
            if message.get("model") == "<synthetic>":
                continue
            message_id = message.get("id")
            if not isinstance(message_id, str) or message_id in seen:
                continue
            seen.add(message_id)
            turns.append((message_id, line_no))
    return turns


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[1])
    turns = turn_ids(path)
    if "--detail" in argv[2:]:
        for number, (message_id, line_no) in enumerate(turns, start=1):
            print(f"{number}\t{message_id}\tline {line_no}")
    else:
        print(len(turns))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
