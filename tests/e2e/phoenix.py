"""Run a real Arize Phoenix server as a subprocess and read spans back from it.

Phoenix lives in its own venv (see scripts/install_phoenix.sh); this module only needs the
path of that venv's ``phoenix`` executable and uses the standard library to talk to it, so
it can be imported from the project's test venv (and from scripts/screenshot_phoenix.py).

What Phoenix does with what we send (checked against arize-phoenix 20.x):

* Project: taken from the ``x-project-name`` header (HTTP) or the resource attribute
  ``openinference.project.name``; created on first span. Unknown project -> HTTP 404.
* The OTel SpanKind (INTERNAL/CLIENT/...) is **not stored**. Phoenix's ``span_kind`` is the
  OpenInference kind (LLM, AGENT, TOOL, CHAIN, UNKNOWN, ...), which it infers from
  ``gen_ai.operation.name`` (chat -> LLM, invoke_agent -> AGENT, execute_tool -> TOOL).
* From ``gen_ai.*`` attributes Phoenix also synthesizes OpenInference attributes
  (``llm.model_name``, ``llm.token_count.prompt``/``completion``/``total``, ...); they show up
  next to ours in the read-back attributes. ``openinference.span.kind`` is removed from the
  attributes and reported as the kind.
* Attributes are stored nested (split on ``.``) and re-flattened by the REST API, so keys
  round-trip as dotted keys. Primitive lists stay lists. String values under keys ending in
  ``metadata``/``tool.parameters``/``prompt_template.variables`` are JSON-decoded and come back
  flattened into sub-keys.
* Event attributes are stored as sent (a flat dict); the ``exception`` event is kept with its
  ``exception.*`` attributes.
* Spans are written by a background batch inserter: a read right after export may not see
  them yet, hence ``spans(wait_for=...)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["PhoenixError", "PhoenixServer", "find_phoenix_executable", "normalize_span"]

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_EXECUTABLE = "OTEL_AGENT_TRACE_PHOENIX"
DEFAULT_EXECUTABLE = REPO_ROOT / ".venv-phoenix" / "bin" / "phoenix"

# Inherited variables that would change how Phoenix runs: its own settings (a developer's
# PHOENIX_SQL_DATABASE_URL/POSTGRES_* must not redirect the test database), the OTel SDK's
# (Phoenix reads OTEL_EXPORTER_OTLP_ENDPOINT), and anything that points Python elsewhere.
_STRIPPED_ENV_PREFIXES = ("PHOENIX_", "OTEL_")
_STRIPPED_ENV_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")


class PhoenixError(RuntimeError):
    """Phoenix failed to start, died, or did not return the expected spans."""


def find_phoenix_executable() -> Path | None:
    """The phoenix executable from $OTEL_AGENT_TRACE_PHOENIX or <repo>/.venv-phoenix, if present."""
    configured = os.environ.get(ENV_EXECUTABLE)
    candidate = Path(configured).expanduser() if configured else DEFAULT_EXECUTABLE
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Flatten nested mappings to dotted keys (lists are left as they are)."""
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield from _flatten(sub, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def normalize_span(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One span of ``GET /v1/projects/{project}/spans`` in the shape the tests use."""
    context = raw.get("context") or {}
    return {
        "name": raw.get("name"),
        "trace_id": context.get("trace_id"),
        "span_id": context.get("span_id"),
        "parent_id": raw.get("parent_id") or None,
        # OpenInference kind (LLM/AGENT/TOOL/CHAIN/UNKNOWN): Phoenix drops the OTel SpanKind.
        "kind": raw.get("span_kind"),
        "attributes": dict(_flatten(raw.get("attributes") or {})),
        "events": [
            {"name": event.get("name"), "attributes": dict(_flatten(event.get("attributes") or {}))}
            for event in raw.get("events") or []
        ],
        "status_code": raw.get("status_code"),
        "status_message": raw.get("status_message") or "",
        "start_time": raw.get("start_time"),
        "end_time": raw.get("end_time"),
        "phoenix_id": raw.get("id"),  # Phoenix's GlobalID of the span (used by UI URLs)
    }


class PhoenixServer:
    """A Phoenix server subprocess with a private SQLite database in a working directory.

    >>> server = PhoenixServer("/path/to/.venv-phoenix/bin/phoenix").start(tmp_path)
    >>> exporter = OTLPSpanExporter(endpoint=server.traces_endpoint)       # OTLP/HTTP
    >>> exporter = GrpcOTLPSpanExporter(endpoint=server.grpc_endpoint, insecure=True)
    >>> server.spans("my-project", trace_id=..., wait_for=2)
    >>> server.stop()
    """

    def __init__(
        self,
        executable: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 120.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        found = Path(executable) if executable is not None else find_phoenix_executable()
        if found is None:
            raise PhoenixError(
                f"Phoenix executable not found: set ${ENV_EXECUTABLE} or run scripts/install_phoenix.sh"
            )
        self.executable = found
        self.host = host
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self.port: int | None = None
        self.grpc_port: int | None = None
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self.startup_seconds: float | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._own_workdir = False
        self._attached_url: str | None = None

    @classmethod
    def attach(cls, url: str) -> PhoenixServer:
        """A client for a Phoenix started elsewhere (base URL such as http://127.0.0.1:6006).

        Only the HTTP side is known: grpc_endpoint, start() and the log are unavailable.
        """
        server = cls(executable=os.devnull)  # never run
        server._attached_url = url.rstrip("/")
        return server

    # -- endpoints -----------------------------------------------------------------------

    @property
    def http_endpoint(self) -> str:
        """Base URL: the UI, the REST API under /v1 and OTLP/HTTP at /v1/traces."""
        if self._attached_url is not None:
            return self._attached_url
        self._require_started()
        return f"http://{self.host}:{self.port}"

    @property
    def traces_endpoint(self) -> str:
        """Full OTLP/HTTP traces URL, as OTLPSpanExporter(endpoint=...) wants it."""
        return f"{self.http_endpoint}/v1/traces"

    @property
    def grpc_endpoint(self) -> str:
        """OTLP/gRPC endpoint (plaintext: use insecure=True)."""
        self._require_started()
        return f"http://{self.host}:{self.grpc_port}"

    # -- lifecycle -----------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        assert self.workdir is not None and self.port is not None and self.grpc_port is not None
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_STRIPPED_ENV_PREFIXES) and key not in _STRIPPED_ENV_VARS
        }
        env.update(
            {
                "PHOENIX_WORKING_DIR": str(self.workdir),
                "PHOENIX_SQL_DATABASE_URL": f"sqlite:///{self.workdir / 'phoenix.db'}",
                "PHOENIX_HOST": self.host,
                "PHOENIX_PORT": str(self.port),
                "PHOENIX_GRPC_PORT": str(self.grpc_port),
                # Nothing phones home or fetches from the internet (pixels, web fonts, WASM).
                "PHOENIX_TELEMETRY_ENABLED": "false",
                "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
                # Features the tests do not use: less start-up work, fewer moving parts.
                "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
                "PHOENIX_ENABLE_MCP_SERVER": "false",
                "PHOENIX_ALLOWED_SANDBOX_PROVIDERS": "NONE",
                "PHOENIX_ENABLE_AUTH": "false",
                "PHOENIX_ENABLE_PROMETHEUS": "false",
                # The migrations otherwise log every SQL statement (~4,500 lines).
                "PHOENIX_LOG_MIGRATIONS": "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, workdir: str | os.PathLike[str] | None = None, *, attempts: int = 3) -> PhoenixServer:
        """Start Phoenix and wait until both its HTTP and gRPC ports answer.

        ``workdir`` holds the SQLite database and the server log; a temporary directory
        (removed by stop()) is used when it is None. Retries with new ports when the server
        dies during start-up (e.g. a port taken between picking and binding it).
        """
        if self.process is not None or self._attached_url is not None:
            raise PhoenixError("Phoenix is already running")
        if workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="phoenix-"))
            self._own_workdir = True
        else:
            self.workdir = Path(workdir).resolve()
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "phoenix.log"
        last_error: PhoenixError | None = None
        for _attempt in range(attempts):
            try:
                self._start_once()
                return self
            except PhoenixError as exc:
                last_error = exc
                died = self.process is not None and self.process.poll() is not None
                self._terminate()
                if not died:  # a hang is not a port race: don't wait that long again
                    break
        self._cleanup_workdir()
        assert last_error is not None
        raise last_error

    def _start_once(self) -> None:
        self.port = free_port(self.host)
        self.grpc_port = free_port(self.host)
        while self.grpc_port == self.port:
            self.grpc_port = free_port(self.host)
        assert self.log_path is not None
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in _terminate
        self._log_file.write(f"\n=== phoenix serve on :{self.port} / grpc :{self.grpc_port}\n".encode())
        self._log_file.flush()
        began = time.monotonic()
        self.process = subprocess.Popen(
            [str(self.executable), "serve"],
            env=self.environment(),
            cwd=str(self.workdir),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so stop() can signal its whole process group
        )
        deadline = began + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise PhoenixError(
                    f"Phoenix exited with code {self.process.returncode} during start-up\n" + self.log_tail()
                )
            if self._healthy() and _port_open(self.host, self.grpc_port):
                self.startup_seconds = time.monotonic() - began
                return
            if time.monotonic() > deadline:
                raise PhoenixError(
                    f"Phoenix did not become healthy within {self.startup_timeout:.0f}s\n" + self.log_tail()
                )
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}/healthz", timeout=2) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate Phoenix (SIGTERM, then SIGKILL after ``timeout``) and clean up."""
        self._terminate(timeout)
        self._cleanup_workdir()

    def _terminate(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _cleanup_workdir(self) -> None:
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._own_workdir = False

    def __enter__(self) -> PhoenixServer:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        if self._attached_url is not None:
            return True
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the server log, for failure messages."""
        if self._attached_url is not None:
            return f"(Phoenix at {self._attached_url} was started elsewhere: no log here)"
        if self.log_path is None or not self.log_path.exists():
            return "(no Phoenix log)"
        text = self.log_path.read_bytes()[-200_000:].decode("utf-8", "replace")
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"

    def _require_started(self) -> None:
        if self.port is None:
            raise PhoenixError("Phoenix has not been started")

    # -- REST API ------------------------------------------------------------------------

    def get_json(self, path: str, params: Iterable[tuple[str, Any]] = ()) -> Any:
        """GET ``path`` (e.g. ``/v1/projects``) and decode the JSON answer."""
        query = urllib.parse.urlencode([(k, v) for k, v in params if v is not None])
        url = f"{self.http_endpoint}{path}" + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())

    def project(self, name: str) -> dict[str, Any] | None:
        """``{"name", "id", "description"}`` of a project, or None while it does not exist."""
        try:
            return self.get_json(f"/v1/projects/{urllib.parse.quote(name, safe='')}")["data"]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def raw_spans(self, project: str, trace_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Spans of a project as the REST API returns them (all pages, oldest first)."""
        path = f"/v1/projects/{urllib.parse.quote(project, safe='')}/spans"
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = [("limit", min(limit, 1000)), ("sort", "start_time"), ("order", "asc")]
            params += [("trace_id", trace_id), ("cursor", cursor)]
            try:
                page = self.get_json(path, params)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # project not created yet: no span arrived
                    return []
                raise
            out.extend(page.get("data") or [])
            cursor = page.get("next_cursor")
            if not cursor or len(out) >= limit:
                return out[:limit]

    def spans(
        self,
        project: str,
        trace_id: str | None = None,
        wait_for: int | None = None,
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Normalized spans of ``project`` (optionally one trace), ordered by start time.

        With ``wait_for=n``, polls until at least n spans are there, raising PhoenixError
        with the spans seen and the server log tail after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise PhoenixError("Phoenix is not running\n" + self.log_tail())
            spans = [normalize_span(raw) for raw in self.raw_spans(project, trace_id)]
            if wait_for is None or len(spans) >= wait_for:
                return spans
            if time.monotonic() > deadline:
                seen = [(s["name"], s["span_id"]) for s in spans]
                raise PhoenixError(
                    f"expected {wait_for} spans in project {project!r}"
                    f"{f' trace {trace_id}' if trace_id else ''} within {timeout:.0f}s, "
                    f"got {len(spans)}: {seen}\n" + self.log_tail()
                )
            time.sleep(0.25)

    def ui_trace_url(self, project: str, trace_id: str, span_id: str | None = None) -> str:
        """URL of the Phoenix UI's trace view (span tree + details), optionally selecting a span."""
        info = self.project(project)
        if info is None:
            raise PhoenixError(f"no project {project!r} in Phoenix")
        url = f"{self.http_endpoint}/projects/{info['id']}/traces/{urllib.parse.quote(trace_id)}"
        if span_id is not None:
            phoenix_ids = {s["span_id"]: s["phoenix_id"] for s in self.spans(project, trace_id)}
            if span_id in phoenix_ids:
                url += "?selectedSpanNodeId=" + urllib.parse.quote(phoenix_ids[span_id], safe="")
        return url
