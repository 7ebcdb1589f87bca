"""Shared fixtures: where the real data is, and how to execute a notebook.

Tests that need the real audio use the ``esc10_root`` / ``unlabeled_root``
fixtures (and carry the ``realdata`` marker).  Where the data is absent they
skip with a reason that says which setting to use; with ``ESC_REQUIRE_DATA=1``
(set by ``.ci/run``) an absent data folder is an error instead, so CI cannot
pass without having run them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from esc_lib import config

PROJECT_ROOT = config.PROJECT_ROOT


def _require(path: Path, what: str, variable: str) -> Path:
    if path.is_dir():
        return path
    message = (
        f"{what} not found at {path}; set {variable} (or ESC_DATA_ROOT to the folder that holds "
        f"esc10/ and unlabeled/, e.g. ../shared/data) to run this test"
    )
    if os.environ.get("ESC_REQUIRE_DATA") == "1":
        pytest.fail(f"ESC_REQUIRE_DATA=1 but {message}")
    pytest.skip(message)


@contextlib.contextmanager
def preserved_environ():
    """Put ``os.environ`` back as it was: the runner (``reproduce.main``) sets the data, source and
    ``PYTHONPATH`` variables for the kernels it starts, in this process's environment."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _environ_restored():
    """No test leaves environment variables behind for the next (a runner call would)."""
    with preserved_environ():
        yield


@pytest.fixture(scope="session")
def esc10_root() -> Path:
    """The real ESC-10 folder (ESC-50 layout), or skip."""
    return _require(config.esc10_dir(), "ESC-10", "ESC10_DIR")


@pytest.fixture(scope="session")
def unlabeled_root() -> Path:
    """The real unlabeled pool folder, or skip."""
    return _require(config.unlabeled_dir(), "the unlabeled pool", "ESC_UNLABELED_DIR")


@pytest.fixture()
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A fresh feature cache for one test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ESC_CACHE_DIR", str(cache))
    return cache


def execute_notebook(name: str, output_dir: Path, parameters: dict) -> Path:
    """Run ``notebooks/<name>`` with papermill and the project's kernel; return the output path.

    The kernel is the one the bootstrap registers (``esc-lib``); it inherits
    this process's environment, so path settings made with ``monkeypatch``
    reach the notebook.
    """
    import papermill

    notebook = PROJECT_ROOT / "notebooks" / name
    output = output_dir / name
    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters,
        kernel_name="esc-lib",
        cwd=str(notebook.parent),
        progress_bar=False,
    )
    return output


def synthetic_dataset(n_classes: int = 4, n_folds: int = 5, per_fold: int = 2, shape=(8, 12, 1), seed: int = 0,
                      root: Path | None = None):
    """A labelled dataset in ESC-50 layout and its features, made up: no audio needed.

    Each class has its own mean pattern plus noise, so a tiny classifier can
    learn something.  ``src_file`` groups two takes of one recording in one
    fold, as ESC's metadata does.  Returns ``(dataset, features)`` with
    features [n_clips, *shape] float32, aligned with ``dataset.meta``.
    """
    import numpy as np
    import pandas as pd

    from esc_lib.data import LabelledDataset

    rng = np.random.default_rng(seed)
    rows = []
    for fold in range(1, n_folds + 1):
        for label in range(n_classes):
            for take in range(per_fold):
                source = 1000 * fold + label
                rows.append({
                    "filename": f"{fold}-{source}-{'AB'[take % 2]}-{label}.wav", "fold": fold, "target": 10 * label,
                    "category": f"class_{label}", "src_file": source, "take": "AB"[take % 2], "label": label,
                })
    meta = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    root = Path(root or "/nonexistent/synthetic")
    meta["path"] = [str(root / "audio" / name) for name in meta["filename"]]
    patterns = rng.normal(size=(n_classes, *shape)).astype("float32")
    features = (patterns[meta["label"].to_numpy()] + 0.5 * rng.normal(size=(len(meta), *shape))).astype("float32")
    dataset = LabelledDataset(root=root, meta=meta, classes=[f"class_{k}" for k in range(n_classes)])
    return dataset, features


class SyntheticPool:
    """An unlabeled pool of random windows (``X``) with an empty skip report, as extract_pool returns."""

    def __init__(self, n: int = 20, shape=(8, 12, 1), seed: int = 1):
        import numpy as np

        from esc_lib.audio import SkipReport

        self.X = np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")
        self.report = SkipReport(n_used=n)
        self.files = [Path(f"unl-{i:04d}.wav") for i in range(n)]
        self.file_index = np.arange(n)


@pytest.fixture()
def synthetic():
    """``(dataset, features, pool)``: 4 classes x 5 folds x 2 clips of made-up 8x12 features and 20 pool windows."""
    dataset, features = synthetic_dataset()
    return dataset, features, SyntheticPool()


def kill_after(k: int):
    """A Keras callback standing in for a killed process: raises at the end of epoch ``k`` (after its checkpoint)."""
    import keras

    class KillAfter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == k:
                raise KeyboardInterrupt(f"killed after epoch {k}")

    return KillAfter()
