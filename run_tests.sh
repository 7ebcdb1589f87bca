#!/usr/bin/env bash
# Command 2 of the README: build/refresh the environment, then run the whole test suite.
# Extra arguments go to pytest, e.g. ./run_tests.sh -k unpool -x
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/bootstrap.sh"
venv="${ESC_VENV:-$root/.venv}"
cd "$root"
exec "$venv/bin/python" -m pytest "$@"
