"""Settings: the ``OTEL_AGENT_TRACE_*`` / standard ``OTEL_*`` environment, overridden by ``instrument(...)``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_TRUTHY = {"1", "true", "yes", "on", "span_only", "span_and_event", "event_only"}


def capture_content_from_env(environ: Mapping[str, str]) -> bool:
    """Accepts ``true`` and the official GenAI values ``SPAN_ONLY`` / ``SPAN_AND_EVENT`` (case-insensitive)."""
    value = environ.get(CAPTURE_CONTENT_ENV, "")
    return value.strip().lower() in _TRUTHY and value.strip().lower() != "event_only"


def _as_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Input price per million tokens (USD) by model family, dated: cache reads are billed at 10 % of it,
# so a cache hit saves 90 %. Override with instrument(prices={...}) or OTEL_AGENT_TRACE_PRICES.
PRICES_AS_OF = "2026-11"
DEFAULT_INPUT_PRICES_USD_PER_MTOK: dict[str, float] = {
    "claude-opus": 15.0,
    "claude-sonnet": 3.0,
    "claude-haiku": 0.80,
    "claude-3-5-haiku": 0.80,
    "claude-3-haiku": 0.25,
    "claude": 3.0,
}
CACHE_READ_PRICE_FACTOR = 0.10
CACHE_WRITE_PRICE_FACTOR = 1.25  # five-minute cache writes


@dataclass(slots=True)
class Settings:
    """Everything configurable. Field ``x`` is read from ``OTEL_AGENT_TRACE_X`` unless noted."""

    capture_content: bool = False  # from OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
    max_content_chars: int = 32_000
    tool_dispatcher: str | None = None  # "pkg.module:function" or "pkg.module:Class.method"
    jsonl: str | None = None  # path of the seed-format JSONL trace to append to
    detectors: bool = True
    agent_name: str = "agent"
    session_idle_timeout: float = 600.0
    max_open_sessions: int = 1_024
    prices: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_INPUT_PRICES_USD_PER_MTOK))
    thresholds: dict[str, Any] = field(default_factory=dict)  # detector thresholds, by Thresholds field

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls(capture_content=capture_content_from_env(env))
        for f in fields(cls):
            raw = env.get(f"OTEL_AGENT_TRACE_{f.name.upper()}")
            if raw is None or f.name in ("capture_content", "thresholds"):
                continue
            if f.name == "prices":
                settings.prices.update(_parse_prices(raw))
            elif f.type in ("bool",):
                setattr(settings, f.name, _as_bool(raw))
            elif f.type == "int":
                setattr(settings, f.name, int(raw))
            elif f.type == "float":
                setattr(settings, f.name, float(raw))
            else:
                setattr(settings, f.name, raw or None)
        for key, value in overrides.items():
            if value is None:
                continue
            if key == "prices":
                settings.prices.update(value)
            elif hasattr(settings, key):
                setattr(settings, key, value)
            else:
                raise TypeError(f"unknown otel_agent_trace setting: {key!r}")
        return settings

    def input_price(self, model: str | None) -> float:
        """USD per million input tokens for ``model``: the longest matching family prefix wins."""
        if not isinstance(model, str) or not model:
            return 0.0
        best = ""
        for family in self.prices:
            if model.startswith(family) and len(family) > len(best):
                best = family
        return self.prices.get(best, 0.0)

    def cache_saving_usd(self, model: str | None, cache_read_tokens: int) -> float:
        """What cache reads saved: billed at 10 % of the input price instead of the full price."""
        if not cache_read_tokens:
            return 0.0
        return cache_read_tokens * self.input_price(model) * (1 - CACHE_READ_PRICE_FACTOR) / 1e6

    def input_cost_usd(self, model: str | None, fresh: int, cache_read: int = 0, cache_write: int = 0) -> float:
        """What a turn's input cost: fresh tokens at the input price, cache reads at 10 %, writes at 125 %.

        Output tokens are not priced: ``prices`` holds input prices only."""
        billed = fresh + cache_read * CACHE_READ_PRICE_FACTOR + cache_write * CACHE_WRITE_PRICE_FACTOR
        return billed * self.input_price(model) / 1e6


def _parse_prices(raw: str) -> dict[str, float]:
    """``claude-sonnet=3,claude-opus=15`` → mapping."""
    prices: dict[str, float] = {}
    for part in raw.split(","):
        name, _, value = part.partition("=")
        if name.strip() and value.strip():
            prices[name.strip()] = float(value)
    return prices
