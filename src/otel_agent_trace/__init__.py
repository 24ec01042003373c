"""otel-agent-trace: an Anthropic-SDK agent loop as an OpenTelemetry trace you can debug.

    import otel_agent_trace
    otel_agent_trace.instrument()          # or: opentelemetry-instrument python agent.py
    trace = otel_agent_trace.load("trace.jsonl")   # a saved run: sessions, findings, rollups
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor, active_hub
from otel_agent_trace.instrumentation.tools import trace_tool
from otel_agent_trace.model.records import end_reason_for_exception

if TYPE_CHECKING:
    from otel_agent_trace.config import Settings
    from otel_agent_trace.files import TraceFile

__all__ = [
    "AnthropicAgentInstrumentor",
    "agent_session",
    "instrument",
    "load",
    "trace_tool",
    "uninstrument",
]

F = TypeVar("F", bound=Callable[..., Any])


def instrument(*, tracer_provider: Any = None, meter_provider: Any = None, **options: Any) -> None:
    """Trace every Anthropic Messages call from now on. Idempotent.

    Uses ``tracer_provider`` or the global SDK provider if there is one; otherwise installs a provider
    exporting over OTLP as the standard ``OTEL_*`` variables (or ``LANGFUSE_*``) say, flushed at exit.
    ``options`` are ``Settings`` fields: ``tool_dispatcher``, ``jsonl``, ``capture_content``, ``detectors``,
    ``agent_name``, ``session_idle_timeout``, ``max_open_sessions``, ``prices``, ``thresholds`` …
    """
    instrumentor = AnthropicAgentInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        return
    from otel_agent_trace.config import Settings
    from otel_agent_trace.exporters.setup import ensure_meter_provider, ensure_tracer_provider

    settings = Settings.from_env(**options)
    provider = ensure_tracer_provider(tracer_provider)
    meters = ensure_meter_provider(meter_provider)
    instrumentor.instrument(tracer_provider=provider, meter_provider=meters, settings=settings)


def load(path: str | Path, settings: Settings | None = None) -> TraceFile:
    """A trace file (seed JSONL, ours, Claude Code; or a directory of them) as analysed sessions: each
    with its findings and rollup, plus the lines that had to be skipped — what ``findings`` and
    ``report`` read. Imported on first use, so instrumented agents never pay for it."""
    from otel_agent_trace.files import load as load_file

    return load_file(path, settings)


def uninstrument() -> None:
    """Restore every patched function and end open sessions."""
    instrumentor = AnthropicAgentInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


class agent_session:
    """Group the model calls inside into one ``invoke_agent`` span (sync or async; also a decorator).

    Without it, sessions are found from the conversation itself; use it to name the agent, set the
    conversation id, or mark where a run starts and ends. An exception leaving the block ends the
    session as ``turn_limit`` (when it says so) or ``error``.
    """

    def __init__(self, name: str = "agent", *, conversation_id: str | None = None) -> None:
        self.name = name
        self.conversation_id = conversation_id
        self._state: list[tuple[Any, ...]] = []

    def __enter__(self) -> agent_session:
        from otel_agent_trace.instrumentation.sessions import _active_session, _explicit_session, current_session

        hub = active_hub()
        if hub is None:
            self._state.append(())
            return self
        session = hub.sessions.open(self.name, conversation_id=self.conversation_id, explicit=True,
                                    parent=current_session())
        self._state.append((hub, session, _explicit_session.set(session), _active_session.set(session),
                            otel_context.attach(trace.set_span_in_context(session.span))))
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        from otel_agent_trace.instrumentation.sessions import _active_session, _explicit_session

        state = self._state.pop()
        if not state:
            return
        hub, session, explicit_token, active_token, context_token = state
        reason = None
        if exc is not None:
            reason = end_reason_for_exception(exc)
            session.last_error = type(exc).__qualname__
        try:
            hub.sessions.end(session, reason)
        finally:
            otel_context.detach(context_token)
            _active_session.reset(active_token)
            _explicit_session.reset(explicit_token)

    async def __aenter__(self) -> agent_session:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, function: F) -> F:
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with agent_session(self.name, conversation_id=self.conversation_id):
                    return await function(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with agent_session(self.name, conversation_id=self.conversation_id):
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]
