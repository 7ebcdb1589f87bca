"""Your own recordings through the runner: ESC-10 clips as class folders and as a CSV, folds made for you.

The labelled data is built by the test from ESC-10 clips (links, and a few
clips joined into 10 s recordings); ``./run_all.sh`` runs all four notebooks
with the smoke settings on it, and the results, the folds and the bundle are
read back.  The clips are the real ESC-10's where present (required in CI),
else those of conftest's synthetic ESC-10, which has the same classes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from conftest import preserved_environ
from esc_lib import reproduce
from esc_lib.data import audio, datasets

pytestmark = [pytest.mark.slow]

CLASSES = {"dog": "dog", "rooster": "rooster", "crying_baby": "crying baby"}  # ESC category -> folder name


def _build(esc10_root: Path, root: Path) -> pd.DataFrame:
    """5 linked clips per class (each of another recording) + one 10 s file joined from two more takes."""
    meta = datasets.load_esc10(esc10_root).meta
    rows = []
    for category, folder in CLASSES.items():
        clips = meta[meta["category"] == category].drop_duplicates("src_file").sort_values("filename")
        target = root / folder
        target.mkdir(parents=True)
        for _, clip in clips.head(5).iterrows():
            link = target / Path(clip["path"]).name
            os.symlink(clip["path"], link)
            rows.append({"path": f"{folder}/{link.name}", "label": folder})
        joined = np.concatenate([audio.load_clip(path) for path in clips["path"].iloc[5:7]])
        soundfile.write(str(target / "joined recording.wav"), joined, audio.SAMPLE_RATE)
        rows.append({"path": f"{folder}/joined recording.wav", "label": folder})
    return pd.DataFrame(rows)


def _run(tmp: Path, labelled: Path, unlabeled: Path, run_name: str, *extra: str) -> int:
    environment = {
        "ESC_UNLABELED_DIR": unlabeled,
        "ESC_RUNS_DIR": tmp / "runs", "ESC_CACHE_DIR": tmp / "cache",
        "ESC_FIGURES_DIR": tmp / "figures", "ESC_RESULTS_DIR": tmp / "results",
    }
    profile = tmp / "own-smoke.yaml"
    profile.write_text(
        "description: the own profile with the smoke settings\n"
        "extends: smoke\n"
        "parameters:\n"
        "  dataset: own\n  n_folds: 3\n  folds: [1, 2, 3]\n  clips_per_class: 0\n  label_budgets: [0]\n"
        "  max_unlabeled: 6\n"
    )
    with pytest.MonkeyPatch.context() as patch, preserved_environ():
        for name, value in environment.items():
            patch.setenv(name, str(value))
        return reproduce.main(["--profile", str(profile), "--labelled-dir", str(labelled), "--run-name", run_name, *extra])


@pytest.fixture(scope="module")
def own_runs(esc10_or_synthetic, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("own")
    folders = tmp / "class folders"
    listed = _build(esc10_or_synthetic.esc10, folders)
    table = folders / "labels.csv"
    listed.to_csv(table, index=False)
    assert _run(tmp, folders, esc10_or_synthetic.unlabeled, "folders") == 0
    assert _run(tmp, table, esc10_or_synthetic.unlabeled, "table", "--stages", "1,3") == 0
    return tmp


def test_class_folders_run_end_to_end_with_grouped_folds(own_runs):
    run = own_runs / "runs" / "folders"
    folds = pd.read_csv(run / "folds.csv")
    assert len(folds) == 18 and sorted(folds["fold"].unique()) == [1, 2, 3]
    assert folds.groupby("filename")["fold"].nunique().max() == 1
    assert set(folds["category"]) == set(CLASSES.values())
    metrics = pd.concat(pd.read_csv(p) for p in (run / "results").glob("*/metrics.csv"))
    assert set(metrics["fold"]) == {1, 2, 3} and set(metrics["method"]) == {"supervised", "pretrained"}
    assert metrics["n_test"].sum() == 2 * 18  # scored per file (the joined recordings once each), per method
    assert (metrics.groupby("method")["n_train"].sum() == 18).all()  # files, not windows: each file trains in one fold
    assert {"balanced_accuracy", "macro_f1"} <= set(metrics.columns)
    predictions = pd.concat(pd.read_csv(p) for p in (run / "results").glob("*/predictions.csv"))
    assert not predictions.duplicated(["method", "filename"]).any()
    for name in CLASSES.values():  # every file in exactly one test fold
        assert (predictions["filename"].str.startswith(name + "/")).sum() == 2 * 6


def test_the_bundle_predicts_the_class_folders_names(own_runs):
    from esc_lib import predict

    bundles = sorted((own_runs / "runs" / "folders" / "bundles").glob("*"))
    assert bundles, "notebook 04 exports a bundle"
    bundle = predict.load_bundle(bundles[0])
    assert bundle.classes == sorted(CLASSES.values())
    table, skipped = bundle.predict_files([own_runs / "class folders" / "crying baby" / "joined recording.wav"])
    assert skipped.n_skipped == 0 and table["n_windows"].tolist() == [2] and set(table["top1_class"]) <= set(CLASSES.values())


def test_a_table_runs_through_the_same_pipeline(own_runs):
    run = own_runs / "runs" / "table"
    folds = pd.read_csv(run / "folds.csv")
    assert len(folds) == 18 and folds.groupby("filename")["fold"].nunique().max() == 1
    metrics = pd.concat(pd.read_csv(p) for p in (run / "results").glob("*/metrics.csv"))
    assert set(metrics["fold"]) == {1, 2, 3} and (metrics["n_test"] > 0).all()
