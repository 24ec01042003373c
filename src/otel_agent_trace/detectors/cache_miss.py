"""cache_miss: a prefix marked for caching that is not served from the cache.

With ``cache_control`` on a stable prefix, every call after the first should read from the cache, at
10 % of the input price, what the previous call read from it or wrote to it: that is the cached prefix
(the system prompt only, or the whole history when the breakpoint moves with it, as in Claude Code).
Nothing read means the prefix changes between calls (a timestamp, reordered tools) or is below the
model's minimum cacheable length; reading much less than that (below ``_PREFIX_SHARE``) means the
prefix broke part-way (an edited early message). A low hit ratio alone is not a miss: a call that adds
a lot of new content (a big file read) lowers the ratio while the whole old prefix is still read from
the cache. A compaction (marked, or seen as the context falling below half) or a change of model
starts a new prefix. A smaller shrink of the context (a microcompaction, a plan implemented in a cleared
context) cut the history part-way: reading only the part before the cut is then expected, but reading
nothing at all still is a miss, since the system prompt and tools in front did not change.
"""

from __future__ import annotations

from otel_agent_trace.detectors._util import fmt_tokens, history_rewritten, history_shrunk
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.model.records import Finding, Turn

_MIN_CACHEABLE = 1_024  # tokens: the smallest prefix any Claude model caches
# When part of the prefix is read, the unread rest must be worth a breakpoint of its own (the largest
# minimum cacheable length, 2,048 tokens on Haiku models): a client may move or drop the breakpoint on
# the last few messages, which leaves a small tail unread without anything being broken.
_MIN_MISSED = 2_048
# Cache lifetimes: 5 minutes by default, one hour for entries written with ``"ttl": "1h"``. A longer pause
# than the prefix's lifetime is an expected miss; a shorter one is not.
_TTL_NS = 300 * 1_000_000_000
_TTL_1H_NS = 3_600 * 1_000_000_000
# Share of the previously cached prefix that must be read again. Not 100 %: a client may move or drop a
# breakpoint near the end of the prefix without anything being wrong.
_PREFIX_SHARE = 0.8


class CacheMiss(Detector):
    """Caching in use, and from turn ``cache_min_turn`` on a call reads < 80 % of the prefix cached before."""

    kind = "cache_miss"

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        self.min_turn = self.thresholds.cache_min_turn
        self._seen_cache = False  # some turn wrote to or read from the cache: caching is on
        self._in_miss = False  # one finding per run of consecutive misses
        self._cached = 0  # what the previous call read from or wrote to the cache
        self._prev_context = 0
        self._prev_model: str | None = None
        self._prev_end_ns = 0
        self._ttl_ns = _TTL_NS  # lifetime of the prefix the last cache write made

    def observe_turn(self, turn: Turn) -> list[Finding]:
        usage = turn.usage
        read, created = usage.cache_read_input_tokens, usage.cache_creation_input_tokens
        context = usage.input_tokens + read + created
        prev, finding = self._cached, None
        new_prefix = (turn.after_compaction or context == 0 or history_rewritten(self._prev_context, context)
                      or (turn.model is not None and self._prev_model is not None and turn.model != self._prev_model))
        if new_prefix:
            pass  # a rewritten history or another model cannot hit the old prefix; unknown usage tells nothing
        elif read == 0 or (read < _PREFIX_SHARE * prev and prev - read >= _MIN_MISSED
                           and not history_shrunk(self._prev_context, context)):
            if ((turn.cache_control or self._seen_cache) and turn.index >= self.min_turn
                    and context >= _MIN_CACHEABLE and not self._in_miss):
                self._in_miss = True
                paused = self._paused(turn)
                finding = self._miss(turn, paused) if read == 0 else self._collapse(turn, prev, paused)
        else:
            self._in_miss = False
        if read or created:
            self._seen_cache = True
        if context:
            self._cached = read + created
            self._prev_context = context
        if turn.model is not None:
            self._prev_model = turn.model
        if turn.end_ns:
            self._prev_end_ns = turn.end_ns
        if created:
            self._ttl_ns = _TTL_1H_NS if usage.cache_creation_1h_input_tokens else _TTL_NS
        return [finding] if finding is not None else []

    def _paused(self, turn: Turn) -> bool:
        """More than the prefix's lifetime passed since the previous turn ended: an expected miss. Claude
        Code writes one-hour entries on many plans: there a 20-minute pause should still have hit."""
        return bool(turn.start_ns and self._prev_end_ns and turn.start_ns - self._prev_end_ns > self._ttl_ns)

    def _lifetime(self) -> str:
        return "an hour" if self._ttl_ns == _TTL_1H_NS else "5 minutes"

    def _miss(self, turn: Turn, paused: bool) -> Finding:
        usage, t = turn.usage, turn.index
        written = usage.cache_creation_input_tokens
        if paused:
            why = f"more than {self._lifetime()} passed since the previous turn, so the cache entry expired"
        elif written:
            why = (f"{fmt_tokens(written)} tokens were written to the cache again: something in the prefix"
                   " changes every call (a timestamp or id in the system prompt, tools in a different order)")
        else:
            why = ("nothing was written either: the marked prefix may be shorter than the model's minimum"
                   " cacheable length, or the cache_control marker is not on a stable block")
        # Imported transcripts do not record cache_control; earlier cache reads/writes show it is used.
        marked = "cache_control is set" if turn.cache_control else "caching is in use (cache reads/writes seen earlier)"
        return Finding(
            kind=self.kind, severity="info" if paused else "warning", turn=t, turns=[t],
            message=(f"{marked} but nothing was read from the cache at turn {t}"
                     f" ({fmt_tokens(usage.context_tokens)} tokens of context) — {why}"),
            evidence={"reason": "no_cache_read", "cache_read_input_tokens": 0,
                      "cache_creation_input_tokens": written, "input_tokens": usage.input_tokens,
                      "context_tokens": usage.context_tokens, "ttl_expired": paused,
                      "cache_control": turn.cache_control},
        )

    def _collapse(self, turn: Turn, prev: int, paused: bool) -> Finding:
        t, usage = turn.index, turn.usage
        read = usage.cache_read_input_tokens
        why = (f"more than {self._lifetime()} passed since the previous turn: only the part cached longer ago"
               " was still there" if paused else "the cached prefix broke part-way: an early message or the tool list"
               " changed")
        return Finding(
            kind=self.kind, severity="info" if paused else "warning", turn=t, turns=[t],
            message=(f"only {fmt_tokens(read)} tokens were read from the cache at turn {t}, although the previous"
                     f" call cached {fmt_tokens(prev)} tokens of prefix — {why}"),
            evidence={"reason": "ratio_collapse", "hit_ratio": round(read / usage.context_tokens, 3)
                      if usage.context_tokens else None, "cache_read_input_tokens": read,
                      "previously_cached_tokens": prev, "context_tokens": usage.context_tokens,
                      "ttl_expired": paused},
        )

    def tracked(self) -> int:
        return 0
