"""``python -m otel_agent_trace.cli``: the same as the ``otel-agent-trace`` command."""

import sys

from otel_agent_trace.cli import main

sys.exit(main())
