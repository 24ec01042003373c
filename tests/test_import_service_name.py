"""Imported traces are findable: ``service.name`` is ``otel-agent-trace-import`` unless the user names one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_agent_trace.testing.otlp_receiver import OTLPReceiver

STUCK = Path(__file__).resolve().parent / "fixtures" / "seed" / "turn_limit.jsonl"


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as server:
        yield server


def import_into(receiver: OTLPReceiver, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LANGFUSE_"))}
    env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", **extra})
    result = subprocess.run([sys.executable, "-m", "otel_agent_trace.cli", "import", str(STUCK)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    (span, *_) = receiver.wait_for_spans(1)
    return str(span.resource.get("service.name"))


def test_imports_get_their_own_service_name(receiver: OTLPReceiver) -> None:
    """Without OTEL_SERVICE_NAME the imported spans carry service.name=otel-agent-trace-import."""
    assert import_into(receiver) == "otel-agent-trace-import"


def test_the_user_service_name_wins(receiver: OTLPReceiver) -> None:
    """OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) overrides the default."""
    assert import_into(receiver, OTEL_RESOURCE_ATTRIBUTES="service.name=nightly-replays") == "nightly-replays"
