#!/usr/bin/env bash
# Create .venv-bench (gitignored): this project, the anthropic SDK and the peer instrumentations that
# benchmarks/bench_overhead.py compares against. Kept apart from the development venv so the peers'
# pins cannot change what the tests run with. Idempotent: re-running only upgrades what is missing.
#
#   bash scripts/setup_bench_peers.sh && .venv-bench/bin/python benchmarks/bench_overhead.py --out benchmarks/RESULTS.md
#
# Each peer is installed on its own so one that is missing or conflicts with anthropic 2.x does not
# stop the others; the benchmark then reports it as "not installed" with the reason it finds.
set -u
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv-bench}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV" || exit 1
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

echo "installing otel-agent-trace (editable) + anthropic"
"${PIP[@]}" -e . "anthropic>=2" || exit 1

# The official GenAI instrumentation publishes pre-releases only (b versions), hence --pre for it alone.
declare -a PEERS=(
    "opentelemetry-instrumentation-anthropic"
    "--pre opentelemetry-instrumentation-genai-anthropic"
    "openinference-instrumentation-anthropic"
)
status=0
for spec in "${PEERS[@]}"; do
    echo "installing peer: $spec"
    # shellcheck disable=SC2086
    if ! "${PIP[@]}" $spec; then
        echo "  WARNING: could not install $spec (the benchmark will report it as unavailable)" >&2
        status=1
    fi
done

# The peers must not downgrade the SDK under test below 2.x.
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
for name in ("anthropic", "opentelemetry-sdk", "opentelemetry-instrumentation-anthropic",
             "opentelemetry-instrumentation-genai-anthropic", "openinference-instrumentation-anthropic",
             "otel-agent-trace"):
    try:
        print(f"  {name:48s} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name:48s} (not installed)")
EOF
echo "done ($VENV); peer install status: $status (non-zero = some peer missing, benchmark still runs)"
exit 0
