"""A broken trace backend costs the agent nothing: unreachable, slow, rejecting or raising exporters never
hold up a model call, raise nothing into the agent, and are reported by one warning — not one per call.

"Never blocks on export" is checked structurally, not with timings: model calls return while the exporter
is held inside ``export``. Latency ratios belong to ``benchmarks/``, where noise can be measured."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import anthropic
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_agent_trace.config import Settings
from otel_agent_trace.exporters import setup as exporter_setup
from otel_agent_trace.exporters.setup import LogOnceExporter, build_exporter, new_tracer_provider
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.fake_api import FakeMessagesAPI
from otel_agent_trace.testing.otlp_receiver import OTLPReceiver
from tests.reliability.support import Records, scaled

CALLS = scaled(60, 3_000)  # calls made against each broken backend
EXPORT_TIMEOUT_S = "0.5"  # per export; keeps force_flush short when the backend never answers
HANG_GUARD_S = 60.0  # only catches a hang; a healthy run needs a small fraction of it


class BlockedExporter(SpanExporter):
    """A backend that takes each batch and then hangs until the test lets it go."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches += 1
        self.entered.set()
        self.release.wait(HANG_GUARD_S)
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


def run_agent_calls(client: anthropic.Anthropic, provider: TracerProvider, n: int) -> int:
    """``n`` instrumented calls, each checked for the fake API's answer; returns how many returned."""
    instrumentor = AnthropicAgentInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=Settings())
    returned = 0
    try:
        for i in range(n):
            message = client.messages.create(model="claude-sonnet-4-6", max_tokens=64,
                                             messages=[{"role": "user", "content": f"task {i}"}])
            assert message.content[0].text == "ok"
            returned += 1
    finally:
        instrumentor.uninstrument()
    return returned


def in_thread_with_guard(work: Any) -> Any:
    """Runs ``work`` on a thread and fails the test, instead of hanging it, if it does not finish."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # reported on the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive(), f"the agent's calls did not finish within {HANG_GUARD_S:.0f} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class TestNeverBlocksOnExport:
    def test_calls_return_while_the_exporter_is_stuck_in_export(self, monkeypatch):
        """With the provider ``instrument()`` installs, a backend that hangs inside ``export`` does not hold
        up the agent: every call returns while the export thread is still stuck."""
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "1")  # the first batch leaves at once
        exporter = BlockedExporter()
        provider = new_tracer_provider(LogOnceExporter(exporter, "a hung backend"))
        with FakeMessagesAPI() as api:
            client = anthropic.Anthropic(api_key="sk-ant-test-key-000000", base_url=api.base_url, max_retries=0)
            try:
                in_thread_with_guard(lambda: run_agent_calls(client, provider, 1))
                assert exporter.entered.wait(HANG_GUARD_S), "the batch processor never called export"
                returned = in_thread_with_guard(lambda: run_agent_calls(client, provider, 40))
                assert returned == 40
                assert not exporter.release.is_set() and exporter.batches == 1, "export was not held while calling"
            finally:
                exporter.release.set()
                provider.shutdown()
        assert exporter.batches >= 2, "spans made while export was stuck were exported once it came back"


class Outcome:
    def __init__(self, returned: int, warnings: list[logging.LogRecord]) -> None:
        self.returned, self.warnings = returned, warnings
        self.name = ""


def measure(broken: SpanExporter) -> Outcome:
    """Runs the agent's calls against the broken exporter, then a few more batches, and collects what the
    user's log got once the provider has been flushed and shut down."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(broken))
    with Records() as records:
        with FakeMessagesAPI() as api:
            client = anthropic.Anthropic(api_key="sk-ant-test-key-000000", base_url=api.base_url, max_retries=0)
            returned = in_thread_with_guard(lambda: run_agent_calls(client, provider, CALLS))
        tracer = provider.get_tracer("more-batches")
        for _ in range(4):
            tracer.start_span("one more batch").end()
            provider.force_flush(timeout_millis=5_000)
        provider.shutdown()
    return Outcome(returned, records.records)


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
    def test_every_call_returns_its_answer(self, broken_backend):
        """The agent's calls all return the model's answer, whatever the backend does."""
        assert broken_backend.returned == CALLS

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
