"""End-to-end fixtures: a real Arize Phoenix server (OTLP/HTTP + OTLP/gRPC backend).

Phoenix runs from its own venv (scripts/install_phoenix.sh). Without it the e2e tests skip,
except in CI (env ``CI`` set), where a missing Phoenix is an error.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _load_helper():
    # Load tests/e2e/phoenix.py by path: the plain name "phoenix" is also Arize's package, and
    # whether this directory is a package depends on __init__.py files outside this folder.
    name = "otel_agent_trace_e2e_phoenix"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("phoenix.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


phoenix_helper = _load_helper()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end against a real backend (Phoenix)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A running PhoenixServer (see tests/e2e/phoenix.py), shared by the session."""
    executable = phoenix_helper.find_phoenix_executable()
    if executable is None:
        where = os.environ.get(phoenix_helper.ENV_EXECUTABLE) or ".venv-phoenix/bin/phoenix"
        reason = (
            f"Phoenix not installed ({where} missing): run scripts/install_phoenix.sh "
            f"or set ${phoenix_helper.ENV_EXECUTABLE} to a phoenix executable"
        )
        if _in_ci():
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)

    server = phoenix_helper.PhoenixServer(executable)
    try:
        server.start(tmp_path_factory.mktemp("phoenix"))
    except phoenix_helper.PhoenixError as exc:
        pytest.fail(f"Phoenix failed to start: {exc}", pytrace=False)
    sys.stderr.write(f"\n[e2e] Phoenix up at {server.http_endpoint} in {server.startup_seconds:.1f}s\n")
    try:
        yield server
    finally:
        server.stop(timeout=15.0)
