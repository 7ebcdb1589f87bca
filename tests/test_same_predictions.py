"""scripts/same_predictions.py: the check that a restructure left every prediction as it was."""

from __future__ import annotations

import importlib.util

import pandas as pd

from esc_lib import config

_spec = importlib.util.spec_from_file_location("same_predictions", config.PROJECT_ROOT / "scripts" / "same_predictions.py")
same_predictions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(same_predictions)


def _run(folder, predicted=(0, 1, 1), seconds=1.0):
    results = folder / "results" / "bs32-f64"
    results.mkdir(parents=True)
    pd.DataFrame({"method": "supervised", "fold": 1, "filename": ["a", "b", "c"], "y_true": [0, 1, 0],
                  "y_pred": list(predicted)}).to_csv(results / "predictions.csv", index=False)
    pd.DataFrame({"method": ["supervised"], "fold": [1], "accuracy": [2 / 3], "seconds": [seconds],
                  "wall_seconds": [seconds + 1]}).to_csv(results / "metrics.csv", index=False)
    return folder


def test_same_predictions_pass_and_timing_is_ignored(tmp_path, capsys):
    old, new = _run(tmp_path / "old"), _run(tmp_path / "new", seconds=7.5)
    assert same_predictions.main([str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "3 rows, byte-identical" in out and "equal but seconds/wall_seconds" in out


def test_one_changed_prediction_fails(tmp_path, capsys):
    old, new = _run(tmp_path / "old"), _run(tmp_path / "new", predicted=(0, 1, 0))
    assert same_predictions.main([str(old), str(new)]) == 1
    assert "DIFFERENT" in capsys.readouterr().out


def test_a_configuration_in_one_folder_only_fails(tmp_path):
    old, new = _run(tmp_path / "old"), _run(tmp_path / "new")
    (new / "results" / "bs32-f64").rename(new / "results" / "bs16-f64")
    assert same_predictions.main([str(old), str(new)]) == 1
