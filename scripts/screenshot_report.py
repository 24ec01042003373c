"""Render the HTML report of a trace file and screenshot it with headless Chromium.

    python scripts/screenshot_report.py [TRACE] [--out report.png] [--html report.html]

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); Playwright's own browser download
is not needed. The same helpers back ``tests/test_report.py::test_html_report_renders_in_headless_chromium``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACE = ROOT / "tests" / "fixtures" / "seed" / "turn_limit.jsonl"
# Everything that would make the browser reach the network or keep state is off: the page is local.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def write_report(trace: Path, html_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from otel_agent_trace.detectors import analyze_session
    from otel_agent_trace.files.importers import load_sessions
    from otel_agent_trace.files.report import render_html

    sessions = load_sessions(trace)
    html_path.write_text(render_html([(s, analyze_session(s)) for s in sessions],
                                     title=f"otel-agent-trace · {trace.name}"), encoding="utf-8")


def _run(chromium: str, extra: list[str], html_path: Path,
         timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [chromium, *FLAGS, f"--user-data-dir={profile}", *extra, html_path.resolve().as_uri()]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def screenshot(chromium: str, html_path: Path, png_path: Path, size: tuple[int, int] = (1200, 1600),
               timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return _run(chromium, [f"--screenshot={png_path.resolve()}", f"--window-size={size[0]},{size[1]}"],
                html_path, timeout)


def dump_dom(chromium: str, html_path: Path, timeout: float = 90) -> str:
    return _run(chromium, ["--dump-dom"], html_path, timeout).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", nargs="?", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--out", type=Path, default=Path("report.png"))
    parser.add_argument("--html", type=Path, default=None, help="keep the HTML page here")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("chromium not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        html_path = args.html or Path(tmp) / "report.html"
        write_report(args.trace, html_path)
        result = screenshot(chromium, html_path, args.out)
    if not args.out.exists():
        print(result.stderr[-2000:], file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
