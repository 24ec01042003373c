"""The demo's terminal output: explained before anything else, coloured on request, fitted to the width."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SGR = re.compile(r"\x1b\[[0-9;]*m")


def demo(tmp_path: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_EXPORTER", "LANGFUSE", "NO_COLOR",
                                                                          "FORCE_COLOR"))}
    return subprocess.run([sys.executable, "-m", "otel_agent_trace.cli", "demo", "--jsonl",
                           str(tmp_path / "trace.jsonl"), *extra], capture_output=True, text=True, timeout=300,
                          env={**environ, **env}, cwd=tmp_path)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> str:
    result = demo(tmp_path_factory.mktemp("demo"), "--no-color")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_first_line_says_what_is_about_to_happen(plain: str) -> None:
    """The output opens with what the demo runs, not with an error message."""
    assert plain.startswith("Running two scripted sessions")


def test_the_stop_message_comes_with_its_session(plain: str) -> None:
    """The failing run's stop reason is printed after its turns, under its own heading."""
    assert plain.index("flaky-run (") < plain.index("Turn 11:") < plain.index("the agent loop stopped: Turn limit")


def test_every_line_fits_the_width(plain: str) -> None:
    """Off a terminal the output is laid out for 100 columns: no line is longer, except one naming a path."""
    long = [line for line in plain.splitlines() if len(line) > 100 and "trace.jsonl" not in line]
    assert long == []


def test_the_span_tree_is_coloured_when_colour_is_on(tmp_path: Path) -> None:
    """With FORCE_COLOR the span names and findings carry colour codes; with --no-color none."""
    result = demo(tmp_path, FORCE_COLOR="1")
    tree = result.stdout[result.stdout.index("Span tree"):result.stdout.index("Report of the failing run")]
    assert SGR.search(tree) and "invoke_agent" in SGR.sub("", tree)


def test_plain_output_has_no_escape_codes(plain: str) -> None:
    """--no-color output holds no escape sequence at all."""
    assert "\x1b" not in plain
