"""What this instrumentation instruments, in the form opentelemetry-instrument checks."""

_instruments = ("anthropic >= 0.40",)
