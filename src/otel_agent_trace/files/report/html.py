"""The self-contained HTML report: worst session first, findings linked to their turn cards, no scripts."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from otel_agent_trace.files.report.summary import (
    MAX_CHART_BARS,
    MAX_FINDINGS_HTML,
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
    worst_first,
)
from otel_agent_trace.files.report.terminal import clean
from otel_agent_trace.model.records import Finding, Session, Turn

MAX_COLLAPSED_TURNS = 500  # turns without findings, folded away; past this only counted

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
header.top nav{display:flex;flex-wrap:wrap;gap:6px 14px;margin-top:8px;font-size:13px}
header.top nav a.bad{color:#fca5a5}.turn:target{outline:3px solid var(--accent)}
details.rest summary{cursor:pointer;color:var(--muted);margin:8px 0}td a{color:#0369a1}
"""


def render_html(sessions_with_findings: Iterable[tuple[Session, Sequence[Finding] | None]],
                title: str = "otel-agent-trace report") -> str:
    """One self-contained page (inline CSS and SVG, no scripts) for one or more sessions, worst first."""
    pairs = [(session, list(session.findings if found is None else found))
             for session, found in sessions_with_findings]
    sections, nav = [], []
    for n, (session, findings) in enumerate(worst_first(pairs)):
        anchor = f"s{n + 1}"
        summary = summarize(session, findings)
        tone, _ = outcome(session)
        label = " · ".join(x for x in (one_line(session.agent_name or session.id[:12], 40),
                                       "✓ " + str(session.end_reason) if tone == "good"
                                       else "✗ " + one_line(session.end_reason or "unknown", 20),
                                       plural(len(session.turns), "turn"), plural(len(findings), "finding")) if x)
        nav.append(f'<a class="{tone}" href="#{anchor}" title="{html.escape(one_line(session.id, 200))}">'
                   f"{html.escape(label)}</a>")
        chart_id = "token-chart" if n == 0 else f"token-chart-{n + 1}"
        sections.append(_html_session(summary, anchor, chart_id))
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
    parts = [f'<section class="session" id="{anchor}"><h2>{e(one_line(session.id, 200))}</h2>'
             f'<div class="meta">{e(one_line(meta, 400))}</div>']
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
    if s.decision.turn is None:
        parts.append(f'<div class="card decision">None: {e(one_line(s.decision.reason, 600))}</div>')
    else:
        turn = s.decision.turn
        parts.append(f'<div class="card decision"><a href="#{anchor}-t{turn}"><b>Turn {turn}</b></a> — '
                     f"{e(one_line(s.decision.reason, 1_200))}</div>")
    parts.append(f'<h3>Token budget per turn</h3><div class="card">{_legend()}{_svg(s, chart_id)}</div>')
    parts.append(f"<h3>Findings ({len(s.findings)}), worst first</h3>")
    if s.findings:
        rows = "".join(
            f'<tr><td><span class="sev {e(f.severity)}">{e(one_line(f.severity, 20))}</span></td>'
            f"<td>{e(one_line(f.kind, 40))}</td>"
            f'<td class="nw"><a href="#{anchor}-t{f.turn}">{e(turns_label(f))}</a></td>'
            f"<td>{e(one_line(f.message, 2_000))}</td></tr>"
            for f in top_findings(s.findings, MAX_FINDINGS_HTML))
        if len(s.findings) > MAX_FINDINGS_HTML:
            rows += (f'<tr><td colspan="4" class="meta">{len(s.findings) - MAX_FINDINGS_HTML} less severe '
                     "findings not shown</td></tr>")
        parts.append(f'<div class="card"><table><tr><th>severity</th><th>kind</th><th>turns</th>'
                     f"<th>message</th></tr>{rows}</table></div>")
    else:
        parts.append('<div class="card">No findings.</div>')
    shown = shown_turns(s)
    parts.append(f"<h3>Turns with findings and the last turns, newest first ({len(shown)})</h3>")
    parts.extend(_html_turn(turn, s, anchor) for turn in shown)
    kept = {turn.index for turn in shown}
    rest = [turn for turn in reversed(session.turns) if turn.index not in kept]
    if rest:
        cards = "".join(_html_turn(turn, s, anchor) for turn in rest[:MAX_COLLAPSED_TURNS])
        more = (f'<p class="meta">{len(rest) - MAX_COLLAPSED_TURNS} more not shown.</p>'
                if len(rest) > MAX_COLLAPSED_TURNS else "")
        parts.append(f'<details class="rest"><summary>{plural(len(rest), "other turn")} without findings'
                     f"</summary>{cards}{more}</details>")
    parts.append("</section>")
    return "".join(parts)


def _legend() -> str:
    items = [("--fresh", "input"), ("--cw", "cache write"), ("--cr", "cache read"), ("--out", "output")]
    spans = "".join(f'<span><i style="background:var({v})"></i>{name}</span>' for v, name in items)
    return f'<div class="legend">{spans}<span style="color:var(--bad)">▲ token jump</span>' \
           f'<span style="color:var(--accent)">┆ decision turn</span>' \
           f'<span style="color:var(--warn)">● a warning or error was seen here</span></div>'


def _html_turn(turn: Turn, s: Summary, anchor: str) -> str:
    e = html.escape
    usage = turn.usage
    pills = [f'<span class="pill">{e(one_line(turn.stop_reason, 20) or "?")}</span>',
             f'<span class="pill">context {fmt(usage.context_tokens)} · '
             f"out {fmt(usage.output_tokens)}</span>"]
    if turn.index in s.jumps:
        pills.append('<span class="pill jump">▲ token jump</span>')
    if s.decision.turn == turn.index:
        pills.append('<span class="pill dec">◆ decision turn</span>')
    if turn.after_compaction:
        pills.append('<span class="pill">after compaction</span>')
    for kind in sorted({one_line(f.kind, 40) for f in s.findings_by_turn.get(turn.index, ())}):
        pills.append(f'<span class="pill kind">{e(kind)}</span>')
    body = [f'<div class="says">“{e(one_line(turn.text, 600))}”</div>'] if turn.text else []
    calls = {c.tool_use_id: c for c in s.calls_by_turn.get(turn.index, ())}
    for use in turn.tool_uses:
        call = calls.get(use.id)
        result = "(no result recorded)" if call is None else call.result[:1_200]
        cls = "call err" if call is not None and call.is_error else "call"
        size = f" · {fmt(call.result_chars)} chars" if call is not None else ""
        body.append(f'<div class="{cls}"><code>{e(one_line(use.name, 80))}</code> '
                    f'{e(one_line(target_of(use.input), 160))}<span class="meta">{size}</span>'
                    f"<pre>{e(clean(result))}</pre></div>")
    if turn.error_type:
        body.append(f'<div class="call err"><pre>model call failed: {e(one_line(turn.error_type, 200))}</pre></div>')
    return (f'<div class="card turn" id="{anchor}-t{turn.index}"><header><span class="idx">Turn {turn.index}'
            f'</span>{"".join(pills)}</header>{"".join(body)}</div>')


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
        if any(t.index == s.decision.turn for t in chunk):
            out.append(f'<path d="M{cx:.1f},{top_pad} V{top_pad + plot_h}" stroke="#7c3aed" '
                       f'stroke-dasharray="4 3" stroke-width="1.5">'
                       f"<title>decision turn {s.decision.turn}</title></path>")
        flagged = sorted({f.kind for t in chunk for f in s.findings_by_turn.get(t.index, ())
                          if f.turn == t.index and f.severity != "info" and f.kind != "no_end_turn"})
        if flagged:  # a dot under each turn a warning/error finding was seen at
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
