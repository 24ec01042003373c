"""The live JSONL file holds prompts and tool output: it is created readable by its owner only, and a path
that is not a regular file (a FIFO) never blocks or breaks the user's model call."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import anthropic
import pytest

from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, text_reply
from tests.reliability.support import hang_guard

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX file modes and FIFOs")


def one_call(provider, jsonl: Path) -> str:
    """One instrumented model call with the JSONL file at ``jsonl``; returns the answer text."""
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=Settings(jsonl=str(jsonl)))
    try:
        with FakeMessagesAPI(lambda body: text_reply("done")) as api:
            client = anthropic.Anthropic(api_key="sk-ant-test", base_url=api.base_url, max_retries=0)
            response = client.messages.create(model="claude-sonnet-4-6", max_tokens=16,
                                              messages=[{"role": "user", "content": "hi"}])
            return str(response.content[0].text)
    finally:
        instrumentor.uninstrument()


def test_a_new_jsonl_file_is_readable_by_its_owner_only(provider, tmp_path: Path) -> None:
    """The file is created with no group or other permissions, whatever the umask allows."""
    path = tmp_path / "trace.jsonl"
    previous = os.umask(0o022)
    try:
        one_call(provider, path)
    finally:
        os.umask(previous)
    assert path.stat().st_size > 0 and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_fifo_without_a_reader_does_not_block_the_call(provider, tmp_path: Path, caplog) -> None:
    """A FIFO nobody reads: the model call returns its answer at once and one warning is logged."""
    fifo = tmp_path / "trace.jsonl"
    os.mkfifo(fifo)
    with caplog.at_level(logging.WARNING), hang_guard(30):
        assert one_call(provider, fifo) == "done"
    assert any("trace.jsonl" in r.getMessage() for r in caplog.records)


def test_a_fifo_with_a_reader_is_refused_not_written(provider, tmp_path: Path, caplog) -> None:
    """A FIFO someone reads is still not a file: nothing is written to it and the call returns."""
    fifo = tmp_path / "trace.jsonl"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with caplog.at_level(logging.WARNING), hang_guard(30):
            assert one_call(provider, fifo) == "done"
        assert os.read(reader, 4096) == b""  # an empty pipe whose writer left: nothing was written
    finally:
        os.close(reader)
    assert any("not a regular file" in r.getMessage() for r in caplog.records)
