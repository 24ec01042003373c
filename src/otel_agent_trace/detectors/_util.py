"""Small helpers shared by the detectors: a capped LRU mapping and message formatting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from otel_agent_trace.pipeline.content import redact

K = TypeVar("K")
V = TypeVar("V")


class BoundedDict(Generic[K, V]):
    """A dict capped at ``maxsize`` entries, evicting the least recently written or touched key.

    Plain ``dict`` insertion order does the LRU bookkeeping: re-inserting a key moves it to the end,
    so every operation is O(1) and a detector's per-target index can never outgrow its cap.
    """

    __slots__ = ("_data", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = max(1, maxsize)
        self._data: dict[K, V] = {}

    def get(self, key: K, default: V | None = None) -> V | None:
        return self._data.get(key, default)

    def touch(self, key: K) -> V | None:
        """Return the value and mark the key as recently used."""
        value = self._data.pop(key, None)
        if value is not None:
            self._data[key] = value
        return value

    def put(self, key: K, value: V) -> None:
        self._data.pop(key, None)
        self._data[key] = value
        if len(self._data) > self.maxsize:
            del self._data[next(iter(self._data))]

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def items(self) -> Iterator[tuple[K, V]]:
        return iter(self._data.items())


# Within one conversation the context only grows; a call with less than half the previous context has a
# rewritten history (a compaction, a cleared or resumed conversation) even where no marker says so.
HISTORY_DROP = 0.5
# A smaller shrink still means messages were taken out of the history: Claude Code's microcompaction
# (old tool results cleared) and a plan implemented in a cleared context ("Implement the following
# plan") keep the system prompt and part of the history and drop the rest, often to 55-75 % of the
# context. Nothing in one conversation shrinks the context by a fifth otherwise.
HISTORY_SHRINK = 0.8


def history_rewritten(previous_context: int, context: int) -> bool:
    """Did the context shrink so much that the history must have been replaced?"""
    return 0 < context < HISTORY_DROP * previous_context


def history_shrunk(previous_context: int, context: int) -> bool:
    """Did the context shrink enough that messages must have been taken out of the history?"""
    return 0 < context < HISTORY_SHRINK * previous_context


def fmt_tokens(n: int) -> str:
    """14_210 → '14k', 950 → '950': people compare token counts by magnitude."""
    if abs(n) >= 10_000:
        return f"{round(n / 1000)}k"
    if abs(n) >= 1_000:
        return f"{n / 1000:.1f}k"
    return str(n)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 turn``, ``2 turns``, ``1,024 sessions``."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def short(text: str | None, limit: int = 60) -> str:
    """One line, at most ``limit`` characters, for messages; secrets masked before the cut."""
    if not text:
        return ""
    line = redact(" ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def turn_span(turns: list[int]) -> str:
    """[7, 8, 9] → 'turns 7-9'; [4] → 'turn 4'."""
    if not turns:
        return "no turn"
    if turns[0] == turns[-1]:
        return f"turn {turns[0]}"
    return f"turns {turns[0]}-{turns[-1]}"
