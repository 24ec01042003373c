"""A compact dict form of a session, for detector tests, labelled fixtures and benchmarks.

    {"id": "clean-fix", "end_reason": "end_turn",
     "turns": [{"input_tokens": 3200, "tools": [{"name": "Read", "input": {"file_path": "auth/session.ts"},
                                                 "result": "export function …"}]},
               {"input_tokens": 5100, "stop": "end_turn"}]}

Turn keys: ``input_tokens``, ``output_tokens``, ``cache_read``, ``cache_creation`` (or ``context``: the
whole context, all fresh input), ``stop`` (default tool_use when the turn has tools, else end_turn),
``cache_control``, ``after_compaction``, ``start_s``/``end_s`` (seconds), ``text``, ``error_type``.
Tool keys: ``name``, ``input``, ``result``, ``error`` (the is_error flag), ``chars`` (pad the result to
this many characters — big outputs without big files). The helpers below build the usual tools.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from otel_agent_trace.model.records import Session, ToolCall, ToolResult, ToolUse, Turn, Usage

_FILLER = "x = 1\n"  # padding with no path-like tokens and no error words


def _result(tool: Mapping[str, Any]) -> str:
    text = str(tool.get("result", ""))
    chars = int(tool.get("chars", 0))
    if chars > len(text):
        text += _FILLER * ((chars - len(text)) // len(_FILLER) + 1)
        text = text[:chars]
    return text


def _usage(spec: Mapping[str, Any]) -> Usage:
    read, created = int(spec.get("cache_read", 0)), int(spec.get("cache_creation", 0))
    fresh = int(spec["context"]) - read - created if "context" in spec else int(spec.get("input_tokens", 0))
    return Usage(input_tokens=max(0, fresh), output_tokens=int(spec.get("output_tokens", 0)),
                 cache_read_input_tokens=read, cache_creation_input_tokens=created,
                 cache_creation_1h_input_tokens=int(spec.get("cache_creation_1h", 0)))


def session_from_dict(data: Mapping[str, Any], session_id: str | None = None) -> Session:
    """Build a ``Session`` (turns, tool calls, each request's tool_results) from the dict form."""
    sid = session_id or str(data.get("id", "session"))
    session = Session(id=sid, end_reason=data.get("end_reason"), task=data.get("task"))
    pending: list[ToolResult] = []
    for index, spec in enumerate(data.get("turns", ()), start=1):
        tools = list(spec.get("tools", ()))
        uses = [ToolUse(id=f"toolu_{index:03d}_{k}", name=str(t["name"]), input=t.get("input"))
                for k, t in enumerate(tools)]
        start_ns = int(float(spec.get("start_s", 0)) * 1e9)
        turn = Turn(
            session=sid, index=index, model=spec.get("model", "claude-sonnet-4-5"),
            stop_reason=spec.get("stop", "tool_use" if tools else "end_turn"), usage=_usage(spec),
            tool_uses=uses, text=str(spec.get("text", "")), tool_results=pending,
            cache_control=bool(spec.get("cache_control", False)),
            after_compaction=bool(spec.get("after_compaction", False)), start_ns=start_ns,
            end_ns=int(float(spec.get("end_s", 0)) * 1e9), error_type=spec.get("error_type"),
        )
        session.turns.append(turn)
        pending = []
        for use, spec_tool in zip(uses, tools, strict=True):
            result = _result(spec_tool)
            error = bool(spec_tool.get("error", False))
            session.tool_calls.append(ToolCall(session=sid, tool_use_id=use.id, name=use.name,
                                               turn_index=index, input=use.input, result=result,
                                               is_error=error, source="imported"))
            pending.append(ToolResult(tool_use_id=use.id, content=result, is_error=error or None))
    return session


def session(*turns: Mapping[str, Any], end_reason: str | None = "end_turn", session_id: str = "s") -> Session:
    """``session(turn(read("a.py")), turn(stop="end_turn"))`` → a Session."""
    return session_from_dict({"id": session_id, "end_reason": end_reason, "turns": list(turns)})


def turn(*tools: Mapping[str, Any], **spec: Any) -> dict[str, Any]:
    return {**spec, "tools": list(tools)}


def tool(name: str, tool_input: Any, result: str = "", error: bool = False, chars: int = 0) -> dict[str, Any]:
    return {"name": name, "input": tool_input, "result": result, "error": error, "chars": chars}


def read(path: str, result: str = "1\tcontent\n", **kw: Any) -> dict[str, Any]:
    return tool("Read", {"file_path": path}, result, **kw)


def edit(path: str, old: str, new: str, result: str = "The file has been updated.",
         **kw: Any) -> dict[str, Any]:
    return tool("Edit", {"file_path": path, "old_string": old, "new_string": new}, result, **kw)


def write(path: str, content: str, result: str = "File created successfully.", **kw: Any) -> dict[str, Any]:
    return tool("Write", {"file_path": path, "content": content}, result, **kw)


def bash(command: str, result: str = "", **kw: Any) -> dict[str, Any]:
    return tool("Bash", {"command": command}, result, **kw)


def grep(pattern: str, result: str = "", **kw: Any) -> dict[str, Any]:
    return tool("Grep", {"pattern": pattern}, result, **kw)


def glob(pattern: str, result: str = "", **kw: Any) -> dict[str, Any]:
    return tool("Glob", {"pattern": pattern}, result, **kw)


def ls(path: str, entries: Iterable[str] = (), **kw: Any) -> dict[str, Any]:
    return tool("LS", {"path": path}, "\n".join(entries), **kw)
