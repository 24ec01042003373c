"""The seed article's JSONL trace (and ours, which is the same plus optional keys) → Sessions.

Lines, as the article's loop writes them::

    {"turn": 0, "event": "start", "task": "..."}
    {"turn": N, "stop_reason": ..., "input_tokens": ..., "output_tokens": ..., "content": [blocks]}
    {"turn": N, "tool_results": [{"type": "tool_result", "tool_use_id": ..., "content": "..."}]}

Our writer adds ``session``, ``model``, cache token counts, ``start_ns``/``end_ns``, ``findings`` and an
``{"event": "end", "end_reason": ...}`` line. Lines without ``session`` belong to one session named after
the file. A session is yielded as soon as its end line is read, the others at the end of the file, so a
file shared by many concurrent sessions is streamed with only the open sessions in memory.

Without an end line the end reason is inferred from the last turn: ``end_turn`` (or ``stop_sequence``) →
``end_turn``; ``max_tokens`` → ``max_tokens``; a turn that failed (``error_type``) → ``error``;
``tool_use`` whose tool results were logged → ``turn_limit`` (the article's loop ran the tools and then
hit its turn limit, the only way it stops there); anything else, including ``tool_use`` without results
(the process died mid-turn) and a start line with no turns → ``abandoned``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from otel_agent_trace.detectors.errors import tool_result_is_error
from otel_agent_trace.files.importers.base import LineError, Parsed, as_count, as_ns
from otel_agent_trace.instrumentation.extract import text_of
from otel_agent_trace.model.findings import finding_from_dict
from otel_agent_trace.model.records import Finding, Session, ToolCall, ToolResult, ToolUse, Turn, Usage, end_reason

MAX_TURN = 1_000_000  # a turn number past this is a corrupt line, not a session that long
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class _Builder:
    """One session being assembled from its lines."""

    def __init__(self, session_id: str, source: str) -> None:
        self.session = Session(id=session_id, source=source)
        self.turns: dict[int, Turn] = {}
        self.uses: dict[str, tuple[ToolUse, int]] = {}
        self.results_for: dict[int, list[ToolResult]] = {}  # turn N's results, waiting for turn N+1
        self.turn_findings: list[Finding] = []
        self.end_findings: list[Finding] | None = None

    def start(self, obj: dict[str, Any]) -> None:
        task = obj.get("task")
        self.session.task = task if isinstance(task, str) else None
        if isinstance(obj.get("agent"), str):
            self.session.agent_name = obj["agent"]
        if isinstance(obj.get("parent"), str):
            self.session.parent_id = obj["parent"]

    def turn(self, index: int, obj: dict[str, Any]) -> str | None:
        if index in self.turns:
            return f"turn {index} of session {self.session.id!r} appears twice; kept the first"
        content = obj.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        uses = [ToolUse(str(b.get("id", "")), str(b.get("name", "")), b.get("input"))
                for b in blocks if b.get("type") == "tool_use"]
        stop = obj.get("stop_reason")
        turn = Turn(
            session=self.session.id,
            index=index,
            model=obj.get("model") if isinstance(obj.get("model"), str) else None,
            stop_reason=stop if isinstance(stop, str) else None,
            usage=Usage(*(as_count(obj.get(key)) for key in _USAGE_KEYS),
                        cache_creation_1h_input_tokens=as_count(obj.get("cache_creation_1h_input_tokens"))),
            tool_uses=uses,
            text=text_of(blocks),
            response_id=obj.get("response_id") if isinstance(obj.get("response_id"), str) else None,
            start_ns=as_ns(obj.get("start_ns")),
            end_ns=as_ns(obj.get("end_ns")),
            error_type=obj.get("error_type") if isinstance(obj.get("error_type"), str) else None,
            content=blocks,
            after_compaction=obj.get("after_compaction") is True,
            message_count=as_count(obj.get("request_messages")),
            cache_control=obj.get("cache_control") is True,
        )
        turn.tool_results = self.results_for.pop(index - 1, [])
        self.turns[index] = turn
        self.session.turns.append(turn)
        for use in uses:
            self.uses[use.id] = (use, index)
        findings = obj.get("findings")
        for data in findings if isinstance(findings, list) else ():
            finding = finding_from_dict(data, self.session.id)
            if finding is not None:
                self.turn_findings.append(finding)
        return None

    def tool_results(self, index: int, blocks: Iterable[Any]) -> None:
        results: list[ToolResult] = []
        for block in blocks:
            if not isinstance(block, dict):
                continue
            flag = block.get("is_error")
            result = ToolResult(str(block.get("tool_use_id", "")), text_of(block.get("content")),
                                None if flag is None else bool(flag))
            results.append(result)
            use, asked_at = self.uses.get(result.tool_use_id, (None, index))
            name = use.name if use is not None else str(block.get("name") or "unknown")
            self.session.tool_calls.append(ToolCall(
                session=self.session.id,
                tool_use_id=result.tool_use_id,
                name=name,
                turn_index=asked_at,
                input=use.input if use is not None else None,
                result=result.content,
                is_error=tool_result_is_error(result.content, result.is_error),
                start_ns=as_ns(block.get("start_ns")),
                end_ns=as_ns(block.get("end_ns")),
                source="imported",
                error_type=block.get("error_type") if isinstance(block.get("error_type"), str) else None,
            ))
        following = self.turns.get(index + 1)
        if following is not None:  # results logged late: the next turn is already there
            following.tool_results.extend(results)
        else:
            self.results_for.setdefault(index, []).extend(results)

    def end(self, obj: dict[str, Any]) -> None:
        if isinstance(obj.get("end_reason"), str):
            self.session.end_reason = obj["end_reason"]
        if isinstance(obj.get("parent"), str):
            self.session.parent_id = obj["parent"]
        if isinstance(obj.get("findings"), list):
            found = (finding_from_dict(d, self.session.id) for d in obj["findings"])
            self.end_findings = [f for f in found if f is not None]

    def finish(self) -> Session:
        session = self.session
        session.turns.sort(key=lambda t: t.index)  # a no-op unless lines were written out of order
        if session.end_reason is None:
            session.end_reason = _infer_end_reason(session.turns, self.results_for)
        # Findings recorded when the trace was written; callers usually re-run the detectors anyway.
        session.findings = self.end_findings if self.end_findings else self.turn_findings
        return session


def _infer_end_reason(turns: list[Turn], unclaimed_results: dict[int, list[ToolResult]]) -> str:
    if not turns:
        return end_reason(None)
    last = turns[-1]
    return end_reason(last.stop_reason, failed=last.error_type is not None,
                      tools_left_unanswered=last.index in unclaimed_results)


def import_seed(path: Path, lines: Iterable[Parsed]) -> Iterator[Session | LineError]:
    """Sessions of a seed/our-format JSONL file, from its already-parsed lines."""
    source = str(path)
    default_id = path.stem
    open_: dict[str, _Builder] = {}
    runs: dict[str, int] = {}  # how many sessions a key has produced, to name reruns uniquely
    ended: set[str] = set()

    def new_builder(key: str) -> _Builder:
        runs[key] = runs.get(key, 0) + 1
        # The article's loop truncates its file per run, ours appends: a second run under the same key is
        # a new session rather than more turns of the first.
        builder = _Builder(key if runs[key] == 1 else f"{key}#{runs[key]}", source)
        open_[key] = builder
        return builder

    def one_line(line_no: int, obj: dict[str, Any]) -> Iterator[Session | LineError]:
        raw_key = obj.get("session")
        key = raw_key if isinstance(raw_key, str) and raw_key else default_id
        builder = open_.get(key)
        event = obj.get("event")
        turn = obj.get("turn")

        if event == "start":
            if builder is not None and builder.session.turns:
                del open_[key]
                yield builder.finish()
                builder = None
            ended.discard(key)
            (builder or new_builder(key)).start(obj)
            return
        if builder is None:
            if key in ended:
                yield LineError(source, line_no, f"line for session {key!r} after its end line; skipped")
                return
            builder = new_builder(key)

        if event == "end":
            builder.end(obj)
            del open_[key]
            ended.add(key)
            yield builder.finish()
        elif isinstance(turn, bool) or not isinstance(turn, int) or turn < 0:
            yield LineError(source, line_no, "no integer 'turn' key: not a seed trace line; skipped")
        elif turn > MAX_TURN:
            yield LineError(source, line_no, f"turn {turn} is past the last turn read ({MAX_TURN}); skipped")
        elif "tool_results" in obj:
            if not isinstance(obj["tool_results"], list):
                yield LineError(source, line_no, "'tool_results' is not a list; skipped")
            else:
                builder.tool_results(turn, obj["tool_results"])
        elif turn == 0:
            yield LineError(source, line_no, "turn 0 is reserved for the start event; skipped")
        else:
            problem = builder.turn(turn, obj)
            if problem:
                yield LineError(source, line_no, problem)

    for item in lines:
        if isinstance(item, LineError):
            yield item
            continue
        try:
            yield from one_line(*item)
        except Exception as exc:  # a shape no rule above foresaw: this line is lost, never the file
            yield LineError(source, item[0], f"could not import this line ({type(exc).__name__}); skipped")

    for builder in open_.values():
        yield builder.finish()
