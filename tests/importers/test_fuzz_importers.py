"""Fuzzed trace files in all three formats (the seed article's JSONL, ours, Claude Code): no exception
escapes ``load``, every skipped line is one ``file:line: reason``, and the work stays bounded."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from otel_agent_trace.detectors import analyze_session
from otel_agent_trace.files.importers import LineError, load
from otel_agent_trace.files.report import render_html, render_text
from otel_agent_trace.model.records import Session
from tests.reliability.support import hang_guard, scaled

FUZZ = hypothesis_settings(max_examples=scaled(60, 1_500), deadline=None, database=None,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Values a hostile or broken writer puts where we expect something else.
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                    st.sampled_from(["end_turn", "tool_use", "max_tokens", "", "start", "end", "user", "assistant",
                                     "tool_result", "text", "2025-06-01T10:00:00Z", "9999-12-31T23:59:59Z",
                                     "0001-01-01T00:00:00", "not a time", "<synthetic>", "compact_boundary"]))
KEYS = st.sampled_from(["type", "id", "text", "content", "input", "name", "tool_use_id", "is_error", "kind", "turn",
                        "turns", "x"])
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=12)


def _maybe(keys: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Some of ``keys`` (each with its plausible value or a hostile one)."""
    return st.fixed_dictionaries({}, optional={key: st.one_of(plausible, values) for key, plausible in keys.items()})


block = st.fixed_dictionaries({"type": st.sampled_from(["text", "tool_use", "tool_result", "thinking"])},
                              optional={"text": st.text(max_size=40), "id": st.sampled_from(["t1", "t2", "t3"]),
                                        "tool_use_id": st.sampled_from(["t1", "t2", "t3"]),
                                        "name": st.sampled_from(["Read", "Bash", "Edit"]), "input": values,
                                        "content": values, "is_error": values})
blocks = st.lists(block, max_size=3)
small_int = st.integers(min_value=-5, max_value=12)
seed_line = _maybe({"turn": small_int, "event": st.sampled_from(["start", "end"]), "task": st.text(max_size=20),
                    "stop_reason": st.sampled_from(["end_turn", "tool_use"]), "input_tokens": small_int,
                    "output_tokens": small_int, "content": blocks, "tool_results": blocks})
ours_line = _maybe({"turn": small_int, "session": st.sampled_from(["a", "b"]), "model": st.text(max_size=10),
                    "cache_read_input_tokens": small_int, "start_ns": st.integers(min_value=-1, max_value=2**65),
                    "end_ns": st.integers(min_value=-1, max_value=2**65), "event": st.sampled_from(["end"]),
                    "end_reason": st.text(max_size=10), "findings": values, "content": blocks})
usage = _maybe({"input_tokens": small_int, "output_tokens": small_int, "cache_read_input_tokens": small_int})
message = _maybe({"id": st.sampled_from(["m1", "m2"]), "model": st.sampled_from(["claude-x", "<synthetic>"]),
                  "role": st.sampled_from(["user", "assistant"]), "content": st.one_of(blocks, st.text(max_size=20)),
                  "usage": usage, "stop_reason": values})
claude_line = st.fixed_dictionaries(
    {"type": st.sampled_from(["user", "assistant", "system", "summary", "file-history-snapshot"]),
     "sessionId": st.sampled_from(["s1", "s2"])},
    optional={"uuid": st.sampled_from(["u1", "u2", "u3"]), "parentUuid": values, "message": message,
              "timestamp": values, "isSidechain": values, "agentId": values, "isCompactSummary": values,
              "toolUseResult": values, "subtype": values, "isApiErrorMessage": values})
# Lines that are not objects at all, or sit past a limit.
junk = st.one_of(st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
                 st.sampled_from(["[", "]]]]", "{", '{"turn": 1', "null", "5", '"text"', "[1, 2]", "\x00\x01",
                                  '{"turn": 2, "input_tokens": ' + "9" * 5_000 + "}",
                                  '{"turn": 3, "content": ' + "[" * 5_000 + "]" * 5_000 + "}",
                                  '{"turn": 1e999999}', '{"turn": -0.0}', "\ufeff{}"]))


def _file(kind: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[list[str]]:
    line = st.one_of(kind.map(lambda obj: json.dumps(obj, default=str)), junk)
    return st.lists(line, min_size=1, max_size=25)


files = st.one_of(_file(seed_line), _file(ours_line), _file(claude_line))


@FUZZ
@given(lines=files)
def test_no_exception_escapes_and_every_skipped_line_has_a_reason(tmp_path_factory, lines: list[str]) -> None:
    """Whatever the lines, ``load`` returns (and the detectors and both reports over what it loads do too),
    each error names the file and a line that exists, and memory and output stay bounded."""
    path = tmp_path_factory.mktemp("fuzz") / "trace.jsonl"
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    tracemalloc.start()
    try:
        with hang_guard(60):
            items = list(load(path))
            sessions = [(item, analyze_session(item)) for item in items if isinstance(item, Session)]
            pages = [render_text(session, findings) for session, findings in sessions]
            html = render_html(sessions) if sessions else ""
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    errors = [item for item in items if isinstance(item, LineError)]
    assert all(isinstance(item, Session | LineError) for item in items)
    assert all(str(e).startswith(f"{path}:") and 0 <= e.line_no <= text.count("\n") and e.message for e in errors)
    assert peak < 64 * 1024 * 1024
    assert sum(map(len, pages)) + len(html) < 4 * 1024 * 1024  # counts are clamped: no runaway chart
