"""The two ways users turn it on, end to end in a fresh process, exporting OTLP to a real receiver:
``opentelemetry-instrument python examples/agent.py`` and one-line ``otel_agent_trace.instrument()``."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otel_agent_trace.testing.otlp_receiver import OTLPReceiver

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "agent.py")
BIN = Path(sys.executable).parent


@pytest.fixture
def receiver():
    with OTLPReceiver() as server:
        yield server


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LANGFUSE_", "ANTHROPIC_"))}
    env.update({"OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_SERVICE_NAME": "zero-code-test"})
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


def _tree(spans):
    by_id = {s.span_id: s for s in spans}
    return {s.span_id: by_id.get(s.parent_span_id) for s in spans}


class TestOpentelemetryInstrument:
    def test_example_agent_traced_with_zero_code_changes(self, receiver):
        """Installing the package is enough: the distro exports session → turns → inferred tools."""
        done = _run([str(BIN / "opentelemetry-instrument"), sys.executable, EXAMPLE],
                    _env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint))
        assert done.returncode == 0, done.stderr[-2000:]
        spans = receiver.wait_for_spans(14)
        parents = _tree(spans)
        (session,) = [s for s in spans if s.name == "invoke_agent agent"]
        chats = [s for s in spans if s.name.startswith("chat ")]
        tools = [s for s in spans if s.name.startswith("execute_tool ")]
        assert len(chats) == 7 and len(tools) == 6
        assert all(parents[c.span_id] is session for c in chats)
        assert all(parents[t.span_id].name.startswith("chat ") for t in tools)
        assert {t.attributes["agent_trace.tool.source"] for t in tools} == {"inferred"}
        assert session.resource["service.name"] == "zero-code-test"
        assert session.attributes["agent_trace.end_reason"] == "end_turn"
        assert chats[0].kind == "CLIENT"

    def test_the_distros_grpc_default_against_an_http_endpoint_is_named(self, receiver):
        """Left to the distro's gRPC default, an OTLP/HTTP endpoint gets nothing, and the user is told why."""
        env = _env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint.replace(str(receiver.port), "4318"),
                   OTEL_EXPORTER_OTLP_TIMEOUT="1")
        del env["OTEL_EXPORTER_OTLP_PROTOCOL"]
        done = _run([str(BIN / "opentelemetry-instrument"), sys.executable, EXAMPLE], env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stderr.count("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf") == 1

    def test_dispatcher_named_by_env_is_patched_in_a_script(self, receiver):
        """``OTEL_AGENT_TRACE_TOOL_DISPATCHER=agent:dispatch_tool`` patches the script's own function."""
        done = _run([str(BIN / "opentelemetry-instrument"), sys.executable, EXAMPLE],
                    _env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                         OTEL_AGENT_TRACE_TOOL_DISPATCHER="agent:dispatch_tool"))
        assert done.returncode == 0, done.stderr[-2000:]
        spans = receiver.wait_for_spans(14)
        tools = [s for s in spans if s.name.startswith("execute_tool ")]
        assert len(tools) == 6
        assert {t.attributes["agent_trace.tool.source"] for t in tools} == {"dispatcher"}

    def test_failing_agent_ends_as_turn_limit_with_findings(self, receiver):
        """An uncaught turn-limit error ends the session as ``turn_limit`` with findings on it."""
        done = _run([str(BIN / "opentelemetry-instrument"), sys.executable, EXAMPLE, "--failing"],
                    _env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint))
        assert done.returncode != 0 and "Turn limit reached" in done.stderr
        spans = receiver.wait_for_spans(12)
        (session,) = [s for s in spans if s.name == "invoke_agent agent"]
        assert session.attributes["agent_trace.end_reason"] == "turn_limit"
        kinds = set(session.attributes["agent_trace.findings.kinds"])
        assert {"hallucinated_input", "token_jump", "tool_loop", "context_drift", "no_end_turn"} <= kinds
        flagged = [s for s in spans if s.attributes.get("langfuse.observation.level") == "WARNING"]
        assert flagged and all(s.events_named("agent_trace.finding") for s in flagged)

    def test_disabled_by_its_own_name(self, receiver):
        """``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=anthropic_agent_trace`` turns ours off."""
        done = _run([str(BIN / "opentelemetry-instrument"), sys.executable, EXAMPLE],
                    _env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, ANTHROPIC_OPEN_TELEMETRY="false",
                         OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="anthropic_agent_trace"))
        assert done.returncode == 0, done.stderr[-2000:]
        assert not [s for s in receiver.spans if s.scope_name == "otel_agent_trace"]


ONE_LINE = """
import runpy, sys
import otel_agent_trace
otel_agent_trace.instrument()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


class TestOneLine:
    def test_instrument_builds_an_otlp_provider_from_the_environment(self, receiver):
        """With no provider configured, ``instrument()`` exports over OTLP as OTEL_* says, flushed at exit."""
        done = _run([sys.executable, "-c", ONE_LINE, EXAMPLE], _env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint))
        assert done.returncode == 0, done.stderr[-2000:]
        spans = receiver.wait_for_spans(14)
        assert len([s for s in spans if s.name.startswith("chat ")]) == 7
        assert all(r.path == "/v1/traces" for r in receiver.requests if r.signal == "traces")

    def test_langfuse_keys_send_to_langfuse_with_basic_auth(self, receiver):
        """``LANGFUSE_*`` alone sends to ``/api/public/otel/v1/traces`` with Basic auth and the fields Langfuse maps."""
        done = _run([sys.executable, "-c", ONE_LINE, EXAMPLE, "--failing"],
                    _env(LANGFUSE_PUBLIC_KEY="pk-lf-test", LANGFUSE_SECRET_KEY="sk-lf-test",
                         LANGFUSE_HOST=receiver.endpoint))
        assert "Turn limit reached" in done.stderr
        spans = receiver.wait_for_spans(12)
        request = next(r for r in receiver.requests if r.signal == "traces")
        assert request.path == "/api/public/otel/v1/traces"
        assert request.headers["authorization"] == "Basic " + base64.b64encode(b"pk-lf-test:sk-lf-test").decode()
        assert request.headers["x-langfuse-ingestion-version"] == "4"
        operations = {s.attributes["gen_ai.operation.name"] for s in spans}
        assert operations == {"invoke_agent", "chat", "execute_tool"}
        assert len({s.attributes["session.id"] for s in spans}) == 1
        chat = next(s for s in spans if s.name.startswith("chat "))
        assert "gen_ai.usage.cache_creation.input_tokens" in chat.attributes
        assert any(s.attributes.get("langfuse.observation.status_message", "").startswith("tool_loop")
                   for s in spans)

    def test_unreachable_collector_is_reported_once_and_never_raised(self):
        """A collector that is down costs one warning line, not an exception or one line per batch."""
        done = _run([sys.executable, "-c", ONE_LINE, EXAMPLE],
                    _env(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_EXPORTER_OTLP_TIMEOUT="1",
                         OTEL_BSP_SCHEDULE_DELAY="50"))
        assert done.returncode == 0
        assert "Tests pass" in done.stdout
        warnings = [line for line in done.stderr.splitlines() if "export" in line.lower()]
        assert 1 <= len(warnings) <= 2, done.stderr
