"""What real stacks need from the core: trace context on the wire, retries that keep their session, repeated
runs that stay siblings, work inside an inferred tool nested under it, and span names and error spans as
the semantic conventions define them."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode, format_span_id, format_trace_id

from otel_agent_trace import semconv as sc
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, Fault, text_reply, tool_reply
from tests.calls import CALL_STYLES, call

TASK = [{"role": "user", "content": "Fix the failing test."}]


def by_name(spans: Any, prefix: str) -> list[Any]:
    return [s for s in spans if s.name.startswith(prefix)]


def client_for(api: FakeMessagesAPI, **options: Any) -> anthropic.Anthropic:
    options.setdefault("max_retries", 0)
    return anthropic.Anthropic(api_key="sk-ant-test-key-000000", base_url=api.base_url, **options)


def run_loop(client: anthropic.Anthropic, run_tool: Any = None, *, retries: int = 0) -> str:
    """A hand-written agent loop that retries a call itself when the API is overloaded."""
    messages: list[dict[str, Any]] = list(TASK)
    for _ in range(10):
        for attempt in range(retries + 1):
            try:
                response = client.messages.create(model="claude-sonnet-4-6", max_tokens=256, messages=messages)
                break
            except anthropic.APIStatusError:
                if attempt == retries:
                    raise
        messages.append({"role": "assistant", "content": response.content})
        if response.stop_reason != "tool_use":
            return response.content[0].text
        results = [{"type": "tool_result", "tool_use_id": block.id,
                    "content": run_tool(block) if run_tool else "ok"}
                   for block in response.content if block.type == "tool_use"]
        messages.append({"role": "user", "content": results})
    raise RuntimeError("turn limit reached")


class TestTraceContextOnTheWire:
    @pytest.mark.parametrize("style", CALL_STYLES)
    def test_every_request_names_our_chat_span(self, instrumented, api, exporter, style):
        """Each Messages request carries a W3C traceparent whose parent is the call's chat span."""
        api.enqueue(text_reply("done"))
        call(style, api.base_url)
        (chat,) = by_name(exporter.get_finished_spans(), "chat")
        (request,) = [r for r in api.requests if r.path.endswith("/messages")]
        context = chat.get_span_context()
        version, trace_id, parent_id, _flags = request.headers["traceparent"].split("-")
        assert (version, trace_id, parent_id) == ("00", format_trace_id(context.trace_id),
                                                  format_span_id(context.span_id))

    def test_sdk_retries_each_carry_the_trace_context(self, instrumented, api, exporter):
        """The SDK's own HTTP retries are attempts of one call: every attempt names the same chat span."""
        api.enqueue(Fault.overloaded(retry_after=0.01), text_reply("done"))
        client_for(api, max_retries=2).messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=TASK)
        (chat,) = by_name(exporter.get_finished_spans(), "chat")
        parents = {r.headers.get("traceparent") for r in api.requests}
        assert len(api.requests) == 2 and len(parents) == 1
        assert format_span_id(chat.get_span_context().span_id) in parents.pop()
        assert chat.attributes[sc.HTTP_ATTEMPTS] == 2

    def test_the_chat_span_is_current_while_the_sdk_sends(self, instrumented, api, exporter, provider):
        """Spans made while the request is sent (an HTTP client's, a proxy's) are children of the chat span."""
        seen: list[Any] = []
        original = anthropic.Anthropic._prepare_request

        def spy(self: Any, request: Any) -> None:
            seen.append(trace.get_current_span().get_span_context())
            original(self, request)

        api.enqueue(text_reply("done"))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(anthropic.Anthropic, "_prepare_request", spy)
            client_for(api).messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=TASK)
        (chat,) = by_name(exporter.get_finished_spans(), "chat")
        assert seen == [chat.get_span_context()]


class TestFailedCallsKeepTheirSession:
    def test_a_loop_retrying_after_overloaded_stays_one_session(self, instrumented, api, exporter):
        """A call re-sent by the agent after a 529 continues the same session as the same turn."""
        api.enqueue(tool_reply(("read_file", {"path": "a.py"})), Fault.overloaded(), Fault.overloaded(),
                    text_reply("fixed"))
        assert run_loop(client_for(api), retries=2) == "fixed"
        spans = exporter.get_finished_spans()
        (session,) = by_name(spans, "invoke_agent")
        chats = sorted(by_name(spans, "chat"), key=lambda s: s.start_time)
        assert len({s.context.trace_id for s in spans}) == 1
        assert [s.attributes[sc.TURN_INDEX] for s in chats] == [1, 2, 2, 2]
        assert [s.status.status_code for s in chats] == [StatusCode.UNSET, StatusCode.ERROR, StatusCode.ERROR,
                                                          StatusCode.UNSET]
        assert session.attributes[sc.TURNS] == 2 and session.attributes[sc.END_REASON] == "end_turn"
        assert session.attributes[sc.FINDINGS_COUNT] == 0

    def test_failed_attempts_carry_no_response_fields(self, instrumented, api, exporter):
        """An error span says what failed and nothing a response would have said: no model, no tokens."""
        api.enqueue(Fault.overloaded(), text_reply("done"))
        assert run_loop(client_for(api), retries=1) == "done"
        failed, ok = sorted(by_name(exporter.get_finished_spans(), "chat"), key=lambda s: s.start_time)
        assert failed.attributes[sc.TURN_FAILED_ATTEMPT] is True
        assert failed.attributes[sc.ERROR_TYPE] == "OverloadedError"
        assert not [k for k in failed.attributes if k.startswith("gen_ai.usage.") or k.startswith("gen_ai.response.")]
        assert ok.attributes[sc.USAGE_INPUT_TOKENS] > 0 and sc.TURN_FAILED_ATTEMPT not in ok.attributes

    def test_a_local_refusal_then_a_streamed_retry_is_one_turn(self, instrumented, api, exporter):
        """pydantic-ai's default: the SDK refuses a large non-streaming max_tokens before sending, and the
        caller re-sends with stream=True; that is one session and one turn."""
        client = client_for(api)
        request = {"model": "claude-sonnet-4-6", "max_tokens": 64_000, "messages": TASK}
        with pytest.raises(ValueError):
            client.messages.create(**request)
        api.enqueue(text_reply("done"))
        with client.messages.stream(**request) as stream:
            assert stream.get_final_message().content[0].text == "done"
        spans = exporter.get_finished_spans()
        (session,) = by_name(spans, "invoke_agent")
        assert [s.attributes[sc.TURN_INDEX] for s in by_name(spans, "chat")] == [1, 1]
        assert session.attributes[sc.TURNS] == 1 and session.attributes[sc.END_REASON] == "end_turn"
        assert len(api.requests) == 1

    def test_a_call_that_fails_for_good_ends_its_session_as_error(self, instrumented, api, exporter):
        """When the agent gives up after a failure, its run ended in error, not at a false turn limit."""
        api.enqueue(Fault.bad_request())
        with pytest.raises(anthropic.BadRequestError):
            run_loop(client_for(api))
        instrumented.uninstrument()
        (session,) = by_name(exporter.get_finished_spans(), "invoke_agent")
        assert session.attributes[sc.END_REASON] == "error"
        assert "no_end_turn" not in session.attributes[sc.FINDINGS_KINDS]


class TestRepeatedRuns:
    def test_the_same_task_sent_again_is_a_sibling_run(self, instrumented, api, exporter):
        """An eval harness sending one task again and again gets one session per run, none nested."""
        api.enqueue(*[tool_reply(("read_file", {"path": "a.py"})) for _ in range(5)])
        client = client_for(api)
        for _ in range(5):
            client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=TASK)
        instrumented.uninstrument()
        sessions = by_name(exporter.get_finished_spans(), "invoke_agent")
        assert len(sessions) == 5
        assert all(s.parent is None for s in sessions)
        assert [s.attributes[sc.TURNS] for s in sessions] == [1] * 5


class TestWorkInsideAnInferredTool:
    def test_a_sub_agent_started_in_a_tool_nests_under_the_tool_span(self, instrumented, api, exporter, provider):
        """With nothing configured, a sub-agent's session and a span the tool makes sit under the tool call."""
        api.enqueue(tool_reply(("delegate", {"task": "summarise"})), text_reply("summary"), text_reply("done"))
        client = client_for(api)
        tracer = provider.get_tracer("the-agents-own-code")

        def run_tool(block: Any) -> str:
            with tracer.start_as_current_span("tool's own work"):
                pass
            sub = client.messages.create(model="claude-haiku-4-5", max_tokens=64,
                                         messages=[{"role": "user", "content": "Summarise the repo."}])
            return sub.content[0].text

        assert run_loop(client, run_tool) == "done"
        spans = exporter.get_finished_spans()
        (tool,) = by_name(spans, "execute_tool")
        own = next(s for s in spans if s.name == "tool's own work")
        parent_session, sub_session = sorted(by_name(spans, "invoke_agent"), key=lambda s: s.start_time)
        assert tool.attributes[sc.TOOL_SOURCE] == "inferred"
        assert own.parent.span_id == tool.context.span_id
        assert sub_session.parent.span_id == tool.context.span_id
        assert sub_session.attributes[sc.PARENT_SESSION] == parent_session.attributes[sc.CONVERSATION_ID]
        assert tool.start_time <= sub_session.start_time and sub_session.end_time <= tool.end_time

    def test_the_agents_context_is_restored_after_the_tool(self, instrumented, api, exporter):
        """Once the tool's result is sent, the span current in the agent's code is what it was before."""
        api.enqueue(tool_reply(("read_file", {"path": "a.py"})), text_reply("done"))
        before = trace.get_current_span()
        run_loop(client_for(api))
        assert trace.get_current_span() is before

    def test_a_tool_the_run_never_answered_still_gets_its_span(self, instrumented, api, exporter):
        """The last response's tool call has a span even when no request ever carries its result."""
        api.enqueue(tool_reply(("run_bash", {"command": "make"})))
        client_for(api).messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=TASK)
        instrumented.uninstrument()
        (tool,) = by_name(exporter.get_finished_spans(), "execute_tool")
        assert tool.attributes[sc.TOOL_NAME] == "run_bash" and tool.end_time >= tool.start_time


class TestNames:
    def test_the_chat_span_is_named_after_the_requested_model(self, instrumented, api, exporter):
        """``chat {gen_ai.request.model}``: an alias asked for, a snapshot answering."""
        api.enqueue(text_reply("done", model="claude-3-5-haiku-20241022"))
        client_for(api).messages.create(model="claude-3-5-haiku-latest", max_tokens=64, messages=TASK)
        (chat,) = by_name(exporter.get_finished_spans(), "chat")
        assert chat.name == "chat claude-3-5-haiku-latest"
        assert chat.attributes[sc.RESPONSE_MODEL] == "claude-3-5-haiku-20241022"

    def test_usage_iterations_beyond_the_top_level_are_reported(self, instrumented, api, exporter):
        """Tokens a compaction or server-side loop consumed outside the top-level counts get their own total."""
        iterations = [{"type": "compaction", "input_tokens": 5_000, "output_tokens": 300},
                      {"type": "message", "input_tokens": 12, "output_tokens": 8}]
        api.enqueue(text_reply("done", usage={"iterations": iterations}))
        client_for(api).messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=TASK)
        (chat,) = by_name(exporter.get_finished_spans(), "chat")
        assert chat.attributes[sc.USAGE_INPUT_TOKENS] == 12
        assert chat.attributes[sc.USAGE_CONSUMED_INPUT_TOKENS] == 5_012
        assert chat.attributes[sc.USAGE_CONSUMED_OUTPUT_TOKENS] == 308


class TestStructuredOutputs:
    @pytest.mark.parametrize("surface", ["messages", "beta", "async"])
    def test_parse_gets_one_chat_span(self, instrumented, api, exporter, surface):
        """``messages.parse(output_format=…)`` posts without going through ``create``: it is still one turn,
        and the caller still gets the parsed model."""
        pydantic = pytest.importorskip("pydantic")
        if not hasattr(anthropic.resources.messages.Messages, "parse"):
            pytest.skip("this anthropic has no messages.parse")

        class Capital(pydantic.BaseModel):
            city: str

        api.enqueue(text_reply('{"city": "Paris"}'))
        kwargs = {"model": "claude-sonnet-4-6", "max_tokens": 64, "output_format": Capital,
                  "messages": [{"role": "user", "content": "The capital of France?"}]}
        if surface == "async":
            async_client = anthropic.AsyncAnthropic(api_key="sk-ant-test-key-000000", base_url=api.base_url,
                                                    max_retries=0)
            parsed = asyncio.run(async_client.messages.parse(**kwargs))
        else:
            client = client_for(api)
            parsed = (client.beta if surface == "beta" else client).messages.parse(**kwargs)
        assert parsed.parsed_output == Capital(city="Paris")
        (chat,) = by_name(exporter.get_finished_spans(), "chat")
        assert chat.attributes[sc.RESPONSE_ID] == parsed.id and chat.attributes[sc.TURN_INDEX] == 1
        assert chat.attributes[sc.USAGE_OUTPUT_TOKENS] == parsed.usage.output_tokens
