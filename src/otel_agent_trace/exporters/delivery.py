"""Counting what an exporter really accepted, for commands that must say whether data arrived.

``import`` and ``demo`` used to print "N span(s) sent" after handing spans to a batch processor, which
drops spans silently (backend down, queue full, a batch the exporter could not encode). Here spans are
collected as they end and exported in batches, synchronously, by the command itself: each batch's
``SpanExportResult`` is counted, so the summary says how many spans the backend accepted and how many were
lost, and which traces (ids and time range) the accepted ones belong to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

BATCH = 512  # spans per export call: the OTLP exporters' own default batch size


def command_resource(default_service: str) -> Resource:
    """The resource for spans a command creates: ``service.name`` is ``default_service`` unless
    ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` name another."""
    return Resource.create({SERVICE_NAME: default_service}).merge(OTELResourceDetector().detect())


@dataclass
class Delivery:
    """What was handed to the exporter and what it accepted."""

    ended: int = 0
    accepted: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    traces: dict[int, str] = field(default_factory=dict)  # trace id → name of its root span (accepted spans)
    first_ns: int | None = None
    last_ns: int | None = None

    @property
    def lost(self) -> int:
        return self.ended - self.accepted

    def time_range(self) -> str:
        if self.first_ns is None or self.last_ns is None:
            return ""
        return f"{_iso(self.first_ns)} – {_iso(self.last_ns)}"

    def summary(self, target: str) -> str:
        """One honest line: how many spans reached ``target`` and how many did not."""
        if self.ended == 0:
            return "no spans to export"
        if self.lost == 0:
            return f"{self.accepted} span(s) accepted by {target}"
        why = f" ({self.errors[0]})" if self.errors else ""
        return f"{self.accepted} of {self.ended} span(s) accepted by {target}; {self.lost} LOST{why}"

    def trace_lines(self, limit: int = 20) -> list[str]:
        """Where to find the accepted spans: the trace ids (with their root span) and the time range."""
        lines = [f"  trace {trace_id:032x}  {root}" for trace_id, root in list(self.traces.items())[:limit]]
        if len(self.traces) > limit:
            lines.append(f"  … and {len(self.traces) - limit} more trace(s)")
        if self.time_range():
            lines.append(f"  time range {self.time_range()}")
        return lines


def _iso(ns: int) -> str:
    seconds = min(max(ns // 1_000_000_000, 0), 253_402_300_799)  # year 9999: gmtime's limit
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class CountingDelivery(SpanProcessor):
    """A span processor that keeps ended spans and exports them, in batches and synchronously, when told to
    (``flush``), counting every batch's result. Nothing is dropped before the exporter has had its say."""

    def __init__(self, exporter: SpanExporter, batch: int = BATCH) -> None:
        self._exporter = exporter
        self._batch = max(1, batch)
        self._pending: list[ReadableSpan] = []
        self._lock = threading.Lock()
        self._gave_up = False
        self.delivery = Delivery()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self._pending.append(span)
            self.delivery.ended += 1
            full = len(self._pending) >= self._batch
        if full:
            self.flush()

    def flush(self) -> Delivery:
        """Export every pending span now; returns the running totals."""
        with self._lock:
            pending, self._pending = self._pending, []
        for start in range(0, len(pending), self._batch):
            self._export(pending[start:start + self._batch])
        return self.delivery

    def _export(self, spans: Sequence[ReadableSpan]) -> None:
        delivery = self.delivery
        if self._gave_up:  # after a failed batch, more batches would each wait out the exporter's retries
            delivery.failed += len(spans)
            return
        try:
            result = self._exporter.export(spans)
            error = None
        except Exception as exc:  # an exporter that raises has still not delivered
            result, error = SpanExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        if result is not SpanExportResult.SUCCESS:
            self._gave_up = True
            delivery.failed += len(spans)
            delivery.errors.append(error or "the exporter reported a failure")
            return
        delivery.accepted += len(spans)
        for span in spans:
            context = span.context
            if context is not None and span.parent is None:
                delivery.traces.setdefault(context.trace_id, span.name)
            for moment in (span.start_time, span.end_time):
                if moment:
                    delivery.first_ns = moment if delivery.first_ns is None else min(delivery.first_ns, moment)
                    delivery.last_ns = moment if delivery.last_ns is None else max(delivery.last_ns, moment)

    def shutdown(self) -> None:
        self.flush()
        try:
            self._exporter.shutdown()
        except Exception:
            pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.flush().lost == 0


__all__ = ["BATCH", "CountingDelivery", "Delivery", "command_resource"]
