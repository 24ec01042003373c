"""Run ``examples/agent.py`` traced by the one-line ``otel_agent_trace.instrument()`` (no
``opentelemetry-instrument``), the way an application that adds one line to its entry point runs.

    python tests/e2e/agent_runner.py [--failing]

``instrument()`` finds no SDK TracerProvider here, so it installs one exporting as the standard
``OTEL_*`` variables say and flushed at exit. The example's own ``RuntimeError("Turn limit reached")``
is left uncaught on purpose: ending the session from the uncaught exception is part of what is tested.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agent.py"


def main() -> None:
    import otel_agent_trace

    otel_agent_trace.instrument()
    sys.argv = [str(EXAMPLE), *sys.argv[1:]]
    runpy.run_path(str(EXAMPLE), run_name="__main__")


if __name__ == "__main__":
    main()
