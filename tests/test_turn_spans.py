"""Turn spans: one ``chat {model}`` CLIENT span per model call, on every SDK call path."""

from __future__ import annotations

import gc
import logging

import anthropic
import pytest
from opentelemetry.trace import SpanKind, StatusCode, format_span_id

from otel_agent_trace.testing.fake_api import Fault, text_reply, tool_reply
from tests.calls import CALL_STYLES, REQUEST, call, clients

USAGE = {"input_tokens": 120, "output_tokens": 40, "cache_read_input_tokens": 900,
         "cache_creation_input_tokens": 60}


def chat_spans(exporter):
    return [s for s in exporter.get_finished_spans() if s.attributes.get("gen_ai.operation.name") == "chat"]


@pytest.mark.usefixtures("instrumented")
class TestEveryCallPath:
    @pytest.mark.parametrize("beta", [False, True], ids=["messages", "beta"])
    @pytest.mark.parametrize("style", CALL_STYLES)
    def test_one_chat_span_with_tokens_cache_and_tools(self, api, exporter, style, beta):
        """Each call path yields exactly one chat span carrying the response's usage, cache and tool_use data."""
        api.enqueue(tool_reply(("read_file", {"path": "auth/session.ts"}), usage=USAGE))
        call(style, api.base_url, beta=beta)

        (span,) = chat_spans(exporter)
        a = span.attributes
        assert span.name == "chat claude-sonnet-4-6"
        assert span.kind is SpanKind.CLIENT
        assert a["gen_ai.provider.name"] == "anthropic"
        assert a["gen_ai.request.model"] == "claude-sonnet-4-6"
        assert a["gen_ai.request.max_tokens"] == 512
        assert a["gen_ai.request.stream"] is style.endswith(("stream", "helper"))
        assert a["gen_ai.usage.input_tokens"] == 120 + 900 + 60
        assert a["gen_ai.usage.output_tokens"] == 40
        assert a["gen_ai.usage.cache_read.input_tokens"] == 900
        assert a["gen_ai.usage.cache_write.input_tokens"] == 60
        assert a["gen_ai.usage.cache_creation.input_tokens"] == 60
        assert a["agent_trace.cache.hit_ratio"] == pytest.approx(900 / 1080, abs=1e-4)
        assert a["agent_trace.stop_reason"] == "tool_use"
        assert a["gen_ai.response.finish_reasons"] == ("tool_use",)
        assert a["agent_trace.tool_use.names"] == ("read_file",)
        assert a["agent_trace.turn.index"] == 1
        assert a["agent_trace.http.attempts"] == 1
        assert a["gen_ai.response.id"].startswith("msg_")
        assert a["server.address"] == "127.0.0.1"
        assert isinstance(a["server.port"], int)
        if style.endswith(("stream", "helper")):
            assert a["gen_ai.response.time_to_first_chunk"] >= 0

    @pytest.mark.parametrize("beta", [False, True], ids=["messages", "beta"])
    @pytest.mark.parametrize("style", [s for s in CALL_STYLES if s.endswith("helper")])
    def test_the_stream_helper_is_read_from_its_own_message(self, api, exporter, style, beta, monkeypatch):
        """Through ``.stream()``, the SDK accumulates the message itself: the turn takes that message at the
        end instead of reading every event again, so it needs no event-by-event accumulation at all."""
        from anthropic.lib.streaming import MessageStream

        from otel_agent_trace.instrumentation.extract import StreamAccumulator

        if not hasattr(MessageStream, "_current_snapshot_or_none"):
            pytest.skip("this SDK's helper has no snapshot accessor: its events are read one by one")

        def refuse(self, event):
            raise AssertionError("the helper's events were read one by one")

        monkeypatch.setattr(StreamAccumulator, "feed", refuse)
        api.enqueue(tool_reply(("read_file", {"path": "a.py"}), usage=USAGE))
        call(style, api.base_url, beta=beta)
        (span,) = chat_spans(exporter)
        assert span.attributes["agent_trace.tool_use.names"] == ("read_file",)
        assert span.attributes["gen_ai.usage.output_tokens"] == 40
        assert span.attributes["gen_ai.response.time_to_first_chunk"] >= 0

    @pytest.mark.parametrize("style", CALL_STYLES)
    def test_return_values_are_unchanged(self, api, style, instrumented):
        """The caller sees the same types and content with and without instrumentation."""
        api.enqueue(text_reply("hello", usage=USAGE))
        traced = call(style, api.base_url)
        instrumented.uninstrument()
        try:
            api.enqueue(text_reply("hello", usage=USAGE))
            bare = call(style, api.base_url)
        finally:
            instrumented.instrument(tracer_provider=None)
        assert _strip_ids(traced) == _strip_ids(bare)


def _strip_ids(summary):
    for block in summary.get("content", []):
        block.pop("id", None)
    return summary


@pytest.mark.usefixtures("instrumented")
class TestRawResponses:
    def test_with_raw_response_records_the_parsed_message(self, api, exporter):
        """``with_raw_response.create`` returns the raw response object and still records usage."""
        api.enqueue(text_reply("hi", usage=USAGE))
        client, _ = clients(api.base_url)
        raw = client.messages.with_raw_response.create(**REQUEST)
        assert raw.headers.get("request-id")
        assert raw.parse().stop_reason == "end_turn"
        (span,) = chat_spans(exporter)
        assert span.attributes["gen_ai.usage.output_tokens"] == 40

    def test_with_streaming_response_records_when_parsed(self, api, exporter):
        """``with_streaming_response`` keeps the deferred body; the span ends with the parsed message."""
        api.enqueue(text_reply("hi", usage=USAGE))
        client, _ = clients(api.base_url)
        with client.messages.with_streaming_response.create(**REQUEST) as response:
            message = response.parse()
        assert message.content[0].text == "hi"
        (span,) = chat_spans(exporter)
        assert span.attributes["agent_trace.stop_reason"] == "end_turn"


@pytest.mark.usefixtures("instrumented")
class TestStreamsEndExactlyOnce:
    def _ends(self, exporter):
        return len(chat_spans(exporter))

    def test_exhausted_stream(self, api, exporter, caplog):
        """Reading a ``stream=True`` response to the end ends its span once."""
        client, _ = clients(api.base_url)
        stream = client.messages.create(stream=True, **REQUEST)
        list(stream)
        stream.close()
        assert self._ends(exporter) == 1
        assert "ended span" not in caplog.text

    def test_break_inside_with(self, api, exporter):
        """Leaving a ``with`` block early ends the span with what was read so far."""
        api.enqueue(text_reply("a long answer " * 20))
        client, _ = clients(api.base_url)
        with client.messages.create(stream=True, **REQUEST) as stream:
            for _event in stream:
                break
        (span,) = chat_spans(exporter)
        assert span.attributes["gen_ai.response.id"].startswith("msg_")

    def test_iterated_without_keeping_the_stream(self, api, exporter):
        """``for event in client.messages.create(stream=True, ...)``, the usual idiom, keeps no reference to
        the stream itself: the whole response is still recorded, and the span ends at the stream's end."""
        api.enqueue(text_reply("streamed text", usage=USAGE))
        client, _ = clients(api.base_url)
        kinds = [event.type for event in client.messages.create(stream=True, **REQUEST)]
        assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
        (span,) = chat_spans(exporter)
        assert span.attributes["gen_ai.usage.output_tokens"] == 40
        assert span.attributes["agent_trace.stop_reason"] == "end_turn"

    def test_next_and_iteration_read_one_sequence(self, api, exporter):
        """``next(stream)`` and a loop over the same stream share one position: every event once, in order."""
        api.enqueue(text_reply("streamed text", usage=USAGE))
        api.enqueue(text_reply("streamed text", usage=USAGE))
        client, _ = clients(api.base_url)
        expected = [event.type for event in client.messages.create(stream=True, **REQUEST)]
        stream = client.messages.create(stream=True, **REQUEST)
        first, second = next(stream), next(iter(stream))
        assert [first.type, second.type, *(event.type for event in stream)] == expected
        assert self._ends(exporter) == 2

    def test_stream_dropped_unread_is_ended_by_garbage_collection(self, api, exporter):
        """A ``stream=True`` response nobody iterates or closes still ends its span once collected."""
        client, _ = clients(api.base_url)
        client.messages.create(stream=True, **REQUEST)
        gc.collect()
        assert self._ends(exporter) == 1

    def test_close_without_reading(self, api, exporter):
        """``close()`` before reading ends the span."""
        client, _ = clients(api.base_url)
        client.messages.create(stream=True, **REQUEST).close()
        assert self._ends(exporter) == 1

    def test_abandoned_stream_is_ended_by_garbage_collection(self, api, exporter):
        """A stream dropped without close still ends its span when collected."""
        client, _ = clients(api.base_url)
        stream = client.messages.create(stream=True, **REQUEST)
        next(iter(stream))
        del stream
        gc.collect()
        assert self._ends(exporter) == 1

    def test_helper_text_stream_and_until_done(self, api, exporter):
        """The helper's ``text_stream`` and ``until_done()`` are observed through the raw stream."""
        api.enqueue(text_reply("streamed text", usage=USAGE))
        client, _ = clients(api.base_url)
        with client.messages.stream(**REQUEST) as stream:
            text = "".join(stream.text_stream)
            stream.until_done()
        assert text == "streamed text"
        (span,) = chat_spans(exporter)
        assert span.attributes["gen_ai.usage.output_tokens"] == 40

    def test_helper_manager_never_entered_creates_no_span(self, api, exporter):
        """A ``.stream()`` manager that is never entered sends nothing and records nothing."""
        client, _ = clients(api.base_url)
        client.messages.stream(**REQUEST)
        assert self._ends(exporter) == 0
        assert api.requests == []

    def test_truncated_stream_ends_span_as_error(self, api, exporter):
        """A connection cut mid-stream raises the SDK's own error and marks the span failed."""
        api.enqueue(Fault.truncated_stream())
        client, _ = clients(api.base_url)
        with pytest.raises(Exception) as raised:
            list(client.messages.create(stream=True, **REQUEST))
        (span,) = chat_spans(exporter)
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == type(raised.value).__qualname__

    def test_spans_are_ended_once_only(self, api, exporter, caplog):
        """No path ends a span twice (the SDK warns when that happens)."""
        caplog.set_level(logging.WARNING)
        client, _ = clients(api.base_url)
        with client.messages.create(stream=True, **REQUEST) as stream:
            list(stream)
            stream.close()
        with client.messages.stream(**REQUEST) as helper:
            helper.get_final_message()
            helper.close()
        gc.collect()
        assert self._ends(exporter) == 2
        assert "already ended" not in caplog.text.lower() and "ended span" not in caplog.text.lower()


@pytest.mark.usefixtures("instrumented")
class TestErrors:
    def test_retry_after_rate_limit_counts_attempts(self, api, exporter):
        """A 429 retried by the SDK is one turn with two HTTP attempts."""
        api.enqueue(Fault.rate_limit(retry_after=0.01), text_reply("ok"))
        client, _ = clients(api.base_url, max_retries=2)
        client.messages.create(**REQUEST)
        (span,) = chat_spans(exporter)
        assert span.attributes["agent_trace.http.attempts"] == 2
        assert span.status.status_code is StatusCode.UNSET

    @pytest.mark.parametrize(("fault", "error"), [
        (Fault.server_error(), anthropic.InternalServerError),
        (Fault.overloaded(), anthropic.APIStatusError),
        (Fault.bad_request(), anthropic.BadRequestError),
    ])
    def test_http_errors_reraise_unchanged_and_mark_the_span(self, api, exporter, fault, error):
        """The SDK's exception reaches the caller unchanged; the span is ERROR with ``error.type``."""
        api.enqueue(fault)
        client, _ = clients(api.base_url)
        with pytest.raises(error) as raised:
            client.messages.create(**REQUEST)
        (span,) = chat_spans(exporter)
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == type(raised.value).__qualname__

    def test_connection_error(self, exporter):
        """An unreachable API raises ``APIConnectionError`` as usual and fails the span."""
        client, _ = clients("http://127.0.0.1:9")
        with pytest.raises(anthropic.APIConnectionError):
            client.messages.create(**REQUEST)
        (span,) = chat_spans(exporter)
        assert span.attributes["error.type"] == "APIConnectionError"

    def test_async_errors_too(self, api, exporter):
        """Async calls fail the same way."""
        import asyncio

        api.enqueue(Fault.server_error())
        _, client = clients(api.base_url)
        with pytest.raises(anthropic.InternalServerError):
            asyncio.run(client.messages.create(**REQUEST))
        (span,) = chat_spans(exporter)
        assert span.status.status_code is StatusCode.ERROR


class TestProviders:
    def test_vertex_client_is_gcp_vertex_ai(self, api, exporter, instrumented):
        """Calls through ``AnthropicVertex`` name the provider ``gcp.vertex_ai``."""
        client = anthropic.AnthropicVertex(region="us-east5", project_id="p", access_token="t",
                                           base_url=api.base_url + "/v1", max_retries=0)
        client.messages.create(**REQUEST)
        (span,) = chat_spans(exporter)
        assert span.attributes["gen_ai.provider.name"] == "gcp.vertex_ai"
        assert format_span_id(span.context.span_id) in api.requests[0].headers["traceparent"]

    def test_bedrock_client_is_aws_bedrock(self, api, exporter, instrumented):
        """Calls through ``AnthropicBedrock`` name the provider ``aws.bedrock``."""
        pytest.importorskip("botocore")
        client = anthropic.AnthropicBedrock(aws_access_key="AKIAFAKE", aws_secret_key="fake",
                                            aws_region="us-east-1", base_url=api.base_url, max_retries=0)
        client.messages.create(**{**REQUEST, "model": "anthropic.claude-sonnet-4-6"})
        (span,) = chat_spans(exporter)
        assert span.attributes["gen_ai.provider.name"] == "aws.bedrock"

    def test_bedrock_requests_carry_the_trace_context_beside_their_signature(self, api, exporter, instrumented):
        """A SigV4-signed Bedrock request carries the traceparent too (botocore leaves it out of what it
        signs, so the header never invalidates a signature)."""
        pytest.importorskip("botocore")
        client = anthropic.AnthropicBedrock(aws_access_key="AKIAFAKE", aws_secret_key="fake",
                                            aws_region="us-east-1", base_url=api.base_url, max_retries=0)
        client.messages.create(**{**REQUEST, "model": "anthropic.claude-sonnet-4-6"})
        (span,) = chat_spans(exporter)
        headers = api.requests[0].headers
        assert format_span_id(span.context.span_id) in headers["traceparent"]
        assert headers["authorization"].startswith("AWS4-HMAC-SHA256")
