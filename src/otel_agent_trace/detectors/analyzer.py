"""One session's detectors behind one object, live or offline.

The analyzer never raises: a detector that fails on odd input is logged once and skipped for that
event, so an instrumented agent can never be broken by its own diagnostics.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields
from typing import Any

from otel_agent_trace.detectors.base import Detector, Thresholds
from otel_agent_trace.detectors.cache_miss import CacheMiss
from otel_agent_trace.detectors.context_drift import ContextDrift
from otel_agent_trace.detectors.errors import tool_result_is_error
from otel_agent_trace.detectors.hallucinated_input import HallucinatedInput
from otel_agent_trace.detectors.no_end_turn import NoEndTurn
from otel_agent_trace.detectors.roles import call_info
from otel_agent_trace.detectors.token_jump import TokenJump
from otel_agent_trace.detectors.tool_avalanche import ToolAvalanche
from otel_agent_trace.detectors.tool_loop import ToolLoop
from otel_agent_trace.model.records import Finding, Session, ToolCall, ToolUse, Turn

logger = logging.getLogger(__name__)

ALL_DETECTORS: tuple[type[Detector], ...] = (
    ContextDrift, ToolLoop, HallucinatedInput, TokenJump, ToolAvalanche, NoEndTurn, CacheMiss,
)
MAX_FINDINGS = 1_000  # kept per session; the rest are only counted
_MAX_WAITING_USES = 256
ENV_PREFIX = "OTEL_AGENT_TRACE_"


class SessionAnalyzer:
    """Runs every enabled detector over one session's events, in order; collects their findings."""

    def __init__(self, session_id: str, thresholds: Thresholds | None = None,
                 kinds: Iterable[str] | None = None, max_findings: int = MAX_FINDINGS) -> None:
        self.session_id = session_id
        self.thresholds = thresholds or Thresholds()
        wanted = None if kinds is None else set(kinds)
        self.detectors: list[Detector] = [
            cls(self.thresholds) for cls in ALL_DETECTORS if wanted is None or cls.kind in wanted
        ]
        self.findings: list[Finding] = []
        self.count_by_kind: dict[str, int] = {}
        self.dropped = 0  # findings counted but not kept (beyond max_findings)
        self.max_findings = max_findings
        self._failed: set[str] = set()  # detectors already logged as failing
        # Bound hooks of the detectors that override them: this runs inside the agent's own calls, so the
        # base class's no-op hooks are not called at all.
        self._turn_hooks = _hooks(self.detectors, "observe_turn")
        self._tool_hooks = _hooks(self.detectors, "observe_tool")
        self._failed_hooks = [d for d, _ in _hooks(self.detectors, "observe_failed_attempt")]
        self._last_turn: Turn | None = None
        # The tool_use blocks waiting for their call, so a call reuses its block's classification.
        self._uses: dict[str, ToolUse] = {}

    def observe_turn(self, turn: Turn) -> list[Finding]:
        """A model call. One that failed before any response (``Turn.failed_attempt``) is not a turn: no
        detector sees it; it is kept only to name the error if the run ends on it."""
        if turn.failed_attempt:
            self.observe_failed_attempt(turn)
            return []
        self._last_turn = turn
        if turn.tool_uses:
            uses = self._uses
            if len(uses) > _MAX_WAITING_USES:  # calls that never came (a run that stopped answering)
                uses.clear()
            for use in turn.tool_uses:
                uses[use.id] = use
        return self._run(self._turn_hooks, turn)

    def observe_failed_attempt(self, turn: Turn) -> None:
        """A call that failed (live, also one whose stream an error cut): the call re-sending the
        conversation takes its place, so no detector sees it as a turn; only the detectors about how the
        run ended hear of it."""
        for detector in self._failed_hooks:
            try:
                detector.observe_failed_attempt(turn)
            except Exception:
                self._fail(detector)

    def observe_tool(self, call: ToolCall) -> list[Finding]:
        """A tool call's result. One the harness cancelled before it ran (Claude Code stops the other calls
        of a turn when one fails) did nothing: it is neither a failure of its own nor a change, and no
        detector sees it."""
        use = self._uses.pop(call.tool_use_id, None)
        if len(call.result) < 120 and _CANCELLED in call.result:
            return []
        # Classified once here, from its tool_use block when it has one; every detector then reuses it.
        try:
            call_info(call, use)
        except Exception:  # odd input: each detector classifies it again under its own guard
            logger.debug("otel_agent_trace: could not classify a tool call", exc_info=True)
        return self._run(self._tool_hooks, call)

    def finish(self, end_reason: str | None) -> list[Finding]:
        """Findings about how the run ended (``end_reason``), after its last turn."""
        out: list[Finding] = []
        for detector in self.detectors:
            try:
                found = detector.finish(self._last_turn, end_reason)
            except Exception:
                self._fail(detector)
                continue
            if found:
                out += found
        return self._collect(out)

    def _run(self, hooks: list[tuple[Detector, Callable[[Any], list[Finding]]]], event: Any) -> list[Finding]:
        out: list[Finding] | None = None
        for detector, hook in hooks:
            try:
                found = hook(event)
            except Exception:
                self._fail(detector)
                continue
            if found:
                if out is None:
                    out = list(found)
                else:
                    out += found
        return self._collect(out) if out else []

    def _fail(self, detector: Detector) -> None:
        if detector.kind not in self._failed:
            self._failed.add(detector.kind)
            logger.debug("otel_agent_trace: detector %s failed; skipping the event", detector.kind, exc_info=True)

    def _collect(self, out: list[Finding]) -> list[Finding]:
        for finding in out:
            finding.session = self.session_id
            self.count_by_kind[finding.kind] = self.count_by_kind.get(finding.kind, 0) + 1
            if len(self.findings) < self.max_findings:
                self.findings.append(finding)
            else:
                self.dropped += 1
        return out


# Claude Code's result for a parallel call it cancelled because a sibling call failed.
_CANCELLED = "Sibling tool call errored"


def _hooks(detectors: list[Detector], name: str) -> list[tuple[Detector, Callable[[Any], list[Finding]]]]:
    return [(d, getattr(d, name)) for d in detectors if _overrides(type(d), name)]


@functools.cache
def _overrides(cls: type[Detector], name: str) -> bool:
    """Whether ``cls`` has its own ``name`` hook (asked per new session, answered once per class)."""
    return getattr(cls, name) is not getattr(Detector, name)


def _calls_by_turn(session: Session) -> dict[int, list[ToolCall]]:
    calls = session.tool_calls or _calls_from_turns(session)
    by_turn: dict[int, list[ToolCall]] = {}
    for call in calls:
        by_turn.setdefault(call.turn_index, []).append(call)
    return by_turn


def _calls_from_turns(session: Session) -> list[ToolCall]:
    """Tool calls rebuilt from tool_uses and the next request's tool_results, for sessions without them."""
    calls: list[ToolCall] = []
    results = {r.tool_use_id: r for turn in session.turns for r in turn.tool_results}
    for turn in session.turns:
        for use in turn.tool_uses:
            result = results.get(use.id)
            if result is None:
                continue
            calls.append(ToolCall(session=session.id, tool_use_id=use.id, name=use.name,
                                  turn_index=turn.index, input=use.input, result=result.content,
                                  is_error=tool_result_is_error(result.content, result.is_error)))
    return calls


def session_events(session: Session) -> Iterator[Turn | ToolCall]:
    """A finished session's records in the order the live path sees them: each turn, then its tool calls."""
    by_turn = _calls_by_turn(session)
    pending = sorted(by_turn)  # turn indexes with tool calls, fed right after their turn
    i = 0
    for turn in sorted(session.turns, key=lambda t: t.index):
        while i < len(pending) and pending[i] < turn.index:  # calls of a turn that is missing: keep order
            yield from by_turn[pending[i]]
            i += 1
        yield turn
        if i < len(pending) and pending[i] == turn.index:
            yield from by_turn[pending[i]]
            i += 1
    for index in pending[i:]:
        yield from by_turn[index]


def analyze_session(session: Session, thresholds: Thresholds | None = None,
                    kinds: Iterable[str] | None = None) -> list[Finding]:
    """Run the detectors over a finished session (offline); the findings also go to ``session.findings``."""
    analyzer = SessionAnalyzer(session.id, thresholds, kinds)
    for event in session_events(session):
        if isinstance(event, Turn):
            analyzer.observe_turn(event)
        else:
            analyzer.observe_tool(event)
    analyzer.finish(session.end_reason)
    session.findings = list(analyzer.findings)
    return session.findings


def _parse(kind: str, raw: str) -> Any:
    if kind == "int":
        return int(raw.replace("_", ""))
    if kind == "float":
        return float(raw)
    return raw


def thresholds_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> Thresholds:
    """Thresholds from ``OTEL_AGENT_TRACE_<FIELD>`` (``OTEL_AGENT_TRACE_DRIFT_MIN_TURNS=6``), then overrides.

    A malformed environment value keeps the default (logged): configuration must not crash the agent.
    Unknown override keywords are a programming error and raise ``TypeError``.
    """
    env = os.environ if environ is None else environ
    thresholds = Thresholds()
    for f in fields(Thresholds):
        raw = env.get(ENV_PREFIX + f.name.upper())
        if raw is None or not raw.strip():
            continue
        try:
            setattr(thresholds, f.name, _parse(str(f.type), raw.strip()))
        except ValueError:
            logger.warning("otel_agent_trace: ignoring %s%s=%r (not a number)",
                           ENV_PREFIX, f.name.upper(), raw)
    names = {f.name for f in fields(Thresholds)}
    for key, value in overrides.items():
        if key not in names:
            raise TypeError(f"unknown detector threshold: {key!r}")
        if value is not None:
            setattr(thresholds, key, value)
    return thresholds

