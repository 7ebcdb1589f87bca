"""scripts/gpu_budgets.sh, the prepared device script: its mechanics on the CPU (GPU=0), so a lent GPU is not
spent finding a broken script."""

from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest

from esc_lib import config


@pytest.mark.slow
def test_every_fold_trains_in_its_own_runner_and_one_folder_reports_every_budget(esc10_or_synthetic, tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    environment = {**os.environ, **esc10_or_synthetic.environment(),
                   "ESC_RUNS_DIR": str(runs), "ESC_CACHE_DIR": str(tmp_path / "cache"),
                   "ESC_FIGURES_DIR": str(tmp_path / "figures"), "ESC_RESULTS_DIR": str(results),
                   "PROFILE": "smoke", "BUDGET": "1 0", "METHODS": "[supervised]", "FOLDS": "1 2", "GPU": "0"}
    done = subprocess.run([str(config.PROJECT_ROOT / "scripts" / "gpu_budgets.sh")], cwd=config.PROJECT_ROOT,
                          env=environment, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    name = "gpu-smoke-lpc1-all"  # budget 0 is every label
    assert f"run folder {runs / name}" in done.stdout
    # Each fold trained in its own run folder; the gathering folder links their classifiers, copies none.
    for fold in (1, 2):
        assert (runs / f"{name}-fold{fold}.log").is_file()
    linked = [p for p in (runs / name / "classifiers").rglob("fold*") if p.is_symlink()]
    assert {p.name for p in linked} == {"fold1-lpc1", "fold2-lpc1", "fold1", "fold2"}
    curve = pd.read_csv(results / name / "label_budget.csv")
    assert sorted(curve["labels_per_class"]) == [0, 1] and set(curve["n_folds"]) == {2}
