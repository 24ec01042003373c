"""Instrumenting and uninstrumenting while agents are mid-call: nothing crashes, every call gets its own
answer, and the final ``uninstrument`` puts back the very function objects that were there before."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from typing import Any

import anthropic
import pytest
import wrapt
from opentelemetry.sdk.trace import TracerProvider

from otel_agent_trace.config import Settings
from otel_agent_trace.instrumentation import instrumentor as instrumentor_module
from otel_agent_trace.instrumentation.instrumentor import AnthropicAgentInstrumentor
from otel_agent_trace.testing import demo_agent as demo
from otel_agent_trace.testing.fake_api import FakeMessagesAPI, text_reply
from tests.reliability.support import EndCounter, Records, scaled

TOGGLES = scaled(50, 1_000)
SYNC_THREADS = 6
ASYNC_TASKS = 16


def echo(body: dict[str, Any]) -> Any:
    return text_reply(f"echo: {body['messages'][-1]['content']}")


def patch_targets() -> dict[tuple[str, str], Any]:
    """Every (module, attribute) the instrumentor patches, with the object its owner holds right now."""
    found = {}
    for module_name, path, _factory in instrumentor_module._TARGETS:
        target = instrumentor_module._resolve(module_name, path)
        if target is not None:
            owner, attribute = target
            found[(module_name, path)] = vars(owner)[attribute]
    return found


def request(text: str) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "max_tokens": 32, "messages": [{"role": "user", "content": text}]}


def sync_calls(client: anthropic.Anthropic, worker: int, n: int) -> list[tuple[str, str]]:
    """One call of each kind; (expected, received) text pairs."""
    seen = []
    text = f"w{worker} n{n} create"
    seen.append((f"echo: {text}", client.messages.create(**request(text)).content[0].text))
    text = f"w{worker} n{n} stream"
    events = list(client.messages.create(stream=True, **request(text)))
    seen.append((f"echo: {text}", "".join(e.delta.text for e in events if e.type == "content_block_delta")))
    text = f"w{worker} n{n} helper"
    with client.messages.stream(**request(text)) as stream:
        seen.append((f"echo: {text}", stream.get_final_text()))
    text = f"w{worker} n{n} raw"
    seen.append((f"echo: {text}", client.messages.with_raw_response.create(**request(text)).parse().content[0].text))
    return seen


async def async_calls(client: anthropic.AsyncAnthropic, worker: int, n: int) -> list[tuple[str, str]]:
    seen = []
    text = f"a{worker} n{n} create"
    seen.append((f"echo: {text}", (await client.messages.create(**request(text))).content[0].text))
    text = f"a{worker} n{n} helper"
    async with client.messages.stream(**request(text)) as stream:
        seen.append((f"echo: {text}", await stream.get_final_text()))
    return seen


@pytest.fixture(scope="module")
def toggled() -> dict[str, Any]:
    """Sync threads and asyncio tasks call in a loop while the main thread instruments and uninstruments
    ``TOGGLES`` times; then everything stops and the instrumentation is left off."""
    originals = patch_targets()
    assert not any(isinstance(obj, wrapt.ObjectProxy) for obj in originals.values()), "start uninstrumented"
    counter = EndCounter()
    provider = TracerProvider()
    provider.add_span_processor(counter)
    instrumentor = AnthropicAgentInstrumentor()
    stop = threading.Event()
    mismatches: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    calls = [0]

    def record(pairs: list[tuple[str, str]]) -> None:
        calls[0] += len(pairs)
        mismatches.extend(pair for pair in pairs if pair[0] != pair[1])

    with Records() as log, FakeMessagesAPI(echo) as api:
        options = {"api_key": "sk-ant-test-key-000000", "base_url": api.base_url, "max_retries": 0}

        def sync_worker(worker: int) -> None:
            client = anthropic.Anthropic(**options)
            n = 0
            while not stop.is_set():
                try:
                    record(sync_calls(client, worker, n))
                except BaseException as error:  # reported by the test
                    errors.append(error)
                n += 1

        def async_worker() -> None:
            async def task(client: anthropic.AsyncAnthropic, worker: int) -> None:
                n = 0
                while not stop.is_set():
                    try:
                        record(await async_calls(client, worker, n))
                    except BaseException as error:  # reported by the test
                        errors.append(error)
                    n += 1

            async def main() -> None:
                client = anthropic.AsyncAnthropic(**options)
                await asyncio.gather(*(task(client, i) for i in range(ASYNC_TASKS)))
                await client.close()

            asyncio.run(main())

        workers = [threading.Thread(target=sync_worker, args=(i,)) for i in range(SYNC_THREADS)]
        workers.append(threading.Thread(target=async_worker))
        for worker in workers:
            worker.start()
        try:
            time.sleep(0.05)
            for _ in range(TOGGLES):
                instrumentor.instrument(tracer_provider=provider, settings=Settings())
                time.sleep(0.01)
                instrumentor.uninstrument()
                time.sleep(0.005)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=30)
    return {"originals": originals, "after": patch_targets(), "errors": errors, "mismatches": mismatches,
            "calls": calls[0], "ends": counter, "log": log.text()}


class TestTogglingUnderLoad:
    def test_no_call_fails(self, toggled):
        """No call raises while the instrumentation comes and goes under it."""
        assert toggled["errors"] == []

    def test_every_call_gets_its_own_answer(self, toggled):
        """Each call returns the answer to its own request, traced or not."""
        print(f"{toggled['calls']} calls during {TOGGLES} toggles, {toggled['ends'].count('chat')} traced")
        assert toggled["calls"] > 100 and toggled["mismatches"] == []

    def test_some_calls_were_traced(self, toggled):
        """The toggling really overlapped calls: some produced turn spans, each ended exactly once."""
        assert toggled["ends"].count("chat") > 0
        assert toggled["ends"].not_ended_once("chat") == {}

    def test_originals_are_restored(self, toggled):
        """After the last ``uninstrument`` every patched attribute is the original function object again."""
        assert toggled["after"] == toggled["originals"]
        assert all(toggled["after"][key] is toggled["originals"][key] for key in toggled["originals"])

    def test_messages_create_is_the_original_function(self, toggled):
        """``Messages.create`` in particular is the function object the SDK defined."""
        from anthropic.resources.messages.messages import Messages

        assert vars(Messages)["create"] is toggled["originals"][("anthropic.resources.messages.messages",
                                                                  "Messages.create")]
        assert not isinstance(vars(Messages)["create"], wrapt.ObjectProxy)

    def test_nothing_is_logged_at_warning_or_above(self, toggled):
        """Toggling produces no warnings: no span ended twice, no telemetry failure."""
        assert toggled["log"] == ""


@pytest.mark.usefixtures("instrumented")
class TestStaleWrappers:
    def test_cached_raw_response_wrapper_stops_tracing_after_uninstrument(self, api, instrumented, ends):
        """A client that used ``with_raw_response`` while instrumented makes no spans once uninstrumented."""
        client = anthropic.Anthropic(api_key="sk-ant-test-key-000000", base_url=api.base_url, max_retries=0)
        client.messages.with_raw_response.create(**request("before")).parse()
        assert ends.count("chat") == 1
        instrumented.uninstrument()
        try:
            client.messages.with_raw_response.create(**request("after")).parse()
        finally:
            instrumented.instrument(tracer_provider=None)
        assert ends.count("chat") == 1


class TestBoundDispatcher:
    def test_dispatcher_bound_while_instrumented_stops_tracing_after_uninstrument(self, provider, settings, ends):
        """A patched dispatcher that user code bound to a name while instrumented (``from tools import
        dispatch_tool``) traces nothing once the instrumentation is removed."""
        settings.tool_dispatcher = "otel_agent_trace.testing.demo_agent:dispatch_tool"
        instrumentor = AnthropicAgentInstrumentor()
        instrumentor.instrument(tracer_provider=provider, settings=settings)
        bound = demo.dispatch_tool
        instrumentor.uninstrument()
        token = demo.workspace.set(demo.make_workspace())
        try:
            with FakeMessagesAPI(demo.scripted_model) as api:
                client = anthropic.Anthropic(api_key="sk-ant-test-key-000000", base_url=api.base_url, max_retries=0)
                demo.run_agent(client, demo.CLEAN_TASK, dispatch=bound)
        finally:
            shutil.rmtree(demo.workspace.get(), ignore_errors=True)
            demo.workspace.reset(token)
        assert ends.count() == 0
