"""Shared fixtures: where the real data is, a synthetic stand-in for it, and how to execute a notebook.

Tests that check facts of the real audio (ESC-10's 400 clips, the seed code's
features on real clips, the paper classifier learning ESC-10) use the
``esc10_root`` / ``unlabeled_root`` fixtures and carry the ``realdata``
marker.  Where the data is absent they skip with a reason that says which
setting to use; with ``ESC_REQUIRE_DATA=1`` (set by ``.ci/run``) an absent data
folder is an error instead, so CI cannot pass without having run them.

Tests of the pipeline (the notebooks end to end, own recordings, bundles, the
runner) use ``esc10_or_synthetic``: the real folders when they are present (and,
with ``ESC_REQUIRE_DATA=1``, required as above), otherwise ``synthetic_esc10``,
a small made-up ESC-10 in the real layout (see :func:`write_synthetic_esc10`),
so they run without the data too.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
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


#: ESC-10's categories and their ESC-50 target ids, in label order (what load_esc10 gives the real folder).
ESC10_TARGETS = {
    "dog": 0, "rooster": 1, "rain": 10, "sea_waves": 11, "crackling_fire": 12,
    "crying_baby": 20, "sneezing": 21, "clock_tick": 38, "helicopter": 40, "chainsaw": 41,
}


@dataclass(frozen=True)
class DataFolders:
    """The labelled (ESC-50 layout) and unlabeled folders a pipeline test runs on.

    ``real`` says whether they are the real data or :func:`write_synthetic_esc10`'s.
    """

    esc10: Path
    unlabeled: Path
    real: bool

    def environment(self) -> dict[str, str]:
        """The path settings that point the runner and the notebook kernels at these folders."""
        return {"ESC10_DIR": str(self.esc10), "ESC_UNLABELED_DIR": str(self.unlabeled)}


def _class_sound(label: int, n_samples: int, rate: int, rng, detune: float = 1.0):
    """A tone of its own frequency (half an octave apart from 220 Hz), pulsed at its own rate, under a little noise."""
    import numpy as np

    t = np.arange(n_samples) / rate
    tone = np.sin(2 * np.pi * 220.0 * 2 ** (label / 2) * detune * t)
    pulse = 0.6 + 0.4 * np.sin(2 * np.pi * (0.5 + 0.7 * label) * t + rng.uniform(0, 2 * np.pi))
    return tone * pulse


def write_synthetic_esc10(root: Path, per_fold: int = 2, n_unlabeled: int = 24, seconds: float = 5.0,
                          rate: int = 44100, seed: int = 0) -> DataFolders:
    """Write a made-up ESC-10 and unlabeled pool under ``root``, as the real data is laid out.

    ``root/esc10`` is in ESC-50 layout: ``meta/esc50.csv`` (filename, fold,
    target, category, esc10, src_file, take) with ESC-10's 10 categories and
    their ESC-50 target ids, and ``audio/{fold}-{src_file}-A-{target}.ogg``,
    ``per_fold`` clips per class and fold, each of its own recording
    (``src_file``).  ``root/unlabeled`` holds ``unl-NNNN.ogg``.  Clips are
    ``seconds`` long, mono Ogg Vorbis at ``rate`` Hz, peak-normalised like the
    real clips.  A class is a tone of its own frequency and pulse rate plus
    noise, so a classifier trained on it has something to learn; an unlabeled
    clip mixes two classes' sounds.

    Returns
    -------
    folders : DataFolders [real=False]
    """
    import numpy as np
    import pandas as pd
    import soundfile

    rng = np.random.default_rng(seed)
    n_samples = int(round(seconds * rate))

    def write(path: Path, signal) -> None:
        signal = signal + 0.05 * rng.standard_normal(n_samples)
        signal = 0.9 * signal / np.abs(signal).max()
        soundfile.write(str(path), signal.astype(np.float32), rate, format="OGG", subtype="VORBIS")

    esc10, unlabeled = root / "esc10", root / "unlabeled"
    (esc10 / "audio").mkdir(parents=True)
    (esc10 / "meta").mkdir()
    unlabeled.mkdir()
    rows = []
    for fold in range(1, 6):
        for label, (category, target) in enumerate(ESC10_TARGETS.items()):
            for clip in range(per_fold):
                source = 100000 + 1000 * label + 10 * fold + clip
                filename = f"{fold}-{source}-A-{target}.ogg"
                write(esc10 / "audio" / filename, _class_sound(label, n_samples, rate, rng, rng.uniform(0.97, 1.03)))
                rows.append({"filename": filename, "fold": fold, "target": target, "category": category,
                             "esc10": True, "src_file": source, "take": "A"})
    pd.DataFrame(rows).sort_values("filename").to_csv(esc10 / "meta" / "esc50.csv", index=False)
    for index in range(n_unlabeled):
        first, second = rng.choice(len(ESC10_TARGETS), size=2, replace=False)
        mixed = _class_sound(first, n_samples, rate, rng) + 0.5 * _class_sound(second, n_samples, rate, rng)
        write(unlabeled / f"unl-{index:04d}.ogg", mixed)
    return DataFolders(esc10=esc10, unlabeled=unlabeled, real=False)


@pytest.fixture(scope="session")
def synthetic_esc10(tmp_path_factory) -> DataFolders:
    """A made-up ESC-10 (100 clips, 2 per class and fold) and pool (24 clips), written once per session."""
    return write_synthetic_esc10(tmp_path_factory.mktemp("synthetic-data"))


@pytest.fixture(scope="session")
def esc10_or_synthetic(request) -> DataFolders:
    """The real ESC-10 and unlabeled folders where present, else ``synthetic_esc10``.

    For tests of the pipeline, not of the data: they run either way.  With
    ``ESC_REQUIRE_DATA=1`` the real folders are required (an error if absent),
    so CI runs these tests on the real data.
    """
    esc10, unlabeled = config.esc10_dir(), config.unlabeled_dir()
    if (esc10.is_dir() and unlabeled.is_dir()) or os.environ.get("ESC_REQUIRE_DATA") == "1":
        return DataFolders(esc10=_require(esc10, "ESC-10", "ESC10_DIR"),
                           unlabeled=_require(unlabeled, "the unlabeled pool", "ESC_UNLABELED_DIR"), real=True)
    return request.getfixturevalue("synthetic_esc10")


def pytest_report_header(config):
    """Say up front which data the pipeline tests will use, and whether the real-data tests will run."""
    from esc_lib import config as paths

    esc10, unlabeled = paths.esc10_dir(), paths.unlabeled_dir()
    if esc10.is_dir() and unlabeled.is_dir():
        return f"data: real ({esc10}, {unlabeled})"
    return (f"data: synthetic for the pipeline tests; the realdata tests skip ({esc10} or {unlabeled} not found, "
            f"set ESC_DATA_ROOT)")


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

    from esc_lib.data.datasets import LabelledDataset

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


def make_metrics(shift: float = 0.04, seed: int = 0, decoders=("unpool",)):
    """Tidy per-fold metrics of a grid: b in {16, 32}, f in {32, 64}, both methods, 5 folds (stats and tables tests)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for decoder in decoders:
        for b in (16, 32):
            for f in (32, 64):
                base = 0.6 + 0.01 * (f // 32) + 0.005 * (b // 16)
                fold_effect = rng.normal(0, 0.03, 5)
                for method, delta in (("supervised", 0.0), ("pretrained", shift)):
                    for fold in range(1, 6):
                        noise = rng.normal(0, 0.01)
                        rows.append({
                            "config": f"bs{b}-f{f}-{decoder}-bn0", "batch_size": b, "filters": f,
                            "decoder": decoder, "batch_norm": False, "method": method, "fold": fold,
                            "accuracy": float(np.clip(base + fold_effect[fold - 1] + delta + noise, 0, 1)),
                            "n_test": 80,
                        })
    return pd.DataFrame(rows)


def make_budget_metrics():
    """Per-fold metrics of one configuration at 4, 8, 16 and all (0) labels per class, both methods, 5 folds."""
    import pandas as pd

    rows = []
    for budget, level in ((4, 0.4), (8, 0.5), (16, 0.6), (0, 0.7)):  # 0: every labelled clip
        for method, delta in (("supervised", 0.0), ("pretrained", 0.05)):
            for fold in range(1, 6):
                rows.append({"config": "bs32-f64-unpool-bn0", "method": method, "fold": fold,
                             "labels_per_class": budget, "accuracy": level + delta + 0.01 * fold})
    return pd.DataFrame(rows)


class SyntheticPool:
    """An unlabeled pool of random windows (``X``) with an empty skip report, as extract_pool returns."""

    def __init__(self, n: int = 20, shape=(8, 12, 1), seed: int = 1):
        import numpy as np

        from esc_lib.data.audio import SkipReport

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



def killed_and_resumed(run, tmp_path, monkeypatch, after: int = 2):
    """``(uninterrupted, resumed)``: ``run(folder)`` once through into ``tmp_path/a``, and into ``tmp_path/b``
    killed at the end of epoch ``after`` (:func:`kill_after` in every :func:`esc_lib.training.fit`) then run again."""
    import pytest

    from esc_lib import training

    uninterrupted = run(tmp_path / "a")
    real = training.fit
    monkeypatch.setattr(training, "fit", lambda *a, callbacks=(), **k: real(*a, callbacks=[*callbacks, kill_after(after)], **k))
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b")
    monkeypatch.setattr(training, "fit", real)
    return uninterrupted, run(tmp_path / "b")


def two_classes(n: int = 64, seed: int = 0, shape=(8, 12, 1)):
    """``(X, y)``: ``n`` made-up feature maps of two classes told apart by the sign of their mean (shifted by +-1)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, *shape)).astype("float32")
    y = (X.mean(axis=(1, 2, 3)) > 0).astype("int64")
    X += (2 * y - 1)[:, None, None, None].astype("float32")
    return X, y


def train_consistency(method: str, train, validation, run_dir, settings, unlabeled, **kwargs):
    """A classifier of a method built on FixMatch's consistency (``fixmatch``, ``freematch``, ``mixmatch``) through the
    one training path, as the method trains it: its consistency, its stage, its schedule's epochs."""
    from esc_lib import methods, training

    consistency = methods.get(method).consistency(settings, unlabeled)
    return training.train_classifier(train, validation, 2, run_dir, settings, stage=method, consistency=consistency,
                                     max_epochs=consistency.schedule(len(train[0]))[0], **kwargs)
