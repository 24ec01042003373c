"""Instrumentation lifecycle, native-span dedup, privacy, suppression, and never breaking the caller."""

from __future__ import annotations

import json

import anthropic
import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_agent_trace.config import Settings, capture_content_from_env
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.fake_api import text_reply, tool_reply
from tests.calls import CALL_STYLES, REQUEST, call, clients

HAS_NATIVE_SPANS = "open_telemetry" in anthropic.Anthropic.__init__.__code__.co_varnames


def chat_spans(exporter):
    return [s for s in exporter.get_finished_spans() if s.attributes.get("gen_ai.operation.name") == "chat"]


@pytest.mark.skipif(not HAS_NATIVE_SPANS, reason="this anthropic version has no native OpenTelemetry spans")
class TestNativeSdkSpans:
    def _client(self, api, provider):
        return anthropic.Anthropic(api_key="k", base_url=api.base_url, max_retries=0,
                                   open_telemetry={"tracer_provider": provider})

    def test_sdk_emits_its_own_chat_span_when_we_are_off(self, api, provider, exporter):
        """Baseline: the SDK traces itself, so a second instrumentation would double the tokens."""
        self._client(api, provider).messages.create(**REQUEST)
        assert len(chat_spans(exporter)) == 1
        assert exporter.get_finished_spans()[0].instrumentation_scope.name != "otel_agent_trace"

    @pytest.mark.parametrize("stream", [False, True])
    def test_exactly_one_chat_span_with_native_spans_on(self, api, provider, exporter, instrumented, stream):
        """With the SDK's spans on, each call still yields exactly one chat span: ours."""
        client = self._client(api, provider)
        if stream:
            with client.messages.stream(**REQUEST) as s:
                s.get_final_message()
        else:
            client.messages.create(**REQUEST)
        spans = chat_spans(exporter)
        assert [s.instrumentation_scope.name for s in spans] == ["otel_agent_trace"]
        assert sum(s.attributes.get("gen_ai.usage.output_tokens", 0) for s in exporter.get_finished_spans()) \
            == spans[0].attributes["gen_ai.usage.output_tokens"]

    def test_sdk_spans_for_other_endpoints_are_kept(self, api, provider, exporter, instrumented):
        """Only the duplicated chat span is suppressed: count_tokens keeps the SDK's span."""
        self._client(api, provider).messages.count_tokens(model="claude-sonnet-4-6", messages=REQUEST["messages"])
        assert any("count_tokens" in s.name for s in exporter.get_finished_spans())


class TestInstrumentor:
    def test_uninstrument_restores_every_function(self, provider, settings):
        """After uninstrument, the SDK's functions are the originals again."""
        from anthropic.resources.messages import messages as module

        originals = (module.Messages.create, module.AsyncMessages.create, module.Messages.stream)
        instrumentor = AnthropicAgentInstrumentor()
        instrumentor.instrument(tracer_provider=provider, settings=settings)
        assert module.Messages.create is not originals[0]
        instrumentor.uninstrument()
        assert (module.Messages.create, module.AsyncMessages.create, module.Messages.stream) == originals

    def test_instrumenting_twice_does_not_double_spans(self, api, provider, exporter, settings):
        """A second instrument() is a no-op: one span per call, not two."""
        instrumentor = AnthropicAgentInstrumentor()
        instrumentor.instrument(tracer_provider=provider, settings=settings)
        instrumentor.instrument(tracer_provider=provider, settings=settings)
        try:
            clients(api.base_url)[0].messages.create(**REQUEST)
        finally:
            instrumentor.uninstrument()
        assert len(chat_spans(exporter)) == 1

    def test_entry_point_has_its_own_name(self):
        """Registered as ``anthropic_agent_trace`` so it coexists with ``anthropic`` instrumentors."""
        from importlib.metadata import entry_points

        names = {ep.name: ep.value for ep in entry_points(group="opentelemetry_instrumentor")}
        assert names.get("anthropic_agent_trace") == (
            "otel_agent_trace.instrumentation.instrumentor:AnthropicAgentInstrumentor")

    def test_suppress_instrumentation_is_honoured(self, api, exporter, instrumented):
        """Inside ``suppress_instrumentation`` no span is created and the call still works."""
        with suppress_instrumentation():
            message = clients(api.base_url)[0].messages.create(**REQUEST)
        assert message.stop_reason == "end_turn"
        assert chat_spans(exporter) == []


class TestNotRecording:
    @pytest.mark.parametrize("style", CALL_STYLES)
    def test_a_sampler_that_drops_everything_changes_nothing_for_the_agent(self, api, settings, style):
        """With every span sampled out, calls answer exactly as before, nothing is exported, and the
        request still carries the (unsampled) trace context for the services behind it."""
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=ALWAYS_OFF)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        bare = call(style, api.base_url)
        instrumentor = AnthropicAgentInstrumentor()
        instrumentor.instrument(tracer_provider=provider, settings=settings)
        try:
            traced = call(style, api.base_url)
        finally:
            instrumentor.uninstrument()
        assert traced == bare
        assert exporter.get_finished_spans() == ()
        assert int(api.requests[-1].headers["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0  # not sampled


class _RaisingExporter(SpanExporter):
    def export(self, spans):
        raise RuntimeError("collector exploded")

    def shutdown(self):
        pass


class TestNeverBreaksTheAgent:
    def test_exporter_that_raises_does_not_reach_the_caller(self, api, settings):
        """A broken exporter is the SDK's problem: the agent's call returns normally."""
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_RaisingExporter()))
        instrumentor = AnthropicAgentInstrumentor()
        instrumentor.instrument(tracer_provider=provider, settings=settings)
        try:
            api.enqueue(tool_reply(("read_file", {"path": "a.py"})))
            message = clients(api.base_url)[0].messages.create(**REQUEST)
        finally:
            instrumentor.uninstrument()
        assert message.stop_reason == "tool_use"

    def test_odd_request_shapes_are_recorded_without_failing(self, api, exporter, instrumented):
        """Messages given as SDK objects, iterables or with odd content never trip the recorder."""
        client = clients(api.base_url)[0]
        first = client.messages.create(**REQUEST)
        messages = [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": None}]},
        ]
        client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=messages)
        assert len(chat_spans(exporter)) == 2


class TestPrivacy:
    @pytest.mark.parametrize(("value", "on"), [("true", True), ("SPAN_ONLY", True), ("span_and_event", True),
                                               ("false", False), ("", False), ("NO_CONTENT", False)])
    def test_capture_flag_values(self, value, on):
        """``true`` and the official SPAN_ONLY/SPAN_AND_EVENT values turn content capture on."""
        assert capture_content_from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": value}) is on

    def test_no_content_on_spans_by_default(self, api, exporter, instrumented):
        """Without opting in, no prompt, completion or tool content appears on any span."""
        api.enqueue(text_reply("the secret plan"))
        clients(api.base_url)[0].messages.create(system="You are helpful", **REQUEST)
        dumped = json.dumps([dict(s.attributes) for s in exporter.get_finished_spans()])
        assert "List the files" not in dumped and "secret plan" not in dumped and "helpful" not in dumped
        assert "gen_ai.input.messages" not in dumped

    def test_opt_in_content_is_captured_and_redacted(self, api, exporter, provider):
        """With capture on, messages are recorded in semconv shape with API keys masked."""
        settings = Settings.from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
                                      "OTEL_AGENT_TRACE_DETECTORS": "false"})
        instrumentor = AnthropicAgentInstrumentor()
        instrumentor.instrument(tracer_provider=provider, settings=settings)
        try:
            api.enqueue(text_reply("done"))
            clients(api.base_url)[0].messages.create(
                model="claude-sonnet-4-6", max_tokens=50, system="sys prompt",
                messages=[{"role": "user", "content": "my key is sk-ant-api03-abcdefghijklmnop please"}],
            )
        finally:
            instrumentor.uninstrument()
        (span,) = chat_spans(exporter)
        messages = json.loads(span.attributes["gen_ai.input.messages"])
        assert messages[0]["role"] == "user"
        assert "[REDACTED]" in messages[0]["parts"][0]["content"]
        assert "sk-ant-api03" not in json.dumps(dict(span.attributes))
        assert json.loads(span.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == "done"
        assert "sys prompt" in span.attributes["gen_ai.system_instructions"]

    def test_api_key_never_appears_on_spans(self, api, exporter, instrumented):
        """The client's API key is on no attribute or event."""
        clients(api.base_url)[0].messages.create(**REQUEST)
        dumped = json.dumps([[dict(s.attributes), [dict(e.attributes) for e in s.events]]
                             for s in exporter.get_finished_spans()])
        assert "sk-ant-test-key" not in dumped
