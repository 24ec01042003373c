"""The terminal report, rendered by rich: colour only on a terminal, every file-borne field sanitized."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from otel_agent_trace.files.report.summary import (
    LAST_TURNS,
    MAX_CHART_ROWS,
    MAX_FINDINGS_TEXT,
    Summary,
    fmt,
    one_line,
    outcome,
    plural,
    shown_turns,
    summarize,
    target_of,
    top_findings,
    turn_rows,
    turns_label,
)
from otel_agent_trace.files.report.terminal import clean, render, styled
from otel_agent_trace.model.records import Finding, Session, Turn

_SEVERITY_ICON = {"error": "✗", "warning": "!", "info": "·"}
_SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "dim"}
_SEGMENTS = (("input", "█", "blue"), ("cache_write", "▓", "magenta"), ("cache_read", "▒", "bright_black"),
             ("output", "░", "yellow"))


def render_text(session: Session, findings: Sequence[Finding] | None = None, *, color: bool = False,
                width: int = 100) -> str:
    """The work-backwards report of one session as terminal text (ANSI colour only when ``color``)."""
    s = summarize(session, findings)
    width = max(60, width)
    out: list[Any] = []

    def rule(title: str) -> None:
        out.append(styled(""))
        out.append(styled((f"── {title} " + "─" * max(0, width - len(title) - 4), "bold cyan")))

    models = sorted({clean(t.model, one_line=True) for t in session.turns if t.model})
    head = f"Session {clean(session.id, one_line=True)}"
    meta = " · ".join(x for x in (session.agent_name, ", ".join(models), session.source) if x)
    out.append(styled((head, "bold"), (f"  {one_line(meta, max(0, width - len(head) - 2))}", "dim")))
    if session.parent_id:
        out.append(styled((f"sub-agent of {one_line(session.parent_id, width - 14)}", "dim")))
    if session.task:
        out.append(styled(f"task: {one_line(session.task, width - 6)}"))

    rule("OUTCOME")
    tone, sentence = outcome(session)
    out.append(styled((sentence, "bold " + {"good": "green", "bad": "red"}.get(tone, "yellow"))))
    t = s.totals
    parts = [f"{label} {fmt(t[key])}" for key, label in
             (("input", "fresh"), ("cache_read", "cache read"), ("cache_write", "cache write")) if t[key]]
    out.append(styled(f"tokens: {fmt(t['input'] + t['cache_read'] + t['cache_write'])} in"
                     + (f" ({' · '.join(parts)})" if len(parts) > 1 else "") + f" · {fmt(t['output'])} out"))
    if s.peak[0]:
        out.append(styled(f"peak context: {fmt(s.peak[0])} tokens at turn {s.peak[1]}"))
    if t["cache_read"]:
        saved = f" ≈ ${s.saved_usd:,.2f} saved" if s.saved_usd >= 0.005 else ""
        out.append(styled((f"cache: {fmt(t['cache_read'])} tokens served from cache{saved}", "green")))
    failed = (f"{s.tool_errors} failed", "red") if s.tool_errors else "0 failed"
    out.append(styled(f"tool calls: {len(session.tool_calls)} (", failed,
                     f") · {plural(len(s.findings), 'finding')}"))

    rule("LIKELY DECISION TURN")
    out.extend(_decision(s, width))

    shown = shown_turns(s)
    earlier = len(shown) - min(LAST_TURNS, len(session.turns))
    title = f"LAST {plural(min(LAST_TURNS, len(session.turns)), 'TURN', 'TURNS')}"
    rule(title + (f" AND {earlier} EARLIER WITH FINDINGS" if earlier > 0 else "") + " (newest first)"
         if session.turns else "TURNS")
    if not session.turns:
        out.append(styled(("none recorded", "dim")))
    previous = {turn.index: session.turns[n - 1] for n, turn in enumerate(session.turns) if n}
    for turn in shown:
        out.extend(_turn_block(turn, previous.get(turn.index), s, width))
    hidden = len(session.turns) - len(shown)
    if hidden:
        out.append(styled((f"… {plural(hidden, 'earlier turn')} without findings not shown", "dim")))

    rule(f"FINDINGS ({len(s.findings)}), worst first")
    if not s.findings:
        out.append(styled(("none", "dim")))
    for finding in top_findings(s.findings, MAX_FINDINGS_TEXT):
        out.extend(_finding_lines(finding, width))
    if len(s.findings) > MAX_FINDINGS_TEXT:
        out.append(styled((f"… {len(s.findings) - MAX_FINDINGS_TEXT} more, less severe "
                          "(otel-agent-trace findings FILE lists all)", "dim")))

    rule("TOKEN BUDGET PER TURN")
    out.extend(_chart(s, width))
    return render(out, color=color, width=width)


def _decision(s: Summary, width: int) -> list[Any]:
    turn_no, why = s.decision.turn, s.decision.reason
    if turn_no is None:
        return [styled((f"none: {one_line(why, width - 6)}", "dim"))]
    lead = f"◆ turn {turn_no} — "
    wrapped = _wrap(why, width - len(lead), 4)
    lines = [styled((lead, "bold magenta"), wrapped[0])]
    lines.extend(styled(" " * len(lead) + line) for line in wrapped[1:])
    decided = next((x for x in s.session.turns if x.index == turn_no), None)
    if decided is not None:
        # What the model had in front of it when it decided: the results of the previous turn's tools.
        seen = s.calls_by_turn.get(turn_no - 1, ())
        if seen:
            lines.append(styled(("  it had just read:", "dim")))
        for call in seen:
            result = one_line(call.result, max(20, width - 50))
            lines.append(styled("    ", (one_line(call.name, 30), "cyan"), f" {one_line(target_of(call.input), 30)} ",
                               (f"→ [{fmt(call.result_chars)} chars] ", "dim"),
                               ("✗ " + result, "red") if call.is_error else result))
        lines.append(styled(("  and then:", "dim")))
        lines.extend(_turn_body(decided, s, width, indent="    "))
    return lines


def _finding_lines(finding: Finding, width: int) -> list[Any]:
    style = _SEVERITY_STYLE.get(finding.severity, "dim")
    lead = (f"{_SEVERITY_ICON.get(finding.severity, '·')} {finding.severity:<7} "
            f"{one_line(finding.kind, 18):<18} {turns_label(finding):<9} ")
    wrapped = _wrap(finding.message, width - len(lead), 3)
    return [styled((lead, style), wrapped[0]), *(styled(" " * len(lead) + line) for line in wrapped[1:])]


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    lines = textwrap.wrap(clean(" ".join(text[:2_000].split()), one_line=True), max(20, width)) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = one_line(lines[-1] + " …", max(20, width))
    return lines


def _turn_block(turn: Turn, prev: Turn | None, s: Summary, width: int) -> list[Any]:
    ctx = turn.usage.context_tokens
    delta = ctx - prev.usage.context_tokens if prev else 0
    stop = one_line(turn.stop_reason, 12) or "?"
    head = styled((f"T{turn.index:<4}", "bold"), f" {stop:<10} context {fmt(ctx)}" + (f" ({delta:+,})" if prev else ""))
    if turn.index in s.jumps:
        head.append(" ▲", "bold red")
    head.append(f"  out {fmt(turn.usage.output_tokens)}")
    if s.decision.turn == turn.index:
        head.append("  ◆ decision", "bold magenta")
    kinds = sorted({one_line(f.kind, 30) for f in s.findings_by_turn.get(turn.index, ())})
    if kinds:
        head.append("  [" + ", ".join(kinds) + "]", "yellow")
    return [head, *_turn_body(turn, s, width, indent="      ")]


def _turn_body(turn: Turn, s: Summary, width: int, indent: str) -> list[Any]:
    lines = []
    room = width - len(indent) - 8
    if turn.after_compaction:
        lines.append(styled(indent, ("(context was compacted before this turn)", "dim")))
    if turn.text:
        lines.append(styled(indent, ("says  ", "dim"), f"\"{one_line(turn.text, room - 2)}\""))
    calls = {c.tool_use_id: c for c in s.calls_by_turn.get(turn.index, ())}
    for use in turn.tool_uses:
        call = calls.get(use.id)
        name = one_line(use.name, 40)
        lines.append(styled(indent, ("calls ", "dim"), (name, "cyan"),
                           f" {one_line(target_of(use.input), max(10, room - len(name) - 1))}"))
        if call is None:
            lines.append(styled(indent, ("  ⤷ (no result recorded)", "dim")))
        elif call.is_error:
            lines.append(styled(indent, ("  ⤷ ", "dim"), ("✗ " + one_line(call.result, room - 6), "red")))
        else:
            size = f"[{fmt(call.result_chars)} chars] " if call.result_chars > 2_000 else ""
            lines.append(styled(indent, ("  ⤷ ", "dim"), (size, "yellow"),
                               one_line(call.result, room - 4 - len(size))))
    if turn.error_type:
        lines.append(styled(indent, (f"✗ the model call failed: {one_line(turn.error_type, room - 24)}", "red")))
    return lines


def _chart(s: Summary, width: int) -> list[Any]:
    turns = s.session.turns
    if not turns:
        return [styled(("no turns", "dim"))]
    rows = turn_rows(turns, MAX_CHART_ROWS)
    label_w = max(len(r[0]) for r in rows) + 1
    bar_w = max(10, width - label_w - 22)
    top = max(r[1].usage.context_tokens + r[1].usage.output_tokens for r in rows) or 1
    legend = styled()
    for name, ch, colour in _SEGMENTS:
        legend.append(ch, colour)
        legend.append(f" {name.replace('_', ' ')}  ")
    legend.append(f" ▲ jump   1 column ≈ {fmt(top / bar_w)} tokens", "dim")
    lines = [legend]
    for label, turn, chunk in rows:
        u = turn.usage
        values = {"input": u.input_tokens, "cache_write": u.cache_creation_input_tokens,
                  "cache_read": u.cache_read_input_tokens, "output": u.output_tokens}
        line = styled(f"{label:>{label_w}} ")
        line.append("▲" if any(t.index in s.jumps for t in chunk) else " ", "bold red")
        used = 0
        for name, ch, colour in _SEGMENTS:
            cols = round((used + values[name]) * bar_w / top) - round(used * bar_w / top)
            used += values[name]
            line.append(ch * max(0, cols), colour)
        line.append(" " * max(0, bar_w - round(used * bar_w / top)))
        line.append(f" {fmt(u.context_tokens):>8} +{fmt(u.output_tokens)}")
        if any(t.index == s.decision.turn for t in chunk):
            line.append(" ◆", "magenta")
        lines.append(line)
    return lines
