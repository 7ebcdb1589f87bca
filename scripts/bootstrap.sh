#!/usr/bin/env bash
# Create or refresh the project's virtual environment from the pins, then
# register the Jupyter kernel.  Idempotent: when neither requirements.lock,
# pyproject.toml nor the Python version changed since the last successful
# run, it installs nothing and returns in about a second.
#
# Settings (environment variables, or --gpu):
#   ESC_GPU=1   the GPU environment: requirements-gpu.lock (tensorflow[and-cuda] instead of
#               tensorflow-cpu, same version) in <project>/.venv-gpu; the same as --gpu
#   ESC_VENV    where the environment lives (default: <project>/.venv, or .venv-gpu with ESC_GPU=1)
#   PYTHON      the Python 3.11 interpreter to build it from (default: python3.11, else python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for arg in "$@"; do
    case "$arg" in
        --gpu) export ESC_GPU=1 ;;
        *) echo "bootstrap: unknown option '$arg' (the only one is --gpu)" >&2; exit 2 ;;
    esac
done
if [[ "${ESC_GPU:-0}" == "1" ]]; then
    lock="$root/requirements-gpu.lock" flavour="GPU" other="tensorflow-cpu"
    venv="${ESC_VENV:-$root/.venv-gpu}"
else
    lock="$root/requirements.lock" flavour="CPU" other="tensorflow"
    venv="${ESC_VENV:-$root/.venv}"
fi
stamp_file="$venv/.esc_lib-stamp"

pick_python() {
    if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return; fi
    if command -v python3.11 >/dev/null 2>&1; then echo python3.11; return; fi
    echo python3
}
python_bin="$(pick_python)"
if ! "$python_bin" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
    echo "bootstrap: need Python 3.11, but '$python_bin' is $("$python_bin" --version 2>&1 || echo 'missing')." >&2
    echo "bootstrap: install Python 3.11 or point PYTHON at it, e.g. PYTHON=/usr/bin/python3.11 ./run_all.sh" >&2
    exit 2
fi

# One bootstrap per environment at a time: two run_all.sh started together on a fresh checkout
# would both build it and break pip. The second waits here, then finds it up to date.
mkdir -p "$venv"
exec 9>"$venv/.bootstrap.lock"
if ! flock --nonblock 9; then
    echo "bootstrap: another bootstrap is building $venv; waiting for it to finish"
    flock 9
fi

# The stamp covers everything that decides what gets installed.
stamp="$( { "$python_bin" --version 2>&1; cat "$lock" "$root/pyproject.toml"; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
    PYTHON="$venv/bin/python" "$root/scripts/install_git_filter.sh"
    echo "bootstrap: $flavour environment $venv is up to date"
    exit 0
fi

start=$SECONDS
echo "bootstrap: building the $flavour environment in $venv from $(basename "$lock") (the first time takes a few minutes)"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python_bin" -m venv "$venv"
fi
rm -f "$stamp_file"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
# The other flavour's TensorFlow (an environment switched between CPU and GPU) would shadow this one.
if "$venv/bin/python" -m pip show --quiet "$other" >/dev/null 2>&1; then
    "$venv/bin/python" -m pip uninstall --quiet --yes "$other"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$root"
# The kernel goes into the environment itself (not the user's home), so
# papermill and the JupyterLab of this environment find it and nothing else is touched.
"$venv/bin/python" -m ipykernel install --sys-prefix --name esc-lib --display-name "Python (esc_lib)" >/dev/null
# Notebook outputs stay out of git (the nbstripout filter that .gitattributes names).
PYTHON="$venv/bin/python" "$root/scripts/install_git_filter.sh"
echo "$stamp" > "$stamp_file"
echo "bootstrap: $flavour environment ready in $((SECONDS - start)) s"
if [[ "$flavour" == "GPU" ]]; then
    gpus="$(TF_CPP_MIN_LOG_LEVEL=3 "$venv/bin/python" -c 'import tensorflow as tf; print(len(tf.config.list_physical_devices("GPU")))' 2>/dev/null || echo 0)"
    if [[ "$gpus" == "0" ]]; then
        echo "bootstrap: warning: TensorFlow sees no GPU; check the NVIDIA driver (nvidia-smi) - training will run on the CPU" >&2
    else
        echo "bootstrap: TensorFlow sees $gpus GPU(s)"
    fi
fi
