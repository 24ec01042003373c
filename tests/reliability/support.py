"""Shared pieces of the reliability suite: iteration scaling, a span-end counter, a raw HTTP server,
"what the caller observed" summaries used to compare a call with and without the instrumentation, and the
soaks' measures of work (lines of our package executed, objects the garbage collector tracks)."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator

from otel_agent_trace.testing.fake_api import FakeMessagesAPI

#: ``OTEL_AGENT_TRACE_SOAK=1`` turns the short CI runs into long soak runs (same tests, bigger numbers).
SOAK = os.environ.get("OTEL_AGENT_TRACE_SOAK", "").strip().lower() in ("1", "true", "yes")


def scaled(ci: int, soak: int) -> int:
    """An iteration count: ``ci`` normally, ``soak`` under ``OTEL_AGENT_TRACE_SOAK=1``."""
    return soak if SOAK else ci


PACKAGE_MARKER = "otel_agent_trace"


class CountingExporter(SpanExporter):
    """Counts exported spans and keeps none, so the exporter itself holds no memory."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def package_lines_per_call(call: Callable[[], Any], calls: int) -> float:
    """Lines of this package executed per ``call()``, averaged over ``calls`` calls: a soak's cost as
    work, exact on a shared machine where timings are not."""
    count = 0

    def local(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_(frame: Any, event: str, arg: Any) -> Any:
        return local if PACKAGE_MARKER in frame.f_code.co_filename else None

    sys.settrace(global_)
    try:
        for _ in range(calls):
            call()
    finally:
        sys.settrace(None)
    return count / calls


def collect_until_nothing_left(passes: int = 10) -> None:
    """Full collections until one finds no garbage. Finalizers run during a collection can make new garbage
    that only the next one frees: closing a dropped generator raises GeneratorExit inside it, whose
    traceback and frames form new cycles; on Python 3.10 one collection left those, and the HTTP connections
    they held, alive."""
    for _ in range(passes):
        if gc.collect() == 0:
            return


@dataclass(frozen=True, repr=False)
class LiveObjects:
    """How many objects the garbage collector tracks, in all and per type."""

    total: int
    per_type: dict[type, int]

    def grown_since(self, earlier: LiveObjects, top: int = 12) -> str:
        """The types that grew the most since ``earlier``, as text for an assertion's message (pytest cuts a
        dict short): the first thing to read when the total grew."""
        grown = [(count - earlier.per_type.get(kind, 0), f"{kind.__module__}.{kind.__qualname__}")
                 for kind, count in self.per_type.items()]
        most = sorted((item for item in grown if item[0] > 0), reverse=True)[:top]
        return f"grew by {self.total - earlier.total:+} objects; most: " + ", ".join(f"{name} +{n}" for n, name in most)

    def __repr__(self) -> str:
        return f"LiveObjects(total={self.total})"


def tracked_objects(api: FakeMessagesAPI) -> LiveObjects:
    """Objects the garbage collector tracks after a collection, the fake server's request log aside.
    Counted into a plain dict keyed by type: one new tracked object, and no ABC checks that fill caches
    (a ``Counter`` of type names did, and showed up as growth)."""
    api.requests.clear()  # the fake server's own log of requests is not ours to count
    collect_until_nothing_left()
    objects = gc.get_objects()
    per_type: dict[type, int] = {}
    for obj in objects:
        kind = type(obj)
        per_type[kind] = per_type.get(kind, 0) + 1
    return LiveObjects(len(objects), per_type)


class UrandomIds(IdGenerator):
    """Span and trace ids from ``os.urandom``, unaffected by anyone reseeding ``random`` (hypothesis does)."""

    def generate_span_id(self) -> int:
        return int.from_bytes(os.urandom(8), "big") or 1

    def generate_trace_id(self) -> int:
        return int.from_bytes(os.urandom(16), "big") or 1


class EndCounter(SpanProcessor):
    """Counts ``on_end`` per span id, so a test can say every started span ended exactly once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started: dict[int, str] = {}
        self.ends: Counter[int] = Counter()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        with self._lock:
            self.started[span.context.span_id] = span.name

    def on_end(self, span: Any) -> None:
        with self._lock:
            self.ends[span.context.span_id] += 1

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def not_ended_once(self, prefix: str = "") -> dict[str, int]:
        """Spans (by name, whose name starts with ``prefix``) that ended zero or several times."""
        with self._lock:
            bad: Counter[str] = Counter()
            for span_id, name in self.started.items():
                if name.startswith(prefix) and self.ends[span_id] != 1:
                    bad[f"{name} ended {self.ends[span_id]}x"] += 1
            return dict(bad)

    def count(self, prefix: str = "") -> int:
        with self._lock:
            return sum(1 for name in self.started.values() if name.startswith(prefix))

    def clear(self) -> None:
        with self._lock:
            self.started.clear()
            self.ends.clear()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up on a cut-off or unreadable answer is what the fuzzing provokes


class Records(logging.Handler):
    """Collects every record at ``level`` or above, from any logger, while installed on the root logger."""

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(f"{r.name}: {r.getMessage()}" for r in self.records)

    def __enter__(self) -> Records:
        root = logging.getLogger()
        self._previous = root.level
        root.addHandler(self)
        root.setLevel(min(root.level, self.level) if root.level else self.level)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._previous)


class RawHTTPServer:
    """A local HTTP server that answers every request with exactly the bytes it was told to send.

    The fake Messages API only produces well-formed messages (or a few canned faults); fuzzing needs
    arbitrary bodies, content types, framings and cut-off points. ``framing``: ``length`` sends a
    Content-Length for the full body (so a ``cut`` is a short read), ``eof`` sends none and closes the
    connection (a ``cut`` is then a silently shorter body), ``chunked`` uses chunked encoding (a ``cut``
    drops the final chunk).
    """

    def __init__(self) -> None:
        self.status = 200
        self.content_type = "application/json"
        self.body = b"{}"
        self.cut: int | None = None
        self.framing = "length"
        self.requests = 0
        self._server: ThreadingHTTPServer | None = None

    def answer(self, body: bytes, *, status: int = 200, content_type: str = "application/json",
               cut: int | None = None, framing: str = "length") -> None:
        self.status, self.content_type, self.body, self.cut, self.framing = status, content_type, body, cut, framing

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RawHTTPServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                owner.requests += 1
                status, ctype, body, cut, framing = (owner.status, owner.content_type, owner.body, owner.cut,
                                                     owner.framing)
                self.close_connection = True
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("connection", "close")
                sent = body if cut is None else body[:cut]
                if framing == "chunked":
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(sent), 64):
                        piece = sent[start:start + 64]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    if cut is None:
                        self.wfile.write(b"0\r\n\r\n")
                    return
                if framing == "length":
                    self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(sent)

        server = _QuietServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def safe_repr(value: Any, limit: int = 4_000) -> str:
    """``repr`` that never raises (what the caller could print), capped so huge values compare cheaply."""
    try:
        text = repr(value)
    except BaseException as error:
        text = f"<repr raised {type(error).__qualname__}>"
    return text if len(text) <= limit else f"{text[:limit]}…[{len(text)} chars]"


def outcome(run: Callable[[], Any]) -> tuple[Any, ...]:
    """What a caller observes of ``run()``: its return value (summarised), or the exception's type and
    message, plus the Python warnings it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: tuple[Any, ...] = ("returned", run())
        except Exception as error:
            result = ("raised", type(error).__module__, type(error).__qualname__, safe_repr(str(error)))
    return (*result, sorted({f"{w.category.__name__}: {w.message}" for w in caught}))


@contextmanager
def uninstrumented(instrumentor: Any, provider: Any, settings: Any) -> Iterator[None]:
    """The same process with the instrumentation removed for the block, then put back as it was."""
    instrumentor.uninstrument()
    try:
        yield
    finally:
        instrumentor.instrument(tracer_provider=provider, settings=settings)


@contextmanager
def hang_guard(seconds: int) -> Iterator[None]:
    """Fail the block if it runs past ``seconds`` (a hang, not slowness: set it far above the normal time).

    Uses SIGALRM, so it only guards the main thread on POSIX; elsewhere it does nothing."""
    import signal

    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: the work is not bounded")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
