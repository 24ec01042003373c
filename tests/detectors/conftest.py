"""Detector tests run hand-made sessions (``otel_agent_trace.testing.scenario``) through one detector."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from otel_agent_trace.detectors import Thresholds, analyze_session
from otel_agent_trace.model.records import Finding
from otel_agent_trace.testing.scenario import session

Detect = Callable[..., list[Finding]]


@pytest.fixture
def detect() -> Detect:
    """``detect("tool_loop", turn(...), end_reason=..., loop_min_repeats=3)`` → that kind's findings."""

    def run(kind: str, *turns: Mapping[str, Any], end_reason: str | None = "end_turn",
            **thresholds: Any) -> list[Finding]:
        s = session(*turns, end_reason=end_reason)
        found = analyze_session(s, Thresholds(**thresholds), kinds=[kind])
        assert all(f.kind == kind for f in found)
        return found

    return run
