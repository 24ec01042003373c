"""Failure detectors over a session's records: pure, bounded, and the same live and offline.

``SessionAnalyzer`` runs them per session as events arrive; ``analyze_session`` runs them over a
finished ``Session``. Kinds: context_drift, tool_loop, hallucinated_input, token_jump, tool_avalanche,
no_end_turn, cache_miss.
"""

from otel_agent_trace.detectors.analyzer import (
    ALL_DETECTORS,
    SessionAnalyzer,
    analyze_session,
    session_events,
    thresholds_from_env,
)
from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.detectors.errors import classify_error
from otel_agent_trace.detectors.roles import ToolRole, classify_tool

KINDS: tuple[str, ...] = tuple(cls.kind for cls in ALL_DETECTORS)

__all__ = [
    "ALL_DETECTORS",
    "KINDS",
    "Detector",
    "SessionAnalyzer",
    "Thresholds",
    "ToolRole",
    "analyze_session",
    "classify_error",
    "classify_tool",
    "session_events",
    "thresholds_from_env",
]
