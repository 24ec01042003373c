"""Langfuse as a direct OTLP/HTTP destination, configured from the ``LANGFUSE_*`` environment.

Langfuse ingests OpenTelemetry over OTLP/HTTP only (protobuf or JSON, optionally gzip) at
``{host}/api/public/otel/v1/traces``, authenticated with HTTP Basic auth where the user name is the
project's public key and the password its secret key. Exporters that talk to it directly must send
``x-langfuse-ingestion-version: 4`` to get real-time ingestion. It accepts traces only: metrics and logs
sent there are dropped, so only the span exporter is pointed at it.

This module is pure (no OpenTelemetry import): :func:`langfuse_otlp_config` turns an environment into the
``(endpoint, headers)`` pair an ``OTLPSpanExporter`` takes, so ``instrument()`` and tests can share it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

__all__ = [
    "DEFAULT_LANGFUSE_HOST",
    "INGESTION_VERSION",
    "INGESTION_VERSION_HEADER",
    "LANGFUSE_OTEL_PATH",
    "LANGFUSE_READS",
    "LANGFUSE_TRACES_PATH",
    "langfuse_otlp_config",
]

# Langfuse Cloud's default (EU) region; other regions and self-hosted instances set LANGFUSE_BASE_URL
# (or the older LANGFUSE_HOST) just as the Langfuse SDKs read them.
DEFAULT_LANGFUSE_HOST = "https://cloud.langfuse.com"
LANGFUSE_OTEL_PATH = "/api/public/otel"
LANGFUSE_TRACES_PATH = LANGFUSE_OTEL_PATH + "/v1/traces"
INGESTION_VERSION_HEADER = "x-langfuse-ingestion-version"
INGESTION_VERSION = "4"

# What Langfuse does with the attributes this package emits. Kept next to the exporter so anyone
# changing span attributes sees which ones a Langfuse user depends on.
LANGFUSE_READS: Mapping[str, str] = {
    "gen_ai.operation.name": (
        "observation type: chat -> generation, execute_tool -> tool, invoke_agent -> agent"
    ),
    "session.id": "groups traces into a Langfuse session; set to the conversation id on every span",
    "langfuse.session.id": "alternative spelling of session.id",
    "gen_ai.request.model": "model of a generation (cost lookup)",
    "gen_ai.usage.input_tokens": "input usage of a generation (ignored on agent spans)",
    "gen_ai.usage.output_tokens": "output usage of a generation (ignored on agent spans)",
    "gen_ai.usage.cache_read.input_tokens": "cache-read usage of a generation",
    "gen_ai.usage.cache_creation.input_tokens": (
        "cache-write usage; Langfuse reads this older name only, not gen_ai.usage.cache_write.input_tokens"
    ),
    "langfuse.observation.level": (
        "DEBUG|DEFAULT|WARNING|ERROR; Langfuse shows no span events, so findings also set WARNING here"
    ),
    "langfuse.observation.status_message": "the text shown next to the level (the finding's message)",
    "langfuse.observation.completion_start_time": "time to first token of a streamed generation",
}

_PUBLIC_KEY = "LANGFUSE_PUBLIC_KEY"
_SECRET_KEY = "LANGFUSE_SECRET_KEY"
# LANGFUSE_BASE_URL is the current SDKs' name and wins over the older LANGFUSE_HOST, as in those SDKs.
_HOST_VARIABLES = ("LANGFUSE_BASE_URL", "LANGFUSE_HOST")


def _host(environ: Mapping[str, str]) -> str:
    for name in _HOST_VARIABLES:
        value = (environ.get(name) or "").strip()
        if value:
            break
    else:
        value = DEFAULT_LANGFUSE_HOST
    value = value.rstrip("/")
    # Tolerate a host given with the OTLP path already on it (a copy of the collector setting), so the
    # path is never doubled.
    for suffix in (LANGFUSE_TRACES_PATH, LANGFUSE_OTEL_PATH):
        if value.endswith(suffix):
            value = value[: -len(suffix)].rstrip("/")
            break
    return value


def langfuse_otlp_config(environ: Mapping[str, str]) -> tuple[str, dict[str, str]] | None:
    """The OTLP/HTTP traces endpoint and headers for Langfuse, or ``None`` when it is not configured.

    Configured means both ``LANGFUSE_PUBLIC_KEY`` and ``LANGFUSE_SECRET_KEY`` are set and non-empty.
    The host comes from ``LANGFUSE_BASE_URL``, else ``LANGFUSE_HOST``, else Langfuse Cloud; a trailing
    slash is dropped. The endpoint is the full signal URL (``…/api/public/otel/v1/traces``), which is what
    ``OTLPSpanExporter(endpoint=...)`` expects. The keys are never logged or returned other than inside
    the ``Authorization`` header value.
    """
    public_key = (environ.get(_PUBLIC_KEY) or "").strip()
    secret_key = (environ.get(_SECRET_KEY) or "").strip()
    if not public_key or not secret_key:
        return None
    credentials = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode("ascii")
    headers = {
        "Authorization": f"Basic {credentials}",
        INGESTION_VERSION_HEADER: INGESTION_VERSION,
    }
    return _host(environ) + LANGFUSE_TRACES_PATH, headers
