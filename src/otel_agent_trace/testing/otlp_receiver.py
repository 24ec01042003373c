"""A small, real OTLP/HTTP receiver for tests: spans go over the wire and come back as plain dicts.

In-memory exporters skip the part that breaks in production: serialisation, the HTTP path, headers,
compression and the exporter's retry behaviour. :class:`OTLPReceiver` is a real HTTP server on
``127.0.0.1`` that speaks OTLP/HTTP (protobuf, gzip/deflate bodies, and OTLP/JSON), so a test can point
the SDK's own ``OTLPSpanExporter`` at it — including with a Langfuse-shaped path and headers::

    with OTLPReceiver() as receiver:
        exporter = OTLPSpanExporter(endpoint=receiver.traces_endpoint)
        ...
        (span,) = receiver.wait_for_spans(1)
        assert span.attributes["gen_ai.operation.name"] == "chat"

Any path ending in ``/v1/traces``, ``/v1/metrics`` or ``/v1/logs`` is accepted, so
``/api/public/otel/v1/traces`` works as Langfuse's endpoint does. It can also be told to answer with an
error status (optionally only for the first N requests, with ``Retry-After``) or to answer slowly, to
test what an exporter does when its backend is down or slow.

``opentelemetry-proto`` (a test dependency) is imported only when a receiver starts, never when this
package is imported.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = [
    "OTLPReceiver",
    "ReceivedDataPoint",
    "ReceivedEvent",
    "ReceivedLink",
    "ReceivedMetric",
    "ReceivedRequest",
    "ReceivedSpan",
]

# Proto enum numbers -> the names the OpenTelemetry API uses (trace.SpanKind.CLIENT.name == "CLIENT"), so
# tests can compare with ``SpanKind.X.name`` instead of memorising wire numbers.
_SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}
_SIGNALS = ("traces", "metrics", "logs")
# OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping expects base64 for bytes.
_HEX_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReceivedLink:
    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """One decoded span. Ids are lower-case hex; attribute values are Python values (arrays as lists)."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str  # "INTERNAL", "CLIENT", ... as in opentelemetry.trace.SpanKind names
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Any]
    events: list[ReceivedEvent]
    links: list[ReceivedLink]
    status_code: str  # "UNSET", "OK" or "ERROR"
    status_message: str
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    path: str  # the HTTP path it arrived on

    def events_named(self, name: str) -> list[ReceivedEvent]:
        return [event for event in self.events if event.name == name]


@dataclass(frozen=True, slots=True)
class ReceivedDataPoint:
    """A number point has ``value``; a histogram point has ``count``/``sum``/``bucket_counts``/``bounds``."""

    attributes: dict[str, Any]
    value: float | int | None = None
    count: int | None = None
    sum: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReceivedMetric:
    name: str
    unit: str
    type: str  # "gauge", "sum", "histogram", "exponential_histogram" or "summary"
    points: list[ReceivedDataPoint]
    resource: dict[str, Any]
    scope_name: str


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One HTTP request as received: ``message`` is the decoded protobuf, or ``None`` if it did not decode."""

    method: str
    path: str
    signal: str | None  # "traces", "metrics", "logs", or None for an unknown path
    headers: dict[str, str]  # names lower-cased
    body: bytes  # as sent (possibly compressed)
    message: Any
    status: int  # the status code the receiver answered with
    error: str | None = None


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(key_values: Sequence[Any]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in key_values}


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _HEX_ID_KEYS and isinstance(value, str) and value:
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError:
                    pass  # already base64 (protobuf's own JSON mapping); leave it to the parser
            out[key] = _hex_ids_to_base64(value)
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def _proto_types(signal: str) -> tuple[type, type]:
    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as service

        return service.ExportTraceServiceRequest, service.ExportTraceServiceResponse
    if signal == "metrics":
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as service

        return service.ExportMetricsServiceRequest, service.ExportMetricsServiceResponse
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as service

    return service.ExportLogsServiceRequest, service.ExportLogsServiceResponse


def _decode(signal: str, body: bytes, content_type: str) -> Any:
    request_type, _ = _proto_types(signal)
    message = request_type()
    if "json" in content_type:
        from google.protobuf import json_format

        document = _hex_ids_to_base64(json.loads(body.decode("utf-8")))
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    else:
        message.ParseFromString(body)
    return message


#: Default limits on one request: what is read off the socket, and what a compressed body may inflate to
#: (a 510 KB gzip bomb used to grow the process by 1 GB).
MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024


class _BodyRejected(ValueError):
    """A request body refused before it is decoded; carries the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _decompress(body: bytes, encoding: str, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """The body inflated, refusing to produce more than ``limit`` bytes (never inflated whole first)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise ValueError(f"unsupported Content-Encoding {encoding!r}")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise _BodyRejected(413, f"body inflates past {limit} bytes")
    if not inflater.eof:
        raise ValueError(f"truncated {encoding} body")
    return out


def _flatten_spans(message: Any, path: str) -> list[ReceivedSpan]:
    spans = []
    for resource_spans in message.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        kind=_SPAN_KINDS.get(span.kind, str(span.kind)),
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        events=[
                            ReceivedEvent(event.name, event.time_unix_nano, _attributes(event.attributes))
                            for event in span.events
                        ],
                        links=[
                            ReceivedLink(
                                link.trace_id.hex(), link.span_id.hex(), _attributes(link.attributes)
                            )
                            for link in span.links
                        ],
                        status_code=_STATUS_CODES.get(span.status.code, str(span.status.code)),
                        status_message=span.status.message,
                        resource=resource,
                        scope_name=scope_spans.scope.name,
                        scope_version=scope_spans.scope.version,
                        path=path,
                    )
                )
    return spans


def _flatten_points(metric: Any, data_type: str) -> list[ReceivedDataPoint]:
    points = []
    for point in getattr(metric, data_type).data_points:
        attributes = _attributes(point.attributes)
        if data_type in ("gauge", "sum"):
            number = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
            points.append(ReceivedDataPoint(attributes, value=number))
        elif data_type == "histogram":
            points.append(
                ReceivedDataPoint(
                    attributes,
                    count=point.count,
                    sum=point.sum,
                    bucket_counts=list(point.bucket_counts),
                    bounds=list(point.explicit_bounds),
                )
            )
        else:  # exponential histograms and summaries: count and sum are what tests compare
            points.append(ReceivedDataPoint(attributes, count=point.count, sum=point.sum))
    return points


def _flatten_metrics(message: Any) -> list[ReceivedMetric]:
    metrics = []
    for resource_metrics in message.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                data_type = metric.WhichOneof("data") or ""
                metrics.append(
                    ReceivedMetric(
                        name=metric.name,
                        unit=metric.unit,
                        type=data_type,
                        points=_flatten_points(metric, data_type) if data_type else [],
                        resource=resource,
                        scope_name=scope_metrics.scope.name,
                    )
                )
    return metrics


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # An exporter that times out hangs up on a delayed answer: normal in slow-backend tests.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class OTLPReceiver:
    """An OTLP/HTTP endpoint on ``127.0.0.1`` (ephemeral port) that records what exporters send.

    Args:
        fail_with: answer every export with this HTTP status instead of 200 (e.g. 400, or 503 which the
            SDK exporter retries). Can be changed while running.
        fail_times: with ``fail_with``, fail only the first N export requests, then succeed — for retry
            tests. ``None`` fails all of them.
        retry_after: seconds to send in a ``Retry-After`` header with a failure; the SDK exporter honours
            it, so ``retry_after=0`` makes retry tests fast.
        delay: seconds to wait before answering each request (slow-backend tests). Closing the receiver
            cuts the wait short.
        max_body_bytes: a request body larger than this (or with a negative ``Content-Length``) is
            refused with 413 (400) without being read.
        max_decompressed_bytes: a gzip/deflate body that would inflate past this is refused with 413.
    """

    def __init__(
        self,
        *,
        fail_with: int | None = None,
        fail_times: int | None = None,
        retry_after: float | None = None,
        delay: float = 0.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        self.fail_with = fail_with
        self.fail_times = fail_times
        self.retry_after = retry_after
        self.delay = delay
        self._requests: list[ReceivedRequest] = []
        self._spans: list[ReceivedSpan] = []
        self._metrics: list[ReceivedMetric] = []
        self._failures_sent = 0
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> OTLPReceiver:
        if self._server is not None:
            return self
        _proto_types("traces")  # fail here, in the test, if opentelemetry-proto is missing
        server = _Server(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        server.block_on_close = False  # a delayed handler must not hold up close()
        self._server = server
        self._closing.clear()
        # A short poll interval keeps close() (and so every test's teardown) fast.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="otlp-receiver", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is None:
            return
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- addresses ------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("OTLPReceiver is not running; use it as a context manager or call start()")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """Base URL, the shape of ``OTEL_EXPORTER_OTLP_ENDPOINT`` (signal paths are appended to it)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_endpoint(self) -> str:
        """Full URL for ``OTLPSpanExporter(endpoint=...)``, which uses its argument as given."""
        return self.endpoint + "/v1/traces"

    @property
    def metrics_endpoint(self) -> str:
        return self.endpoint + "/v1/metrics"

    # --- what arrived ---------------------------------------------------------------------------------
    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._changed:
            return list(self._requests)

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._changed:
            return list(self._spans)

    @property
    def metrics(self) -> list[ReceivedMetric]:
        with self._changed:
            return list(self._metrics)

    def spans_named(self, name: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.name == name]

    def clear(self) -> None:
        with self._changed:
            self._requests.clear()
            self._spans.clear()
            self._metrics.clear()
            self._failures_sent = 0

    def wait_for_spans(self, n: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Block until at least ``n`` spans were accepted; return them all. Raises ``TimeoutError``."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._spans) >= n, timeout=timeout):
                names = [span.name for span in self._spans]
                raise TimeoutError(f"expected {n} spans within {timeout}s, received {len(names)}: {names}")
            return list(self._spans)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Block until at least ``n`` HTTP requests arrived (accepted or not). Raises ``TimeoutError``."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= n, timeout=timeout):
                raise TimeoutError(f"expected {n} requests within {timeout}s, received {len(self._requests)}")
            return list(self._requests)

    # --- request handling (called from server threads) ------------------------------------------------
    def _should_fail(self) -> int | None:
        with self._changed:
            if self.fail_with is None:
                return None
            if self.fail_times is not None and self._failures_sent >= self.fail_times:
                return None
            self._failures_sent += 1
            return self.fail_with

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        if self.delay:
            self._closing.wait(self.delay)
        route = path.split("?", 1)[0].rstrip("/")
        signal = next((name for name in _SIGNALS if route.endswith("/v1/" + name)), None)
        content_type = headers.get("content-type", "application/x-protobuf").split(";")[0].strip().lower()
        message: Any = None
        error: str | None = None
        status = 200
        if method != "POST":
            status, error = 405, f"method {method} not allowed"
        elif signal is None:
            status, error = 404, f"no OTLP signal at {path}"
        else:
            try:
                inflated = _decompress(body, headers.get("content-encoding", ""), self.max_decompressed_bytes)
                message = _decode(signal, inflated, content_type)
            except _BodyRejected as exc:
                status, error = exc.status, str(exc)
            except Exception as exc:  # a malformed body is an answer (400), never a crashed server thread
                status, error = 400, f"{type(exc).__name__}: {exc}"
        failure = self._should_fail() if status == 200 else None
        if failure is not None:
            status, error = failure, f"told to fail with {failure}"

        with self._changed:
            self._requests.append(
                ReceivedRequest(method, path, signal, headers, body, message, status, error)
            )
            if status == 200 and signal == "traces":
                self._spans.extend(_flatten_spans(message, route))
            elif status == 200 and signal == "metrics":
                self._metrics.extend(_flatten_metrics(message))
            self._changed.notify_all()

        extra: dict[str, str] = {}
        if status != 200:
            if self.retry_after is not None:
                extra["Retry-After"] = str(max(0, round(self.retry_after)))
            return status, (error or "").encode(), {"Content-Type": "text/plain", **extra}
        assert signal is not None
        _, response_type = _proto_types(signal)
        if "json" in content_type:
            return 200, b"{}", {"Content-Type": "application/json"}
        return 200, response_type().SerializeToString(), {"Content-Type": "application/x-protobuf"}


def _read_body(handler: BaseHTTPRequestHandler, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, at most ``limit`` bytes; a bigger or badly framed one raises ``_BodyRejected``
    before it is read (``rfile.read`` of a negative length would wait for the client to hang up)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(handler.rfile.readline(64).split(b";", 1)[0].strip() or b"0", 16)
            if size < 0:
                raise _BodyRejected(400, "negative chunk size")
            if size == 0:
                handler.rfile.readline(64)  # the blank line after the last chunk
                return b"".join(chunks)
            total += size
            if total > limit:
                raise _BodyRejected(413, f"body larger than {limit} bytes")
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline(64)
    try:
        length = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        raise _BodyRejected(400, "Content-Length is not a number") from None
    if length < 0:
        raise _BodyRejected(400, f"negative Content-Length {length}")
    if length > limit:
        raise _BodyRejected(413, f"Content-Length {length} is larger than {limit} bytes")
    return handler.rfile.read(length) if length else b""


def _make_handler(receiver: OTLPReceiver) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        server_version = "otel-agent-trace-otlp-receiver"

        def _serve(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                body = _read_body(self, receiver.max_body_bytes)
            except _BodyRejected as exc:
                # The unread body is still on the socket: answer, then close instead of reading it.
                self.close_connection = True
                status, payload, response_headers = exc.status, str(exc).encode(), {"Content-Type": "text/plain",
                                                                                     "Connection": "close"}
                with receiver._changed:
                    receiver._requests.append(ReceivedRequest(self.command, self.path, None, headers, b"", None,
                                                              exc.status, str(exc)))
                    receiver._changed.notify_all()
            except (ValueError, OSError):  # a malformed chunk header: decoded as an empty body (400)
                status, payload, response_headers = receiver._handle(self.command, self.path, headers, b"")
            else:
                status, payload, response_headers = receiver._handle(self.command, self.path, headers, body)
            self.send_response(status)
            for name, value in response_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = _serve
        do_GET = _serve
        do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; everything is in receiver.requests

    return _Handler
