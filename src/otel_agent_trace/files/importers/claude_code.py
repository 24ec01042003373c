"""Claude Code session transcripts → Sessions (DESIGN §8).

A transcript is one JSON object per line with ``type`` ``user`` / ``assistant`` / ``system`` /
``summary`` / … and ``uuid``, ``parentUuid``, ``sessionId``, ``timestamp``, ``isSidechain``.

- Assistant lines carry the API ``message``. One message streamed as several lines (one content block
  each, same ``message.id``) becomes one Turn: blocks concatenated, each usage count the largest seen.
  ``stop_reason`` is usually null: inferred as ``tool_use`` when the message has tool_use blocks, else
  ``end_turn``. ``<synthetic>`` messages (API errors, interruptions) are not model calls and make no turn.
- ``tool_result`` blocks in later user lines become ToolCalls joined to their tool_use, and the next
  turn's ``tool_results``.
- Compaction: a ``system`` line with ``subtype: compact_boundary``, a user line with ``isCompactSummary``
  or a ``summary`` line after the first turn marks the next turn ``after_compaction``. ``summary`` lines
  before any turn are conversation titles, not compactions. So does a plan implemented in a cleared
  context (the prompt "Implement the following plan:", with ``planContent`` in newer versions): the
  history is replaced by the plan.
- Sub-agents become child Sessions (``parent_id`` = the main session) with id ``{parent}/agent-{id}``:
  inline lines with ``isSidechain: true`` are grouped by ``agentId``, else by following ``parentUuid``
  back to the sidechain's first line. Sub-agent files are found next to the session file, in the layout
  Claude Code writes::

      <project>/<session>.jsonl
      <project>/<session>/subagents/agent-<id>.jsonl

  and, as a fallback, ``<project>/subagents/agent-*.jsonl`` whose lines carry the session's ``sessionId``.
- A file is one main session (the first ``sessionId`` seen; a resumed conversation keeps its turns in
  file order). Branches left by edited prompts are flattened in file order.

End reason: the last turn's ``end_turn`` / ``stop_sequence`` → ``end_turn``, ``max_tokens`` →
``max_tokens``, an API error message after the last turn → ``error``; anything else (a tool_use turn
that never got its follow-up, a user interruption) → ``abandoned``. Claude Code has no turn limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from otel_agent_trace.detectors.errors import tool_result_is_error
from otel_agent_trace.files.importers.base import LineError, Parsed, as_count, iso_to_ns, parsed_lines
from otel_agent_trace.instrumentation.extract import text_of
from otel_agent_trace.model.records import Session, ToolCall, ToolResult, ToolUse, Turn, end_reason

_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
_INTERRUPTED = "[Request interrupted by user"
_CLEARED_FOR_PLAN = "Implement the following plan:"
_TASK_CHARS = 4_000


class _Builder:
    """One conversation (main or sub-agent) being assembled from its lines."""

    def __init__(self, session_id: str, source: str, parent_id: str | None = None) -> None:
        self.session = Session(id=session_id, source=source, parent_id=parent_id,
                               agent_name="claude-code" if parent_id is None else "claude-code-subagent")
        self.by_message: dict[str, Turn] = {}
        # Blocks already merged into each turn, by a canonical form: a message split over many lines (or
        # repeating earlier blocks) merges in linear time instead of comparing each block with every other.
        self.seen_blocks: dict[int, set[str]] = {}
        self.uses: dict[str, tuple[ToolUse, int, int]] = {}  # tool_use id → (use, turn, time asked)
        self.pending: list[ToolResult] = []  # results not yet sent with a turn
        self.compacted = False
        self.last_ns = 0  # time of the previous line: the best guess for when the next request started
        self.trailing: str | None = None  # what happened after the last turn: "error" / "interrupted"

    def assistant(self, obj: dict[str, Any], now_ns: int) -> None:
        message = obj.get("message")
        if not isinstance(message, dict):
            return
        if message.get("model") == "<synthetic>":
            if obj.get("isApiErrorMessage"):
                self.trailing = "error"
            return
        key = message.get("id") if isinstance(message.get("id"), str) else f"line:{obj.get('uuid')}"
        turn = self.by_message.get(key)
        if turn is None:
            turn = Turn(session=self.session.id, index=len(self.session.turns) + 1,
                        model=message.get("model") if isinstance(message.get("model"), str) else None,
                        response_id=message.get("id") if isinstance(message.get("id"), str) else None,
                        start_ns=self.last_ns or now_ns, end_ns=now_ns, content=[],
                        tool_results=self.pending, after_compaction=self.compacted)
            self.pending = []
            self.compacted = False
            self.trailing = None
            self.by_message[key] = turn
            self.session.turns.append(turn)
        self._merge(turn, message, now_ns)
        self.last_ns = now_ns or self.last_ns

    def _merge(self, turn: Turn, message: dict[str, Any], now_ns: int) -> None:
        assert turn.content is not None
        content = message.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        if isinstance(content, str) and content:
            blocks = [{"type": "text", "text": content}]
        seen = self.seen_blocks.setdefault(turn.index, set())
        for block in blocks:
            key = json.dumps(block, sort_keys=True, default=str)
            if key in seen:  # some versions repeat earlier blocks on later lines
                continue
            seen.add(key)
            turn.content.append(block)
            if block.get("type") == "tool_use":
                use = ToolUse(str(block.get("id", "")), str(block.get("name", "")), block.get("input"))
                turn.tool_uses.append(use)
                self.uses[use.id] = (use, turn.index, now_ns)
        usage = message.get("usage")
        if isinstance(usage, dict):
            for name in _USAGE_KEYS:
                setattr(turn.usage, name, max(getattr(turn.usage, name), as_count(usage.get(name))))
            creation = usage.get("cache_creation")
            if isinstance(creation, dict):
                turn.usage.cache_creation_1h_input_tokens = max(turn.usage.cache_creation_1h_input_tokens,
                                                                as_count(creation.get("ephemeral_1h_input_tokens")))
        if isinstance(message.get("stop_reason"), str):
            turn.stop_reason = message["stop_reason"]
        turn.end_ns = max(turn.end_ns, now_ns)

    def user(self, obj: dict[str, Any], now_ns: int) -> None:
        message = obj.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if obj.get("isCompactSummary"):
            self.compaction()
        elif isinstance(content, str):
            self._prompt(obj, content)
        elif isinstance(content, list):
            texts = [b for b in content if isinstance(b, dict) and b.get("type") == "text"]
            if texts:
                self._prompt(obj, text_of(texts))
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    self._tool_result(block, obj.get("toolUseResult"), now_ns)
        self.last_ns = now_ns or self.last_ns

    def _prompt(self, obj: dict[str, Any], text: str) -> None:
        if self.session.turns and (obj.get("planContent") or text.startswith(_CLEARED_FOR_PLAN)):
            # Leaving plan mode with "clear context" starts a new conversation on the same file: the history
            # so far is replaced by the plan, as a compaction replaces it by a summary.
            self.compaction()
        if text.startswith(_INTERRUPTED):
            self.trailing = "interrupted"
        elif self.session.task is None and not obj.get("isMeta") and not text.startswith("<"):
            # "<command-name>…" and similar lines are UI bookkeeping, not the user's task.
            self.session.task = text[:_TASK_CHARS]

    def _tool_result(self, block: dict[str, Any], extra: Any, now_ns: int) -> None:
        text = text_of(block.get("content"))
        if not text and isinstance(extra, str):
            text = extra  # older versions put the error text only in toolUseResult
        flag = block.get("is_error")
        result = ToolResult(str(block.get("tool_use_id", "")), text, None if flag is None else bool(flag))
        self.pending.append(result)
        use, turn_index, asked_ns = self.uses.get(result.tool_use_id, (None, 0, 0))
        self.session.tool_calls.append(ToolCall(
            session=self.session.id,
            tool_use_id=result.tool_use_id,
            name=use.name if use is not None else "unknown",
            turn_index=turn_index or len(self.session.turns),
            input=use.input if use is not None else None,
            result=text,
            is_error=tool_result_is_error(text, result.is_error),
            start_ns=asked_ns,
            end_ns=now_ns,
            source="imported",
        ))

    def compaction(self) -> None:
        self.compacted = True

    def finish(self) -> Session:
        session = self.session
        for turn in session.turns:
            turn.text = text_of(turn.content)  # once per turn here, not once per merged line
            if turn.stop_reason is None:
                turn.stop_reason = "tool_use" if turn.tool_uses else "end_turn"
        session.end_reason = _end_reason(session.turns, self.trailing)
        return session


def _end_reason(turns: list[Turn], trailing: str | None) -> str:
    """``trailing``: what Claude Code wrote after the last model call (an API error, an interrupt)."""
    last_stop = turns[-1].stop_reason if turns and trailing != "interrupted" else None
    return end_reason(last_stop, failed=trailing == "error")


class _Transcript:
    """Routes one file's lines to its main conversation and its sidechains."""

    def __init__(self, path: Path, agent_hint: str | None = None) -> None:
        self.path = path
        self.source = str(path)
        self.agent_hint = agent_hint  # for sub-agent files whose lines carry no agentId
        self.main: _Builder | None = None
        self.session_id: str | None = None
        self.sidechains: dict[str, _Builder] = {}
        self.chain_of: dict[str, str] = {}  # sidechain line uuid → its conversation's key

    def feed(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if self.session_id is None and isinstance(obj.get("sessionId"), str):
            self.session_id = obj["sessionId"]
        if kind == "summary":
            if self.main is not None and self.main.session.turns:
                self.main.compaction()
            return
        if kind not in ("user", "assistant", "system"):
            return  # file-history snapshots, queue operations and other UI state
        # A sub-agent file is all sidechain, whether or not its lines say so.
        sidechain = obj.get("isSidechain") is True or self.agent_hint is not None
        builder = self._sidechain(obj) if sidechain else self._main()
        now_ns = iso_to_ns(obj.get("timestamp"))
        if kind == "assistant":
            builder.assistant(obj, now_ns)
        elif kind == "user":
            builder.user(obj, now_ns)
        elif obj.get("subtype") == "compact_boundary":
            builder.compaction()

    def _main(self) -> _Builder:
        if self.main is None:
            self.main = _Builder(self.session_id or self.path.stem, self.source)
        return self.main

    def _sidechain(self, obj: dict[str, Any]) -> _Builder:
        agent = obj.get("agentId")
        if isinstance(agent, str) and agent:
            key = agent
        else:
            key = self.chain_of.get(str(obj.get("parentUuid"))) or self.agent_hint or str(obj.get("uuid"))
        if isinstance(obj.get("uuid"), str):
            self.chain_of[obj["uuid"]] = key
        builder = self.sidechains.get(key)
        if builder is None:
            parent = self.session_id or self.path.stem
            name = key if key.startswith("agent-") else f"agent-{key}"
            builder = _Builder(f"{parent}/{name}", self.source, parent_id=parent)
            self.sidechains[key] = builder
        return builder

    def sessions(self) -> Iterator[Session]:
        if self.main is not None:
            yield self.main.finish()
        for builder in self.sidechains.values():
            yield builder.finish()


def subagent_files(path: Path, session_id: str | None) -> list[Path]:
    """Sub-agent transcripts that belong to the session file at ``path`` (see the module docstring)."""
    found: list[Path] = []
    names = [path.stem] + ([session_id] if session_id and session_id != path.stem else [])
    for name in names:
        folder = path.parent / name / "subagents"
        if folder.is_dir():
            found.extend(sorted(folder.glob("agent-*.jsonl")))
    sibling = path.parent / "subagents"
    if sibling.is_dir() and session_id:
        found.extend(f for f in sorted(sibling.glob("agent-*.jsonl")) if _session_of(f) == session_id)
    return list(dict.fromkeys(found))


def _session_of(path: Path) -> str | None:
    for item in parsed_lines(path):
        if isinstance(item, LineError):
            continue
        session_id = item[1].get("sessionId")
        if isinstance(session_id, str):
            return session_id
    return None


def import_claude_code(path: Path, lines: Iterable[Parsed], *,
                       with_subagents: bool = True) -> Iterator[Session | LineError]:
    """Sessions of one Claude Code transcript (main first, then its sub-agents), from parsed lines."""
    hint = path.stem if path.stem.startswith("agent-") else None
    transcript = _Transcript(path, agent_hint=hint)
    for item in lines:
        if isinstance(item, LineError):
            yield item
            continue
        try:
            transcript.feed(item[1])
        except Exception as exc:  # a shape no rule foresaw: this line is lost, never the file
            yield LineError(str(path), item[0], f"could not import this line ({type(exc).__name__}); skipped")
    try:
        yield from transcript.sessions()
    except Exception as exc:
        yield LineError(str(path), 0, f"could not finish the sessions of this file ({type(exc).__name__})")
    if with_subagents and transcript.main is not None:
        for file in subagent_files(path, transcript.session_id):
            yield from import_claude_code(file, parsed_lines(file), with_subagents=False)
