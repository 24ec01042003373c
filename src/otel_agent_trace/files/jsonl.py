"""Records → the seed article's JSONL trace: one line per turn, one per tool-results batch.

The lines are exactly what the article's loop writes (``turn``, ``stop_reason``, ``input_tokens``,
``output_tokens``, ``content`` / ``tool_results``) plus optional keys (``session``, ``model``, cache token
counts, timestamps, ``findings``), so the article's own tooling and ours read each other's files.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from otel_agent_trace.model.findings import finding_to_dict
from otel_agent_trace.model.records import Finding, Session, ToolCall, ToolResult, Turn

_log = logging.getLogger(__name__)


def _content_blocks(turn: Turn) -> list[dict[str, Any]]:
    if turn.content is not None:
        return turn.content
    # Content capture was off: rebuild the blocks the records kept, so tool names/inputs survive.
    blocks: list[dict[str, Any]] = []
    if turn.text:
        blocks.append({"type": "text", "text": turn.text})
    blocks.extend({"type": "tool_use", "id": u.id, "name": u.name, "input": u.input} for u in turn.tool_uses)
    return blocks


def turn_line(turn: Turn, findings: Iterable[Finding] = ()) -> dict[str, Any]:
    usage = turn.usage
    line: dict[str, Any] = {
        "turn": turn.index,
        "stop_reason": turn.stop_reason,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "model": turn.model,
        "content": _content_blocks(turn),
        "session": turn.session,
    }
    if usage.cache_creation_1h_input_tokens:
        line["cache_creation_1h_input_tokens"] = usage.cache_creation_1h_input_tokens
    if turn.response_id:
        line["response_id"] = turn.response_id
    if turn.start_ns:
        line["start_ns"] = turn.start_ns
    if turn.end_ns:
        line["end_ns"] = turn.end_ns
    if turn.error_type:
        line["error_type"] = turn.error_type
    if turn.after_compaction:
        line["after_compaction"] = True
    if turn.message_count:
        line["request_messages"] = turn.message_count
    if turn.cache_control:
        line["cache_control"] = True
    line["findings"] = [finding_to_dict(f) for f in findings]
    return line


def tool_results_line(session: str | Session, turn_index: int, results: Iterable[ToolResult],
                      calls: Iterable[ToolCall] | None = None) -> dict[str, Any]:
    """``results`` are the tool_result blocks sent back; ``calls`` (optional) add name, timing and errors."""
    session_id = session.id if isinstance(session, Session) else session
    by_id = {call.tool_use_id: call for call in calls or ()}
    blocks: list[dict[str, Any]] = []
    for result in results:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.tool_use_id,
                                 "content": result.content}
        if result.is_error is not None:
            block["is_error"] = result.is_error
        call = by_id.get(result.tool_use_id)
        if call is not None:
            block["name"] = call.name
            if call.is_error and "is_error" not in block:
                block["is_error"] = True
            if call.start_ns:
                block["start_ns"] = call.start_ns
            if call.end_ns:
                block["end_ns"] = call.end_ns
            if call.error_type:
                block["error_type"] = call.error_type
        blocks.append(block)
    return {"turn": turn_index, "tool_results": blocks, "session": session_id}


def start_line(session_id: str, task: str | None, agent_name: str = "agent",
               parent_id: str | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {"turn": 0, "event": "start", "task": task, "session": session_id,
                            "agent": agent_name}
    if parent_id:
        line["parent"] = parent_id
    return line


def end_line(session: Session) -> dict[str, Any]:
    line: dict[str, Any] = {"event": "end", "session": session.id, "end_reason": session.end_reason,
                            "findings": [finding_to_dict(f) for f in session.findings]}
    if session.parent_id:
        line["parent"] = session.parent_id
    return line


def _open_for_append(path: Path) -> Any:
    """The file opened for appending, created 0600 (it holds prompts and tool output), or None when it is
    not a regular file. Opened non-blocking: a FIFO with no reader would otherwise block the open, and with
    it the user's model call, forever."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        os.set_blocking(fd, True)
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


class JsonlTraceWriter:
    """Appends trace lines to one file, shared by every session of the process.

    One lock and one ``write`` + ``flush`` per line: concurrent sessions never interleave inside a line,
    and a crash loses at most the line being written. Telemetry must not break the agent, so nothing
    here raises; the first I/O error is logged and later ones are silent.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file: Any = None
        self._closed = False
        self._warned = False

    def start(self, session_id: str, task: str | None, agent_name: str = "agent",
              parent_id: str | None = None) -> None:
        self._emit(lambda: start_line(session_id, task, agent_name, parent_id))

    def turn(self, turn: Turn, findings: Iterable[Finding] = ()) -> None:
        self._emit(lambda: turn_line(turn, findings))

    def tool_results(self, session_id: str, turn_index: int, results: Iterable[ToolResult],
                     calls: Iterable[ToolCall] | None = None) -> None:
        self._emit(lambda: tool_results_line(session_id, turn_index, results, calls))

    def end(self, session: Session) -> None:
        self._emit(lambda: end_line(session))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                try:
                    self._file.close()
                except Exception:
                    pass
                self._file = None

    def _emit(self, build: Any) -> None:
        try:
            # Serialise outside the lock: content can be large and other sessions should not wait on it.
            data = (json.dumps(build(), ensure_ascii=False, default=str) + "\n").encode("utf-8")
        except Exception as exc:
            self._warn(f"otel_agent_trace: could not serialise a JSONL trace line: {exc!r}")
            return
        with self._lock:
            if self._closed:
                return
            try:
                if self._file is None:
                    self._file = _open_for_append(self.path)
                    if self._file is None:  # not a regular file: refused for good, said once
                        self._closed = True
                        self._warn(f"otel_agent_trace: {self.path} is not a regular file (a FIFO or device);"
                                   " the JSONL trace is not written")
                        return
                self._file.write(data)
                self._file.flush()
            except Exception as exc:
                self._warn(f"otel_agent_trace: could not write JSONL trace to {self.path}: {exc!r}")
                try:
                    if self._file is not None:
                        self._file.close()
                except Exception:
                    pass
                self._file = None  # reopen next time: the disk may have been full only for a moment

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            _log.warning(message)
