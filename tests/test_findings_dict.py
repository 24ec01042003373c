"""One dict form of a Finding, shared by JSONL lines, ``findings --json`` and span events."""

from __future__ import annotations

from otel_agent_trace.cli import finding_row
from otel_agent_trace.files.jsonl import end_line
from otel_agent_trace.model.findings import finding_from_dict, finding_to_dict
from otel_agent_trace.model.records import Finding, Session
from otel_agent_trace.pipeline.spans import finding_event_attributes, finding_from_event_attributes

FINDING = Finding("tool_loop", "error", 7, "Read of a.py failed 3 times", session="s1", turns=[5, 6, 7],
                  tool_use_ids=["toolu_1", "toolu_2"], evidence={"tool": "Read", "attempts": 3})


def test_dict_round_trip_keeps_every_field() -> None:
    """A finding written as a dict and read back is the same finding."""
    assert finding_from_dict(finding_to_dict(FINDING), "s1") == FINDING


def test_event_round_trip_keeps_all_but_evidence() -> None:
    """A span event's attributes read back as the finding, without the evidence spans cannot hold."""
    back = finding_from_event_attributes(finding_event_attributes(FINDING, span_id=None), "s1")
    assert back is not None and back.evidence == {}
    back.evidence = FINDING.evidence
    assert back == FINDING


def test_jsonl_and_cli_write_the_same_dict() -> None:
    """The JSONL end line and the ``findings --json`` row carry the finding in the same form."""
    (in_file,) = end_line(Session(id="s1", findings=[FINDING]))["findings"]
    row = finding_row("trace.jsonl", FINDING, "s1")
    assert in_file == finding_to_dict(FINDING)
    assert {k: v for k, v in row.items() if k not in ("file", "session")} == in_file


def test_reading_fills_defaults_and_refuses_non_findings() -> None:
    """Odd fields get defaults; an object without a string kind is not a finding."""
    loose = finding_from_dict({"kind": "cache_miss", "severity": "fatal", "turns": [3, "x"]}, "s2")
    assert loose == Finding("cache_miss", "warning", 3, "", session="s2", turns=[3])
    assert finding_from_dict({"severity": "error"}, "s2") is None
    assert finding_from_dict(["tool_loop"], "s2") is None
