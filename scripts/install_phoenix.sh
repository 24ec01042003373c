#!/usr/bin/env bash
# Install Arize Phoenix (the OTLP backend used by the end-to-end tests) into its own venv.
#
# Phoenix is heavy (~850 MB installed) and pins its own dependency versions, so it never
# shares the project's test venv. The e2e tests find it at <repo>/.venv-phoenix/bin/phoenix
# (or wherever $OTEL_AGENT_TRACE_PHOENIX points).
#
# Usage: scripts/install_phoenix.sh [--force]
# Env:   PHOENIX_VENV    venv directory        (default: <repo>/.venv-phoenix)
#        PHOENIX_SPEC    pip requirement spec  (default: arize-phoenix)
#        PYTHON          interpreter for venv  (default: python3)
#
# Idempotent: does nothing when the venv's phoenix already imports and runs.
# Exits non-zero on any failure.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PHOENIX_VENV:-$repo_root/.venv-phoenix}"
spec="${PHOENIX_SPEC:-arize-phoenix}"
python="${PYTHON:-python3}"
force=0
if [[ "${1:-}" == "--force" ]]; then
    force=1
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

version=""
phoenix_works() {
    [[ -x "$venv/bin/phoenix" ]] || return 1
    # Importing the server module (what `phoenix serve` runs; ~8 s) is the real check:
    # a half-finished install can have the console script without a working package.
    version="$("$venv/bin/python" -c 'import phoenix.server.main, phoenix.version as v; print(v.__version__)' \
        2>/dev/null)" || return 1
}

start="$(now)"
if [[ "$force" == 0 ]] && phoenix_works; then
    echo "install_phoenix: arize-phoenix $version already installed in $venv (checked in $(elapsed "$start")s, skipping)"
    exit 0
fi

if [[ "$force" == 1 || ! -x "$venv/bin/python" ]]; then
    echo "install_phoenix: creating venv $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi

echo "install_phoenix: pip install $spec (this takes about a minute)"
log="$(mktemp -t install-phoenix.XXXXXX.log)"
if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q "$spec" >"$log" 2>&1; then
    echo "install_phoenix: pip install failed; last lines of the log:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
rm -f "$log"

if ! phoenix_works; then
    echo "install_phoenix: phoenix installed but does not import/run" >&2
    "$venv/bin/python" -c 'import phoenix.server.main' >&2 || true
    exit 1
fi

size="$(du -sh "$venv" 2>/dev/null | cut -f1)"
echo "install_phoenix: arize-phoenix $version installed in $(elapsed "$start")s (venv size $size)"
