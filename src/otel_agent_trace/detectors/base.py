"""The detector contract: small pure classes fed one session's records in order.

A session's events arrive in this order, live and from imported files alike:

    Turn 1 → ToolCall(s) answering turn 1's tool_uses → Turn 2 → … → finish(end_reason)

Each detector instance belongs to exactly one session (the analyzer creates one set per session), keeps
bounded state (rolling windows, per-target indexes with caps) and does O(1) amortized work per event.
Detectors never read span attributes and never raise for odd input: unknown tools, missing inputs and
empty results are normal.

Severity means the same for every kind:

* ``error``: a failure that cost the run — it was cut off without an answer (turn limit, max_tokens,
  API error) or it ended inside a loop the model kept going after it was reported (five retries by
  default);
* ``warning``: waste — tokens, turns or money spent on repeated, failing or unneeded work (drift, a
  loop, an invented input, a token jump from command output or an avoidable read, an avalanche, a
  cache miss, a trace that stops without an answer);
* ``info``: context worth knowing that is usually not a mistake — a big first read that builds the
  context, a cache entry that expired during a pause longer than its lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_agent_trace.model.records import Finding, ToolCall, Turn


@dataclass(slots=True)
class Thresholds:
    """Tunable thresholds; defaults follow DESIGN §6. Overridable by env and ``instrument(...)``."""

    drift_min_turns: int = 4
    loop_min_repeats: int = 3
    # The article's "sharp jump": +5k tokens and +25 % over the previous call is already a quarter more
    # context to pay for on every later turn; under that, growth is the normal pace of a session.
    jump_min_tokens: int = 5_000
    jump_min_ratio: float = 0.25
    avalanche_min_turns: int = 8
    cache_min_turn: int = 2
    max_tracked_targets: int = 4_096


class Detector:
    """Base class: override the hooks you need; each returns the findings it produced (often none)."""

    kind: str = ""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.thresholds = thresholds or Thresholds()

    def observe_turn(self, turn: Turn) -> list[Finding]:
        return []

    def observe_tool(self, call: ToolCall) -> list[Finding]:
        return []

    def observe_failed_attempt(self, turn: Turn) -> None:
        """A call that failed before a response (not a turn; the re-send takes its place). Only a detector
        about how the run ended needs it: the run may end on it."""

    def finish(self, last_turn: Turn | None, end_reason: str | None) -> list[Finding]:
        """The session ended (``end_reason``: end_turn, max_tokens, turn_limit, error, abandoned, or None)."""
        return []

    def tracked(self) -> int:
        """Entries held in this detector's per-target indexes and windows (bounded by its caps)."""
        return 0
