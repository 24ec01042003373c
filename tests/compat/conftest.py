"""The compatibility suite runs each agent once with our instrumentation and once without, per case, and
its tests read those runs. A framework that is not installed skips its cases with a reason, except in CI
(``CI=true``), where a missing framework fails: the suite must not pass by running nothing."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(module: str) -> ModuleType:
    """Import ``module`` (a framework under test), or skip — in CI, fail — when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        reason = f"{module} is not installed (pip install -e '.[compat]'): {error}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"compat suite in CI: {reason}")
        pytest.skip(reason)
