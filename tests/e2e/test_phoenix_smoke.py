"""Smoke test of the e2e harness: spans exported by the OTel SDK come back from Phoenix intact,
over OTLP/HTTP and over OTLP/gRPC."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

pytestmark = pytest.mark.e2e


def _exporter(protocol: str, phoenix):
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=phoenix.traces_endpoint, timeout=10)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=phoenix.grpc_endpoint, insecure=True, timeout=10)


def _export_demo_trace(protocol: str, phoenix, project: str) -> dict[str, str]:
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "otel-agent-trace-e2e", "openinference.project.name": project}
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(_exporter(protocol, phoenix)))
    tracer = provider.get_tracer("otel-agent-trace.e2e")
    try:
        with (
            tracer.start_as_current_span(
                "invoke_agent demo",
                kind=SpanKind.INTERNAL,
                attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "demo"},
            ) as parent,
            tracer.start_as_current_span(
                "chat claude-x",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "claude-x",
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 4,
                    "gen_ai.response.finish_reasons": ["end_turn"],
                },
            ) as child,
        ):
            child.add_event(
                "agent_trace.finding",
                {"agent_trace.finding.kind": "repeated_tool_call", "agent_trace.finding.count": 3},
            )
            child.set_status(Status(StatusCode.ERROR, "rate limited"))
    finally:
        provider.shutdown()  # SimpleSpanProcessor already exported synchronously; this closes it
    return {
        "trace_id": format(parent.get_span_context().trace_id, "032x"),
        "parent_id": format(parent.get_span_context().span_id, "016x"),
        "child_id": format(child.get_span_context().span_id, "016x"),
    }


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_span_tree_round_trips_through_phoenix(phoenix, protocol: str) -> None:
    project = f"e2e-smoke-{protocol}-{uuid.uuid4().hex[:8]}"
    ids = _export_demo_trace(protocol, phoenix, project)

    spans = phoenix.spans(project, trace_id=ids["trace_id"], wait_for=2, timeout=30)
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {"invoke_agent demo", "chat claude-x"}, spans

    parent, child = by_name["invoke_agent demo"], by_name["chat claude-x"]
    assert parent["trace_id"] == child["trace_id"] == ids["trace_id"]
    assert parent["span_id"] == ids["parent_id"]
    assert parent["parent_id"] is None
    assert child["span_id"] == ids["child_id"]
    assert child["parent_id"] == ids["parent_id"]

    # Phoenix keeps only the OpenInference kind, inferred from gen_ai.operation.name.
    assert parent["kind"] == "AGENT"
    assert child["kind"] == "LLM"

    assert parent["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert parent["attributes"]["gen_ai.agent.name"] == "demo"
    assert child["attributes"]["gen_ai.usage.input_tokens"] == 10
    assert child["attributes"]["gen_ai.usage.output_tokens"] == 4
    assert child["attributes"]["gen_ai.request.model"] == "claude-x"
    assert child["attributes"]["gen_ai.response.finish_reasons"] == ["end_turn"]
    # ...and it derives its own OpenInference token counts from the gen_ai ones.
    assert child["attributes"].get("llm.token_count.prompt") == 10

    assert parent["events"] == []
    assert child["events"] == [
        {
            "name": "agent_trace.finding",
            "attributes": {"agent_trace.finding.kind": "repeated_tool_call", "agent_trace.finding.count": 3},
        }
    ]
    assert parent["status_code"] == "UNSET"
    assert child["status_code"] == "ERROR"
    assert child["status_message"] == "rate limited"


def test_unknown_project_has_no_spans(phoenix) -> None:
    assert phoenix.spans(f"e2e-missing-{uuid.uuid4().hex[:8]}") == []
