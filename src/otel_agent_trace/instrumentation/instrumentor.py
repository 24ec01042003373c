"""``AnthropicAgentInstrumentor``: one table of (module, attribute, wrapper factory) drives wrap and unwrap."""

from __future__ import annotations

import atexit
import importlib
import logging
import sys
from collections.abc import Callable, Collection
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap

from otel_agent_trace import semconv as sc
from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.package import _instruments
from otel_agent_trace.instrumentation.patching import (
    async_create,
    async_request_fallback,
    async_stream_manager_enter,
    attempt_counter,
    create,
    native_span_guard,
    request_fallback,
    stream_helper,
    stream_manager_enter,
)
from otel_agent_trace.instrumentation.recorder import AgentTracer
from otel_agent_trace.instrumentation.tools import TOOL_RUNNER_TARGETS
from otel_agent_trace.model.records import end_reason_for_exception

log = logging.getLogger("otel_agent_trace")

_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"
_BASE_CLIENT = "anthropic._base_client"
_STREAMING = "anthropic.lib.streaming._messages"
_BETA_STREAMING = "anthropic.lib.streaming._beta_messages"

# Targets missing from an SDK version (beta in old releases, native spans before 1.14) are skipped.
# Each entry: (module, attribute, factory); the factory makes the wrapper for one hub.
_TARGETS: tuple[tuple[str, str, Callable[[AgentTracer], Callable[..., Any]]], ...] = (
    (_MESSAGES, "Messages.create", create),
    (_MESSAGES, "AsyncMessages.create", async_create),
    (_MESSAGES, "Messages.stream", stream_helper),
    (_MESSAGES, "AsyncMessages.stream", stream_helper),
    (_STREAMING, "MessageStreamManager.__enter__", stream_manager_enter),
    (_STREAMING, "AsyncMessageStreamManager.__aenter__", async_stream_manager_enter),
    (_BETA_STREAMING, "BetaMessageStreamManager.__enter__", stream_manager_enter),
    (_BETA_STREAMING, "BetaAsyncMessageStreamManager.__aenter__", async_stream_manager_enter),
    (_BETA_MESSAGES, "Messages.create", create),
    (_BETA_MESSAGES, "AsyncMessages.create", async_create),
    (_BETA_MESSAGES, "Messages.stream", stream_helper),
    (_BETA_MESSAGES, "AsyncMessages.stream", stream_helper),
    (_BASE_CLIENT, "BaseClient._build_request", attempt_counter),
    # Messages calls through a bound ``create`` the SDK cached before instrument() (with_raw_response).
    (_BASE_CLIENT, "SyncAPIClient.request", request_fallback),
    (_BASE_CLIENT, "AsyncAPIClient.request", async_request_fallback),
    (_BASE_CLIENT, "start_api_call_span", native_span_guard),
    *TOOL_RUNNER_TARGETS,
)

__all__ = ["AnthropicAgentInstrumentor", "active_hub"]


def _resolve(module_name: str, path: str) -> tuple[Any, str] | None:
    try:
        owner: Any = importlib.import_module(module_name)
    except ImportError:
        return None
    *parents, attribute = path.split(".")
    for name in parents:
        owner = getattr(owner, name, None)
        if owner is None:
            return None
    return (owner, attribute) if hasattr(owner, attribute) else None


class AnthropicAgentInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces every Messages API call of the ``anthropic`` SDK as one turn of an agent session.

    Registered as the ``anthropic_agent_trace`` instrumentor (not ``anthropic``, which the other
    instrumentors use) so it can coexist with them and be disabled by name.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        settings = kwargs.get("settings") or Settings.from_env(
            **{k: v for k, v in kwargs.items() if k in Settings.__slots__}  # type: ignore[attr-defined]
        )
        tracer = trace.get_tracer(sc.INSTRUMENTATION_SCOPE, _version(),
                                  tracer_provider=kwargs.get("tracer_provider"))
        from otel_agent_trace.instrumentation import foreign

        foreign.watch(kwargs.get("tracer_provider") or trace.get_tracer_provider())
        hub = AgentTracer(tracer, settings, kwargs.get("meter_provider"))
        self._patched: list[tuple[Any, str]] = []
        for module_name, path, factory in _TARGETS:
            target = _resolve(module_name, path)
            if target is None:
                continue
            owner, attribute = target
            wrapt.wrap_function_wrapper(owner, attribute, factory(hub))
            self._patched.append(target)
        from otel_agent_trace.instrumentation.tools import install_dispatcher

        self._dispatcher = install_dispatcher(hub, settings.tool_dispatcher)
        self._hub = hub
        if not getattr(self, "_exit_hook_registered", False):
            # Registered after the TracerProvider's own handler, so it runs first (atexit is LIFO).
            atexit.register(self._at_exit)
            self._exit_hook_registered = True
        try:
            from otel_agent_trace.exporters.setup import warn_on_protocol_mismatch

            warn_on_protocol_mismatch()
        except Exception:
            pass

    def _uninstrument(self, **kwargs: Any) -> None:
        hub = getattr(self, "_hub", None)
        for owner, attribute in getattr(self, "_patched", ()):
            unwrap(owner, attribute)
        self._patched = []
        dispatcher = getattr(self, "_dispatcher", None)
        if dispatcher is not None:
            dispatcher.uninstall()
            self._dispatcher = None
        self._hub = None
        if hub is not None:
            hub.live = False
            hub.shutdown()

    @property
    def hub(self) -> AgentTracer | None:
        """The live instrumentation's hub, None when it is off."""
        return getattr(self, "_hub", None)

    def _at_exit(self) -> None:
        """End open sessions before the SDK flushes at exit. An exception that ended the program (Python
        keeps it as ``sys.last_value`` for exit handlers) ends them as turn limit or error: that is how a
        hand-written loop's ``raise RuntimeError("Turn limit reached")`` shows up."""
        hub = self.hub
        if hub is None:
            return
        uncaught = getattr(sys, "last_value", None)
        hub.shutdown(end_reason_for_exception(uncaught) if isinstance(uncaught, BaseException) else None)


def active_hub() -> AgentTracer | None:
    """The hub of the live instrumentation (the instrumentor is a singleton), for the public helpers
    (``agent_session``, ``trace_tool``) that are created before or without it; None when it is off."""
    return AnthropicAgentInstrumentor().hub


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("otel-agent-trace")
    except Exception:
        return "0"


