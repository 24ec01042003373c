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

``ReadingFloor`` (the ``floor-read`` mode) is the same with each attribute's value read from the call by the
least code that can, a stream's type kept: the lower bound for emitting ours' spans with their real values.
Both keep the floor's fixed span names (``chat m``, ``execute_tool read_file``).
"""

from __future__ import annotations

import contextvars
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from otel_agent_trace.config import Settings

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
            self._end_tool(None)
        if self.session is not None:
            self.session.set_attributes(self._session_end_attributes())
            self.session.end()
            self.session = None

    # -- one call ----------------------------------------------------------------------------------
    def _start(self, kwargs: dict[str, Any]) -> tuple[Any, otel_context.Context, object]:
        messages = kwargs.get("messages")
        if self.tool is not None:
            self._end_tool(messages)
        # A new run where ours starts one: a conversation that did not grow is a task sent again from the
        # top (the identical-request workload: a session span per call), as is the agent workload's first
        # turn of each task.
        count = len(messages) if isinstance(messages, list) else 0
        if self.session is None or count <= self.last_count:
            self.end_session()
            self.session = self.tracer.start_span("invoke_agent agent", attributes=self._session_start_attributes())
            self.turns = 0
        self.turns += 1
        self.last_count = count
        span = self.tracer.start_span("chat m", context=trace.set_span_in_context(self.session),
                                      kind=SpanKind.CLIENT, attributes=self._request_attributes(kwargs, count))
        context = trace.set_span_in_context(span)
        return span, context, otel_context.attach(context)

    def _finish(self, span: Any, context: otel_context.Context, response: Any = None) -> None:
        attributes, tool_attributes = self._response_attributes(response)
        span.set_attributes(attributes)
        span.end()
        if tool_attributes is None:
            return
        tool = self.tracer.start_span("execute_tool read_file", context=context, attributes=tool_attributes)
        self.tool = (tool, otel_context.attach(trace.set_span_in_context(tool)))

    def _end_tool(self, messages: Any) -> None:
        assert self.tool is not None
        tool, token = self.tool
        self.tool = None
        otel_context.detach(token)
        tool.set_attributes(self._tool_end_attributes(messages))
        tool.end()

    # -- attribute values: constants here, read from the call by ReadingFloor ----------------------
    def _request_attributes(self, kwargs: dict[str, Any], count: int) -> dict[str, Any]:
        return REQUEST_ATTRIBUTES

    def _response_attributes(self, response: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        # The agent workload's last turn of a task answers without a tool.
        return RESPONSE_ATTRIBUTES, (None if self.turns == SESSION_TURNS else TOOL_START_ATTRIBUTES)

    def _tool_end_attributes(self, messages: Any) -> dict[str, Any]:
        return TOOL_END_ATTRIBUTES

    def _session_start_attributes(self) -> dict[str, Any]:
        return SESSION_START_ATTRIBUTES

    def _session_end_attributes(self) -> dict[str, Any]:
        return SESSION_END_ATTRIBUTES

    def _send(self, request: dict[str, Any], send: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> tuple[Any, Any, otel_context.Context]:
        """Start the call's chat span and keep it current while the SDK sends (for propagation)."""
        span, context, token = self._start(request)
        marker = _in_call.set(context)
        try:
            return send(*args, **kwargs), span, context
        finally:
            _in_call.reset(marker)
            otel_context.detach(token)

    def _create(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        result, span, context = self._send(kwargs, wrapped, args, kwargs)
        if kwargs.get("stream") is True:
            return self._consumed(result, span, context)
        self._finish(span, context, result)
        return result

    async def _async_create(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                            kwargs: dict[str, Any]) -> Any:
        span, context, token = self._start(kwargs)
        marker = _in_call.set(context)
        try:
            result = await wrapped(*args, **kwargs)
        finally:
            _in_call.reset(marker)
            otel_context.detach(token)
        self._finish(span, context, result)
        return result

    @staticmethod
    def _stream_helper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        manager._floor_kwargs = {**kwargs, "stream": True}
        return manager

    def _manager_enter(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
        stream, span, context = self._send(instance._floor_kwargs, wrapped, args, kwargs)  # entering sends
        instance._floor_turn = (span, context, stream)
        return stream

    def _manager_exit(self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        try:
            return wrapped(*args, **kwargs)
        finally:
            span, context, stream = instance._floor_turn
            self._finish(span, context, self._helper_message(stream))

    def _consumed(self, stream: Any, span: Any, context: otel_context.Context) -> Any:
        yield from stream
        self._finish(span, context)

    @staticmethod
    def _helper_message(stream: Any) -> Any:
        return None

    @staticmethod
    def _build_request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
        request = wrapped(*args, **kwargs)
        context = _in_call.get()
        if context is not None:
            propagate.inject(request.headers, context=context)
        return request


class ReadingFloor(FloorInstrumentation):
    """The floor plus the least reading that gives ours' attributes their real values.

    Everything the floor does, with each attribute read from the call instead of a constant: the request's
    model, limits, message count and cache marks; the response's id, model, stop reason, usage, derived cache
    figures and tool uses; the next request's tool_result for the tool span; the session's running totals.
    A ``create(stream=True)`` stream comes back as a proxy of the SDK's own type (so ``isinstance`` and its
    methods keep working, as they must) that reads the events carrying those values and joins each tool
    call's input JSON, which the detectors need; the helper's values come from the SDK's final snapshot (so
    its spans lack ours' time to first chunk: cheaper than ours can be). No sessions beyond the floor's
    rule, no tool matching beyond the open span's id, no detectors: its cost is the lower bound for an
    instrumentation that emits ours' spans with their real values on the public API.
    """

    def __init__(self, provider: Any) -> None:
        super().__init__(provider)
        self.tool_id: str | None = None
        self.session_id = ""
        self.totals = [0, 0, 0, 0, 0]  # input, output, cache read and cache write tokens; tool calls
        self.saved = 0.0
        self.prices = Settings()  # ours' price table, so the saved-by-cache figures are ours'
        self.saving_per_token: dict[str, float] = {}  # by model: looked up once, as the least code would

    def _request_attributes(self, kwargs: dict[str, Any], count: int) -> dict[str, Any]:
        messages = kwargs.get("messages") or ()
        session_id = self.session_id
        return {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
            "gen_ai.request.stream": kwargs.get("stream") is True, "gen_ai.conversation.id": session_id,
            "session.id": session_id, "agent_trace.turn.index": self.turns, "agent_trace.request.messages": count,
            "agent_trace.request.cache_control": _marked(kwargs.get("system")) or _marked(kwargs.get("tools"))
            or (bool(messages) and _marked(messages[-1].get("content"))),
            "gen_ai.request.model": kwargs.get("model"), "gen_ai.request.max_tokens": kwargs.get("max_tokens"),
            "server.address": "api.anthropic.com", "server.port": 443,
        }

    def _response_attributes(self, response: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if isinstance(response, tuple):  # the values _ReadStream read from a stream's events
            return self._values(*response)
        uses = [(block.id, block.name, block.input) for block in response.content if block.type == "tool_use"]
        usage = response.usage
        return self._values(response.id, response.model, response.stop_reason, usage.input_tokens,
                            usage.output_tokens, usage.cache_read_input_tokens or 0,
                            usage.cache_creation_input_tokens or 0, uses)

    def _values(self, message_id: str, model: str, stop_reason: str | None, input_tokens: int, output_tokens: int,
                cache_read: int, cache_write: int,
                uses: list[tuple[str, str, Any]]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        context = input_tokens + cache_read + cache_write
        rate = self.saving_per_token.get(model)
        if rate is None:
            rate = self.saving_per_token[model] = self.prices.cache_saving_usd(model, 1)
        saved = cache_read * rate
        totals = self.totals
        totals[0] += input_tokens
        totals[1] += output_tokens
        totals[2] += cache_read
        totals[3] += cache_write
        totals[4] += len(uses)
        self.saved += saved
        attributes = {
            "gen_ai.usage.input_tokens": context, "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.usage.cache_read.input_tokens": cache_read, "gen_ai.usage.cache_write.input_tokens": cache_write,
            "gen_ai.usage.cache_creation.input_tokens": cache_write, "agent_trace.context_tokens": context,
            "agent_trace.cache.hit_ratio": round(cache_read / context, 4) if context else 0.0,
            "agent_trace.cache.saved_usd": round(saved, 6), "agent_trace.http.attempts": 1,
            "gen_ai.response.id": message_id, "gen_ai.response.model": model,
            "agent_trace.stop_reason": stop_reason, "gen_ai.response.finish_reasons": (stop_reason,),
        }
        if not uses:
            return attributes, None
        attributes["agent_trace.tool_use.names"] = tuple(name for _, name, _ in uses)
        tool_id, name, _ = uses[0]
        self.tool_id = tool_id
        return attributes, {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.call.id": tool_id,
            "gen_ai.tool.type": "function", "agent_trace.tool.source": "inferred",
            "agent_trace.turn.index": self.turns, "gen_ai.conversation.id": self.session_id,
            "session.id": self.session_id,
        }

    def _tool_end_attributes(self, messages: Any) -> dict[str, Any]:
        content = messages[-1].get("content") if messages else None
        for block in content if isinstance(content, list) else ():
            if block.get("type") == "tool_result" and block.get("tool_use_id") == self.tool_id:
                result = block.get("content")
                chars = len(result) if isinstance(result, str) else sum(
                    len(part.get("text", "")) for part in result or ())
                return {"agent_trace.tool.result.chars": chars,
                        "agent_trace.tool.is_error": bool(block.get("is_error"))}
        return {}  # no result came back (the session ended first)

    def _session_start_attributes(self) -> dict[str, Any]:
        self.session_id = session_id = uuid.uuid4().hex
        self.totals, self.saved = [0, 0, 0, 0, 0], 0.0
        return {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "agent",
                "gen_ai.conversation.id": session_id, "session.id": session_id}

    def _session_end_attributes(self) -> dict[str, Any]:
        input_tokens, output_tokens, cache_read, cache_write, tool_calls = self.totals
        context = input_tokens + cache_read + cache_write
        return {
            "agent_trace.turns": self.turns, "agent_trace.tokens.input": context,
            "agent_trace.tokens.output": output_tokens, "agent_trace.tokens.cache_read": cache_read,
            "agent_trace.tokens.cache_write": cache_write, "agent_trace.cache.saved_usd": round(self.saved, 6),
            "agent_trace.cache.hit_ratio": round(cache_read / context, 4) if context else 0.0,
            "agent_trace.tool_calls": tool_calls, "agent_trace.findings.count": 0,
            "agent_trace.end_reason": "end_turn",
        }

    def _consumed(self, stream: Any, span: Any, context: otel_context.Context) -> Any:
        return _ReadStream(stream, self, span, context)

    @staticmethod
    def _helper_message(stream: Any) -> Any:
        return stream.current_message_snapshot


def _marked(blocks: Any) -> bool:
    """Whether the last of these blocks carries a cache mark (where a prompt cache breakpoint goes)."""
    return isinstance(blocks, list) and bool(blocks) and isinstance(blocks[-1], dict) and "cache_control" in blocks[-1]


class _ReadStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """A ``create(stream=True)`` stream that reads the events carrying ours' attribute values."""

    def __init__(self, wrapped: Any, floor: ReadingFloor, span: Any, context: otel_context.Context) -> None:
        super().__init__(wrapped)
        self._self_turn = (floor, span, context)

    def __iter__(self) -> Iterator[Any]:
        message: Any = None
        first_ns = 0
        stop_reason = None
        output_tokens = 0
        uses: list[list[Any]] = []
        for event in self.__wrapped__:
            kind = event.type
            if kind == "content_block_delta":
                if event.delta.type == "input_json_delta":
                    uses[-1][2].append(event.delta.partial_json)
            elif kind == "message_start":
                message = event.message
                first_ns = time.time_ns()
            elif kind == "content_block_start":
                if event.content_block.type == "tool_use":
                    uses.append([event.content_block.id, event.content_block.name, []])
            elif kind == "message_delta":
                stop_reason = event.delta.stop_reason
                output_tokens = event.usage.output_tokens
            yield event
        floor, span, context = self._self_turn
        usage = message.usage
        seconds, nanos = divmod(first_ns, 1_000_000_000)
        span.set_attributes({
            "gen_ai.response.time_to_first_chunk": (first_ns - span.start_time) / 1e9,
            "langfuse.observation.completion_start_time":
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos // 1000:06d}Z"})
        floor._finish(span, context, (
            message.id, message.model, stop_reason, usage.input_tokens, output_tokens,
            usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0,
            [(tool_id, name, json.loads("".join(parts) or "{}")) for tool_id, name, parts in uses]))
