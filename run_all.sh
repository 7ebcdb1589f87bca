#!/usr/bin/env bash
# Command 1 of the README: build/refresh the environment, then run the
# reproduction (the numbered notebooks through papermill).  ./run_all.sh --help
# lists the profiles and the data options.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for arg in "$@"; do
    if [[ "$arg" == "-h" || "$arg" == "--help" ]]; then
        # Help needs no environment: the runner's argument parser uses the standard library only.
        PYTHONPATH="$root" exec "${PYTHON:-python3}" -m esc_lib.reproduce "$@"
    fi
done
# --gpu (this script's own option): the GPU environment (scripts/bootstrap.sh --gpu, .venv-gpu).
args=()
for arg in "$@"; do
    if [[ "$arg" == "--gpu" ]]; then export ESC_GPU=1; else args+=("$arg"); fi
done
set -- "${args[@]+"${args[@]}"}"
"$root/scripts/bootstrap.sh"
if [[ "${ESC_GPU:-0}" == "1" ]]; then venv="${ESC_VENV:-$root/.venv-gpu}"; else venv="${ESC_VENV:-$root/.venv}"; fi
cd "$root"
# `python -m` from the root imports this checkout's esc_lib, and the runner puts it first on the
# kernels' PYTHONPATH, even when the environment (ESC_VENV) was installed from another checkout.
exec "$venv/bin/python" -m esc_lib.reproduce "$@"
