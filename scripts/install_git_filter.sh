#!/usr/bin/env bash
# Keep notebook outputs out of git: configure the nbstripout filter that .gitattributes names
# (*.ipynb filter=nbstripout diff=ipynb) in this clone's .git/config. Called by bootstrap.sh;
# harmless outside a git clone (does nothing). With it, Run All in JupyterLab (outputs,
# execution counts, papermill's metadata) leaves `git diff` empty and `git add` stages nothing new;
# `git diff` shows notebooks without outputs. The files on disk keep their outputs.
#
# The kernel's metadata.language_info is not stripped but set to LANGUAGE_INFO below, which the
# committed notebooks carry: JupyterLab writes it on every save, and git takes a file whose size
# differs from its checkout for modified without running the filter, so a notebook saved unchanged
# must be byte for byte the committed one. With the project's Python (3.11.7, or any 3.11 patch
# release of one digit) a save without changes leaves `git status` clean; another one's version
# never reaches git either.
#
#   PYTHON  the interpreter with nbstripout installed (default: <project>/.venv/bin/python)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python_bin="${PYTHON:-${ESC_VENV:-$root/.venv}/bin/python}"
if ! command -v git >/dev/null 2>&1 || ! git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    exit 0
fi
# The filter finds its interpreter when it runs: the one named here, else the running checkout's
# own .venv or .venv-gpu (git runs filters from the top of the working tree). Git worktrees
# share one .git/config, so a bootstrap in a worktree names that worktree's interpreter for
# every checkout of the repository; once that worktree is removed, the others still filter.
# --keep-id: cell ids stay as Jupyter writes them (nbstripout would renumber them).
# ipykernel's language_info (ipykernel.ipkernel.IPythonKernel.language_info) for the project's Python.
LANGUAGE_INFO="{'codemirror_mode': {'name': 'ipython', 'version': 3}, 'file_extension': '.py', 'mimetype': 'text/x-python', 'name': 'python', 'nbconvert_exporter': 'python', 'pygments_lexer': 'ipython3', 'version': '3.11.7'}"
# nbstripout's output with metadata.language_info set to LANGUAGE_INFO (UTF-8 whatever the locale; nbformat
# writes as nbstripout and Jupyter do). No double quotes, dollars or backslashes: it sits in "..." below.
normalise="import io, sys, nbformat; nb = nbformat.read(io.TextIOWrapper(sys.stdin.buffer, encoding='utf-8'), as_version=nbformat.NO_CONVERT); nb.metadata['language_info'] = $LANGUAGE_INFO; out = io.TextIOWrapper(sys.stdout.buffer, encoding='utf-8'); nbformat.write(nb, out); out.flush()"
find='code="$1"; shift; for p in "$0" .venv/bin/python .venv-gpu/bin/python; do if [ -x "$p" ]; then "$p" -m nbstripout --keep-id OPTIONS"$@" | "$p" -c "$code"; exit; fi; done; echo "nbstripout filter: no interpreter (neither $0 nor .venv/bin/python or .venv-gpu/bin/python of this checkout is executable); run scripts/bootstrap.sh" >&2; exit 1'
# Each key is written only when its value differs: git rewrites .git/config on every `git config`,
# and run_all.sh calls this at every start.
set_key() {
    if [[ "$(git -C "$root" config --get "$1" || true)" != "$2" ]]; then
        git -C "$root" config "$1" "$2"
    fi
}
set_key filter.nbstripout.clean "sh -c '${find/OPTIONS/}' \"$python_bin\" \"$normalise\""
set_key filter.nbstripout.smudge cat
set_key filter.nbstripout.required true
set_key filter.nbstripout.extrakeys "metadata.papermill cell.metadata.papermill cell.metadata.execution"
set_key diff.ipynb.textconv "sh -c '${find/OPTIONS/-t }' \"$python_bin\" \"$normalise\""
