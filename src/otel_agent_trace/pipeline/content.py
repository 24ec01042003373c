"""Opt-in content capture: messages, system prompt, tool definitions → size-capped, redacted JSON strings.

Only called when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is on; nothing here runs otherwise.
The shapes follow the GenAI semantic conventions (``role`` + ``parts``), so Langfuse and Phoenix render them.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from otel_agent_trace.instrumentation.extract import block_as_dict, field_of, text_of
from otel_agent_trace.pipeline.redaction import REDACTED as REDACTED  # re-exported: callers import it from here
from otel_agent_trace.pipeline.redaction import redact


def cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 30)] + f"…[truncated {len(text) - limit + 30} chars]"


def _printable(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # user objects can raise in __str__
        return f"<unprintable {type(value).__name__}>"


def to_attribute(value: Any, limit: int) -> str:
    """JSON-encode, redact and cap one content attribute."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=_printable)
    except Exception:
        text = _printable(value)
    return cap(redact(text, limit), limit)


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if not isinstance(content, Sequence):
        return parts
    for block in content:
        kind = field_of(block, "type")
        if kind == "text":
            parts.append({"type": "text", "content": field_of(block, "text", "")})
        elif kind == "tool_use":
            parts.append({"type": "tool_call", "id": field_of(block, "id"), "name": field_of(block, "name"),
                          "arguments": field_of(block, "input")})
        elif kind == "tool_result":
            parts.append({"type": "tool_call_response", "id": field_of(block, "tool_use_id"),
                          "response": text_of(field_of(block, "content"))})
        elif kind == "thinking":
            parts.append({"type": "reasoning", "content": field_of(block, "thinking", "")})
        else:
            parts.append({"type": str(kind), **{k: v for k, v in block_as_dict(block).items() if k != "type"}})
    return parts


def output_messages(content: Any, stop_reason: str | None) -> list[dict[str, Any]]:
    return [{"role": "assistant", "parts": _parts(content), "finish_reason": stop_reason or ""}]


def system_instructions(system: Any) -> list[dict[str, Any]]:
    return _parts(system)


def tool_definitions(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, Sequence):
        return []
    out = []
    for tool in tools:
        data = dict(tool) if isinstance(tool, Mapping) else block_as_dict(tool)
        out.append({"type": "function", "name": data.get("name"), "description": data.get("description"),
                    "parameters": data.get("input_schema")})
    return out


class ContentEncoder:
    """Encodes content attributes, each message once.

    An agent resends its whole history every turn; re-serialising and re-redacting it on every call
    would cost O(history) per turn. Messages, the system prompt and the tool list are usually the very
    same objects from call to call, so their encoded form is kept by identity (bounded, oldest dropped).
    A message mutated in place after it was first sent keeps its first encoding.
    """

    def __init__(self, limit: int, max_entries: int = 4_096) -> None:
        self.limit = limit
        self._max = max_entries
        self._cache: OrderedDict[int, tuple[Any, str]] = OrderedDict()
        self._lock = threading.Lock()

    def _cached(self, obj: Any, build: Callable[[Any], Any]) -> str:
        key = id(obj)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] is obj:
                return hit[1]
        try:
            text = json.dumps(build(obj), ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = json.dumps(str(obj))
        text = redact(text, self.limit)
        with self._lock:
            self._cache[key] = (obj, text)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return text

    def input_messages(self, messages: Any) -> str:
        if not isinstance(messages, Sequence) or isinstance(messages, str):
            return "[]"
        parts = [self._cached(m, _message) for m in messages]
        return cap("[" + ",".join(parts) + "]", self.limit)

    def system_instructions(self, system: Any) -> str:
        return cap(self._cached(system, system_instructions), self.limit)

    def tool_definitions(self, tools: Any) -> str:
        return cap(self._cached(tools, tool_definitions), self.limit)

    def output_messages(self, content: Any, stop_reason: str | None) -> str:
        return to_attribute(output_messages(content, stop_reason), self.limit)


def _message(message: Any) -> dict[str, Any]:
    return {"role": field_of(message, "role"), "parts": _parts(field_of(message, "content"))}
