#!/usr/bin/env bash
# Keep notebook outputs out of git: configure the nbstripout filter that .gitattributes names
# (*.ipynb filter=nbstripout diff=ipynb) in this clone's .git/config. Called by bootstrap.sh;
# harmless outside a git clone (does nothing). With it, Run All in JupyterLab (outputs,
# execution counts, the kernel's language_info, papermill's metadata) leaves `git status` clean;
# `git diff` shows notebooks without outputs. The files on disk keep their outputs.
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
find='for p in "$0" .venv/bin/python .venv-gpu/bin/python; do if [ -x "$p" ]; then exec "$p" -m nbstripout --keep-id OPTIONS"$@"; fi; done; echo "nbstripout filter: no interpreter (neither $0 nor .venv/bin/python or .venv-gpu/bin/python of this checkout is executable); run scripts/bootstrap.sh" >&2; exit 1'
# Each key is written only when its value differs: git rewrites .git/config on every `git config`,
# and run_all.sh calls this at every start.
set_key() {
    if [[ "$(git -C "$root" config --get "$1" || true)" != "$2" ]]; then
        git -C "$root" config "$1" "$2"
    fi
}
set_key filter.nbstripout.clean "sh -c '${find/OPTIONS/}' \"$python_bin\""
set_key filter.nbstripout.smudge cat
set_key filter.nbstripout.required true
set_key filter.nbstripout.extrakeys \
    "metadata.language_info metadata.papermill cell.metadata.papermill cell.metadata.execution"
set_key diff.ipynb.textconv "sh -c '${find/OPTIONS/-t }' \"$python_bin\""
