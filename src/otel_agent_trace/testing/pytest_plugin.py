"""pytest plugin: regression tests for an agent, on by installing otel-agent-trace (``pytest11`` entry point).

Fixtures:

- ``agent_trace`` — instruments the ``anthropic`` SDK for the test with a real OpenTelemetry SDK pipeline
  and an in-memory exporter, and is an :class:`~otel_agent_trace.testing.AgentRun` over what it
  exported: ``.session``, ``.sessions``, ``.findings``, ``.clean``, ``.turns``, ``.tokens``,
  ``.shape``. Sessions still open are ended when the run is read and at the end of the test.
  Settings come from ``agent_trace_settings`` (override the fixture) or the marker
  ``@pytest.mark.agent_trace(capture_content=True, tool_dispatcher="agent:dispatch", ...)``.
- ``fake_anthropic`` — a local fake Messages API (real HTTP) with scripted replies:
  ``fake_anthropic.enqueue(tool_reply(...), text_reply(...))``; ``fake_anthropic.client()`` and
  ``.async_client()`` are ``anthropic`` clients pointed at it.
- ``trace_snapshot`` — ``assert agent_trace.shape == trace_snapshot`` compares with
  ``__snapshots__/<test file>/<test name>.txt`` next to the test; ``--agent-trace-update-snapshots``
  writes the file instead.

Nothing here is imported by the instrumented path; only pytest loads it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_agent_trace.config import Settings
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, Responder
from otel_agent_trace.testing.run import AgentRun, TraceShape

_UPDATE_OPTION = "--agent-trace-update-snapshots"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("otel-agent-trace")
    group.addoption(_UPDATE_OPTION, action="store_true", default=False,
                    help="write trace-shape snapshots (trace_snapshot fixture) instead of comparing them")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "agent_trace(**settings): otel-agent-trace Settings fields for the "
                                       "agent_trace fixture (capture_content, tool_dispatcher, thresholds, ...)")


# -- agent_trace -----------------------------------------------------------------------------------------
class AgentTrace(AgentRun):
    """The ``agent_trace`` fixture: the instrumentation for one test and the run it recorded."""

    def __init__(self, settings: Settings) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        super().__init__(self.exporter.get_finished_spans, settings, before_read=self.end_sessions)

    def end_sessions(self) -> None:
        """End every session still open (a loop that raised, a run without ``end_turn``)."""
        from otel_agent_trace.instrumentation.instrumentor import active_hub

        hub = active_hub()
        if hub is not None:
            hub.sessions.end_all()


def _settings(request: pytest.FixtureRequest, base: Settings) -> Settings:
    marker = request.node.get_closest_marker("agent_trace")
    for key, value in (marker.kwargs if marker else {}).items():
        if not hasattr(base, key):
            raise pytest.UsageError(f"@pytest.mark.agent_trace: unknown setting {key!r}")
        setattr(base, key, value)
    return base


@pytest.fixture
def agent_trace_settings() -> Settings:
    """Settings for ``agent_trace``: the ``OTEL_AGENT_TRACE_*`` environment, defaults otherwise.
    Override this fixture in a conftest.py to change them for many tests."""
    return Settings.from_env()


@pytest.fixture
def agent_trace(request: pytest.FixtureRequest, agent_trace_settings: Settings) -> Iterator[AgentTrace]:
    """Instrument the ``anthropic`` SDK for this test; the value is the run it records."""
    from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor

    run = AgentTrace(_settings(request, agent_trace_settings))
    instrumentor = AnthropicAgentInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        # Instrumented at import (``otel_agent_trace.instrument()`` in the agent's module): take over for
        # the test, so its spans reach this test's exporter.
        instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=run.provider, settings=run.settings)
    try:
        yield run
    finally:
        try:
            run.end_sessions()
        finally:
            instrumentor.uninstrument()
            run.provider.shutdown()


# -- fake_anthropic --------------------------------------------------------------------------------------
class FakeAnthropic(FakeMessagesAPI):
    """The ``fake_anthropic`` fixture: the fake Messages API, with clients already pointed at it."""

    def respond_with(self, responder: Responder) -> None:
        """Answer requests the script does not cover with ``responder(request_body) -> Reply | Fault``."""
        self._responder = responder

    def client(self, **options: Any) -> Any:
        """An ``anthropic.Anthropic`` for this server (no retries unless ``options`` say so)."""
        import anthropic

        return anthropic.Anthropic(**self._client_options(options))

    def async_client(self, **options: Any) -> Any:
        """An ``anthropic.AsyncAnthropic`` for this server."""
        import anthropic

        return anthropic.AsyncAnthropic(**self._client_options(options))

    def _client_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {"api_key": "sk-ant-test", "base_url": self.base_url, "max_retries": 0, **options}


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A local fake Messages API; script it with ``enqueue(...)``, unscripted requests get ``"ok"``."""
    with FakeAnthropic() as server:
        yield server


# -- trace_snapshot --------------------------------------------------------------------------------------
class TraceSnapshot:
    """``shape == trace_snapshot``: equal to the stored shape, or stored when updating snapshots."""

    def __init__(self, path: Path, update: bool) -> None:
        self.path = path
        self.update = update
        self.written = False

    @property
    def stored(self) -> str | None:
        return self.path.read_text(encoding="utf-8") if self.path.is_file() else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return NotImplemented
        if self.update:
            if self.stored != other:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.write_text(other, encoding="utf-8")
                self.written = True
            return True
        return self.stored == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TraceSnapshot({str(self.path)!r})"


@pytest.fixture
def trace_snapshot(request: pytest.FixtureRequest) -> TraceSnapshot:
    """The stored trace shape of this test, ``__snapshots__/<test file>/<test name>.txt``."""
    test_file = Path(str(request.node.path))
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    path = test_file.parent / "__snapshots__" / test_file.stem / f"{name}.txt"
    return TraceSnapshot(path, bool(request.config.getoption(_UPDATE_OPTION)))


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> list[str] | None:
    """A line diff for a trace shape against its snapshot (or the hint to record a missing one)."""
    if op != "==" or not isinstance(right, TraceSnapshot) or not isinstance(left, str):
        return None
    stored = right.stored
    if stored is None:
        return [f"no trace snapshot at {right.path}",
                f"record it with: pytest {_UPDATE_OPTION}", "", "current shape:", *left.splitlines()]
    diff = difflib.unified_diff(stored.splitlines(), left.splitlines(), "snapshot", "this run", lineterm="")
    return [f"trace shape differs from {right.path} (update with {_UPDATE_OPTION})", *diff]


__all__ = ["AgentTrace", "FakeAnthropic", "TraceShape", "TraceSnapshot"]
