"""A broken trace backend costs the agent nothing: unreachable, slow, rejecting or raising exporters leave
call latency unchanged, raise nothing into the agent, and are reported by one warning — not one per call."""

from __future__ import annotations

import logging
import socket
import statistics
import time
from collections.abc import Iterator, Sequence
from typing import Any

import anthropic
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_agent_trace.config import Settings
from otel_agent_trace.exporters import setup as exporter_setup
from otel_agent_trace.exporters.setup import build_exporter
from otel_agent_trace.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.fake_api import FakeMessagesAPI
from otel_agent_trace.testing.otlp_receiver import OTLPReceiver
from tests.reliability.support import Records, scaled

CALLS = scaled(300, 3_000)  # per arm; medians of a few hundred ~1 ms calls are stable to a few percent
BLOCK = 25  # calls per block; the arms alternate block by block so drift hits both alike
RATIO, EPSILON_S = 1.05, 0.000_05
EXPORT_TIMEOUT_S = "0.5"  # per export; keeps force_flush short when the backend never answers


class NoopExporter(SpanExporter):
    """The healthy baseline: a backend that accepts everything instantly."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _strip_once_filters() -> None:
    """The exporter loggers' silencing filters are process-wide: a backend measured earlier in this process
    would otherwise have used up the one warning a new process gets."""
    for name in exporter_setup._EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        for once in [f for f in logger.filters if isinstance(f, exporter_setup._ExporterLogSilencer)]:
            logger.removeFilter(once)


class Arm:
    """One instrumentation setup (provider + batch processor), switched on for a block of calls at a time."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.latencies: list[float] = []


def run_agent_calls(client: anthropic.Anthropic, arm: Arm, n: int) -> None:
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=arm.provider, settings=Settings())
    try:
        for i in range(n):
            request = {"model": "claude-sonnet-4-6", "max_tokens": 64,
                       "messages": [{"role": "user", "content": f"task {len(arm.latencies)} {i}"}]}
            start = time.perf_counter()
            message = client.messages.create(**request)
            arm.latencies.append(time.perf_counter() - start)
            assert message.content[0].text == "ok"
    finally:
        instrumentor.uninstrument()


class Outcome:
    def __init__(self, broken_median: float, healthy_median: float, warnings: list[logging.LogRecord]) -> None:
        self.broken_median, self.healthy_median, self.warnings = broken_median, healthy_median, warnings
        self.name = ""


def measure(broken: SpanExporter) -> Outcome:
    """Median call latency with the broken exporter and with a healthy one (blocks interleaved), then the
    warnings after several more batches have failed and the provider has been flushed and shut down."""
    healthy, failing = Arm(NoopExporter()), Arm(broken)
    with Records() as records:
        with FakeMessagesAPI() as api:
            client = anthropic.Anthropic(api_key="sk-ant-test-key-000000", base_url=api.base_url, max_retries=0)
            run_agent_calls(client, healthy, BLOCK)  # warm up connections, imports and caches
            healthy.latencies.clear()
            while len(failing.latencies) < CALLS:
                run_agent_calls(client, failing, BLOCK)
                run_agent_calls(client, healthy, BLOCK)
        tracer = failing.provider.get_tracer("more-batches")
        for _ in range(4):
            tracer.start_span("one more batch").end()
            failing.provider.force_flush(timeout_millis=5_000)
        failing.provider.shutdown()
        healthy.provider.shutdown()
    return Outcome(statistics.median(failing.latencies), statistics.median(healthy.latencies), records.records)


def _explode(self: Any, spans: Any) -> SpanExportResult:
    raise RuntimeError("exporter bug")


BACKENDS = ("unreachable", "unreachable_langfuse", "slow", "rejecting", "raising")


@pytest.fixture(scope="class", params=BACKENDS)
def broken_backend(request) -> Iterator[Outcome]:
    """The exporter a user gets from ``instrument()`` (``build_exporter`` over their environment), pointed
    at a backend that is down, too slow for the export timeout, rejecting every batch, or an exporter
    that raises; measured once per backend for the tests below."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
                     "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_TRACES_EXPORTER",
                     "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"):
            patch.delenv(name, raising=False)
        # The SDK exporter reads os.environ itself, so the environment is set there too.
        environ = {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": EXPORT_TIMEOUT_S}
        receiver = None
        if request.param in ("slow", "rejecting"):
            receiver = OTLPReceiver(delay=1.0) if request.param == "slow" else OTLPReceiver(fail_with=400)
            environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.start().endpoint
        elif request.param == "unreachable_langfuse":
            environ.update({"LANGFUSE_PUBLIC_KEY": "pk-lf-test", "LANGFUSE_SECRET_KEY": "sk-lf-test",
                            "LANGFUSE_HOST": f"http://127.0.0.1:{closed_port()}"})
        else:
            environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{closed_port()}"
        if request.param == "raising":
            patch.setattr(OTLPSpanExporter, "export", _explode)
        for name, value in environ.items():
            patch.setenv(name, value)
        _strip_once_filters()
        try:
            exporter = build_exporter(environ)
            assert exporter is not None
            outcome = measure(exporter)
            outcome.name = request.param
            yield outcome
        finally:
            _strip_once_filters()
            if receiver is not None:
                receiver.close()


class TestBrokenBackends:
    def test_agent_latency_is_unchanged(self, broken_backend):
        """Median call latency with the broken backend is within 5 % (+50 µs) of a healthy one's."""
        outcome = broken_backend
        print(f"{outcome.name}: median call {outcome.broken_median * 1e3:.3f} ms with the broken backend, "
              f"{outcome.healthy_median * 1e3:.3f} ms with a healthy one")
        assert outcome.broken_median <= outcome.healthy_median * RATIO + EPSILON_S

    def test_reported_by_exactly_one_warning(self, broken_backend):
        """However many batches fail, the user's log gets one warning from us or the exporter, not one each."""
        ours = [r for r in broken_backend.warnings if r.name.startswith(("otel_agent_trace", "opentelemetry.exporter"))]
        others = [f"{r.name}: {r.getMessage()}" for r in broken_backend.warnings if r not in ours]
        print(f"{broken_backend.name}: {len(ours)} warning(s) from us/the exporter; from the SDK's batch "
              f"processor: {others}")  # e.g. 'Queue full' when a soak run outpaces a slow collector
        assert len(ours) == 1, [f"{r.name}: {r.getMessage()}" for r in ours]


class TestEnvironment:
    def test_build_exporter_sends_where_its_environ_says(self, monkeypatch):
        """``build_exporter(environ)`` exports to the endpoint named in ``environ``, not in ``os.environ``."""
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
        with OTLPReceiver() as receiver:
            exporter = build_exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
            provider = TracerProvider()
            provider.add_span_processor(BatchSpanProcessor(exporter))
            provider.get_tracer("t").start_span("probe").end()
            provider.shutdown()
            assert [s.name for s in receiver.spans] == ["probe"]
