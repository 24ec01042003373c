"""The test OTLP/HTTP receiver, driven by the SDK's real OTLP/HTTP exporters, and the Langfuse settings."""

from __future__ import annotations

import base64
import gzip
import json
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("opentelemetry.proto")

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_agent_trace.exporters.langfuse import (
    DEFAULT_LANGFUSE_HOST,
    LANGFUSE_READS,
    langfuse_otlp_config,
)
from otel_agent_trace.testing.otlp_receiver import OTLPReceiver

_OTLP_ENV = (
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
)


@pytest.fixture(autouse=True)
def _clean_otlp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The exporters fall back to OTEL_EXPORTER_OTLP_* for anything not passed; a developer's shell must not
    # change what these tests send.
    for name in _OTLP_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver():
    with OTLPReceiver() as running:
        yield running


def _provider(exporter: OTLPSpanExporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "agent-under-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _agent_trace(provider: TracerProvider) -> None:
    """A session -> turn -> tool trace shaped like the ones this package emits."""
    tracer = provider.get_tracer("otel_agent_trace")
    with tracer.start_as_current_span("invoke_agent fix-bug", kind=SpanKind.INTERNAL) as session:
        session.set_attribute("gen_ai.operation.name", "invoke_agent")
        with tracer.start_as_current_span("chat claude-sonnet-4-5", kind=SpanKind.CLIENT) as turn:
            turn.set_attribute("gen_ai.usage.input_tokens", 1200)
            turn.set_attribute("agent_trace.cache.hit_ratio", 0.75)
            turn.set_attribute("gen_ai.response.finish_reasons", ["tool_use"])
            with tracer.start_as_current_span("execute_tool read_file") as tool:
                tool.set_attribute("agent_trace.tool.is_error", True)
                tool.set_status(Status(StatusCode.ERROR, "file not found"))
        session.add_event(
            "agent_trace.finding",
            {"agent_trace.finding.kind": "hallucinated_input", "agent_trace.finding.turn": 1},
        )
        session.set_attribute("agent_trace.findings.count", 1)
        session.set_attribute("agent_trace.findings.kinds", ["hallucinated_input"])


class TestTraces:
    def test_spans_arrive_decoded_with_names_kinds_and_resource(self, receiver: OTLPReceiver) -> None:
        """Protobuf spans from the SDK exporter come back with their names, kinds and resource."""
        _agent_trace(_provider(OTLPSpanExporter(endpoint=receiver.traces_endpoint)))
        spans = {span.name: span for span in receiver.wait_for_spans(3)}
        assert set(spans) == {"invoke_agent fix-bug", "chat claude-sonnet-4-5", "execute_tool read_file"}
        assert spans["chat claude-sonnet-4-5"].kind == SpanKind.CLIENT.name
        assert spans["invoke_agent fix-bug"].kind == SpanKind.INTERNAL.name
        assert spans["chat claude-sonnet-4-5"].resource["service.name"] == "agent-under-test"
        assert spans["chat claude-sonnet-4-5"].scope_name == "otel_agent_trace"
        assert spans["chat claude-sonnet-4-5"].path == "/v1/traces"

    def test_parent_ids_link_session_turn_and_tool(self, receiver: OTLPReceiver) -> None:
        """Parent span ids are hex strings that link tool -> turn -> session in one trace."""
        _agent_trace(_provider(OTLPSpanExporter(endpoint=receiver.traces_endpoint)))
        spans = {span.name: span for span in receiver.wait_for_spans(3)}
        session, turn, tool = (
            spans["invoke_agent fix-bug"],
            spans["chat claude-sonnet-4-5"],
            spans["execute_tool read_file"],
        )
        assert session.parent_span_id is None
        assert turn.parent_span_id == session.span_id
        assert tool.parent_span_id == turn.span_id
        assert len({session.trace_id, turn.trace_id, tool.trace_id}) == 1
        assert len(session.trace_id) == 32 and len(session.span_id) == 16
        assert session.start_time_unix_nano <= turn.start_time_unix_nano <= turn.end_time_unix_nano

    def test_attribute_values_keep_their_python_types(self, receiver: OTLPReceiver) -> None:
        """Ints, floats, bools and string arrays decode to int, float, bool and list."""
        _agent_trace(_provider(OTLPSpanExporter(endpoint=receiver.traces_endpoint)))
        spans = {span.name: span for span in receiver.wait_for_spans(3)}
        turn = spans["chat claude-sonnet-4-5"].attributes
        assert turn["gen_ai.usage.input_tokens"] == 1200 and isinstance(
            turn["gen_ai.usage.input_tokens"], int
        )
        assert turn["agent_trace.cache.hit_ratio"] == pytest.approx(0.75)
        assert turn["gen_ai.response.finish_reasons"] == ["tool_use"]
        assert spans["execute_tool read_file"].attributes["agent_trace.tool.is_error"] is True
        assert spans["invoke_agent fix-bug"].attributes["agent_trace.findings.kinds"] == [
            "hallucinated_input"
        ]

    def test_events_and_status_are_decoded(self, receiver: OTLPReceiver) -> None:
        """Span events keep their attributes and an ERROR status keeps its message."""
        _agent_trace(_provider(OTLPSpanExporter(endpoint=receiver.traces_endpoint)))
        spans = {span.name: span for span in receiver.wait_for_spans(3)}
        (finding,) = spans["invoke_agent fix-bug"].events_named("agent_trace.finding")
        assert finding.attributes == {
            "agent_trace.finding.kind": "hallucinated_input",
            "agent_trace.finding.turn": 1,
        }
        assert finding.time_unix_nano > 0
        tool = spans["execute_tool read_file"]
        assert (tool.status_code, tool.status_message) == ("ERROR", "file not found")
        assert spans["chat claude-sonnet-4-5"].status_code == "UNSET"

    def test_gzip_bodies_are_decompressed(self, receiver: OTLPReceiver) -> None:
        """A gzip-compressed export is recorded with its encoding and decoded."""
        exporter = OTLPSpanExporter(endpoint=receiver.traces_endpoint, compression=Compression.Gzip)
        _agent_trace(_provider(exporter))
        receiver.wait_for_spans(3)
        assert {request.headers.get("content-encoding") for request in receiver.requests} == {"gzip"}

    def test_otlp_json_with_hex_ids_is_decoded(self, receiver: OTLPReceiver) -> None:
        """OTLP/JSON (hex ids, camelCase keys, enum numbers) decodes like protobuf and is answered in JSON."""
        document = {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "json-agent"}}]
                    },
                    "scopeSpans": [
                        {
                            "scope": {"name": "manual"},
                            "spans": [
                                {
                                    "traceId": "5b8efff798038103d269b633813fc60c",
                                    "spanId": "eee19b7ec3c1b174",
                                    "parentSpanId": "eee19b7ec3c1b173",
                                    "name": "chat claude",
                                    "kind": 3,
                                    "startTimeUnixNano": "1544712660000000000",
                                    "endTimeUnixNano": "1544712661000000000",
                                    "attributes": [
                                        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "42"}},
                                        {
                                            "key": "agent_trace.findings.kinds",
                                            "value": {
                                                "arrayValue": {"values": [{"stringValue": "tool_loop"}]}
                                            },
                                        },
                                    ],
                                    "status": {"code": 2, "message": "boom"},
                                }
                            ],
                        }
                    ],
                }
            ]
        }
        request = urllib.request.Request(
            receiver.traces_endpoint,
            data=json.dumps(document).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/json"
        (span,) = receiver.wait_for_spans(1)
        assert (span.trace_id, span.span_id, span.parent_span_id) == (
            "5b8efff798038103d269b633813fc60c",
            "eee19b7ec3c1b174",
            "eee19b7ec3c1b173",
        )
        assert span.kind == "CLIENT" and span.status_code == "ERROR"
        assert span.attributes == {
            "gen_ai.usage.output_tokens": 42,
            "agent_trace.findings.kinds": ["tool_loop"],
        }
        assert span.resource == {"service.name": "json-agent"}
        assert span.end_time_unix_nano - span.start_time_unix_nano == 1_000_000_000


class TestMetricsAndOtherPaths:
    def test_metrics_are_flattened_to_points(self, receiver: OTLPReceiver) -> None:
        """A histogram and a counter exported by the SDK arrive with their points and attributes."""
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=receiver.metrics_endpoint), export_interval_millis=60_000
        )
        provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "m"}))
        meter = provider.get_meter("otel_agent_trace")
        meter.create_histogram("gen_ai.client.token.usage", unit="{token}").record(
            300, {"gen_ai.token.type": "input"}
        )
        meter.create_counter("agent_trace.findings", unit="{finding}").add(
            2, {"agent_trace.finding.kind": "x"}
        )
        provider.force_flush()
        provider.shutdown()
        metrics = {metric.name: metric for metric in receiver.metrics}
        usage = metrics["gen_ai.client.token.usage"]
        assert (usage.type, usage.unit) == ("histogram", "{token}")
        (point,) = usage.points
        assert (point.count, point.sum, point.attributes) == (1, 300, {"gen_ai.token.type": "input"})
        assert sum(point.bucket_counts) == 1 and point.bounds
        (finding_point,) = metrics["agent_trace.findings"].points
        assert (metrics["agent_trace.findings"].type, finding_point.value) == ("sum", 2)

    def test_logs_are_recorded_and_unknown_paths_get_404(self, receiver: OTLPReceiver) -> None:
        """/v1/logs is accepted and recorded; a path with no OTLP signal is answered 404."""
        for path, expected in (("/v1/logs", 200), ("/v2/nothing", 404)):
            request = urllib.request.Request(
                receiver.endpoint + path, data=b"", headers={"Content-Type": "application/x-protobuf"}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            assert status == expected
        logs, unknown = receiver.requests
        assert (logs.signal, logs.status, unknown.signal, unknown.status) == ("logs", 200, None, 404)

    def test_malformed_body_is_answered_400_and_recorded(self, receiver: OTLPReceiver) -> None:
        """A body that is not OTLP gets 400 with the decode error kept on the request."""
        request = urllib.request.Request(
            receiver.traces_endpoint,
            data=gzip.compress(b"\xff\xff not protobuf"),
            headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        )
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=5)
        assert raised.value.code == 400
        (recorded,) = receiver.requests
        assert recorded.status == 400 and recorded.error and recorded.message is None
        assert receiver.spans == []

    def test_wait_for_spans_times_out_with_what_arrived(self, receiver: OTLPReceiver) -> None:
        """Waiting for more spans than arrive raises TimeoutError naming the ones that did."""
        with pytest.raises(TimeoutError, match=r"expected 1 spans within 0.05s, received 0"):
            receiver.wait_for_spans(1, timeout=0.05)

    def test_endpoint_needs_a_running_receiver(self) -> None:
        """Asking a stopped receiver for its endpoint is an error, not a wrong URL."""
        with pytest.raises(RuntimeError):
            _ = OTLPReceiver().endpoint


class TestFailureModes:
    def test_fail_with_makes_the_exporter_report_failure_without_raising(self) -> None:
        """A non-retryable error status is an export FAILURE for the caller, never an exception."""
        with OTLPReceiver(fail_with=400) as receiver:
            exporter = OTLPSpanExporter(endpoint=receiver.traces_endpoint, timeout=2)
            provider = TracerProvider()
            span = provider.get_tracer("t").start_span("chat m")
            span.end()
            assert exporter.export([span]) is SpanExportResult.FAILURE
            (request,) = receiver.requests
            assert request.status == 400 and request.message is not None
            assert receiver.spans == []

    def test_retryable_failure_then_success_is_retried(self) -> None:
        """A 503 with Retry-After: 0 on the first attempt is retried and the batch then arrives."""
        with OTLPReceiver(fail_with=503, fail_times=1, retry_after=0) as receiver:
            exporter = OTLPSpanExporter(endpoint=receiver.traces_endpoint, timeout=5)
            span = TracerProvider().get_tracer("t").start_span("chat m")
            span.end()
            assert exporter.export([span]) is SpanExportResult.SUCCESS
            assert [request.status for request in receiver.requests] == [503, 200]
            assert [received.name for received in receiver.spans] == ["chat m"]

    def test_slow_backend_times_out_the_export_without_raising(self) -> None:
        """With the receiver slower than the exporter's timeout, export returns FAILURE promptly."""
        with OTLPReceiver(delay=5.0) as receiver:
            exporter = OTLPSpanExporter(endpoint=receiver.traces_endpoint, timeout=0.5)
            span = TracerProvider().get_tracer("t").start_span("chat m")
            span.end()
            started = time.monotonic()
            assert exporter.export([span]) is SpanExportResult.FAILURE
            assert time.monotonic() - started < 4.0
        # close() cut the delayed handler short instead of waiting it out

    def test_closed_receiver_is_an_unreachable_exporter_target(self) -> None:
        """An exporter aimed at a receiver that has closed reports FAILURE (connection refused)."""
        with OTLPReceiver() as receiver:
            endpoint = receiver.traces_endpoint
        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=0.5)
        span = TracerProvider().get_tracer("t").start_span("chat m")
        span.end()
        assert exporter.export([span]) is SpanExportResult.FAILURE


class TestLangfuseConfig:
    def test_not_configured_without_both_keys(self) -> None:
        """Langfuse is off unless both the public and the secret key are set."""
        assert langfuse_otlp_config({}) is None
        assert langfuse_otlp_config({"LANGFUSE_PUBLIC_KEY": "pk"}) is None
        assert langfuse_otlp_config({"LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": " "}) is None

    def test_defaults_to_langfuse_cloud_with_basic_auth_and_ingestion_version(self) -> None:
        """Without a host the endpoint is Langfuse Cloud's OTLP traces path, with Basic auth and version 4."""
        config = langfuse_otlp_config({"LANGFUSE_PUBLIC_KEY": "pk-lf-1", "LANGFUSE_SECRET_KEY": "sk-lf-2"})
        assert config is not None
        endpoint, headers = config
        assert endpoint == DEFAULT_LANGFUSE_HOST + "/api/public/otel/v1/traces"
        assert headers == {
            "Authorization": "Basic " + base64.b64encode(b"pk-lf-1:sk-lf-2").decode(),
            "x-langfuse-ingestion-version": "4",
        }

    @pytest.mark.parametrize(
        ("environ", "endpoint"),
        [
            ({"LANGFUSE_HOST": "http://localhost:3000/"}, "http://localhost:3000/api/public/otel/v1/traces"),
            ({"LANGFUSE_BASE_URL": "https://us.example"}, "https://us.example/api/public/otel/v1/traces"),
            (
                {"LANGFUSE_BASE_URL": "https://new.example", "LANGFUSE_HOST": "https://old.example"},
                "https://new.example/api/public/otel/v1/traces",
            ),
            ({"LANGFUSE_HOST": "http://h:3000/api/public/otel"}, "http://h:3000/api/public/otel/v1/traces"),
        ],
    )
    def test_host_resolution(self, environ: dict[str, str], endpoint: str) -> None:
        """BASE_URL wins over HOST, trailing slashes go, and an already-present OTLP path is not doubled."""
        config = langfuse_otlp_config({"LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": "sk", **environ})
        assert config is not None and config[0] == endpoint

    def test_attributes_langfuse_reads_include_the_cache_creation_alias(self) -> None:
        """The documented Langfuse attribute list names the cache-write alias it depends on."""
        assert "gen_ai.usage.cache_creation.input_tokens" in LANGFUSE_READS
        assert "session.id" in LANGFUSE_READS

    def test_langfuse_shaped_export_reaches_the_otel_path_with_auth(self, receiver: OTLPReceiver) -> None:
        """An exporter built from langfuse_otlp_config posts to /api/public/otel/v1/traces with pk:sk auth."""
        config = langfuse_otlp_config(
            {
                "LANGFUSE_PUBLIC_KEY": "pk",
                "LANGFUSE_SECRET_KEY": "sk",
                "LANGFUSE_HOST": receiver.endpoint + "/",
            }
        )
        assert config is not None
        endpoint, headers = config
        assert endpoint == receiver.endpoint + "/api/public/otel/v1/traces"
        _agent_trace(_provider(OTLPSpanExporter(endpoint=endpoint, headers=headers)))
        receiver.wait_for_spans(3)
        paths = {request.path for request in receiver.requests}
        assert paths == {"/api/public/otel/v1/traces"}
        request = receiver.requests[0]
        scheme, _, credentials = request.headers["authorization"].partition(" ")
        assert scheme == "Basic" and base64.b64decode(credentials) == b"pk:sk"
        assert request.headers["x-langfuse-ingestion-version"] == "4"
        assert {span.path for span in receiver.spans} == {"/api/public/otel/v1/traces"}
