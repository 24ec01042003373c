#!/usr/bin/env bash
# Install everything into project-local venvs and run the whole suite:
#   - anthropic 2.x (httpx2 transport) in .venv, including the Phoenix end-to-end tests;
#   - anthropic 0.x (httpx transport) in .venv-sdk0;
#   - the compatibility suite (tests/compat: real agent frameworks and other instrumentors) in .venv-compat;
#   - ruff over the code;
#   - the anthropic 2.x suite again on the oldest Python the package declares (3.10) and the newest one
#     found here (3.13), in .venv-py3.10 / .venv-py3.13: the development venv's Python alone would hide a
#     call that only newer or older versions have.
# pytest's exit code is kept, so "no tests collected" (exit 5) fails the run like any other failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

suite() {
  local venv=$1 sdk=$2
  shift 2
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]" "$sdk"
  echo "== $("$venv/bin/python" -c 'import anthropic, platform; print("anthropic", anthropic.__version__, "on Python", platform.python_version())') =="
  "$venv/bin/python" -m pytest "$@"
}

# A working interpreter for Python X.Y: pythonX.Y on the PATH, else pyenv's latest X.Y; fails when neither.
find_python() {
  local exe version
  if exe=$(command -v "python$1") && "$exe" -c '' 2>/dev/null; then
    echo "$exe"
    return
  fi
  if command -v pyenv >/dev/null && version=$(pyenv latest "$1" 2>/dev/null) \
      && [ -x "$(pyenv prefix "$version")/bin/python" ]; then
    echo "$(pyenv prefix "$version")/bin/python"
    return
  fi
  return 1
}

# The HTML report is checked in a real headless browser: Debian's chromium (root only; the test skips
# with a reason elsewhere).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "chromium could not be installed; the browser test will skip"
fi
bash scripts/install_phoenix.sh

suite .venv "anthropic>=2" -q -p no:cacheprovider --ignore=tests/compat
# The compatibility suite in a venv of its own: the other SDK instrumentors it installs register entry
# points that opentelemetry-instrument would load in the main suite's zero-code runs. In CI a missing
# framework fails the suite instead of skipping it.
[ -x .venv-compat/bin/python ] || "$PY" -m venv .venv-compat
.venv-compat/bin/python -m pip install -q --disable-pip-version-check -e ".[test,compat]"
.venv-compat/bin/python -m pytest -q -p no:cacheprovider tests/compat
.venv/bin/ruff check src tests examples benchmarks scripts
suite .venv-sdk0 "anthropic<1" -q -p no:cacheprovider --ignore=tests/e2e --ignore=tests/compat
for version in 3.10 3.13; do
  if ! interpreter=$(find_python "$version"); then
    echo "WARNING: no Python $version on this machine: the suite did NOT run on it"
    continue
  fi
  PY=$interpreter suite ".venv-py$version" "anthropic>=2" -q -p no:cacheprovider --ignore=tests/compat
done
