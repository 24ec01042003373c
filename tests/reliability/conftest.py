"""Fixtures of the reliability suite. ``provider``, ``exporter``, ``settings``, ``instrumented`` and ``api``
come from ``tests/conftest.py``; iteration counts scale up under ``OTEL_AGENT_TRACE_SOAK=1``."""

from __future__ import annotations

import pytest

from tests.reliability.support import EndCounter


@pytest.fixture
def ends(provider) -> EndCounter:
    """Counts span ends per span id on the test's provider."""
    counter = EndCounter()
    provider.add_span_processor(counter)
    return counter
