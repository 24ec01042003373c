"""Every command on every bad input: a clear message, no traceback, and the documented exit code (2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STUCK = FIXTURES / "seed" / "turn_limit.jsonl"


def _missing(tmp: Path) -> Path:
    return tmp / "missing.jsonl"


def _directory_without_traces(tmp: Path) -> Path:
    folder = tmp / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a trace\n")
    return folder


def _empty_directory(tmp: Path) -> Path:
    folder = tmp / "empty"
    folder.mkdir()
    return folder


def _binary(tmp: Path) -> Path:
    path = tmp / "image.jsonl"
    path.write_bytes(bytes(range(256)) * 40 + b"\n\x89PNG\r\n\x1a\n" * 20)
    return path


def _all_invalid_lines(tmp: Path) -> Path:
    path = tmp / "invalid.jsonl"
    path.write_text("".join(f"not json {n}\n" for n in range(50)))
    return path


def _pretty_printed_json(tmp: Path) -> Path:
    path = tmp / "pretty.jsonl"
    lines = [json.loads(line) for line in STUCK.read_text().splitlines() if line.strip()]
    path.write_text(json.dumps(lines, indent=2))
    return path


BAD_INPUTS: dict[str, Callable[[Path], Path]] = {
    "missing file": _missing,
    "directory without traces": _directory_without_traces,
    "empty directory": _empty_directory,
    "binary file": _binary,
    "all lines invalid": _all_invalid_lines,
    "pretty-printed JSON document": _pretty_printed_json,
}
COMMANDS = {
    "findings": ["findings"],
    "findings --json": ["findings", "--json"],
    "report": ["report"],
    "report --html": ["report", "--html", "{tmp}/out.html"],
    "watch --once": ["watch", "--once"],
    "import": ["import"],
}


def run_cli(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    return subprocess.run([sys.executable, "-m", "otel_agent_trace.cli", *argv], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd)


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("bad", list(BAD_INPUTS))
def test_bad_input_exits_two_without_a_traceback(tmp_path: Path, command: str, bad: str) -> None:
    """The command names the problem on stderr in a few lines and exits 2."""
    path = BAD_INPUTS[bad](tmp_path)
    argv = [arg.format(tmp=tmp_path) for arg in COMMANDS[command]]
    result = run_cli(*argv, str(path))
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.returncode == 2, result.stderr
    assert str(path) in result.stderr
    assert len(result.stderr.splitlines()) <= 6  # one summary, not a line per bad line


@pytest.mark.parametrize("target", ["missing-dir/out.html", "."])
def test_report_html_to_a_bad_place_fails_before_reading(tmp_path: Path, target: str) -> None:
    """``--html`` into a missing directory or onto a directory is refused up front with exit 2."""
    result = run_cli("report", str(STUCK), "--html", target, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "does not exist" in result.stderr or "is a directory" in result.stderr


@pytest.mark.parametrize(("option", "target"), [("--html", "missing-dir/out.html"), ("--html", "."),
                                                ("--jsonl", "missing-dir/trace.jsonl"), ("--jsonl", ".")])
def test_demo_checks_its_output_paths_before_running(tmp_path: Path, option: str, target: str) -> None:
    """``demo`` refuses an output it could not write before running the agent, with exit 2."""
    result = run_cli("demo", option, target, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Turn 1" not in result.stdout


def test_unknown_option_is_a_usage_error() -> None:
    """A bad option exits 2 with argparse's usage line."""
    result = run_cli("findings", "--no-such-option", str(STUCK))
    assert result.returncode == 2 and "usage:" in result.stderr
