#!/usr/bin/env python3
"""Screenshot Phoenix's trace view of an agent trace with headless Chromium.

By default starts its own Phoenix (from .venv-phoenix, see scripts/install_phoenix.sh, or
$OTEL_AGENT_TRACE_PHOENIX), sends a small hand-made agent trace over OTLP/HTTP and screenshots
the trace view (span tree + the selected span's details). With --from-example it instead runs
the real failing example agent with zero code changes,

    opentelemetry-instrument python examples/agent.py --failing

exporting to that Phoenix, and selects the span carrying a finding (--finding KIND, default
tool_loop). With --endpoint it uses an already running Phoenix instead; with
--project/--trace-id it shows an existing trace rather than sending one.

Needs the interpreter running it to be the project's venv (OpenTelemetry SDK and exporter,
otel-agent-trace and anthropic for --from-example), and Chromium (Debian package ``chromium``).

    python scripts/screenshot_phoenix.py --from-example --out docs/phoenix-trace.png
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless and offline: without the background-networking flags Chromium keeps calling out to a network
# that is closed here.
HEADLESS_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")


def load_phoenix_helper() -> ModuleType:
    name = "otel_agent_trace_e2e_phoenix"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tests" / "e2e" / "phoenix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def find_chromium(explicit: str | None) -> str:
    if explicit:
        return explicit
    for candidate in CHROMIUM_CANDIDATES:
        if path := shutil.which(candidate):
            return path
    sys.exit(
        "screenshot_phoenix: no Chromium found; install it with "
        "`apt-get update && apt-get install -y chromium` or pass --chromium PATH"
    )


def send_demo_trace(endpoint: str, project: str) -> tuple[str, str]:
    """Export a small agent trace over OTLP/HTTP; returns (trace_id, id of the span to select)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "otel-agent-trace-demo", "openinference.project.name": project}
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    tracer = provider.get_tracer("otel-agent-trace.screenshot")
    agent_attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "demo"}
    with tracer.start_as_current_span(
        "invoke_agent demo", kind=SpanKind.INTERNAL, attributes=agent_attrs
    ) as root:
        for turn in range(2):
            with tracer.start_as_current_span(
                "chat claude-x",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "anthropic",
                    "gen_ai.request.model": "claude-x",
                    "gen_ai.usage.input_tokens": 10 + 40 * turn,
                    "gen_ai.usage.output_tokens": 25,
                    "gen_ai.response.finish_reasons": ["tool_use" if turn == 0 else "end_turn"],
                },
            ):
                time.sleep(0.02)
            if turn == 0:
                with tracer.start_as_current_span(
                    "execute_tool get_weather",
                    kind=SpanKind.INTERNAL,
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "get_weather",
                        "gen_ai.tool.call.id": "toolu_01",
                    },
                ) as tool:
                    tool.add_event(
                        "agent_trace.finding",
                        {"agent_trace.finding.kind": "slow_tool", "agent_trace.finding.detail": "took 12 ms"},
                    )
                    time.sleep(0.012)
                selected = tool  # the span with the finding event
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    return trace_id, format(selected.get_span_context().span_id, "016x")


def _console_script(name: str) -> str:
    """A console script of this interpreter's environment (its bin/), else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        sys.exit(f"screenshot_phoenix: {name} not found next to {sys.executable} nor on PATH")
    return found


def run_example_agent(endpoint: str, project: str) -> None:
    """Run examples/agent.py --failing under opentelemetry-instrument, exporting to Phoenix's project.

    The example ends by raising RuntimeError("Turn limit reached"): a non-zero exit is expected.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_", "LANGFUSE_"))}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "otel-agent-trace-example",
            "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}",
        }
    )
    cmd = [_console_script("opentelemetry-instrument"), sys.executable, str(REPO_ROOT / "examples" / "agent.py"),
           "--failing"]
    with tempfile.TemporaryDirectory(prefix="agent-example-") as cwd:
        done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    if "Turn limit reached" not in done.stderr:
        sys.exit(f"screenshot_phoenix: the example agent did not run as expected ({done.returncode}):\n"
                 f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


def agent_trace(client, project: str) -> list[dict]:
    """All spans of the latest agent session in ``project``: session + turns + tool calls."""
    spans = client.spans(project, wait_for=1, timeout=30)
    deadline = time.monotonic() + 30
    while not (roots := [s for s in spans if s["kind"] == "AGENT" and s["parent_id"] is None]):
        if time.monotonic() > deadline:
            sys.exit(f"screenshot_phoenix: no invoke_agent span in project {project!r}")
        time.sleep(0.25)
        spans = client.spans(project)
    root = roots[-1]  # spans come oldest first; a Phoenix given by --endpoint may hold earlier runs
    expected = 1 + int(root["attributes"].get("agent_trace.turns", 0)) + int(
        root["attributes"].get("agent_trace.tool_calls", 0))
    return client.spans(project, trace_id=root["trace_id"], wait_for=expected, timeout=30)


def span_with_finding(spans: list[dict], kind: str) -> dict:
    """The last span carrying a finding of ``kind`` (else the last one with any finding, else the root)."""
    def kinds(span: dict) -> set[str]:
        return {e["attributes"].get("agent_trace.finding.kind") for e in span["events"]
                if e["name"] == "agent_trace.finding"}

    with_kind = [s for s in spans if kind in kinds(s) and s["parent_id"] is not None]
    with_any = [s for s in spans if kinds(s) and s["parent_id"] is not None]
    chosen = (with_kind or with_any or [s for s in spans if s["parent_id"] is None])[-1]
    return chosen


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands on
    fd 3, replies on fd 4, NUL-terminated JSON), so the page can be clicked before the screenshot with
    nothing but the standard library."""

    def __init__(self, executable: str, width: int, height: int) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        # Chromium logs a lot (D-Bus, GPU) to stderr: a file, so a full pipe can never block it.
        self.log = open(Path(self._profile.name) / "chromium.log", "w+b")  # noqa: SIM115 - closed in close()
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def child_fds() -> None:  # in the child, before exec: the pipe ends become fds 3 and 4
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        cmd = [
            executable,
            *HEADLESS_FLAGS,
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile.name}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        # close_fds would close fds 3 and 4 after child_fds ran; os.pipe() ends are not inheritable anyway.
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=self.log, preexec_fn=child_fds, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None
        self.width, self.height = width, height

    def send(self, method: str, params: dict | None = None, *, session: bool = True, timeout: float = 30) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                    raise TimeoutError(f"Chromium did not answer {method} within {timeout:.0f}s")
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe during {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> object:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def click(self, element: str) -> bool:
        """Click the element the JavaScript expression ``element`` finds, with real mouse events (the
        React Aria widgets Phoenix uses ignore synthetic ``element.click()``); False if it is not there."""
        box = self.evaluate(f"""(() => {{ const e = {element};
            if (!e) return null; e.scrollIntoView({{block: 'nearest'}}); const r = e.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
        if not box:
            return False
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left", "buttons": 1 if kind == "mousePressed" else 0,
                       "clickCount": 0 if kind == "mouseMoved" else 1})
        return True

    def wait_for(self, expression: str, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({expression})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.25)

    def screenshot(self, out: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        out.write_bytes(base64.b64decode(data))

    def log_tail(self, size: int = 3000) -> str:
        self.log.flush()
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").splitlines()
        return "\n".join(line for line in lines if "dbus" not in line)[-size:]

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        self._profile.cleanup()


# In the page: the span details' tab whose label starts with the given text (null until rendered).
_TAB = """[...document.querySelectorAll('[role=tab]')]
  .find(e => e.textContent.trim().toLowerCase().startsWith(%s)) || null"""

# In the page: a collapsed disclosure (e.g. an event of the Events tab) whose title has the given text.
_COLLAPSED = """[...document.querySelectorAll('button[aria-expanded=false]')]
  .find(e => e.textContent.includes(%s)) || null"""


def screenshot_with_tab(chromium: str, url: str, out: Path, size: str, tab: str, expand: str | None = None,
                        expect_text: str | None = None, timeout: float = 60) -> None:
    """Open ``url``, click the span details tab ``tab`` (e.g. "Events"), expand the disclosures titled
    ``expand`` (e.g. "agent_trace.finding"), wait for ``expect_text`` on the page, then capture."""
    width, height = (int(v) for v in size.split(","))
    browser = Chromium(chromium, width, height)
    try:
        browser.open(url)
        browser.wait_for("document.readyState === 'complete'", timeout, "the page to load")
        if tab:
            find_tab = _TAB % json.dumps(tab.lower())
            browser.wait_for(find_tab, timeout, f"the {tab!r} tab")
            browser.click(find_tab)
            browser.wait_for(f"({find_tab})?.getAttribute('aria-selected') === 'true'", timeout,
                             f"the {tab!r} tab to open")
        if expand:
            find = _COLLAPSED % json.dumps(expand)
            browser.wait_for(find, timeout, f"a disclosure titled {expand!r}")
            for _ in range(20):  # every one of them, e.g. each finding of the span
                if not browser.click(find):
                    break
                time.sleep(0.2)
        if expect_text:
            browser.wait_for(f"document.body.innerText.includes({json.dumps(expect_text)})", timeout,
                             f"{expect_text!r} on the page")
        time.sleep(1.0)  # let layout and fonts settle after the last render
        browser.screenshot(out)
    except Exception as exc:
        failed = out.with_name(out.stem + ".failed.png")
        try:
            browser.screenshot(failed)  # what the page showed instead, for whoever debugs this
            print(f"screenshot_phoenix: the page as it was: {failed}", file=sys.stderr)
        except Exception:
            pass
        log = browser.log_tail()
        browser.close()
        sys.exit(f"screenshot_phoenix: {exc}\n--- chromium log ---\n{log}")
    browser.close()
    if not out.exists() or out.stat().st_size == 0:
        sys.exit("screenshot_phoenix: Chromium wrote no screenshot")


def screenshot(chromium: str, url: str, out: Path, budget_ms: int, size: str) -> None:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [
            chromium,
            *HEADLESS_FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            f"--window-size={size}",
            f"--screenshot={out}",
            url,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if result.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        sys.exit(f"screenshot_phoenix: chromium failed ({result.returncode}):\n{result.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "phoenix-trace.png"), help="PNG to write")
    parser.add_argument("--endpoint", help="base URL of a running Phoenix (default: start one)")
    parser.add_argument(
        "--phoenix", help="phoenix executable (default: $OTEL_AGENT_TRACE_PHOENIX or .venv-phoenix)"
    )
    parser.add_argument("--project", help="project to show (default: a new one for the demo trace)")
    parser.add_argument("--trace-id", help="existing trace to show instead of sending the demo trace")
    parser.add_argument("--span-id", help="span to select in the trace view (OTel hex span id)")
    parser.add_argument("--from-example", action="store_true",
                        help="trace the failing examples/agent.py with opentelemetry-instrument instead of "
                             "sending the small hand-made trace")
    parser.add_argument("--finding", default="tool_loop",
                        help="with --from-example: select the span carrying this finding kind (default tool_loop)")
    parser.add_argument("--chromium", help="Chromium executable (default: found on PATH)")
    parser.add_argument("--budget-ms", type=int, default=15000, help="Chromium --virtual-time-budget")
    parser.add_argument("--window-size", default=None,
                        help="WIDTH,HEIGHT (default 1600,1000; 1600,1380 with --from-example: the whole tree)")
    parser.add_argument("--tab", default=None,
                        help="span details tab to open before the screenshot, e.g. Events (default: Events "
                             "with --from-example; none otherwise, which uses plain chromium --screenshot)")
    args = parser.parse_args(argv)

    if args.trace_id and not args.project:
        parser.error("--trace-id needs --project")
    chromium = find_chromium(args.chromium)
    helper = load_phoenix_helper()
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)

    server = helper.PhoenixServer(args.phoenix) if not args.endpoint else None
    try:
        if server is not None:
            server.start()
            took = f"{server.startup_seconds:.1f}s"
            print(f"screenshot_phoenix: Phoenix started in {took} at {server.http_endpoint}")
            client = server
        else:
            client = helper.PhoenixServer.attach(args.endpoint)

        default_project = "otel-agent-trace-example" if args.from_example else "otel-agent-trace-demo"
        project = args.project or f"{default_project}-{uuid.uuid4().hex[:6]}"
        if args.trace_id:
            trace_id, span_id = args.trace_id, args.span_id
        elif args.from_example:
            run_example_agent(client.http_endpoint, project)
            spans = agent_trace(client, project)
            selected = span_with_finding(spans, args.finding)
            trace_id, span_id = selected["trace_id"], args.span_id or selected["span_id"]
            print(f"screenshot_phoenix: {len(spans)} spans; selecting {selected['name']} "
                  f"(turn {selected['attributes'].get('agent_trace.turn.index')})")
        else:
            trace_id, span_id = send_demo_trace(client.http_endpoint, project)
            span_id = args.span_id or span_id
        spans = client.spans(project, trace_id=trace_id, wait_for=1, timeout=30)
        if not spans:
            sys.exit(f"screenshot_phoenix: no spans of trace {trace_id} in project {project!r}")
        if not args.trace_id and not args.from_example:
            # the demo trace has 4 spans: wait for all of them so the tree is complete
            client.spans(project, trace_id=trace_id, wait_for=4, timeout=30)
        url = client.ui_trace_url(project, trace_id, span_id)
        print(f"screenshot_phoenix: {url}")
        size = args.window_size or ("1600,1380" if args.from_example else "1600,1000")
        tab = args.tab if args.tab is not None else ("Events" if args.from_example else "")
        if tab:
            finding = "agent_trace.finding" if args.from_example and tab.lower() == "events" else None
            screenshot_with_tab(chromium, url, out, size, tab, expand=finding,
                                expect_text=finding and f"{finding}.message")
        else:
            screenshot(chromium, url, out, args.budget_ms, size)
        print(f"screenshot_phoenix: wrote {out} ({out.stat().st_size} bytes)")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
