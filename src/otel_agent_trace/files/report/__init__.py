"""Reports that read a session backwards from its end: ``render_text`` for terminals, ``render_html``."""

from otel_agent_trace.files.report.html import render_html
from otel_agent_trace.files.report.summary import (
    Decision,
    Summary,
    badness,
    decision_turn,
    one_line,
    outcome,
    plural,
    summarize,
    target_of,
    worst_first,
)
from otel_agent_trace.files.report.text import render_text

__all__ = ["Decision", "Summary", "badness", "decision_turn", "one_line", "outcome", "plural", "render_html",
           "render_text", "summarize", "target_of", "worst_first"]
