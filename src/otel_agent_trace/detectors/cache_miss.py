"""cache_miss: a prefix marked for caching that is not served from the cache.

With ``cache_control`` on a stable prefix, every turn after the first should read most of its context
from the cache at 10 % of the input price. Nothing read means the prefix changes between calls (a
timestamp, reordered tools) or is below the model's minimum cacheable length; a ratio that suddenly
halves means the prefix broke part-way (an edited early message).
"""

from __future__ import annotations

from collections import deque

from otel_agent_trace.detectors._util import fmt_tokens
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.model.records import Finding, Turn

_MIN_CACHEABLE = 1_024  # tokens: the smallest prefix any Claude model caches
_CACHE_TTL_NS = 300 * 1_000_000_000  # default ephemeral cache lifetime: a longer pause is an expected miss
_WINDOW = 5  # turns in the rolling hit-ratio average
_HEALTHY = 0.5  # a rolling ratio at least this high is worth protecting


class CacheMiss(Detector):
    """cache_control set but cache_read = 0 from turn ``cache_min_turn`` on, or the hit ratio collapses."""

    kind = "cache_miss"

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        self.min_turn = self.thresholds.cache_min_turn
        self._ratios: deque[float] = deque(maxlen=_WINDOW)
        self._seen_cache = False  # some turn wrote to or read from the cache: caching is on
        self._in_miss = False
        self._in_collapse = False
        self._prev_end_ns = 0

    def observe_turn(self, turn: Turn) -> list[Finding]:
        usage = turn.usage
        read, created = usage.cache_read_input_tokens, usage.cache_creation_input_tokens
        context = usage.input_tokens + read + created
        finding: Finding | None = None
        if turn.after_compaction or context == 0:
            pass  # a rewritten history cannot hit the old prefix; unknown usage tells nothing
        elif read == 0:
            self._in_collapse = False
            if ((turn.cache_control or self._seen_cache) and turn.index >= self.min_turn
                    and context >= _MIN_CACHEABLE and not self._in_miss):
                self._in_miss = True
                finding = self._miss(turn, self._paused(turn))
        else:
            self._in_miss = False
            ratio = read / context
            ratios = self._ratios
            avg = sum(ratios) / len(ratios) if ratios else 0.0
            if avg >= _HEALTHY and ratio < avg / 2:
                if not self._in_collapse:
                    self._in_collapse = True
                    finding = self._collapse(turn, ratio, avg, self._paused(turn))
            else:
                self._in_collapse = False
            ratios.append(ratio)
        if read or created:
            self._seen_cache = True
        if turn.end_ns:
            self._prev_end_ns = turn.end_ns
        return [finding] if finding is not None else []

    def _paused(self, turn: Turn) -> bool:
        """More than the cache TTL passed since the previous turn ended: an expected miss."""
        return bool(turn.start_ns and self._prev_end_ns and turn.start_ns - self._prev_end_ns > _CACHE_TTL_NS)

    def _miss(self, turn: Turn, paused: bool) -> Finding:
        usage, t = turn.usage, turn.index
        written = usage.cache_creation_input_tokens
        if paused:
            why = "more than 5 minutes passed since the previous turn, so the cache entry expired"
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

    def _collapse(self, turn: Turn, ratio: float, avg: float, paused: bool) -> Finding:
        t = turn.index
        return Finding(
            kind=self.kind, severity="info" if paused else "warning", turn=t, turns=[t],
            message=(f"cache hit ratio fell to {ratio:.0%} at turn {t} from a recent average of {avg:.0%}"
                     " — the cached prefix broke part-way: an early message or the tool list changed"),
            evidence={"reason": "ratio_collapse", "hit_ratio": round(ratio, 3), "rolling_avg": round(avg, 3),
                      "cache_read_input_tokens": turn.usage.cache_read_input_tokens,
                      "context_tokens": turn.usage.context_tokens, "ttl_expired": paused},
        )

    def tracked(self) -> int:
        return len(self._ratios)
