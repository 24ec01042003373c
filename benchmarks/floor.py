"""The ``floor`` mode of the overhead benchmark: what our spans cost through the public OpenTelemetry API,
with none of our logic.

Per call it does exactly the OpenTelemetry work ours does, and nothing else: it ends the previous call's
``execute_tool`` span, starts a ``chat`` span with ours' request attributes, makes it current while the SDK
sends, puts its trace context on the request through the configured propagators, sets ours' response
attributes on it and ends it, then starts an ``execute_tool`` span for the response's tool use and makes
it current until the next request; where ours starts a new run (a request whose conversation did not
grow), the ``invoke_agent`` span ends and a new one starts. No
request parsing, no sessions, no detectors: its cost is the lower bound for any instrumentation emitting
what ours emits on the public API, and ``floor ÷ native`` is the best ratio such an instrumentation could
reach. The attribute names and value types are ours' (their count is in the report's emission table).

Paths: sync and async ``create``, ``create(stream=True)`` and the sync ``.stream()`` helper. A stream's
spans end when it is consumed; the helper's spans start when its manager sends the request (on entering
``with``) and end when the ``with`` block exits, so its events pass through untouched: cheaper than any
instrumentation that reads the response can be.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

SESSION_TURNS = 20
# Ours' attributes on each span of the agent workload: the same names and value types, the same count.
REQUEST_ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.stream": False,
    "gen_ai.conversation.id": "s", "session.id": "s", "agent_trace.turn.index": 1,
    "agent_trace.request.messages": 20, "agent_trace.request.cache_control": True,
    "gen_ai.request.model": "m", "gen_ai.request.max_tokens": 4096, "server.address": "api.anthropic.com",
    "server.port": 443,
}
RESPONSE_ATTRIBUTES: dict[str, Any] = {
    "gen_ai.usage.input_tokens": 9837, "gen_ai.usage.output_tokens": 87, "gen_ai.usage.cache_read.input_tokens": 9120,
    "gen_ai.usage.cache_write.input_tokens": 305, "gen_ai.usage.cache_creation.input_tokens": 305,
    "agent_trace.context_tokens": 9837, "agent_trace.cache.hit_ratio": 0.9271, "agent_trace.cache.saved_usd": 0.0246,
    "agent_trace.http.attempts": 1, "gen_ai.response.id": "msg", "gen_ai.response.model": "m",
    "agent_trace.stop_reason": "tool_use", "gen_ai.response.finish_reasons": ("tool_use",),
    "agent_trace.tool_use.names": ("read_file",),
}
TOOL_START_ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "read_file", "gen_ai.tool.call.id": "toolu",
    "gen_ai.tool.type": "function", "agent_trace.tool.source": "inferred", "agent_trace.turn.index": 1,
    "gen_ai.conversation.id": "s", "session.id": "s",
}
TOOL_END_ATTRIBUTES: dict[str, Any] = {"agent_trace.tool.result.chars": 1173, "agent_trace.tool.is_error": False}
SESSION_START_ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "agent", "gen_ai.conversation.id": "s",
    "session.id": "s",
}
SESSION_END_ATTRIBUTES: dict[str, Any] = {
    "agent_trace.turns": 20, "agent_trace.tokens.input": 206577, "agent_trace.tokens.output": 1827,
    "agent_trace.tokens.cache_read": 191520, "agent_trace.tokens.cache_write": 6405,
    "agent_trace.cache.saved_usd": 0.517, "agent_trace.cache.hit_ratio": 0.9271, "agent_trace.tool_calls": 19,
    "agent_trace.findings.count": 0, "agent_trace.end_reason": "end_turn",
}

_in_call: contextvars.ContextVar[otel_context.Context | None] = contextvars.ContextVar("floor_call", default=None)


class FloorInstrumentation:
    """Installs the floor wrappers on the SDK (the benchmark's switchboard takes them off and on)."""

    def __init__(self, provider: Any) -> None:
        self.tracer = provider.get_tracer("otel-agent-trace-floor")
        self.turns = 0  # calls in the current session
        self.last_count = 0  # messages in the previous request
        self.session: Any = None
        self.tool: tuple[Any, object] | None = None  # the open tool span and its context token
        messages = "anthropic.resources.messages.messages"
        wrapt.wrap_function_wrapper(messages, "Messages.create", self._create)
        wrapt.wrap_function_wrapper(messages, "AsyncMessages.create", self._async_create)
        wrapt.wrap_function_wrapper(messages, "Messages.stream", self._stream_helper)
        streaming = "anthropic.lib.streaming._messages"
        wrapt.wrap_function_wrapper(streaming, "MessageStreamManager.__enter__", self._manager_enter)
        wrapt.wrap_function_wrapper(streaming, "MessageStreamManager.__exit__", self._manager_exit)
        wrapt.wrap_function_wrapper("anthropic._base_client", "BaseClient._build_request", self._build_request)

    def uninstrument(self) -> None:
        from anthropic._base_client import BaseClient
        from anthropic.lib.streaming._messages import MessageStreamManager
        from anthropic.resources.messages.messages import AsyncMessages, Messages
        from opentelemetry.instrumentation.utils import unwrap

        unwrap(Messages, "create")
        unwrap(AsyncMessages, "create")
        unwrap(Messages, "stream")
        unwrap(MessageStreamManager, "__enter__")
        unwrap(MessageStreamManager, "__exit__")
        unwrap(BaseClient, "_build_request")

    def end_session(self) -> None:
        if self.tool is not None:
            self._end_tool()
        if self.session is not None:
            self.session.set_attributes(SESSION_END_ATTRIBUTES)
            self.session.end()
            self.session = None

    # -- one call ----------------------------------------------------------------------------------
    def _start(self, messages: Any) -> tuple[Any, otel_context.Context, object]:
        if self.tool is not None:
            self._end_tool()
        # A new run where ours starts one: a conversation that did not grow is a task sent again from the
        # top (the identical-request workload: a session span per call), as is the agent workload's first
        # turn of each task.
        count = len(messages) if isinstance(messages, list) else 0
        if self.session is None or count <= self.last_count:
            self.end_session()
            self.session = self.tracer.start_span("invoke_agent agent", attributes=SESSION_START_ATTRIBUTES)
            self.turns = 0
        self.turns += 1
        self.last_count = count
        span = self.tracer.start_span("chat m", context=trace.set_span_in_context(self.session),
                                      kind=SpanKind.CLIENT, attributes=REQUEST_ATTRIBUTES)
        context = trace.set_span_in_context(span)
        return span, context, otel_context.attach(context)

    def _finish(self, span: Any, context: otel_context.Context) -> None:
        span.set_attributes(RESPONSE_ATTRIBUTES)
        span.end()
        if self.turns == SESSION_TURNS:  # the agent workload's last turn of a task answers without a tool
            return
        tool = self.tracer.start_span("execute_tool read_file", context=context, attributes=TOOL_START_ATTRIBUTES)
        self.tool = (tool, otel_context.attach(trace.set_span_in_context(tool)))

    def _end_tool(self) -> None:
        assert self.tool is not None
        tool, token = self.tool
        self.tool = None
        otel_context.detach(token)
        tool.set_attributes(TOOL_END_ATTRIBUTES)
        tool.end()

    def _send(self, messages: Any, send: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> tuple[Any, Any, otel_context.Context]:
        """Start the call's chat span and keep it current while the SDK sends (for propagation)."""
        span, context, token = self._start(messages)
        marker = _in_call.set(context)
        try:
            return send(*args, **kwargs), span, context
        finally:
            _in_call.reset(marker)
            otel_context.detach(token)

    def _create(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        result, span, context = self._send(kwargs.get("messages"), wrapped, args, kwargs)
        if kwargs.get("stream") is True:
            return self._consumed(result, span, context)
        self._finish(span, context)
        return result

    async def _async_create(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                            kwargs: dict[str, Any]) -> Any:
        span, context, token = self._start(kwargs.get("messages"))
        marker = _in_call.set(context)
        try:
            result = await wrapped(*args, **kwargs)
        finally:
            _in_call.reset(marker)
            otel_context.detach(token)
        self._finish(span, context)
        return result

    @staticmethod
    def _stream_helper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        manager._floor_messages = kwargs.get("messages")
        return manager

    def _manager_enter(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
        stream, span, context = self._send(instance._floor_messages, wrapped, args, kwargs)  # entering sends
        instance._floor_turn = (span, context)
        return stream

    def _manager_exit(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        try:
            return wrapped(*args, **kwargs)
        finally:
            self._finish(*instance._floor_turn)

    def _consumed(self, stream: Any, span: Any, context: otel_context.Context) -> Iterator[Any]:
        yield from stream
        self._finish(span, context)

    @staticmethod
    def _build_request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
        request = wrapped(*args, **kwargs)
        context = _in_call.get()
        if context is not None:
            propagate.inject(request.headers, context=context)
        return request
