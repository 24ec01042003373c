"""``client.messages.with_raw_response`` / ``with_streaming_response`` first touched before ``instrument()``
keep the unwrapped ``create`` bound inside them (the SDK caches them); their calls are still traced, once."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import anthropic
import pytest

from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, text_reply

REQUEST: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 16,
                           "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def api() -> Any:
    with FakeMessagesAPI(lambda body: text_reply("hello")) as server:
        yield server


@pytest.fixture
def instrument(provider) -> Any:
    """Instrument on demand (after the test has touched the cached properties); uninstrument at the end."""
    instrumentor = AnthropicAgentInstrumentor()
    yield lambda: instrumentor.instrument(tracer_provider=provider, settings=Settings())
    instrumentor.uninstrument()


def chat_spans(exporter) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]


def test_raw_response_cached_before_instrument_is_traced(api, instrument, exporter) -> None:
    """A call through a ``with_raw_response`` taken before instrumenting makes one chat span with usage."""
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=api.base_url, max_retries=0)
    raw = client.messages.with_raw_response
    instrument()
    message = raw.create(**REQUEST).parse()
    assert message.content[0].text == "hello"
    [span] = chat_spans(exporter)
    assert span.attributes["gen_ai.usage.output_tokens"] == message.usage.output_tokens


def test_streaming_response_cached_before_instrument_is_traced(api, instrument, exporter) -> None:
    """The same for ``with_streaming_response`` used as a context manager."""
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=api.base_url, max_retries=0)
    streaming = client.messages.with_streaming_response
    instrument()
    with streaming.create(**REQUEST) as response:
        message = response.parse()
    assert message.content[0].text == "hello" and len(chat_spans(exporter)) == 1


def test_async_raw_response_cached_before_instrument_is_traced(api, instrument, exporter) -> None:
    """The async client's cached ``with_raw_response`` is traced as well."""
    client = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=api.base_url, max_retries=0)
    raw = client.messages.with_raw_response
    instrument()

    async def call() -> Any:
        parsed = (await raw.create(**REQUEST)).parse()
        return await parsed if inspect.isawaitable(parsed) else parsed  # awaitable in the 1.x/2.x SDKs

    assert asyncio.run(call()).content[0].text == "hello" and len(chat_spans(exporter)) == 1


def test_calls_through_the_wrapper_still_make_exactly_one_span(api, instrument, exporter) -> None:
    """``create`` and a raw response taken after instrumenting each make one chat span, not two."""
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=api.base_url, max_retries=0)
    instrument()
    client.messages.create(**REQUEST)
    client.messages.with_raw_response.create(**REQUEST)
    assert len(chat_spans(exporter)) == 2


def test_other_calls_of_the_client_are_not_turns(api, instrument, exporter) -> None:
    """Requests to other paths (token counting) through the client make no chat span."""
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=api.base_url, max_retries=0)
    instrument()
    try:
        client.messages.count_tokens(model="claude-sonnet-4-6", messages=REQUEST["messages"])
    except anthropic.APIError:
        pass  # the fake API need not implement it: only the absence of a turn matters
    assert chat_spans(exporter) == []


def test_raw_response_cached_under_an_earlier_instrumentation_is_traced_once_by_the_current_one(
        api, instrument, exporter, provider) -> None:
    """A ``with_raw_response`` cached while an earlier ``instrument()`` was live keeps that instrumentation's
    wrapper. After uninstrument and a new instrument, the stale wrapper passes the call through and the live
    instrumentation traces it: one chat span, not zero and not two."""
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=api.base_url, max_retries=0)
    instrument()
    raw = client.messages.with_raw_response
    raw.create(**REQUEST).parse()
    assert len(chat_spans(exporter)) == 1
    AnthropicAgentInstrumentor().uninstrument()
    instrument()
    raw.create(**REQUEST).parse()
    assert len(chat_spans(exporter)) == 2
