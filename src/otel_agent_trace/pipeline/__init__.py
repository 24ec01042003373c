"""Records to telemetry, the same live and offline: the sink, span attributes, metrics, content."""
