"""Time ``otel-agent-trace findings DIR`` over a Claude Code projects folder of many sessions.

    python benchmarks/bench_findings_dir.py [--sessions 1000] [--jobs N] [--keep DIR]

Builds a projects folder in a temporary directory (nothing is committed): each session file is one of
the held-out Claude Code fixtures (clean fixes, loops, drift, jumps, cache misses, max_tokens, abandoned
runs) with fresh session ids and message uuids, spread over 20 project folders. Then runs the ranked
table and ``--json`` through the installed CLI in a subprocess, as a user would, and prints wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted((ROOT / "tests" / "fixtures" / "heldout").glob("cc*.jsonl"))


def build(folder: Path, sessions: int) -> int:
    """Write ``sessions`` transcripts under ``folder``; returns the bytes written."""
    written = 0
    for n in range(sessions):
        template = TEMPLATES[n % len(TEMPLATES)]
        session_id = str(uuid.UUID(int=n + 1))
        lines = []
        for raw in template.read_text().splitlines():
            if not raw.strip():
                continue
            obj = json.loads(raw)
            if "sessionId" in obj:
                obj["sessionId"] = session_id
            lines.append(json.dumps(obj))
        project = folder / f"-home-dev-repo{n % 20}"
        project.mkdir(parents=True, exist_ok=True)
        text = "\n".join(lines) + "\n"
        (project / f"{session_id}.jsonl").write_text(text)
        written += len(text)
    return written


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "otel_agent_trace.cli", *argv], capture_output=True,
                            text=True, env=env)
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1_000)
    parser.add_argument("--keep", metavar="DIR", help="build the folder here and keep it")
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (0: the CLI's default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp) / "projects"
        size = build(folder, args.sessions)
        print(f"{args.sessions:,} sessions, {size / 1e6:.1f} MB in {folder}")
        startup, _ = timed(["--version"])
        jobs = ["--jobs", str(args.jobs)] if args.jobs else []
        seconds, table = timed(["findings", *jobs, str(folder)])
        if table.returncode not in (0, 1):
            print(table.stderr, file=sys.stderr)
            return 1
        json_seconds, found = timed(["findings", "--json", *jobs, str(folder)])
        rows = len(json.loads(found.stdout))
        print(f"findings DIR (ranked table): {seconds:.2f} s  ({seconds / args.sessions * 1e3:.2f} ms per session; "
              f"interpreter start {startup:.2f} s)")
        print(f"findings --json DIR:         {json_seconds:.2f} s  ({rows:,} findings)")
        print(table.stdout.splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
