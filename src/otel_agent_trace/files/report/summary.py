"""What every report shows, computed once: totals, peak, jumps, the decision turn, and the worst-first order.

Reports read a session the way the seed article debugs one: backwards from the end. Outcome first, then
the decision turn (where the trouble still going on at the end began), the findings, the turns, and the
token budget per turn. ``text`` renders it for terminals (through rich), ``html`` as a self-contained page.
Only the CLI imports this package, so its cost never reaches an instrumented agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_agent_trace.config import CACHE_READ_PRICE_FACTOR, Settings
from otel_agent_trace.detectors._util import plural
from otel_agent_trace.detectors.base import Thresholds
from otel_agent_trace.files.report.terminal import clean
from otel_agent_trace.model.records import Finding, Session, ToolCall, Turn

LAST_TURNS = 8
MAX_CHART_ROWS = 40  # terminal chart: longer sessions are bucketed, each row the largest turn of its bucket
MAX_CHART_BARS = 300  # HTML chart
MAX_FINDINGS_TEXT = 30
MAX_FINDINGS_HTML = 200
_TARGET_KEYS = ("file_path", "notebook_path", "command", "cmd", "pattern", "query", "path", "url",
                "description", "prompt")
_OUTCOMES = {
    "end_turn": ("good", "✓ finished normally (end_turn) after {n}"),
    "max_tokens": ("bad", "✗ cut off: the response of turn {last} hit max_tokens ({n})"),
    "turn_limit": ("bad", "✗ turn limit reached after {n}, the model still calling tools"),
    "error": ("bad", "✗ ended with an error after {n}"),
    "abandoned": ("bad", "✗ abandoned after {n}: the trace stops mid-task (interrupted or crashed)"),
}
SEVERITY_RANK = {"info": 1, "warning": 2, "error": 3}
# Where a finding of each kind says its trouble began (the rest: the turn it was seen at).
_FIRST_TURN_KINDS = {"tool_loop", "tool_avalanche"}
# Findings about cost, not about the run going wrong: never the cause of a failure.
_NOT_CAUSES = {"no_end_turn", "cache_miss", "token_jump"}


@dataclass(frozen=True, slots=True)
class Decision:
    """The turn a failed run's trouble traces back to (``None``: nothing to trace), and why."""

    turn: int | None
    reason: str


@dataclass(slots=True)
class Summary:
    """Everything a report shows, computed once in O(turns + calls + findings)."""

    session: Session
    findings: list[Finding]
    calls_by_turn: dict[int, list[ToolCall]] = field(default_factory=dict)
    findings_by_turn: dict[int, list[Finding]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    peak: tuple[int, int] = (0, 0)  # (context tokens, turn)
    tool_errors: int = 0
    jumps: set[int] = field(default_factory=set)
    decision: Decision = Decision(None, "")
    saved_usd: float = 0.0


def summarize(session: Session, findings: Sequence[Finding] | None = None) -> Summary:
    found = list(session.findings if findings is None else findings)
    summary = Summary(session, sorted(found, key=lambda f: (f.turn, f.kind)))
    for call in session.tool_calls:
        summary.calls_by_turn.setdefault(call.turn_index, []).append(call)
        summary.tool_errors += call.is_error
    for finding in found:
        for index in set(finding.turns or [finding.turn]):
            summary.findings_by_turn.setdefault(index, []).append(finding)
        if finding.kind == "token_jump":
            summary.jumps.add(finding.turn)
    limits = Thresholds()
    totals = dict.fromkeys(("input", "output", "cache_read", "cache_write"), 0)
    previous = 0
    prices = _PRICES
    for turn in session.turns:
        usage, context = turn.usage, turn.usage.context_tokens
        totals["input"] += usage.input_tokens
        totals["output"] += usage.output_tokens
        totals["cache_read"] += usage.cache_read_input_tokens
        totals["cache_write"] += usage.cache_creation_input_tokens
        summary.saved_usd += prices.cache_saving_usd(turn.model, usage.cache_read_input_tokens)
        if context > summary.peak[0]:
            summary.peak = (context, turn.index)
        # Mark jumps even when detectors were off, by the detector's own default rule.
        if previous and context - previous >= max(limits.jump_min_tokens, limits.jump_min_ratio * previous):
            summary.jumps.add(turn.index)
        previous = context
    summary.totals = totals
    summary.decision = decision_turn(session, found, summary.calls_by_turn)
    return summary


def _prices() -> Settings:
    try:
        return Settings.from_env()  # honours OTEL_AGENT_TRACE_PRICES
    except (TypeError, ValueError):
        return Settings()


_PRICES = _prices()


# Anthropic's list-price ratios to the input price (the only price configured per model family).
_OUTPUT_PRICE_FACTOR = 5.0
_CACHE_WRITE_PRICE_FACTOR = 1.25


def session_cost_usd(session: Session, prices: Settings | None = None) -> float:
    """Estimated cost at list prices: fresh input, cache writes (1.25x), cache reads (0.1x), output (5x)."""
    prices = prices or _PRICES
    total = 0.0
    for turn in session.turns:
        u = turn.usage
        billed = (u.input_tokens + _CACHE_WRITE_PRICE_FACTOR * u.cache_creation_input_tokens
                  + CACHE_READ_PRICE_FACTOR * u.cache_read_input_tokens + _OUTPUT_PRICE_FACTOR * u.output_tokens)
        total += billed * prices.input_price(turn.model) / 1e6
    return total


def decision_turn(session: Session, findings: Sequence[Finding],
                  calls_by_turn: dict[int, list[ToolCall]] | None = None) -> Decision:
    """The turn a failed run's trouble traces back to, or none, with the reason either way.

    - A run that ended normally (``end_turn``) has none: its findings are detours it recovered from.
    - ``max_tokens``: the cut response itself; nothing earlier made it too long.
    - Otherwise the trouble is the failure findings (loops, drift, invented inputs; not cost findings,
      not ``no_end_turn``, the symptom being explained) reaching the last three turns, and the run of
      turns whose tool calls all failed up to the end; when nothing reaches the end, the earliest such
      finding. A loop or avalanche began at its first turn, the others at the turn they were seen.
    - A warning-level token jump at or before that start means a tool output blew the context first:
      the decision is the turn whose tool produced it.
    """
    if not session.turns:
        return Decision(None, "no turns were recorded")
    if session.end_reason == "end_turn":
        return Decision(None, "the run ended normally (end_turn); any findings are detours it recovered from")
    last = session.turns[-1].index
    if session.end_reason == "max_tokens":
        return Decision(last, "its response hit max_tokens and was cut off: raise max_tokens, or ask for the "
                              "output in smaller pieces (a file at a time)")
    if calls_by_turn is None:
        calls_by_turn = {}
        for call in session.tool_calls:
            calls_by_turn.setdefault(call.turn_index, []).append(call)
    # An avalanche is only info in a run that ends well; in a failed one it is why the turns ran out.
    causes = [f for f in findings
              if (f.severity != "info" or f.kind == "tool_avalanche") and f.kind not in _NOT_CAUSES]
    anchors: list[tuple[int, str]] = []
    for finding in causes:
        turns = finding.turns or [finding.turn]
        if max(turns) >= last - 2:
            anchors.append((_start_of(finding), f"{finding.kind}: {finding.message}"))
    streak_end = last if calls_by_turn.get(last) else last - 1  # the final turn may have run no tools
    start = streak_end
    while (calls := calls_by_turn.get(start)) and all(c.is_error for c in calls):
        start -= 1
    if streak_end - start >= 2:
        anchors.append((start + 1, f"every tool call failed from turn {start + 1} to turn {streak_end}"))
    if not anchors:
        anchors = [(_start_of(f), f"{f.kind}: {f.message}") for f in causes]
    jumps = [f for f in findings if f.kind == "token_jump" and f.severity != "info"]
    if anchors:
        begin, why = min(anchors, key=lambda a: a[0])
        earlier = [j for j in jumps if j.turn <= begin]
        if not earlier:
            return Decision(begin, why)
        jump = max(earlier, key=lambda j: j.turn)
        return Decision(min(jump.turns or [jump.turn]),
                        f"its tool output blew the context — {jump.message} — and the trouble that "
                        f"followed began at turn {begin}: {why}")
    if jumps:
        jump = max(jumps, key=lambda j: j.turn)
        return Decision(min(jump.turns or [jump.turn]), f"its tool output blew the context — {jump.message}")
    return Decision(None, "no finding explains the failure: read the last turns, newest first")


def _start_of(finding: Finding) -> int:
    turns = finding.turns or [finding.turn]
    return min(turns) if finding.kind in _FIRST_TURN_KINDS else finding.turn


def badness(session: Session, findings: Sequence[Finding]) -> tuple[int, int, int, int]:
    """Sort key, larger is worse: failed outcome, worst severity, failure findings, tokens."""
    failed = int(bool(session.turns) and session.end_reason != "end_turn")
    worst = max((SEVERITY_RANK.get(f.severity, 0) for f in findings), default=0)
    serious = sum(1 for f in findings if f.severity != "info")
    tokens = sum(t.usage.context_tokens + t.usage.output_tokens for t in session.turns)
    return failed, worst, serious, tokens


def worst_first(pairs: Sequence[tuple[Session, Sequence[Finding]]]) -> list[tuple[Session, Sequence[Finding]]]:
    """Sessions with their findings, worst first (stable: equal sessions keep their file order)."""
    return sorted(pairs, key=lambda pair: badness(*pair), reverse=True)


def outcome(session: Session) -> tuple[str, str]:
    """(tone, sentence) for the session's end reason; tone is good / bad / unknown."""
    count = plural(len(session.turns), "turn")
    if session.end_reason not in _OUTCOMES:
        # Not str.format: the end reason comes from the file and may hold braces.
        return "unknown", f"? ended ({one_line(session.end_reason, 40)}) after {count}"
    tone, text = _OUTCOMES[session.end_reason]
    text = text.format(n=count, last=session.turns[-1].index if session.turns else 0)
    if session.end_reason == "error" and session.turns and session.turns[-1].error_type:
        text += f" ({one_line(session.turns[-1].error_type, 80)})"
    return tone, text


def target_of(tool_input: Any) -> str:
    """What a tool call acted on, for display: a path, pattern or command."""
    if isinstance(tool_input, dict):
        for key in _TARGET_KEYS:
            value = tool_input.get(key)
            if isinstance(value, str) and value:
                return value
        for value in tool_input.values():
            if isinstance(value, str) and value:
                return value
        return ""
    return "" if tool_input is None else str(tool_input)


def top_findings(findings: Sequence[Finding], limit: int) -> list[Finding]:
    """At most ``limit`` findings, worst first (errors, then warnings, then info; by turn within each)."""
    return sorted(findings, key=lambda f: (-SEVERITY_RANK.get(f.severity, 0), f.turn, f.kind))[:limit]


def turns_label(finding: Finding) -> str:
    """``T7`` or ``T7–9``: the turns a finding spans."""
    turns = finding.turns or [finding.turn]
    return f"T{min(turns)}" if min(turns) == max(turns) else f"T{min(turns)}–{max(turns)}"


def one_line(text: object, limit: int) -> str:
    """``text`` on one line, clipped to ``limit`` characters, terminal controls made visible."""
    if text is None or text == "":
        return ""
    value = text if isinstance(text, str) else str(text)
    line = clean(" ".join(value[: limit * 4].split()), one_line=True)
    return line if len(line) <= limit else line[: max(0, limit - 1)] + "…"


def shown_turns(s: Summary) -> list[Turn]:
    """The turns a report gives a card, newest first: the last few, and every one a finding points at."""
    keep = {t.index for t in s.session.turns[-LAST_TURNS:]}
    keep.update(index for index, found in s.findings_by_turn.items() if any(f.severity != "info" for f in found))
    if s.decision.turn is not None:
        keep.add(s.decision.turn)
    return [t for t in reversed(s.session.turns) if t.index in keep]


def fmt(n: float) -> str:
    return f"{round(n):,}"


def turn_rows(turns: list[Turn], max_rows: int) -> list[tuple[str, Turn, list[Turn]]]:
    """Chart rows: one per turn, or buckets of turns shown by their largest-context turn."""
    if len(turns) <= max_rows:
        return [(f"T{t.index}", t, [t]) for t in turns]
    size = -(-len(turns) // max_rows)
    rows = []
    for start in range(0, len(turns), size):
        chunk = turns[start:start + size]
        biggest = max(chunk, key=lambda t: t.usage.context_tokens)
        rows.append((f"T{chunk[0].index}–{chunk[-1].index}", biggest, chunk))
    return rows


