"""Malformed calls into traced tool code (a patched dispatcher, ``@trace_tool``): the tool receives exactly
the arguments it was given, and the caller gets exactly its return value or its exception — never ours."""

from __future__ import annotations

import asyncio
import os
import sys
import types
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from typing import Any

import anthropic
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_agent_trace import trace_tool
from otel_agent_trace.config import Settings
from otel_agent_trace.testing.fake_api import tool_reply
from tests.calls import REQUEST
from tests.reliability.support import UrandomIds, scaled

FUZZ = hypothesis_settings(max_examples=scaled(60, 1000), deadline=None, database=None,
                           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MODULE = "otel_agent_trace_fuzz_dispatch"


# --- the tool under test: does what the example says, and remembers what it was given ----------------------
class ToolScript:
    """What the tool does this example (return ``value`` or raise ``error``) and what it received."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.received: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.received.append((args, kwargs))
        if self.error is not None:
            raise self.error
        return self.value


SCRIPT = ToolScript()


def _tool(*args: Any, **kwargs: Any) -> Any:
    return SCRIPT.run(args, kwargs)


async def _async_tool(*args: Any, **kwargs: Any) -> Any:
    await asyncio.sleep(0)
    return SCRIPT.run(args, kwargs)


@pytest.fixture(scope="module")
def dispatcher_module() -> Iterator[types.ModuleType]:
    """A module holding ``dispatch``, patched by dotted path as ``tool_dispatcher`` names it."""
    module = types.ModuleType(MODULE)

    def dispatch(*args: Any, **kwargs: Any) -> Any:
        return SCRIPT.run(args, kwargs)

    module.dispatch = dispatch  # type: ignore[attr-defined]
    sys.modules[MODULE] = module
    yield module
    del sys.modules[MODULE]


@pytest.fixture
def settings(dispatcher_module) -> Settings:
    chosen = Settings.from_env({"OTEL_AGENT_TRACE_DETECTORS": os.environ.get("OTEL_AGENT_TRACE_DETECTORS", "true")})
    chosen.tool_dispatcher = f"{MODULE}:dispatch"
    chosen.capture_content = True  # the content path touches inputs and results the most
    return chosen


@pytest.fixture
def provider(exporter) -> TracerProvider:
    """Span ids from ``os.urandom``: hypothesis reseeds ``random`` for every example."""
    provider = TracerProvider(id_generator=UrandomIds())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def traced_targets(module: types.ModuleType) -> dict[str, Any]:
    return {
        "dispatcher": module.dispatch,
        "decorator": trace_tool(_tool),
        "named_decorator": trace_tool("read_file")(_tool),
        "async_decorator": trace_tool(_async_tool),
    }


# --- hostile values, described as plain data so hypothesis can print and shrink them ----------------------
DUNDERS = ("__eq__", "__ne__", "__hash__", "__str__", "__repr__", "__bool__", "__len__", "__iter__",
           "__getattr__", "__getattribute__", "__format__", "__getitem__", "__contains__")
KEYS = st.sampled_from(["name", "tool_name", "tool", "input", "tool_input", "arguments", "args", "params",
                        "tool_use_id", "id", "tool_call_id", "type", "is_error", "content", "path", "other"])
LEAVES = st.one_of(
    st.just(("none",)),
    st.tuples(st.just("int"), st.integers(min_value=-(2**70), max_value=2**70)),
    st.tuples(st.just("float"), st.floats()),
    st.tuples(st.just("str"), st.text(max_size=20)),
    st.tuples(st.just("str"), st.sampled_from(["read_file", "run_bash", "toolu_1", "Error: no such file", ""])),
    st.tuples(st.just("bytes"), st.binary(max_size=10)),
    st.tuples(st.just("huge"), st.sampled_from([100_000, 2_000_000])),
    st.tuples(st.just("hostile"), st.frozensets(st.sampled_from(DUNDERS), min_size=1)),
)
SPECS = st.recursive(LEAVES, lambda inner: st.one_of(
    st.tuples(st.just("list"), st.lists(inner, max_size=3)),
    st.tuples(st.just("tuple"), st.lists(inner, max_size=3)),
    st.tuples(st.just("dict"), st.lists(st.tuples(KEYS, inner), max_size=3)),
    st.tuples(st.just("block"), st.lists(st.tuples(KEYS, inner), max_size=4)),
    st.tuples(st.just("bad_mapping"), st.lists(st.tuples(KEYS, inner), max_size=3)),
), max_leaves=8)


class Boom(RuntimeError):
    pass


def _raiser(dunder: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if dunder == "__getattribute__" and args and args[0] == "__class__":
            return object.__getattribute__(self, "__class__")  # keep type() and isinstance() working
        raise Boom(f"{dunder} is not for you")
    return method


class BadMapping(Mapping):  # type: ignore[type-arg]
    """A mapping that lists keys but raises when any value is read."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = keys

    def __getitem__(self, key: Any) -> Any:
        raise Boom(f"no value for {key!r}")

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def build(spec: tuple[Any, ...]) -> Any:
    kind = spec[0]
    if kind == "none":
        return None
    if kind in ("int", "float", "str", "bytes"):
        return spec[1]
    if kind == "huge":
        return "x" * spec[1]
    if kind == "hostile":
        return type("Hostile", (), {dunder: _raiser(dunder) for dunder in spec[1]})()
    if kind == "list":
        return [build(item) for item in spec[1]]
    if kind == "tuple":
        return tuple(build(item) for item in spec[1])
    if kind == "dict":
        return {key: build(value) for key, value in spec[1]}
    if kind == "block":
        return types.SimpleNamespace(**{key: build(value) for key, value in spec[1]})
    if kind == "bad_mapping":
        return BadMapping([key for key, _ in spec[1]])
    raise AssertionError(kind)


EXCEPTIONS = st.sampled_from(["ValueError", "KeyError", "FileNotFoundError", "hostile_str", "base_exception"])


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise Boom("this exception cannot be printed")


class NotAnError(BaseException):
    pass


def build_error(kind: str) -> BaseException:
    return {"ValueError": ValueError("bad input"), "KeyError": KeyError("path"),
            "FileNotFoundError": FileNotFoundError(2, "No such file", "src/x.ts"),
            "hostile_str": UnprintableError(), "base_exception": NotAnError("stop")}[kind]


CALLS = st.fixed_dictionaries({
    "args": st.lists(SPECS, max_size=3),
    "kwargs": st.lists(st.tuples(KEYS, SPECS), max_size=3),
    "result": st.one_of(SPECS, st.tuples(st.just("dict"), st.lists(st.tuples(st.sampled_from(
        ["is_error", "content", "type"]), SPECS), max_size=3))),
    "raises": st.none() | EXCEPTIONS,
    "pending": st.booleans(),
})


def _invoke(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    try:
        result = function(*args, **kwargs)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
    except BaseException as error:
        return "raised", error
    return "returned", result


@pytest.fixture
def model_client(api):
    return anthropic.Anthropic(api_key="sk-ant-fuzz-000000", base_url=api.base_url, max_retries=0)


@pytest.mark.usefixtures("instrumented")
class TestMalformedToolCalls:
    @FUZZ
    @given(call=CALLS, target=st.sampled_from(["dispatcher", "decorator", "named_decorator", "async_decorator"]))
    def test_tools_receive_and_return_exactly_what_they_would_without_tracing(
            self, dispatcher_module, api, model_client, exporter, call, target):
        """Any arguments (None, huge strings, hostile objects, bad mappings) and any result or exception pass
        through the traced tool untouched, whether or not a turn is waiting for this tool."""
        if call["pending"]:
            api.enqueue(tool_reply(("read_file", {"path": "auth/session.ts"}), ("run_bash", {"command": "ls"})))
            model_client.messages.create(**REQUEST)
        args = tuple(build(spec) for spec in call["args"])
        kwargs = {key: build(spec) for key, spec in call["kwargs"]}
        SCRIPT.value = build(call["result"])
        SCRIPT.error = build_error(call["raises"]) if call["raises"] else None
        function = traced_targets(dispatcher_module)[target]

        SCRIPT.received.clear()
        traced = _invoke(function, args, kwargs)
        bare = _invoke(function.__wrapped__, args, kwargs)

        assert traced[0] == bare[0]
        assert traced[1] is bare[1], "the very object the tool returned or raised"
        (traced_args, traced_kwargs), _bare = SCRIPT.received
        assert len(traced_args) == len(args) and all(a is b for a, b in zip(traced_args, args, strict=True))
        assert traced_kwargs.keys() == kwargs.keys() and all(traced_kwargs[k] is kwargs[k] for k in kwargs)

    @FUZZ
    @given(call=CALLS)
    def test_no_tool_span_is_ended_twice(self, dispatcher_module, api, model_client, caplog, call):
        """Whatever the arguments and outcome, the SDK never has to warn about a span ended twice."""
        if call["pending"]:
            api.enqueue(tool_reply(("read_file", {"path": "auth/session.ts"})))
            model_client.messages.create(**REQUEST)
        SCRIPT.value = build(call["result"])
        SCRIPT.error = build_error(call["raises"]) if call["raises"] else None
        _invoke(dispatcher_module.dispatch, tuple(build(spec) for spec in call["args"]),
                {key: build(spec) for key, spec in call["kwargs"]})
        assert "ended span" not in caplog.text


class Unprintable:
    def __str__(self) -> str:
        raise Boom("cannot be printed")


@pytest.mark.usefixtures("instrumented")
class TestUnprintableToolValues:
    @pytest.mark.parametrize("case", ["result", "exception", "input_in_session"])
    def test_tool_span_ends_even_when_a_value_cannot_be_printed(self, ends, api, model_client, case):
        """A tool whose result, exception or input raises in ``__str__`` still gets its span ended, once."""

        @trace_tool("read_file")
        def tool(value: Any) -> Any:
            if case == "exception":
                raise UnprintableError()
            return value if case == "result" else "ok"

        if case == "input_in_session":
            api.enqueue(tool_reply(("read_file", {"path": "a"})))
            model_client.messages.create(**REQUEST)
        with pytest.raises(UnprintableError) if case == "exception" else nullcontext():
            tool(Unprintable() if case == "result" else {"path": Unprintable()})
        assert ends.count("execute_tool") == 1
        assert ends.not_ended_once("execute_tool") == {}


    def test_unprintable_input_keeps_the_tool_span_attributes(self, exporter, api, model_client):
        """With content capture on, an input that cannot be printed still leaves a complete tool span
        (name, operation, call id), its arguments shown as a placeholder."""

        @trace_tool("read_file")
        def tool(value: Any) -> str:
            return "ok"

        api.enqueue(tool_reply(("read_file", {"path": "a"})))
        model_client.messages.create(**REQUEST)
        tool({"path": Unprintable()})
        (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool")]
        assert span.attributes.get("gen_ai.operation.name") == "execute_tool"
        assert span.attributes.get("gen_ai.tool.name") == "read_file"
        assert "gen_ai.tool.call.arguments" in span.attributes
