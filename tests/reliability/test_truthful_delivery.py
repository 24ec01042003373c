"""``import`` and ``demo`` say what the backend accepted: counts from the exporter's own results, a non-zero
exit when anything was lost, and the trace ids and time range of what arrived, under their own service.name."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_agent_trace.cli import demo
from otel_agent_trace.exporters.delivery import CountingDelivery
from otel_agent_trace.files import replay
from otel_agent_trace.testing.otlp_receiver import OTLPReceiver

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "seed" / "clean_run.jsonl"


@pytest.fixture
def otlp_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A clean OTLP/HTTP environment: set the endpoint with the returned function."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME",
                 "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_EXPORTER", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")

    def point_at(endpoint: str) -> None:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)

    return point_at


def closed_port() -> str:
    """An endpoint nobody listens on (the port was bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def accepted(out: str) -> int:
    match = re.search(r"(\d+) span\(s\) accepted by", out)
    assert match is not None, out
    return int(match.group(1))


class TestImport:
    def test_the_count_printed_is_what_the_receiver_got(self, otlp_env, capsys) -> None:
        """``import`` prints the number of spans the backend accepted, exactly what arrived, and exits 0."""
        with OTLPReceiver() as receiver:
            otlp_env(receiver.endpoint)
            code = replay.main([str(FIXTURE)])
            out = capsys.readouterr().out
            assert code == 0 and accepted(out) == len(receiver.spans) > 0

    def test_trace_ids_and_time_range_of_what_arrived_are_printed(self, otlp_env, capsys) -> None:
        """Every trace that arrived is named by its id, and the time range covers every span."""
        with OTLPReceiver() as receiver:
            otlp_env(receiver.endpoint)
            replay.main([str(FIXTURE)])
            out = capsys.readouterr().out
            spans = receiver.spans
        printed = set(re.findall(r"trace ([0-9a-f]{32})", out))
        assert printed == {span.trace_id for span in spans}
        assert re.search(r"time range \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ – \d{4}-", out)

    def test_imported_spans_have_their_own_service_name(self, otlp_env, capsys) -> None:
        """Imported spans are told apart from live ones by ``service.name``."""
        with OTLPReceiver() as receiver:
            otlp_env(receiver.endpoint)
            replay.main([str(FIXTURE)])
            assert {s.resource.get("service.name") for s in receiver.spans} == {"otel-agent-trace-import"}

    @pytest.mark.parametrize("variable", ["OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"])
    def test_the_service_name_can_be_overridden(self, otlp_env, capsys, monkeypatch, variable) -> None:
        """``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` replace the default service name."""
        monkeypatch.setenv(variable, "my-importer" if variable == "OTEL_SERVICE_NAME" else "service.name=my-importer")
        with OTLPReceiver() as receiver:
            otlp_env(receiver.endpoint)
            replay.main([str(FIXTURE)])
            assert {s.resource.get("service.name") for s in receiver.spans} == {"my-importer"}

    def test_an_endpoint_that_is_down_is_reported_and_exits_one(self, otlp_env, capsys) -> None:
        """Nothing listening: the summary says 0 accepted and how many were lost, and the exit code is 1."""
        otlp_env(closed_port())
        code = replay.main([str(FIXTURE)])
        out = capsys.readouterr().out
        assert code == 1
        assert re.search(r"0 of \d+ span\(s\) accepted by .*; \d+ LOST", out), out
        assert "sent" not in out and "trace " not in out

    def test_a_file_with_out_of_range_timestamps_is_delivered_whole(self, otlp_env, capsys, tmp_path) -> None:
        """A timestamp past OTLP's range no longer makes the exporter drop the batch: every span arrives."""
        lines = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
        for line in lines:
            if "stop_reason" in line:
                line["start_ns"], line["end_ns"] = 2**70, -5
                break
        path = tmp_path / "odd_times.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        with OTLPReceiver() as receiver:
            otlp_env(receiver.endpoint)
            code = replay.main([str(path)])
            out = capsys.readouterr().out
            assert code == 0 and "LOST" not in out and accepted(out) == len(receiver.spans) > 0


class TestDemo:
    def test_an_unreachable_endpoint_is_reported_and_exits_one(self, otlp_env, capsys, tmp_path) -> None:
        """``demo`` to an endpoint that is down says the spans were lost, never "exported", and exits 1."""
        otlp_env(closed_port())
        code = demo.main(["--jsonl", str(tmp_path / "t.jsonl"), "--no-color"])
        out = capsys.readouterr().out
        assert code == 1 and re.search(r"0 of \d+ span\(s\) accepted .*LOST", out) and "exported" not in out

    def test_a_working_endpoint_gets_every_span_counted(self, otlp_env, capsys, tmp_path) -> None:
        """``demo`` to a live endpoint reports exactly the spans that arrived, under the demo's service name."""
        with OTLPReceiver() as receiver:
            otlp_env(receiver.endpoint)
            code = demo.main(["--jsonl", str(tmp_path / "t.jsonl"), "--no-color"])
            out = capsys.readouterr().out
            spans = receiver.spans
        assert code == 0 and accepted(out) == len(spans) > 0
        assert {s.resource.get("service.name") for s in spans} == {"otel-agent-trace-demo"}


class _Scripted(SpanExporter):
    """Answers each export call with the next scripted result (raising when it is an exception)."""

    def __init__(self, *results: Any) -> None:
        self.results = list(results)
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        result = self.results.pop(0) if self.results else SpanExportResult.SUCCESS
        if isinstance(result, Exception):
            raise result
        return result


@pytest.mark.parametrize("failure", [SpanExportResult.FAILURE, ConnectionError("refused")])
def test_a_failed_batch_is_counted_lost_and_later_batches_are_not_tried(failure: Any) -> None:
    """Batch 1 accepted, batch 2 fails (result or exception): its spans and the rest count as lost, and no
    further export waits out a dead endpoint."""
    exporter = _Scripted(SpanExportResult.SUCCESS, failure)
    counting = CountingDelivery(exporter, batch=2)
    provider = TracerProvider()
    provider.add_span_processor(counting)
    tracer = provider.get_tracer("t")
    for i in range(7):
        tracer.start_span(f"s{i}").end()
    delivery = counting.flush()
    assert (delivery.ended, delivery.accepted, delivery.lost, exporter.calls) == (7, 2, 5, 2)
    assert "LOST" in delivery.summary("the backend") and delivery.errors
