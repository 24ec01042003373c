"""Reports that read a session the way the seed article debugs one: backwards from the end.

Outcome first, then the last turns (newest at the top), the findings, the likely decision turn (where
the trouble that is still going on at the end began), and the token budget per turn. ``render_text``
is for terminals (ANSI colour optional, readable without), ``render_html`` a self-contained page.
Only the CLI imports this module, so its cost never reaches an instrumented agent.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_agent_trace.config import Settings
from otel_agent_trace.detectors.base import Thresholds
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
_SEVERITY_ICON = {"error": "✗", "warning": "!", "info": "·"}


# -- what both renderers show ---------------------------------------------------------------------------
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
    decision: tuple[int, str] | None = None
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
    try:
        prices = Settings.from_env()  # honours OTEL_AGENT_TRACE_PRICES
    except (TypeError, ValueError):
        prices = Settings()
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


def decision_turn(session: Session, findings: Sequence[Finding],
                  calls_by_turn: dict[int, list[ToolCall]] | None = None) -> tuple[int, str] | None:
    """The earliest turn that the trouble still going on at the end traces back to, and why.

    Trouble "at the end" is a warning/error finding reaching the last three turns, or the run of turns
    whose tool calls all failed; when nothing reaches the end, the earliest warning/error finding.
    ``no_end_turn`` is the symptom being explained, so it never counts as a cause.
    """
    if not session.turns:
        return None
    last = session.turns[-1].index
    if calls_by_turn is None:
        calls_by_turn = {}
        for call in session.tool_calls:
            calls_by_turn.setdefault(call.turn_index, []).append(call)
    causes = [f for f in findings if f.severity != "info" and f.kind != "no_end_turn"]
    candidates: list[tuple[int, str]] = []
    for finding in causes:
        turns = finding.turns or [finding.turn]
        if max(turns) >= last - 2:
            candidates.append((min(turns), f"{finding.kind}: {finding.message}"))
    streak_end = last if calls_by_turn.get(last) else last - 1  # the final turn may have run no tools
    start = streak_end
    while (calls := calls_by_turn.get(start)) and all(c.is_error for c in calls):
        start -= 1
    if streak_end - start >= 2:
        candidates.append((start + 1, f"every tool call failed from turn {start + 1} to turn {streak_end}"))
    if not candidates:
        candidates = [(min(f.turns or [f.turn]), f"{f.kind}: {f.message}") for f in causes]
    return min(candidates, key=lambda c: c[0]) if candidates else None


def outcome(session: Session) -> tuple[str, str]:
    """(tone, sentence) for the session's end reason; tone is good / bad / unknown."""
    reason = str(session.end_reason).replace("{", "{{").replace("}", "}}")  # from the file: not a format string
    unknown = ("unknown", f"? ended ({reason}) after {{n}}")
    tone, text = _OUTCOMES.get(session.end_reason or "", unknown)
    count = len(session.turns)
    text = text.format(n=f"{count:,} turn{'s' * (count != 1)}",
                       last=session.turns[-1].index if session.turns else 0)
    if session.end_reason == "error" and session.turns and session.turns[-1].error_type:
        text += f" ({session.turns[-1].error_type})"
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


def top_findings(findings: list[Finding], limit: int) -> list[Finding]:
    """At most ``limit`` findings, the most severe kept, shown in turn order."""
    if len(findings) <= limit:
        return findings
    rank = {"error": 0, "warning": 1, "info": 2}
    kept = sorted(findings, key=lambda f: (rank.get(f.severity, 3), f.turn))[:limit]
    return sorted(kept, key=lambda f: (f.turn, f.kind))


def one_line(text: str | None, limit: int) -> str:
    if not text:
        return ""
    line = " ".join(text[: limit * 4].split())
    return line if len(line) <= limit else line[: max(0, limit - 1)] + "…"


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


# -- terminal -------------------------------------------------------------------------------------------
class _Paint:
    _CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34",
              "magenta": "35", "cyan": "36", "grey": "90"}

    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not styles or not text:
            return text
        codes = ";".join(self._CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


def render_text(session: Session, findings: Sequence[Finding] | None = None, *, color: bool = False,
                width: int = 100) -> str:
    s = summarize(session, findings)
    paint = _Paint(color)
    width = max(60, width)
    out: list[str] = []

    def rule(title: str) -> None:
        out.append("")
        out.append(paint(f"── {title} " + "─" * max(0, width - len(title) - 4), "bold", "cyan"))

    models = sorted({t.model for t in session.turns if t.model})
    head = f"Session {session.id}"
    meta = " · ".join(x for x in (session.agent_name, ", ".join(models), session.source) if x)
    out.append(paint(head, "bold") + paint(f"  {one_line(meta, width - len(head) - 2)}", "dim"))
    if session.parent_id:
        out.append(paint(f"sub-agent of {session.parent_id}", "dim"))
    if session.task:
        out.append(f"task: {one_line(session.task, width - 6)}")

    rule("OUTCOME")
    tone, sentence = outcome(session)
    out.append(paint(sentence, "bold", {"good": "green", "bad": "red"}.get(tone, "yellow")))
    t = s.totals
    parts = [f"{label} {fmt(t[key])}" for key, label in
             (("input", "fresh"), ("cache_read", "cache read"), ("cache_write", "cache write")) if t[key]]
    out.append(f"tokens: {fmt(t['input'] + t['cache_read'] + t['cache_write'])} in"
               + (f" ({' · '.join(parts)})" if len(parts) > 1 else "") + f" · {fmt(t['output'])} out")
    if s.peak[0]:
        out.append(f"peak context: {fmt(s.peak[0])} tokens at turn {s.peak[1]}")
    if t["cache_read"]:
        saved = f" ≈ ${s.saved_usd:,.2f} saved" if s.saved_usd >= 0.005 else ""
        out.append(paint(f"cache: {fmt(t['cache_read'])} tokens served from cache{saved}", "green"))
    calls = len(session.tool_calls)
    errors = paint(f"{s.tool_errors} failed", "red") if s.tool_errors else "0 failed"
    out.append(f"tool calls: {calls} ({errors}) · findings: {len(s.findings)}")

    rule("LIKELY DECISION TURN")
    if s.decision is None:
        out.append(paint("none: no warning-level finding and no failing streak to trace back", "dim"))
    else:
        turn_no, why = s.decision
        lead = f"◆ turn {turn_no} — "
        wrapped = _wrap(why, width - len(lead), 3)
        out.append(paint(lead, "bold", "magenta") + wrapped[0])
        out.extend(" " * len(lead) + line for line in wrapped[1:])
        decided = next((x for x in session.turns if x.index == turn_no), None)
        if decided is not None:
            # What the model had in front of it when it decided: the results of the previous turn's tools.
            seen = s.calls_by_turn.get(turn_no - 1, ())
            if seen:
                out.append(paint("  it had just read:", "dim"))
            for call in seen:
                size = paint(f"→ [{fmt(call.result_chars)} chars] ", "dim")
                result = one_line(call.result, max(20, width - 50))
                out.append(f"    {paint(call.name, 'cyan')} {one_line(target_of(call.input), 30)} {size}"
                           + (paint("✗ " + result, "red") if call.is_error else result))
            out.append(paint("  and then:", "dim"))
            out.extend(_turn_body(decided, s, paint, width, indent="    "))

    shown = session.turns[-LAST_TURNS:][::-1]
    rule(f"LAST {len(shown)} TURNS (newest first)")
    for n, turn in enumerate(shown):
        position = len(session.turns) - 1 - n
        out.extend(_turn_block(turn, session.turns[position - 1] if position else None, s, paint, width))
    if len(session.turns) > len(shown):
        out.append(paint(f"… {len(session.turns) - len(shown)} earlier turns not shown", "dim"))

    rule(f"FINDINGS ({len(s.findings)})")
    if not s.findings:
        out.append(paint("none", "dim"))
    for finding in top_findings(s.findings, MAX_FINDINGS_TEXT):
        out.append(_finding_line(finding, paint, width))
    if len(s.findings) > MAX_FINDINGS_TEXT:
        out.append(paint(f"… {len(s.findings) - MAX_FINDINGS_TEXT} more, mostly less severe "
                         "(otel-agent-trace findings FILE lists all)", "dim"))

    rule("TOKEN BUDGET PER TURN")
    out.extend(_chart(s, paint, width))
    return "\n".join(out) + "\n"


def _finding_line(finding: Finding, paint: _Paint, width: int) -> str:
    turns = finding.turns or [finding.turn]
    where = f"T{turns[0]}" if turns[0] == turns[-1] else f"T{turns[0]}–{turns[-1]}"
    tone = {"error": "red", "warning": "yellow"}.get(finding.severity, "dim")
    lead = f"{_SEVERITY_ICON.get(finding.severity, '·')} {finding.severity:<7} {finding.kind:<18} {where:<9} "
    wrapped = _wrap(finding.message, width - len(lead), 3)
    return "\n".join([paint(lead, tone) + wrapped[0], *(" " * len(lead) + line for line in wrapped[1:])])


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    lines = textwrap.wrap(" ".join(text[:2_000].split()), max(20, width)) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = one_line(lines[-1] + " …", max(20, width))
    return lines


def _turn_block(turn: Turn, prev: Turn | None, s: Summary, paint: _Paint, width: int) -> list[str]:
    ctx = turn.usage.context_tokens
    delta = ctx - prev.usage.context_tokens if prev else 0
    jump = paint(" ▲", "red", "bold") if turn.index in s.jumps else ""
    stop = turn.stop_reason or "?"
    head = (paint(f"T{turn.index:<4}", "bold") + f" {stop:<10} context {fmt(ctx)}"
            + (f" ({delta:+,})" if prev else "") + jump + f"  out {fmt(turn.usage.output_tokens)}")
    if s.decision and s.decision[0] == turn.index:
        head += paint("  ◆ decision", "magenta", "bold")
    kinds = sorted({f.kind for f in s.findings_by_turn.get(turn.index, ())})
    if kinds:
        head += "  " + paint("[" + ", ".join(kinds) + "]", "yellow")
    return [head, *_turn_body(turn, s, paint, width, indent="      ")]


def _turn_body(turn: Turn, s: Summary, paint: _Paint, width: int, indent: str) -> list[str]:
    lines = []
    room = width - len(indent) - 8
    if turn.after_compaction:
        lines.append(indent + paint("(context was compacted before this turn)", "dim"))
    if turn.text:
        lines.append(indent + paint("says  ", "dim") + f"\"{one_line(turn.text, room - 2)}\"")
    calls = {c.tool_use_id: c for c in s.calls_by_turn.get(turn.index, ())}
    for use in turn.tool_uses:
        lines.append(indent + paint("calls ", "dim") + paint(use.name, "cyan") + " "
                     + one_line(target_of(use.input), room - len(use.name) - 1))
        call = calls.get(use.id)
        if call is None:
            lines.append(indent + paint("  ⤷ (no result recorded)", "dim"))
        elif call.is_error:
            lines.append(indent + paint("  ⤷ ✗ " + one_line(call.result, room - 4), "red"))
        else:
            size = f"[{fmt(call.result_chars)} chars] " if call.result_chars > 400 else ""
            lines.append(indent + paint("  ⤷ ", "dim") + paint(size, "yellow")
                         + one_line(call.result, room - 4 - len(size)))
    if turn.error_type:
        lines.append(indent + paint(f"✗ the model call failed: {turn.error_type}", "red"))
    return lines


_SEGMENTS = (("input", "█", "blue"), ("cache_write", "▓", "magenta"), ("cache_read", "▒", "grey"),
             ("output", "░", "yellow"))


def _chart(s: Summary, paint: _Paint, width: int) -> list[str]:
    turns = s.session.turns
    if not turns:
        return [paint("no turns", "dim")]
    rows = turn_rows(turns, MAX_CHART_ROWS)
    label_w = max(len(r[0]) for r in rows) + 1
    bar_w = max(10, width - label_w - 22)
    top = max(r[1].usage.context_tokens + r[1].usage.output_tokens for r in rows) or 1
    legend = "  ".join(paint(ch, colour) + f" {name.replace('_', ' ')}" for name, ch, colour in _SEGMENTS)
    lines = [legend + paint(f"   ▲ jump   1 column ≈ {fmt(top / bar_w)} tokens", "dim")]
    for label, turn, chunk in rows:
        u = turn.usage
        values = {"input": u.input_tokens, "cache_write": u.cache_creation_input_tokens,
                  "cache_read": u.cache_read_input_tokens, "output": u.output_tokens}
        bar, used = "", 0
        for name, ch, colour in _SEGMENTS:
            cols = round((used + values[name]) * bar_w / top) - round(used * bar_w / top)
            used += values[name]
            bar += paint(ch * cols, colour)
        visible = round(used * bar_w / top)
        jump = any(t.index in s.jumps for t in chunk)
        mark = paint("▲", "red", "bold") if jump else " "
        decided = s.decision is not None and any(t.index == s.decision[0] for t in chunk)
        note = paint(" ◆", "magenta") if decided else ""
        lines.append(f"{label:>{label_w}} {mark}{bar}{' ' * (bar_w - visible)} {fmt(u.context_tokens):>8}"
                     f" +{fmt(u.output_tokens)}{note}")
    return lines


# -- HTML -----------------------------------------------------------------------------------------------
_CSS = """
:root{--bg:#0f172a;--card:#fff;--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--good:#16a34a;--bad:#dc2626;
--warn:#d97706;--accent:#7c3aed;--fresh:#3b82f6;--cw:#a78bfa;--cr:#94a3b8;--out:#f59e0b}
*{box-sizing:border-box}body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;
color:var(--ink);background:#f1f5f9}header.top{background:var(--bg);color:#e2e8f0;padding:18px 32px}
header.top h1{margin:0;font-size:18px;font-weight:600}header.top nav a{color:#93c5fd;margin-right:14px}
main{max-width:1180px;margin:0 auto;padding:24px 32px}section.session{margin-bottom:48px}
h2{font-size:20px;margin:0 0 4px}h3{font-size:13px;text-transform:uppercase;letter-spacing:.06em;
color:var(--muted);margin:28px 0 10px}.meta{color:var(--muted);font-size:13px}.task{margin:8px 0 0}
.outcome{display:inline-block;margin-top:14px;padding:8px 14px;border-radius:8px;font-weight:600}
.outcome.good{background:#dcfce7;color:#166534}.outcome.bad{background:#fee2e2;color:#991b1b}
.outcome.unknown{background:#fef3c7;color:#92400e}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(132px,1fr));gap:12px;margin-top:16px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.stat b{display:block;font-size:20px}.stat span{color:var(--muted);font-size:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px}
.decision{border-left:4px solid var(--accent);background:#f5f3ff}.decision b{color:var(--accent)}
.legend{display:flex;gap:16px;font-size:12px;color:var(--muted);margin-bottom:6px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:7px 8px;
border-bottom:1px solid var(--line);vertical-align:top}th{color:var(--muted);font-weight:600}
.sev{font-weight:600;border-radius:4px;padding:1px 6px;font-size:12px}.sev.error{background:#fee2e2;
color:#991b1b}.sev.warning{background:#fef3c7;color:#92400e}.sev.info{background:#e2e8f0;color:#334155}
.turn{margin-bottom:12px}.turn header{display:flex;flex-wrap:wrap;gap:10px;align-items:baseline}
.turn .idx{font-weight:700;font-size:15px}.pill{font-size:12px;border-radius:999px;padding:1px 8px;
background:#e2e8f0}.pill.jump{background:#fee2e2;color:#991b1b}.pill.kind{background:#fef3c7;color:#92400e}
.pill.dec{background:#ede9fe;color:var(--accent)}.says{color:#334155;margin:6px 0}
.call{margin:6px 0 0;padding-left:10px;border-left:3px solid var(--line)}.call.err{border-color:var(--bad)}
.call code{font-weight:600;color:#0369a1}pre{margin:4px 0 0;white-space:pre-wrap;word-break:break-word;
font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,monospace;background:#f8fafc;padding:6px 8px;
border-radius:6px;max-height:9em;overflow:hidden}.call.err pre{background:#fef2f2;color:#991b1b}
svg text{font:11px system-ui,sans-serif;fill:#64748b}.nw{white-space:nowrap}
"""


def render_html(sessions_with_findings: Iterable[tuple[Session, Sequence[Finding] | None]],
                title: str = "otel-agent-trace report") -> str:
    """One self-contained page (inline CSS and SVG, no scripts) for one or more sessions."""
    sections, nav = [], []
    for n, (session, findings) in enumerate(sessions_with_findings):
        anchor = f"s{n + 1}"
        nav.append(f'<a href="#{anchor}">{html.escape(session.id)}</a>')
        chart_id = "token-chart" if n == 0 else f"token-chart-{n + 1}"
        sections.append(_html_session(summarize(session, findings), anchor, chart_id))
    nav_html = f"<nav>{''.join(nav)}</nav>" if len(nav) > 1 else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
            f"</title><style>{_CSS}</style></head><body><header class=\"top\"><h1>{html.escape(title)}</h1>"
            f"{nav_html}</header><main>{''.join(sections)}</main></body></html>\n")


def _html_session(s: Summary, anchor: str, chart_id: str) -> str:
    e = html.escape
    session, t = s.session, s.totals
    tone, sentence = outcome(session)
    models = ", ".join(sorted({x.model for x in session.turns if x.model}))
    meta = " · ".join(x for x in (session.agent_name, models, session.source,
                                  f"sub-agent of {session.parent_id}" if session.parent_id else "") if x)
    parts = [f'<section class="session" id="{anchor}"><h2>{e(session.id)}</h2>'
             f'<div class="meta">{e(meta)}</div>']
    if session.task:
        parts.append(f'<div class="task"><b>Task:</b> {e(one_line(session.task, 400))}</div>')
    parts.append(f'<div class="outcome {tone}">{e(sentence)}</div><div class="stats">')
    saved = f" · ≈ ${s.saved_usd:,.2f} saved" if s.saved_usd >= 0.005 else ""
    stats = [(fmt(len(session.turns)), "turns"), (_big(s.peak[0]), f"peak context (turn {s.peak[1]})"),
             (_big(t["input"] + t["cache_read"] + t["cache_write"]), "context tokens read"),
             (_big(t["output"]), "output tokens"), (_big(t["cache_read"]), "cache read tokens" + saved),
             (f"{len(session.tool_calls)} / {s.tool_errors}", "tool calls / failed"),
             (fmt(len(s.findings)), "findings")]
    parts.extend(f'<div class="stat"><b>{e(v)}</b><span>{e(label)}</span></div>' for v, label in stats)
    parts.append("</div><h3>Likely decision turn</h3>")
    if s.decision is None:
        parts.append('<div class="card decision">None: no warning-level finding and no failing streak.</div>')
    else:
        parts.append(f'<div class="card decision"><b>Turn {s.decision[0]}</b> — {e(s.decision[1])}</div>')
    parts.append(f'<h3>Token budget per turn</h3><div class="card">{_legend()}{_svg(s, chart_id)}</div>')
    parts.append(f"<h3>Findings ({len(s.findings)})</h3>")
    if s.findings:
        rows = "".join(
            f'<tr><td><span class="sev {e(f.severity)}">{e(f.severity)}</span></td><td>{e(f.kind)}</td>'
            f'<td class="nw">{e(_turns_label(f))}</td><td>{e(f.message)}</td></tr>'
            for f in top_findings(s.findings, MAX_FINDINGS_HTML))
        if len(s.findings) > MAX_FINDINGS_HTML:
            rows += (f'<tr><td colspan="4" class="meta">{len(s.findings) - MAX_FINDINGS_HTML} less severe '
                     "findings not shown</td></tr>")
        parts.append(f'<div class="card"><table><tr><th>severity</th><th>kind</th><th>turns</th>'
                     f"<th>message</th></tr>{rows}</table></div>")
    else:
        parts.append('<div class="card">No findings.</div>')
    shown = session.turns[-LAST_TURNS:][::-1]
    parts.append(f"<h3>Last {len(shown)} turns, newest first</h3>")
    parts.extend(_html_turn(turn, s) for turn in shown)
    if len(session.turns) > len(shown):
        parts.append(f'<p class="meta">{len(session.turns) - len(shown)} earlier turns not shown.</p>')
    parts.append("</section>")
    return "".join(parts)


def _turns_label(f: Finding) -> str:
    turns = f.turns or [f.turn]
    return str(turns[0]) if turns[0] == turns[-1] else f"{turns[0]}–{turns[-1]}"


def _legend() -> str:
    items = [("--fresh", "input"), ("--cw", "cache write"), ("--cr", "cache read"), ("--out", "output")]
    spans = "".join(f'<span><i style="background:var({v})"></i>{name}</span>' for v, name in items)
    return f'<div class="legend">{spans}<span style="color:var(--bad)">▲ token jump</span>' \
           f'<span style="color:var(--accent)">┆ decision turn</span>' \
           f'<span style="color:var(--warn)">● turn with findings</span></div>'


def _html_turn(turn: Turn, s: Summary) -> str:
    e = html.escape
    usage = turn.usage
    pills = [f'<span class="pill">{e(turn.stop_reason or "?")}</span>',
             f'<span class="pill">context {fmt(usage.context_tokens)} · '
             f"out {fmt(usage.output_tokens)}</span>"]
    if turn.index in s.jumps:
        pills.append('<span class="pill jump">▲ token jump</span>')
    if s.decision and s.decision[0] == turn.index:
        pills.append('<span class="pill dec">◆ decision turn</span>')
    if turn.after_compaction:
        pills.append('<span class="pill">after compaction</span>')
    for kind in sorted({f.kind for f in s.findings_by_turn.get(turn.index, ())}):
        pills.append(f'<span class="pill kind">{e(kind)}</span>')
    body = [f'<div class="says">“{e(one_line(turn.text, 600))}”</div>'] if turn.text else []
    calls = {c.tool_use_id: c for c in s.calls_by_turn.get(turn.index, ())}
    for use in turn.tool_uses:
        call = calls.get(use.id)
        result = "(no result recorded)" if call is None else call.result[:1_200]
        cls = "call err" if call is not None and call.is_error else "call"
        size = f" · {fmt(call.result_chars)} chars" if call is not None else ""
        body.append(f'<div class="{cls}"><code>{e(use.name)}</code> {e(one_line(target_of(use.input), 160))}'
                    f'<span class="meta">{size}</span><pre>{e(result)}</pre></div>')
    if turn.error_type:
        body.append(f'<div class="call err"><pre>model call failed: {e(turn.error_type)}</pre></div>')
    return (f'<div class="card turn"><header><span class="idx">Turn {turn.index}</span>{"".join(pills)}'
            f"</header>{''.join(body)}</div>")


def _svg(s: Summary, chart_id: str) -> str:
    turns = s.session.turns
    w, h, left, right, top_pad, bottom = 1100, 290, 56, 12, 18, 38
    plot_w, plot_h = w - left - right, h - top_pad - bottom
    rows = turn_rows(turns, MAX_CHART_BARS) if turns else []
    peak = max((r[1].usage.context_tokens + r[1].usage.output_tokens for r in rows), default=0) or 1
    step = plot_w / max(1, len(rows))
    bar = min(56.0, max(1.0, step * 0.78))  # a 2-turn session should not draw slabs
    out = [f'<svg id="{chart_id}" role="img" aria-label="tokens per turn" viewBox="0 0 {w} {h}" '
           f'width="100%" xmlns="http://www.w3.org/2000/svg">']
    for i in range(5):  # gridlines at quarters of the peak
        value = peak * i / 4
        y = top_pad + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_short(value)}</text>')
    label_every = max(1, len(rows) // 10)
    for n, (label, turn, chunk) in enumerate(rows):
        x = left + n * step + (step - bar) / 2
        u = turn.usage
        y = top_pad + plot_h
        tip = (f"{label}: input {fmt(u.input_tokens)}, cache write {fmt(u.cache_creation_input_tokens)}, "
               f"cache read {fmt(u.cache_read_input_tokens)}, output {fmt(u.output_tokens)}")
        out.append(f"<g><title>{html.escape(tip)}</title>")
        for value, colour in ((u.input_tokens, "--fresh"), (u.cache_creation_input_tokens, "--cw"),
                              (u.cache_read_input_tokens, "--cr"), (u.output_tokens, "--out")):
            height = plot_h * value / peak
            if height <= 0:
                continue
            y -= height
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                       f'style="fill:var({colour})"/>')
        out.append("</g>")
        cx = x + bar / 2
        if any(t.index in s.jumps for t in chunk):
            triangle = f"M{cx - 5:.1f},{y - 4:.1f} L{cx + 5:.1f},{y - 4:.1f} L{cx:.1f},{y - 12:.1f} Z"
            out.append(f'<path d="{triangle}" fill="#dc2626"><title>token jump at {label}</title></path>')
        if s.decision is not None and any(t.index == s.decision[0] for t in chunk):
            out.append(f'<path d="M{cx:.1f},{top_pad} V{top_pad + plot_h}" stroke="#7c3aed" '
                       f'stroke-dasharray="4 3" stroke-width="1.5">'
                       f"<title>decision turn {s.decision[0]}</title></path>")
        flagged = sorted({f.kind for t in chunk for f in s.findings_by_turn.get(t.index, ())
                          if f.severity != "info"})
        if flagged:  # a dot under each turn a warning/error finding involves
            out.append(f'<circle cx="{cx:.1f}" cy="{top_pad + plot_h + 7}" r="3" fill="#d97706">'
                       f"<title>{html.escape(label)}: {html.escape(', '.join(flagged))}</title></circle>")
        if n % label_every == 0 and len(rows) - n >= label_every // 2:
            first = label[1:].split("–")[0]  # a bucket is labelled by its first turn
            out.append(f'<text x="{cx:.1f}" y="{h - 8}" text-anchor="middle">{html.escape(first)}</text>')
    out.append("</svg>")
    return "".join(out)


def _big(value: int) -> str:
    """Stat cards: exact up to a million, then 437.4M so the number fits its card."""
    return fmt(value) if value < 1_000_000 else _short(value)


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1e6:.1f}M"
    if value >= 1_000:
        return f"{value / 1e3:.0f}k" if value >= 10_000 else f"{value / 1e3:.1f}k"
    return f"{value:.0f}"
