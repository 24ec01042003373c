"""Time of secret redaction on hostile tool output: one line per input shape.

    python benchmarks/bench_redaction.py [--kb 450]

Each shape is ``--kb`` kilobytes of text built to defeat a backtracking regex: thousands of private key
headers with no END line (what ``grep -r "PRIVATE KEY"`` prints), token prefixes repeated with nothing
after them, settings with their value missing, URLs without the ``@``. An ordinary build log of the same
size is the baseline. Linear redaction costs about the same per KB on every line; the scan cap
(``MAX_SCAN_CHARS``) bounds the cost of any one value whatever its size.

To compare with another copy of the package, put its ``src`` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    from otel_agent_trace.pipeline.content import redact
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from otel_agent_trace.pipeline.content import redact

BODY = "MIIEpAIBAAKCAQEA" * 12


def _repeat(unit: str, size: int) -> str:
    return unit * max(1, size // len(unit))


SHAPES: dict[str, Callable[[int], str]] = {
    "ordinary build log": lambda n: _repeat("src/app/module.py:12: warning: unused variable 'tokens'\n", n),
    "key headers, no END": lambda n: _repeat(f"-----BEGIN RSA PRIVATE KEY-----\n{BODY}\n", n),
    "key header spellings": lambda n: _repeat(f"-----BEGIN {'A' * 30} KEY-----\n", n),
    "grep hits naming keys": lambda n: _repeat("conf/k.pem: BEGIN OPENSSH PRIVATE KEY\n", n),
    "JWT prefixes, no dots": lambda n: _repeat("eyJ", n),
    "token prefixes": lambda n: _repeat("sk-ant-ghp_xoxb-AKIA", n),
    "settings, no value": lambda n: _repeat("password =           ;", n),
    "URLs without @": lambda n: _repeat("https://user:" + "p" * 200 + " ", n),
    "bearer, no digit": lambda n: _repeat("Bearer " + "a" * 60 + " ", n),
}


def measure(text: str, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        redact(text)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=int, default=450, help="size of each input (default 450 KB)")
    parser.add_argument("--rounds", type=int, default=3, help="best of N (default 3)")
    args = parser.parse_args()
    size = args.kb * 1024
    print(f"| input ({args.kb} KB) | redact time | MB/s |")
    print("|---|---:|---:|")
    for name, build in SHAPES.items():
        text = build(size)
        seconds = measure(text, args.rounds)
        print(f"| {name} | {seconds * 1000:.1f} ms | {len(text) / 1e6 / max(seconds, 1e-9):.0f} |", flush=True)


if __name__ == "__main__":
    main()
