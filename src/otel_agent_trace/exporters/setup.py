"""The TracerProvider ``instrument()`` builds when the application has none: OTLP from the standard
``OTEL_*`` variables (or Langfuse from ``LANGFUSE_*``), batched, flushed at exit, failures logged once."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

log = logging.getLogger("otel_agent_trace")

_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.proto.grpc",
)


class _ExporterLogSilencer(logging.Filter):
    """Holds back the SDK exporters' per-batch warnings (a collector that is down would log one per batch
    for as long as the agent runs); ``LogOnceExporter`` reports the first of them, once."""

    def __init__(self) -> None:
        super().__init__()
        self.first_message: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if self.first_message is None:
            self.first_message = record.getMessage()
        return False


def _silence_exporter_logs() -> _ExporterLogSilencer:
    silencer = None
    for name in _EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        existing = next((f for f in logger.filters if isinstance(f, _ExporterLogSilencer)), None)
        silencer = silencer or existing or _ExporterLogSilencer()
        if existing is None:
            logger.addFilter(silencer)
    assert silencer is not None
    return silencer


class LogOnceExporter(SpanExporter):
    """Wraps an exporter so a failing backend never raises into the export thread and is logged once."""

    def __init__(self, inner: SpanExporter, target: str, silencer: _ExporterLogSilencer | None = None) -> None:
        self._inner = inner
        self._target = target
        self._silencer = silencer
        self._warned = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception as error:
            result = SpanExportResult.FAILURE
            if self._silencer is not None and self._silencer.first_message is None:
                self._silencer.first_message = f"{type(error).__name__}: {error}"
        if result is SpanExportResult.FAILURE and not self._warned:
            self._warned = True
            cause = self._silencer.first_message if self._silencer is not None else None
            log.warning("otel_agent_trace: could not export spans to %s%s; they are dropped "
                        "(reported once, the agent is not affected)", self._target, f" ({cause})" if cause else "")
        return result

    def shutdown(self) -> None:
        try:
            self._inner.shutdown()
        except Exception:
            pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        try:
            return bool(self._inner.force_flush(timeout_millis))
        except Exception:
            return False


def export_target(environ: Mapping[str, str] | None = None) -> str:
    """Where ``build_exporter`` sends spans, for messages: the endpoint, "Langfuse", or the default."""
    env = os.environ if environ is None else environ
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        return endpoint
    if env.get("LANGFUSE_PUBLIC_KEY") and env.get("LANGFUSE_SECRET_KEY"):
        return "Langfuse"
    kind = env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")[0].strip().lower()
    return "the console" if kind == "console" else "the default OTLP endpoint"


def build_exporter(environ: Mapping[str, str] | None = None) -> SpanExporter | None:
    """The exporter ``OTEL_TRACES_EXPORTER`` asks for (default ``otlp``), or None for ``none``."""
    env = os.environ if environ is None else environ
    kind = env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")[0].strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    silencer = _silence_exporter_logs()
    endpoint_set = "OTEL_EXPORTER_OTLP_ENDPOINT" in env or "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in env
    if not endpoint_set:
        from otel_agent_trace.exporters.langfuse import langfuse_otlp_config

        langfuse = langfuse_otlp_config(env)
        if langfuse is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

            endpoint, headers = langfuse
            return LogOnceExporter(HttpExporter(endpoint=endpoint, headers=headers), endpoint, silencer)
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip().lower()
    options = _explicit_options(env, protocol) if environ is not None else {}
    target = options.get("endpoint") or (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                                         or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "the default OTLP endpoint")
    exporter: SpanExporter
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter(**options)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter = HttpExporter(**options)
    return LogOnceExporter(exporter, target, silencer)


def _explicit_options(env: Mapping[str, str], protocol: str) -> dict[str, Any]:
    """Endpoint and headers from a given environment: the SDK exporters read only ``os.environ``."""
    from opentelemetry.util.re import parse_env_headers

    options: dict[str, Any] = {}
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if traces:
        options["endpoint"] = traces
    elif base:
        options["endpoint"] = base if protocol == "grpc" else base.rstrip("/") + "/v1/traces"
    headers = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS")
    if headers:
        options["headers"] = parse_env_headers(headers, liberal=True)
    return options


def warn_on_protocol_mismatch(environ: Mapping[str, str] | None = None) -> bool:
    """Log once when the OTLP protocol is gRPC but the endpoint is plainly an OTLP/HTTP one.

    The OpenTelemetry distro behind ``opentelemetry-instrument`` defaults the protocol to gRPC, so a
    zero-code run pointed at port 4318, Langfuse or Phoenix's ``/v1/traces`` otherwise exports nothing
    and says nothing about why. Returns whether it warned."""
    env = os.environ if environ is None else environ
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "")
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or ""
    if protocol.strip().lower() != "grpc" or not endpoint:
        return False
    from urllib.parse import urlsplit

    try:
        url = urlsplit(endpoint.strip())
        port = url.port
    except ValueError:
        return False
    if port != 4318 and url.path.rstrip("/") in ("", "/") and port != 6006:
        return False
    log.warning("otel_agent_trace: OTEL_EXPORTER_OTLP_PROTOCOL is grpc but %s looks like an OTLP/HTTP endpoint, "
                "so no spans will arrive there; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf "
                "(opentelemetry-instrument defaults the protocol to grpc)", endpoint)
    return True


def ensure_tracer_provider(tracer_provider: Any = None, environ: Mapping[str, str] | None = None) -> Any:
    """The provider to use: the one passed, else the global SDK provider, else a new one we install."""
    if tracer_provider is not None:
        return tracer_provider
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    trace.set_tracer_provider(new_tracer_provider(build_exporter(environ)))
    return trace.get_tracer_provider()


def new_tracer_provider(exporter: SpanExporter | None) -> TracerProvider:
    """The provider ``instrument()`` installs: export runs on the batch processor's own thread, so a slow
    or hung backend never holds up a model call."""
    provider = TracerProvider(resource=Resource.create())
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def ensure_meter_provider(meter_provider: Any = None, environ: Mapping[str, str] | None = None) -> Any:
    """The meter provider for our metrics: the one passed, the global SDK one, or — when an OTLP endpoint
    is configured and ``OTEL_METRICS_EXPORTER`` is not ``none`` — a new one exporting there. None otherwise
    (the API's no-op meters then cost next to nothing)."""
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider

    if meter_provider is not None:
        return meter_provider
    current = metrics.get_meter_provider()
    if isinstance(current, MeterProvider):
        return current
    env = os.environ if environ is None else environ
    endpoint = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint or env.get("OTEL_METRICS_EXPORTER", "otlp").strip().lower() != "otlp":
        return None
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    protocol = (env.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip().lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[assignment]
    provider = MeterProvider(resource=Resource.create(), metric_readers=[
        PeriodicExportingMetricReader(OTLPMetricExporter())])
    metrics.set_meter_provider(provider)
    return provider
