"""What a test asserts on: an agent run read back from its finished spans (or from a trace file).

Every value is a plain ``int``/``float``/``str``/list, so plain ``assert`` works, and every object has
a ``repr`` that reads like a small report, so a failing assertion shows the run it failed on::

    run = agent_trace.session
    assert run.clean, run.findings                 # no warning or error finding
    assert run.turns <= 12 and run.tokens <= 80_000
    assert not run.findings.of("tool_loop")
    assert agent_trace.shape == trace_snapshot
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from otel_agent_trace import semconv as sc
from otel_agent_trace.config import Settings
from otel_agent_trace.model.findings import SEVERITY_ORDER
from otel_agent_trace.model.records import Finding
from otel_agent_trace.pipeline.spans import Rollup, finding_from_event_attributes

if TYPE_CHECKING:
    from otel_agent_trace.files import AnalyzedSession

__all__ = ["AgentRun", "Findings", "SessionResult", "TraceShape"]


class Findings(list[Finding]):
    """A list of findings with filters; its ``repr`` lists them one per line for failure messages."""

    def of(self, kind: str | None = None, *, severity: str | None = None) -> Findings:
        """The findings of ``kind`` (any when None) and exactly ``severity`` (any when None)."""
        return Findings(f for f in self if kind in (None, f.kind) and severity in (None, f.severity))

    def at_least(self, severity: str) -> Findings:
        """The findings at ``severity`` or worse (``info`` < ``warning`` < ``error``)."""
        floor = SEVERITY_ORDER[severity]
        return Findings(f for f in self if SEVERITY_ORDER.get(f.severity, 1) >= floor)

    @property
    def kinds(self) -> set[str]:
        return {f.kind for f in self}

    def __repr__(self) -> str:
        # One line, most telling part first: pytest cuts long reprs in assertion explanations.
        return "Findings([" + "; ".join(describe(f, 60) for f in self) + "])"


def describe(finding: Finding, limit: int | None = None) -> str:
    """``T7 warning tool_loop: Read of a.py failed 3 times`` — one finding on one line, the message cut to
    ``limit`` characters (left out when ``limit`` is 0)."""
    message = " ".join(finding.message.split())
    if limit is not None and len(message) > limit:
        message = message[: limit - 1] + "…"
    return f"T{finding.turn} {finding.severity} {finding.kind}" + (f": {message}" if limit != 0 else "")


@dataclass(repr=False)
class SessionResult:
    """One agent session: its totals, end reason and findings, from spans or from a file."""

    id: str
    agent_name: str
    end_reason: str | None
    rollup: Rollup
    findings: Findings
    input_cost_usd: float = 0.0
    parent_id: str | None = None
    spans: list[Any] = field(default_factory=list)  # this session's finished spans (live runs only)

    @property
    def turns(self) -> int:
        return self.rollup.turns

    @property
    def input_tokens(self) -> int:
        """Everything the model read, cached or not, summed over turns (as ``gen_ai.usage.input_tokens``)."""
        return self.rollup.input_tokens

    @property
    def output_tokens(self) -> int:
        return self.rollup.output_tokens

    @property
    def tokens(self) -> int:
        return self.rollup.input_tokens + self.rollup.output_tokens

    @property
    def tool_calls(self) -> int:
        return self.rollup.tool_calls

    @property
    def clean(self) -> bool:
        """No finding at warning or error severity (``info`` findings are allowed)."""
        return not self.findings.at_least("warning")

    @classmethod
    def from_analyzed(cls, analyzed: AnalyzedSession, settings: Settings | None = None) -> SessionResult:
        """A session of ``otel_agent_trace.load(path)``, for the same assertions on saved runs."""
        settings = settings or Settings()
        session = analyzed.session
        cost = sum(settings.input_cost_usd(t.model, t.usage.input_tokens, t.usage.cache_read_input_tokens,
                                           t.usage.cache_creation_input_tokens) for t in session.turns)
        return cls(session.id, session.agent_name, session.end_reason, analyzed.rollup,
                   Findings(session.findings), cost, session.parent_id)

    def __repr__(self) -> str:
        # One line, findings before the numbers: pytest cuts long reprs in assertion explanations.
        found = ", ".join(describe(f, 0) for f in self.findings) or "none"
        return (f"<session {self.id[:12]}: {self.turns} turns, ended {self.end_reason}; findings: {found}; "
                f"{self.tokens:,} tokens ({self.input_tokens:,} in / {self.output_tokens:,} out), "
                f"{self.tool_calls} tool calls, ${self.input_cost_usd:.4f} input>")


class TraceShape(str):
    """The span tree as indented text: one span per line, its findings and error status in brackets.

    A ``str``, so it compares with a literal or a snapshot and pytest shows a line diff."""

    __slots__ = ()


def _shape_label(span: Any) -> str:
    attributes = span.attributes or {}
    marks = [f"{e.attributes.get(sc.FINDING_KIND)}:{e.attributes.get(sc.FINDING_SEVERITY)}"
             for e in span.events if e.name == sc.FINDING_EVENT]
    if sc.END_REASON in attributes:
        marks.insert(0, f"end_reason={attributes[sc.END_REASON]}")
    if span.status is not None and span.status.status_code.name == "ERROR":
        marks.insert(0, "error")
    return span.name + (f"  [{', '.join(marks)}]" if marks else "")


def trace_shape(spans: Sequence[Any]) -> TraceShape:
    """``spans`` as a :class:`TraceShape`."""
    from otel_agent_trace.testing import span_tree

    lines: list[str] = []

    def walk(nodes: list[tuple[str, list[Any]]], depth: int) -> None:
        for label, children in nodes:
            lines.append("  " * depth + label)
            walk(children, depth + 1)

    walk(span_tree(spans, label=_shape_label), 0)
    return TraceShape("\n".join(lines) + "\n" if lines else "")


class AgentRun:
    """Every session a test ran, read from the spans it exported.

    ``spans`` is a callable returning the finished spans so far; ``before_read`` (optional) runs first
    on every read — the pytest fixture uses it to end sessions still open, as the end of the test would.
    """

    def __init__(self, spans: Callable[[], Sequence[Any]], settings: Settings | None = None,
                 before_read: Callable[[], None] | None = None) -> None:
        self._spans = spans
        self._before_read = before_read
        self.settings = settings or Settings()

    @property
    def spans(self) -> list[Any]:
        if self._before_read is not None:
            self._before_read()
        return list(self._spans())

    @property
    def sessions(self) -> list[SessionResult]:
        """Every session (sub-agents included) in start order."""
        spans = self.spans
        by_conversation: dict[str, list[Any]] = {}
        for span in spans:
            conversation = (span.attributes or {}).get(sc.CONVERSATION_ID)
            if conversation is not None:
                by_conversation.setdefault(conversation, []).append(span)
        roots = sorted((s for s in spans if (s.attributes or {}).get(sc.OPERATION_NAME) == sc.OP_INVOKE_AGENT),
                       key=lambda s: s.start_time or 0)
        return [self._session(root, by_conversation.get(root.attributes[sc.CONVERSATION_ID], [root]))
                for root in roots]

    def _session(self, root: Any, spans: list[Any]) -> SessionResult:
        attributes = root.attributes
        conversation = attributes[sc.CONVERSATION_ID]
        found = [finding_from_event_attributes(e.attributes, conversation)
                 for s in spans for e in s.events if e.name == sc.FINDING_EVENT]
        findings = Findings(sorted((f for f in found if f is not None), key=lambda f: (f.turn, f.kind)))
        cost = 0.0
        for span in spans:
            a = span.attributes or {}
            if a.get(sc.OPERATION_NAME) == sc.OP_CHAT:
                read, write = a.get(sc.USAGE_CACHE_READ, 0), a.get(sc.USAGE_CACHE_WRITE, 0)
                fresh = a.get(sc.USAGE_INPUT_TOKENS, 0) - read - write  # semconv input includes the cache
                cost += self.settings.input_cost_usd(a.get(sc.RESPONSE_MODEL) or a.get(sc.REQUEST_MODEL),
                                                     fresh, read, write)
        return SessionResult(conversation, attributes.get(sc.AGENT_NAME, "agent"), attributes.get(sc.END_REASON),
                             Rollup.from_attributes(attributes), findings, cost, attributes.get(sc.PARENT_SESSION),
                             spans)

    @property
    def session(self) -> SessionResult:
        """The one top-level session of the run; fails the test when there is not exactly one."""
        sessions = self.sessions
        top = [s for s in sessions if s.parent_id is None]
        if len(top) != 1:
            raise AssertionError(f"expected exactly one top-level agent session, found {len(top)}: {sessions!r}")
        return top[0]

    @property
    def findings(self) -> Findings:
        return Findings(f for s in self.sessions for f in s.findings)

    @property
    def clean(self) -> bool:
        """No session has a finding at warning or error severity."""
        return not self.findings.at_least("warning")

    @property
    def turns(self) -> int:
        return sum(s.turns for s in self.sessions)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.sessions)

    @property
    def input_cost_usd(self) -> float:
        return sum(s.input_cost_usd for s in self.sessions)

    @property
    def shape(self) -> TraceShape:
        return trace_shape(self.spans)

    def spans_of(self, operation: str) -> list[Any]:
        """Finished spans of one ``gen_ai.operation.name``: ``chat``, ``execute_tool`` or ``invoke_agent``."""
        from otel_agent_trace.testing import by_operation

        return by_operation(self.spans, operation)

    def __repr__(self) -> str:
        sessions = self.sessions
        if not sessions:
            return f"<AgentRun: no agent sessions ({len(self.spans)} spans)>"
        return "<AgentRun: " + " ".join(repr(s) for s in sessions) + ">"


def sessions_of_file(path: Any, settings: Settings | None = None) -> list[SessionResult]:
    """Every session of a saved trace file as :class:`SessionResult`, through ``otel_agent_trace.load``."""
    from otel_agent_trace.files import load

    return [SessionResult.from_analyzed(run, settings) for run in load(path, settings).sessions]
