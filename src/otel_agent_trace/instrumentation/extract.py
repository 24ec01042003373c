"""Pure functions: request kwargs, ``Message`` objects and stream events → record fields. No OpenTelemetry.

Inputs come from user code, so every function tolerates both SDK objects and plain dicts, and
never raises for an unexpected shape (missing keys give defaults).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from otel_agent_trace.model.records import Request, ToolResult, ToolUse, Turn, Usage

_MISSING = object()


def field_of(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for SDK models."""
    # Dicts and SDK models are nearly every case; the Mapping ABC check is slow, so it runs last.
    if isinstance(obj, dict):
        return obj.get(key, default)
    fields = getattr(obj, "__dict__", None)
    if type(fields) is dict:
        value = fields.get(key, _MISSING)
        if value is not _MISSING:
            return value
        # An SDK (pydantic) model keeps its fields in __dict__ and the API's fields it does not know in
        # __pydantic_extra__: a key in neither, and not on the class (a property), is absent. getattr
        # (or hasattr on the class) would raise and catch an AttributeError in pydantic's __getattr__,
        # ~6 µs for each field an SDK version lacks.
        extra = getattr(obj, "__pydantic_extra__", None)
        if type(extra) is dict:
            if key in extra:
                return extra[key]
            if not _on_class(type(obj), key):
                return default
    value = getattr(obj, key, _MISSING)
    if value is not _MISSING:
        return value
    return obj.get(key, default) if isinstance(obj, Mapping) else default


_ON_CLASS: dict[tuple[type, str], bool] = {}


def _on_class(cls: type, key: str) -> bool:
    """Whether ``cls`` defines ``key`` (a property), without its metaclass's ``__getattr__``; remembered,
    as the few SDK model classes and keys this module reads are asked about again on every call."""
    known = _ON_CLASS.get((cls, key))
    if known is None:
        if len(_ON_CLASS) >= 1024:
            _ON_CLASS.clear()
        known = _ON_CLASS[(cls, key)] = any(key in vars(klass) for klass in cls.__mro__)
    return known


def text_or(value: Any, default: str | None) -> str | None:
    """``value`` if it is a non-empty string, else ``default``: a malformed response's fields can hold
    anything, and names, prices and attributes downstream need text."""
    return value if isinstance(value, str) and value else default


def block_as_dict(block: Any) -> dict[str, Any]:
    if isinstance(block, Mapping):
        return dict(block)
    dump = getattr(block, "model_dump", None)
    if dump is not None:
        try:
            # warnings=False: a block with wrong-typed fields must not make the SDK's user see warnings.
            return dump(mode="json", exclude_none=True, warnings=False)
        except Exception:
            pass
    return {"type": str(field_of(block, "type", "unknown"))}


def text_of(content: Any) -> str:
    """The text of a message/tool_result ``content``: a string, or the text blocks of a list joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif field_of(block, "type") == "text":
                parts.append(str(field_of(block, "text", "")))
        return "\n".join(parts)
    return str(content)


def request_tool_results(messages: Any) -> list[ToolResult]:
    """The ``tool_result`` blocks of the request's last message: the answers to the previous turn's tools."""
    if not isinstance(messages, Sequence) or not messages:
        return []
    last = messages[-1]
    if field_of(last, "role") != "user":
        return []
    content = field_of(last, "content")
    if isinstance(content, str) or not isinstance(content, Sequence):
        return []
    results = []
    for block in content:
        if field_of(block, "type") == "tool_result":
            flag = field_of(block, "is_error")
            results.append(
                ToolResult(
                    tool_use_id=str(field_of(block, "tool_use_id", "")),
                    content=text_of(field_of(block, "content")),
                    is_error=None if flag is None else bool(flag),
                )
            )
    return results


def conversation_fingerprint(messages: Any) -> int | None:
    """A cheap identity for a conversation: its first message. ``str`` caches its hash, so repeated calls
    with the same history cost O(1), not O(size)."""
    if not isinstance(messages, Sequence) or not messages:
        return None
    first = messages[0]
    content = field_of(first, "content")
    if isinstance(content, str):
        return hash(("s", content))
    if isinstance(content, Sequence):
        for block in content:
            if field_of(block, "type") == "text":
                return hash(("b", str(field_of(block, "text", ""))))
        return hash(("n", len(content)))
    return None


def tool_names_offered(tools: Any) -> tuple[str, ...]:
    if not isinstance(tools, Sequence):
        return ()
    return tuple(str(field_of(tool, "name", "")) for tool in tools)


def _has_cache_control(blocks: Any) -> bool:
    if isinstance(blocks, str) or not isinstance(blocks, Sequence):
        return False
    return any(field_of(block, "cache_control") is not None for block in blocks)


def request_uses_cache(kwargs: Mapping[str, Any]) -> bool:
    """Whether the request marks a cacheable prefix. Only the places a prefix is usually marked are looked at
    (top level, system, tools, the last two messages) so the cost does not grow with the history."""
    if kwargs.get("cache_control") is not None:
        return True
    if _has_cache_control(kwargs.get("system")) or _has_cache_control(kwargs.get("tools")):
        return True
    messages = kwargs.get("messages")
    if isinstance(messages, Sequence):
        for message in messages[-2:]:
            if _has_cache_control(field_of(message, "content")):
                return True
    return False


def message_thread(kwargs: Mapping[str, Any]) -> tuple[bool, str | None]:
    """Whether the request is a message thread's (a ``thread`` field, also sent through ``extra_body``), and
    the id of the reply it continues from (``{"type": "continue", "previous_message_id": …}``)."""
    thread = kwargs.get("thread")
    if thread is None:
        extra = kwargs.get("extra_body")
        thread = extra.get("thread") if isinstance(extra, Mapping) else None
        if thread is None:
            return False, None
    if field_of(thread, "type") != "continue":
        return True, None
    return True, text_or(field_of(thread, "previous_message_id"), None)


def parse_request(kwargs: Mapping[str, Any], *, stream: bool) -> Request:
    """The one pass over a call's arguments that every consumer shares."""
    messages = kwargs.get("messages")
    model = kwargs.get("model")
    max_tokens = kwargs.get("max_tokens")
    threaded, continues = message_thread(kwargs)
    return Request(
        messages=messages,
        model=model if isinstance(model, str) else None,
        max_tokens=max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None,
        stream=stream,
        message_count=len(messages) if isinstance(messages, Sequence) else 0,
        fingerprint=conversation_fingerprint(messages),
        tool_results=request_tool_results(messages),
        cache_control=request_uses_cache(kwargs),
        threaded=threaded,
        continues=continues,
    )


def usage_from(usage: Any, into: Usage | None = None) -> Usage:
    """Copy the token counts present on ``usage`` (stream deltas carry only some of them)."""
    result = into or Usage()
    if usage is None:
        return result
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        value = field_of(usage, name)
        if isinstance(value, int):
            setattr(result, name, value)
    creation = field_of(usage, "cache_creation")
    if creation is not None:
        value = field_of(creation, "ephemeral_1h_input_tokens")
        if isinstance(value, int):
            result.cache_creation_1h_input_tokens = value
    iterations = field_of(usage, "iterations")
    if iterations is not None and isinstance(iterations, Sequence) and not isinstance(iterations, str):
        consumed_in = consumed_out = 0
        for entry in iterations:
            for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                value = field_of(entry, name)
                consumed_in += value if isinstance(value, int) else 0
            value = field_of(entry, "output_tokens")
            consumed_out += value if isinstance(value, int) else 0
        result.iterations_input_tokens, result.iterations_output_tokens = consumed_in, consumed_out
    return result


def apply_message(turn: Turn, message: Any, keep_content: bool) -> None:
    """Fill the response side of ``turn`` from a complete ``Message``."""
    turn.response_id = field_of(message, "id")
    turn.model = text_or(field_of(message, "model"), turn.model)
    turn.stop_reason = field_of(message, "stop_reason")
    usage_from(field_of(message, "usage"), turn.usage)
    content = field_of(message, "content") or ()
    uses = []
    for block in content:
        if field_of(block, "type") == "tool_use":
            uses.append(ToolUse(str(field_of(block, "id", "")), str(field_of(block, "name", "")),
                                field_of(block, "input")))
    turn.tool_uses = uses
    if keep_content:
        turn.content = [block_as_dict(block) for block in content]
        turn.text = text_of(content)


class StreamAccumulator:
    """Builds the response side of a turn from raw SSE events, keeping only what records need."""

    __slots__ = ("_json", "_text", "_uses", "keep_content", "turn")

    def __init__(self, turn: Turn, keep_content: bool) -> None:
        self.turn = turn
        self.keep_content = keep_content
        self._json: dict[int, list[str]] = {}
        self._text: dict[int, list[str]] = {}
        self._uses: dict[int, ToolUse] = {}

    def feed(self, event: Any) -> None:
        # Deltas are most of a stream: read the SDK's event models' attributes directly and fall back to
        # field_of only for other shapes (dicts from user code).
        kind = getattr(event, "type", None)
        if kind is None:
            kind = field_of(event, "type")
        turn = self.turn
        if kind == "content_block_delta":
            delta = getattr(event, "delta", None)
            delta_type = getattr(delta, "type", None)
            if delta_type is None:
                delta = field_of(event, "delta")
                delta_type = field_of(delta, "type")
            if delta_type == "input_json_delta":
                index = field_of(event, "index", 0)
                self._json.setdefault(index, []).append(field_of(delta, "partial_json", ""))
            elif delta_type == "text_delta" and self.keep_content:
                index = field_of(event, "index", 0)
                self._text.setdefault(index, []).append(field_of(delta, "text", ""))
        elif kind == "content_block_start":
            block = field_of(event, "content_block")
            if field_of(block, "type") == "tool_use":
                use = ToolUse(str(field_of(block, "id", "")), str(field_of(block, "name", "")), {})
                turn.tool_uses.append(use)
                self._uses[field_of(event, "index", 0)] = use
            if self.keep_content:
                if turn.content is None:
                    turn.content = []
                turn.content.append(block_as_dict(block))
        elif kind == "message_start":
            message = field_of(event, "message")
            turn.response_id = field_of(message, "id")
            turn.model = text_or(field_of(message, "model"), turn.model)
            usage_from(field_of(message, "usage"), turn.usage)
        elif kind == "message_delta":
            turn.stop_reason = field_of(field_of(event, "delta"), "stop_reason") or turn.stop_reason
            usage_from(field_of(event, "usage"), turn.usage)

    def finish(self) -> None:
        """Parse accumulated tool inputs and text once the stream ends (or is cut short)."""
        for index, use in self._uses.items():
            raw = "".join(self._json.get(index, ()))
            try:
                use.input = json.loads(raw) if raw else {}
            except ValueError:
                use.input = {"_partial_json": raw[:2_000]}
        if self.keep_content and self.turn.content is not None:
            for index, block in enumerate(self.turn.content):
                if block.get("type") == "text" and index in self._text:
                    block["text"] = "".join(self._text[index])
                elif index in self._uses:
                    block["input"] = self._uses[index].input
            self.turn.text = "\n".join(
                str(b.get("text", "")) for b in self.turn.content if b.get("type") == "text"
            )
