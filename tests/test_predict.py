"""Tests for esc_lib.predict and the command line (python -m esc_lib predict).

One module-scoped fixture writes a small labelled dataset of synthetic audio
(a tone per class plus noise, 5 s clips at 8 kHz, ESC-50 file names and folds)
with soundfile, extracts its log-mel features, and trains a tiny classifier
for one epoch through :class:`esc_lib.experiment.Experiment` (the project's
training path), so the bundles carry a fitted Standardizer, the dataset's
class names and a finished training run to export.  Bad-bundle checks that
need no model run without TensorFlow.  Two tests train on ESC-10 at the
paper's front end (44.1 kHz Ogg clips, 28x36 log-mels) through
``dataset="esc10"``: on the real ESC-10 where present (required in CI), else
on conftest's synthetic ESC-10 in the same layout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile

from esc_lib import features, predict
from esc_lib.data import audio
from esc_lib.__main__ import main
from esc_lib.predict import BUNDLE_FILE, BUNDLE_VERSION, MODEL_FILE, BundleError, load_bundle

ENCODER = "(4)5c-2p-(4)3c-2p"
HEAD = "8fc"
#: The synthetic dataset: one tone (Hz) per class.
TONES = {"hum": 150.0, "whistle": 900.0, "beep": 1800.0, "chirp": 3000.0}
CLASSES = list(TONES)
#: A front end that keeps the synthetic audio cheap: 8 kHz, 8 mel bands, 12 frames per 5 s window.
FRONT_END = dict(sample_rate=8000, n_mels=8, n_fft=1024, hop_length=3500)
ESC10_CLASSES = ["dog", "rooster", "rain", "sea_waves", "crackling_fire",
                 "crying_baby", "sneezing", "clock_tick", "helicopter", "chainsaw"]


def _write_tone(path: Path, seconds: float, rate: int, channels: int, seed: int = 0) -> Path:
    """A noisy tone; its length, rate and channel count are what the tests vary."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    mono = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    samples = np.stack([mono * (0.5 + 0.5 * c) for c in range(channels)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples.astype(np.float32), rate)
    return path


def _fake_manifest(folder: Path, **changes) -> Path:
    """A valid bundle.json without a model (for the checks that come before the model)."""
    rng = np.random.default_rng(0)
    standardizer = features.Standardizer().fit(rng.normal(size=(4, *features.PAPER.shape)))
    payload = {
        "format": "esc_lib.bundle",
        "format_version": BUNDLE_VERSION,
        "feature_version": features.FEATURE_VERSION,
        "feature_params": features.PAPER.to_dict(),
        "standardizer": standardizer.to_dict(),
        "classes": list(ESC10_CLASSES),
        "windows": {"last": "pad", "min_last_seconds": 1.0, "aggregate": "mean"},
        "info": {},
    }
    payload.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BUNDLE_FILE).write_text(json.dumps(payload))
    return folder


# ---------------------------------------------------------------------------
# Bad bundle paths that fail before any model is loaded (no TensorFlow needed)


def _missing(tmp: Path) -> Path:
    return tmp / "nowhere"


def _a_file(tmp: Path) -> Path:
    path = tmp / "model.keras"
    path.write_bytes(b"not a folder")
    return path


def _no_manifest(tmp: Path) -> Path:
    folder = tmp / "empty-bundle"
    folder.mkdir()
    (folder / MODEL_FILE).write_bytes(b"")
    return folder


def _corrupt_json(tmp: Path) -> Path:
    folder = tmp / "corrupt"
    folder.mkdir()
    (folder / BUNDLE_FILE).write_text('{"format": "esc_lib.bundle", "format_version": 1, ')
    return folder


def _not_a_bundle(tmp: Path) -> Path:
    folder = tmp / "other"
    folder.mkdir()
    (folder / BUNDLE_FILE).write_text(json.dumps({"name": "something else"}))
    return folder


def _newer_version(tmp: Path) -> Path:
    return _fake_manifest(tmp / "newer", format_version=BUNDLE_VERSION + 1)


def _bad_version(tmp: Path) -> Path:
    return _fake_manifest(tmp / "bad-version", format_version="one")


def _incomplete(tmp: Path) -> Path:
    folder = _fake_manifest(tmp / "incomplete")
    payload = json.loads((folder / BUNDLE_FILE).read_text())
    del payload["classes"], payload["standardizer"]
    (folder / BUNDLE_FILE).write_text(json.dumps(payload))
    return folder


def _bad_feature_params(tmp: Path) -> Path:
    return _fake_manifest(tmp / "bad-params", feature_params={**features.PAPER.to_dict(), "n_mels": -3})


def _other_feature_version(tmp: Path) -> Path:
    return _fake_manifest(tmp / "old-features", feature_version=features.FEATURE_VERSION + 100)


def _duplicate_classes(tmp: Path) -> Path:
    return _fake_manifest(tmp / "duplicates", classes=["dog", "dog", "rain"])


def _missing_model(tmp: Path) -> Path:
    return _fake_manifest(tmp / "no-model")


@pytest.mark.parametrize(
    "make, expected",
    [
        (_missing, "no such bundle folder"),
        (_a_file, "is a file, not a bundle folder (give the folder"),
        (_no_manifest, "has no bundle.json"),
        (_corrupt_json, "corrupt, not valid JSON"),
        (_not_a_bundle, "not an esc_lib bundle"),
        (_newer_version, "upgrade esc_lib"),
        (_bad_version, "unsupported bundle format version 'one'"),
        (_incomplete, "lacks standardizer, classes"),
        (_bad_feature_params, "bad feature_params"),
        (_other_feature_version, "feature code version"),
        (_duplicate_classes, "class names must be unique"),
        (_missing_model, "model file model.keras is missing"),
    ],
)
def test_bad_bundle_paths_raise_a_clear_bundle_error(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(BundleError) as caught:
        load_bundle(path)
    message = str(caught.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


# ---------------------------------------------------------------------------
# Command-line arguments (no model needed)


def test_help_lists_the_predict_command(capsys):
    assert main(["--help"]) == 0
    assert "predict" in capsys.readouterr().out
    assert main(["predict", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--top-k" in out and "--csv" in out


@pytest.mark.parametrize(
    "argv",
    [[], ["predict"], ["predict", "bundle-only"], ["predict", "b", "x.wav", "--top-k", "0"],
     ["predict", "b", "x.wav", "--top-k", "many"], ["no-such-command"]],
)
def test_bad_arguments_exit_2(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_bad_bundle_exits_2_with_one_line(tmp_path, capsys):
    code = main(["predict", str(tmp_path / "missing-bundle"), str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "no such bundle folder" in lines[0] and "missing-bundle" in lines[0]


# ---------------------------------------------------------------------------
# A tiny classifier trained on synthetic audio


def _write_dataset(root: Path, per_fold: int = 2):
    """Clips of four tone classes in five folds, written as 5 s 8 kHz .wav files in ESC-50 layout."""
    from esc_lib.data.datasets import LabelledDataset

    rng = np.random.default_rng(0)
    rate, t = 8000, np.arange(5 * 8000) / 8000
    rows = []
    for fold in range(1, 6):
        for label, (name, tone) in enumerate(TONES.items()):
            for take in range(per_fold):
                source = 1000 * fold + 10 * label + take
                filename = f"{fold}-{source}-A-{label}.wav"
                wave = 0.3 * np.sin(2 * np.pi * tone * (1 + 0.02 * take) * t) * np.hanning(len(t)) ** 0.2
                wave += 0.02 * rng.standard_normal(len(t))
                path = root / "audio" / filename
                path.parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(path, wave.astype(np.float32), rate)
                rows.append({"filename": filename, "fold": fold, "target": label, "category": name,
                             "src_file": source, "take": "A", "label": label, "path": str(path)})
    return LabelledDataset(root=root, meta=pd.DataFrame(rows), classes=list(CLASSES))


def _train(experiment):
    """Train the supervised classifier of fold 1 and record its test accuracy (metrics.csv)."""
    outcome = experiment.train_classifier(1, "supervised")
    experiment.cross_validate()  # the finished run is loaded, and metrics.csv written
    return outcome


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An Experiment on synthetic audio, its supervised classifier of fold 1 (1 epoch), and its bundle."""
    from esc_lib import predict
    from esc_lib.experiment import Experiment, Settings

    root = tmp_path_factory.mktemp("predict")
    dataset = _write_dataset(root / "labelled")
    settings = Settings(
        **FRONT_END, unlabeled="none", pretrain_on_train_folds=False, methods=["supervised"],
        encoder=ENCODER, head=HEAD, batch_size=8, max_epochs=1, folds=[1], run_dir=str(root / "run"),
    )
    params = Experiment(settings, verbose=0).feature_params
    X = features.extract_clips(dataset.paths, params, cache=False, progress=False)
    experiment = Experiment(settings, dataset=dataset, features=X, verbose=0)
    model = _train(experiment)["model"]
    standardizer = experiment.standardizer(1)
    # One test clip of each class.
    meta = experiment.dataset.meta.iloc[experiment.split(1).test]
    clips = [Path(p) for p in meta.drop_duplicates("label").sort_values("label")["path"]]
    bundle = predict.Bundle(model, experiment.feature_params, standardizer, list(experiment.dataset.classes),
                            info={"test_fold": 1})
    saved = predict.save_bundle(root / "bundle", model, experiment.feature_params, standardizer,
                                experiment.dataset.classes, info={"test_fold": 1, "note": np.float32(0.5)})
    yield SimpleNamespace(experiment=experiment, model=model, standardizer=standardizer, bundle=bundle,
                          saved=saved, clips=clips, root=root, classes=CLASSES)


@pytest.mark.slow
def test_predict_clips_shape_classes_and_probabilities(trained):
    bundle = trained.bundle
    assert bundle.classes == CLASSES == list(trained.experiment.dataset.classes)
    table, skipped = bundle.predict_files(trained.clips, top_k=3)
    assert list(table.columns) == ["file", "n_windows", "top1_class", "top1_probability", "top2_class",
                                   "top2_probability", "top3_class", "top3_probability", "note"]
    assert (table["note"] == "").all()
    assert list(table["file"]) == [str(p) for p in trained.clips]
    assert (table["n_windows"] == 1).all()
    assert skipped.n_used == 4 and skipped.n_skipped == 0
    for rank in (1, 2, 3):
        assert table[f"top{rank}_class"].isin(CLASSES).all()
    probabilities = table[["top1_probability", "top2_probability", "top3_probability"]].to_numpy()
    assert (np.diff(probabilities, axis=1) <= 0).all()
    for path, row in zip(trained.clips, table.itertuples()):
        full = bundle.predict_file(path)
        assert full.shape == (4,)
        assert np.isclose(full.sum(), 1.0, atol=1e-5) and (full >= 0).all()
        assert row.top1_class == CLASSES[int(full.argmax())]
        assert np.isclose(row.top1_probability, full.max(), atol=1e-6)


@pytest.mark.slow
def test_bundle_inputs_equal_the_training_inputs(trained):
    """A 5 s clip goes through the same features and statistics as in training, and the same model output."""
    bundle, experiment = trained.bundle, trained.experiment
    row = int(np.flatnonzero(experiment.dataset.meta["path"] == str(trained.clips[0]))[0])
    X_bundle = bundle.features(bundle.file_windows(trained.clips[0]))
    X_train = trained.standardizer.transform(experiment.features[row:row + 1])
    np.testing.assert_allclose(X_bundle, X_train, atol=1e-5)
    # ... so the bundle predicts that clip as the experiment scored it.
    from esc_lib import training

    np.testing.assert_allclose(bundle.predict_file(trained.clips[0]), training.predict_proba(trained.model, X_train)[0],
                               atol=1e-5)


@pytest.mark.slow
def test_saved_and_loaded_bundle_predicts_identically(trained):
    loaded = load_bundle(trained.saved)
    assert loaded.path == trained.saved
    assert loaded.classes == trained.bundle.classes
    assert loaded.feature_params == trained.bundle.feature_params
    np.testing.assert_array_equal(loaded.standardizer.mean_, trained.standardizer.mean_)
    np.testing.assert_array_equal(loaded.standardizer.std_, trained.standardizer.std_)
    assert loaded.info["test_fold"] == 1 and loaded.info["note"] == 0.5
    assert loaded.info["esc_lib_version"]
    before, _ = trained.bundle.predict_files(trained.clips, top_k=10)
    after, _ = loaded.predict_files(trained.clips, top_k=10)
    pd.testing.assert_frame_equal(before, after, check_exact=False, atol=1e-6, rtol=0)
    for path in trained.clips:
        np.testing.assert_allclose(loaded.predict_file(path), trained.bundle.predict_file(path), atol=1e-6, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "seconds, rate, channels, n_windows",
    [
        (12.0, 48000, 2, 3),   # 5 + 5 + 2 s padded
        (10.5, 22050, 1, 2),   # the 0.5 s tail is shorter than min_last_seconds: dropped
        (6.0, 44100, 1, 2),    # a 1 s tail is kept and padded
        (0.5, 16000, 1, 1),    # shorter than one window: padded to one
    ],
)
def test_files_of_any_length_rate_and_channels(trained, tmp_path, seconds, rate, channels, n_windows):
    bundle = trained.bundle
    path = _write_tone(tmp_path / f"tone-{seconds}s-{rate}Hz-{channels}ch.wav", seconds, rate, channels)
    windows = bundle.file_windows(path)
    assert windows.shape == (n_windows, bundle.feature_params.n_samples)
    per_window = bundle.predict_windows(windows)
    assert per_window.shape == (n_windows, 4)
    np.testing.assert_allclose(per_window.sum(axis=1), 1.0, atol=1e-5)
    probabilities = bundle.predict_file(path)
    np.testing.assert_allclose(probabilities, per_window.mean(axis=0), atol=1e-7)
    table, skipped = bundle.predict_files(path, top_k=2)
    assert table["n_windows"].tolist() == [n_windows] and skipped.n_skipped == 0


@pytest.mark.slow
def test_bad_files_are_reported_and_do_not_stop_the_others(trained, tmp_path):
    folder = tmp_path / "mixed"
    good = _write_tone(folder / "a-good.wav", 7.0, 32000, 2)
    (folder / "b-empty.wav").write_bytes(b"")
    (folder / "c-text.ogg").write_text("this is not audio\n")
    (folder / "d-too-short.wav").write_bytes(b"RIFF")
    (tmp_path / "no-audio-here").mkdir()
    (tmp_path / "no-audio-here" / "notes.txt").write_text("hello")
    inputs = [folder, trained.clips[0], tmp_path / "missing.wav", tmp_path / "no-audio-here"]
    table, skipped = trained.bundle.predict_files(inputs, top_k=2)
    assert table["file"].tolist() == [str(good), str(trained.clips[0])]
    assert table["n_windows"].tolist() == [2, 1]
    reasons = dict(skipped.skipped)
    assert set(reasons) == {str(folder / "b-empty.wav"), str(folder / "c-text.ogg"), str(folder / "d-too-short.wav"),
                            str(tmp_path / "missing.wav"), str(tmp_path / "no-audio-here")}
    assert reasons[str(folder / "c-text.ogg")].startswith("not a recognised audio file")  # not "does not exist"
    assert not any(reason.startswith(str(tmp_path)) for reason in reasons.values())  # the path is listed once
    assert reasons[str(tmp_path / "missing.wav")] == "no such file or folder"
    assert "no audio files" in reasons[str(tmp_path / "no-audio-here")]
    assert skipped.n_used == 2 and skipped.n_skipped == 5
    with pytest.raises(audio.AudioError, match="c-text.ogg"):
        trained.bundle.predict_file(folder / "c-text.ogg")


@pytest.mark.slow
def test_top_k_is_checked_and_capped(trained):
    table, _ = trained.bundle.predict_files(trained.clips[:1], top_k=25)
    assert sorted(table.loc[0, [f"top{r}_class" for r in range(1, 5)]]) == sorted(CLASSES)
    assert "top5_class" not in table.columns
    assert np.isclose(table.loc[0, [f"top{r}_probability" for r in range(1, 5)]].sum(), 1.0, atol=1e-5)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="top_k"):
            trained.bundle.predict_files(trained.clips[:1], top_k=bad)
    with pytest.raises(ValueError, match="windows must have shape"):
        trained.bundle.predict_windows(np.zeros((2, 100), dtype=np.float32))


@pytest.mark.slow
def test_save_bundle_refuses_to_overwrite_and_checks_its_parts(trained, tmp_path):
    from esc_lib.predict import save_bundle

    b = trained.bundle
    parts = (b.model, b.feature_params, b.standardizer, b.classes)
    target = save_bundle(tmp_path / "b", *parts)
    assert sorted(p.name for p in target.iterdir()) == [BUNDLE_FILE, MODEL_FILE]
    with pytest.raises(BundleError, match="already exists; choose another path or pass overwrite=True"):
        save_bundle(target, *parts)
    save_bundle(target, *parts, info={"second": True}, overwrite=True)
    assert json.loads((target / BUNDLE_FILE).read_text())["info"] == {"second": True}
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(BundleError, match="is not a bundle folder; refusing"):
        save_bundle(other, *parts, overwrite=True)
    assert (other / "thesis.tex").read_text() == "keep me"
    with pytest.raises(BundleError, match="outputs .* 3 classes"):
        save_bundle(tmp_path / "c", b.model, b.feature_params, b.standardizer, b.classes[:3])
    with pytest.raises(BundleError, match="model expects inputs of shape"):
        save_bundle(tmp_path / "d", b.model, features.FeatureParams(n_mels=40), b.standardizer, b.classes)
    with pytest.raises(BundleError, match="JSON-serialisable"):
        save_bundle(tmp_path / "e", *parts, info={"model": b.model})
    # Nothing half-written is left beside the bundles.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "precious"]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["class_count", "model_garbage"])
def test_damaged_bundles_raise_bundle_error(trained, tmp_path, damage):
    folder = Path(shutil.copytree(trained.saved, tmp_path / "copy"))
    if damage == "class_count":
        payload = json.loads((folder / BUNDLE_FILE).read_text())
        payload["classes"] = payload["classes"][:3]
        payload.pop("checksum")  # without it (a hand-made bundle) the model itself is checked against the classes
        (folder / BUNDLE_FILE).write_text(json.dumps(payload))
        expected = "outputs (4,) values per input but the bundle names 3 classes"
    else:
        (folder / MODEL_FILE).write_bytes(b"PK\x03\x04 truncated zip")
        expected = "cannot load the model"
    with pytest.raises(BundleError, match=expected.replace("(", r"\(").replace(")", r"\)")) as caught:
        load_bundle(folder)
    assert str(folder) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow
def test_export_from_experiment(trained):
    from esc_lib.predict import export_from_experiment

    experiment = trained.experiment
    path = export_from_experiment(experiment, 1, method="supervised")
    assert path == experiment.run_dir / "bundles" / f"{experiment.settings.config_id}-supervised-fold1"
    loaded = load_bundle(path)
    info = loaded.info
    assert info["method"] == "supervised" and info["test_fold"] == 1 and info["labels_per_class"] == 0
    assert info["epochs"] == 1 and info["settings"]["encoder"] == ENCODER
    assert info["settings"] == json.loads(json.dumps(experiment.settings.model_dump()))
    assert info["training_runs"] == [str(experiment.classifier_dir("supervised", 1))]
    recorded = pd.read_csv(experiment.results_dir() / "metrics.csv")
    assert info["test_accuracy"] == pytest.approx(float(recorded["accuracy"].iloc[0]))
    np.testing.assert_array_equal(loaded.standardizer.mean_, trained.standardizer.mean_)
    np.testing.assert_allclose(loaded.predict_file(trained.clips[1]), trained.bundle.predict_file(trained.clips[1]),
                               atol=1e-6, rtol=0)
    with pytest.raises(BundleError, match="already exists"):
        export_from_experiment(experiment, 1, method="supervised")
    with pytest.raises(BundleError, match=r"no trained pretrained classifier for test fold 1 .*train_classifier\(1, 'pretrained'\)"):
        export_from_experiment(experiment, 1, method="pretrained")
    with pytest.raises(BundleError, match=r"fold1-lpc2: no trained supervised classifier"):
        export_from_experiment(experiment, 1, method="supervised", labels_per_class=2)
    for bad in (-1, 1.5, True, "all"):
        with pytest.raises(ValueError, match="labels_per_class"):
            export_from_experiment(experiment, 1, method="supervised", labels_per_class=bad)


@pytest.mark.slow
def test_export_a_label_budget_run(trained):
    from esc_lib.predict import export_from_experiment

    experiment = trained.experiment
    experiment.cross_validate(labels_per_class=1)
    path = export_from_experiment(experiment, 1, method="supervised", labels_per_class=1)
    assert path.name == f"{experiment.settings.config_id}-supervised-fold1-lpc1"
    info = load_bundle(path).info
    assert info["labels_per_class"] == 1 and info["training_run"].endswith("fold1-lpc1")
    recorded = pd.read_csv(experiment.results_dir() / "metrics.csv").set_index("labels_per_class")
    assert info["test_accuracy"] == pytest.approx(float(recorded.loc[1, "accuracy"]))


@pytest.mark.parametrize(
    "rows, budget, expected",
    [
        ([("supervised", 1, 0, "test", 0.5)], 0, 0.5),
        ([("supervised", 1, "all", None, 0.25)], 0, 0.25),  # a metrics.csv written before budgets were integers
        ([("supervised", 1, 0, "test", 0.5), ("supervised", 1, 4, "test", 0.75)], 4, 0.75),
        ([("supervised", 1, 0, "validation", 0.5)], 0, None),  # a search's score is no test accuracy
        ([("pretrained", 1, 0, "test", 0.5), ("supervised", 2, 0, "test", 0.5)], 0, None),
    ],
)
def test_test_accuracy_reads_integer_budgets(tmp_path, rows, budget, expected):
    from esc_lib.predict import _test_accuracy

    frame = pd.DataFrame(rows, columns=["method", "fold", "labels_per_class", "scored_on", "accuracy"])
    if frame["scored_on"].isna().all():
        frame = frame.drop(columns="scored_on")
    frame.to_csv(tmp_path / "metrics.csv", index=False)
    experiment = SimpleNamespace(results_dir=lambda: tmp_path)
    assert _test_accuracy(experiment, "supervised", 1, budget) == expected
    assert _test_accuracy(SimpleNamespace(results_dir=lambda: tmp_path / "none"), "supervised", 1, 0) is None


@pytest.mark.slow
def test_cli_predict_prints_and_writes_csv(trained, tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    for path in trained.clips[:2]:
        shutil.copy(path, folder / path.name)
    _write_tone(folder / "long-stereo.wav", 12.0, 48000, 2)
    (folder / "broken.wav").write_text("not audio")
    out = tmp_path / "results" / "out.csv"
    completed = subprocess.run(
        [sys.executable, "-m", "esc_lib", "predict", str(trained.saved), str(folder), "--top-k", "2", "--csv", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["file", "n_windows", "top1_class", "top1_probability", "top2_class", "top2_probability", "note"]
    assert sorted(Path(f).name for f in table["file"]) == sorted([p.name for p in trained.clips[:2]] + ["long-stereo.wav"])
    assert table.set_index(table["file"].map(lambda f: Path(f).name)).loc["long-stereo.wav", "n_windows"] == 3
    for row in table.itertuples():
        assert row.file in completed.stdout
        assert row.top1_class in completed.stdout and row.top2_class in completed.stdout
        assert f"{row.top1_probability:.3f}" in completed.stdout
    assert "broken.wav" in completed.stderr and "1 skipped" in completed.stderr
    assert not [p for p in out.parent.iterdir() if p.name != "out.csv"]


@pytest.mark.slow
def test_cli_in_process_exit_codes(trained, tmp_path, capsys):
    (tmp_path / "broken.wav").write_text("not audio")
    assert main(["predict", str(trained.saved), str(tmp_path / "broken.wav"), "--csv", str(tmp_path / "x.csv")]) == 1
    captured = capsys.readouterr()
    assert "broken.wav" in captured.err and "no file could be predicted" in captured.err
    assert not (tmp_path / "x.csv").exists()
    assert main(["predict", str(trained.saved), str(trained.clips[0]), "--top-k", "1"]) == 0
    captured = capsys.readouterr()
    assert "1. " in captured.out and "2. " not in captured.out


# ---------------------------------------------------------------------------
# ESC-10 clips (real, or the synthetic stand-in): their decoding and the paper's features


@pytest.fixture(scope="module")
def esc10_trained(esc10_or_synthetic, tmp_path_factory):
    """A classifier trained 1 epoch on a miniature of ESC-10 (1 clip per class and fold), and a bundle of it."""
    from esc_lib import predict
    from esc_lib.experiment import Experiment, Settings

    root = tmp_path_factory.mktemp("predict-esc10")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ESC_CACHE_DIR", str(root / "cache"))
        patch.setenv("ESC10_DIR", str(esc10_or_synthetic.esc10))
        settings = Settings(
            dataset="esc10", unlabeled="none", pretrain_on_train_folds=False, methods=["supervised"],
            clips_per_class=1, encoder=ENCODER, head=HEAD, max_epochs=1, folds=[1], run_dir=str(root / "run"),
        )
        experiment = Experiment(settings, verbose=0)
        model = experiment.train_classifier(1, "supervised")["model"]
        standardizer = experiment.standardizer(1)
        meta = experiment.dataset.meta.iloc[experiment.split(1).test]
        clips = [Path(p) for p in meta.drop_duplicates("label")["path"].head(4)]
        bundle = predict.Bundle(model, experiment.feature_params, standardizer, list(experiment.dataset.classes))
        yield SimpleNamespace(experiment=experiment, standardizer=standardizer, bundle=bundle, clips=clips)


@pytest.mark.slow
def test_predict_esc10_clips(esc10_trained):
    bundle = esc10_trained.bundle
    assert bundle.classes == ESC10_CLASSES == list(esc10_trained.experiment.dataset.classes)
    assert bundle.feature_params.shape == (28, 36, 1)
    table, skipped = bundle.predict_files(esc10_trained.clips, top_k=3)
    assert list(table["file"]) == [str(p) for p in esc10_trained.clips]
    assert (table["n_windows"] == 1).all() and skipped.n_used == 4 and skipped.n_skipped == 0
    assert table["top1_class"].isin(ESC10_CLASSES).all()
    for path, row in zip(esc10_trained.clips, table.itertuples()):
        full = bundle.predict_file(path)
        assert full.shape == (10,) and np.isclose(full.sum(), 1.0, atol=1e-5)
        assert row.top1_class == ESC10_CLASSES[int(full.argmax())]


@pytest.mark.slow
def test_bundle_inputs_equal_the_training_inputs_on_esc10_clips(esc10_trained):
    """A 5 s ESC-10 Ogg clip goes through the same decoding, features and statistics as in training."""
    bundle = esc10_trained.bundle
    X_bundle = bundle.features(bundle.file_windows(esc10_trained.clips[0]))
    X_train = esc10_trained.standardizer.transform(
        features.extract_clips(esc10_trained.clips[:1], esc10_trained.experiment.feature_params,
                               cache=False, progress=False)
    )
    np.testing.assert_allclose(X_bundle, X_train, atol=1e-5)


def test_a_bundle_whose_feature_parameters_were_edited_is_refused(tmp_path):
    """Editing n_fft in bundle.json (12288 -> 2048) made it load and predict other probabilities; now refused."""
    import json

    import keras

    from esc_lib import predict
    from esc_lib.features import PAPER, Standardizer

    model = keras.Sequential([keras.Input(PAPER.shape), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    standardizer = Standardizer().fit(np.random.default_rng(0).normal(size=(4, *PAPER.shape)).astype("float32"))
    path = predict.save_bundle(tmp_path / "bundle", model, PAPER, standardizer, ["a", "b"])
    assert predict.load_bundle(path).classes == ["a", "b"]
    manifest = json.loads((path / "bundle.json").read_text())
    manifest["feature_params"]["n_fft"] = 2048
    (path / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(predict.BundleError, match="not the ones the model was exported with"):
        predict.load_bundle(path)


@pytest.mark.slow
def test_a_silent_file_is_predicted_with_a_note_and_a_warning(trained, tmp_path):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(44100 * 5, dtype=np.float32), 44100)
    table, skipped = trained.bundle.predict_files([silent, trained.clips[0]])
    assert table["note"].tolist() == [predict.SILENT_NOTE, ""] and skipped.n_skipped == 0
    completed = subprocess.run([sys.executable, "-m", "esc_lib", "predict", str(trained.saved), str(silent)],
                               capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "warning: 1 file(s) are silent" in completed.stderr and "[silent: every sample is zero" in completed.stdout


@pytest.mark.slow
def test_a_file_shorter_than_min_clip_seconds_gets_a_note_and_a_warning(trained, tmp_path):
    """One sample was padded to a 5 s window and given a class with no word."""
    one_sample = tmp_path / "one-sample.wav"
    rate = trained.bundle.feature_params.sr  # 8 kHz: one sample is 0.000125 s
    soundfile.write(one_sample, np.array([0.5], dtype=np.float32), rate)
    with pytest.warns(UserWarning, match=r"1 file\(s\) shorter than min_clip_seconds \(0.1 s\) were classified from "
                                         r"mostly padding, e.g. .*one-sample.wav"):
        table, skipped = trained.bundle.predict_files([one_sample, trained.clips[0]])
    assert skipped.n_skipped == 0 and table["n_windows"].tolist() == [1, 1]
    note = table["note"].iloc[0]
    assert note.startswith(predict.SHORT_NOTE) and "0.000125 s of audio, under min_clip_seconds (0.1 s)" in note
    assert table["note"].iloc[1] == ""
    with pytest.warns(UserWarning, match="one-sample.wav: short: 0.000125 s of audio"):
        trained.bundle.predict_file(one_sample)
    table, _ = trained.bundle.predict_files([one_sample], min_clip_seconds=0.0)  # the setting lowered: no note
    assert table["note"].tolist() == [""]
    with pytest.raises(ValueError, match="min_clip_seconds must be a number of seconds >= 0"):
        trained.bundle.predict_files([one_sample], min_clip_seconds=-1)


@pytest.mark.slow
def test_a_truncated_ogg_is_skipped_with_the_reason_not_predicted_as_a_short_clip(trained, tmp_path):
    rng = np.random.default_rng(0)
    whole = tmp_path / "whole.ogg"
    soundfile.write(whole, (0.3 * rng.standard_normal(5 * 44100)).astype(np.float32), 44100, format="OGG")
    data = whole.read_bytes()
    half = tmp_path / "half.ogg"
    half.write_bytes(data[: len(data) // 2])
    table, skipped = trained.bundle.predict_files([whole, half])
    assert table["file"].tolist() == [str(whole)]
    assert [(Path(p).name, r.split(":")[0]) for p, r in skipped.skipped] == [("half.ogg", "truncated")]


@pytest.mark.slow
def test_a_file_named_twice_or_hard_linked_is_predicted_once(trained, tmp_path):
    import os

    folder = tmp_path / "in"
    a = _write_tone(folder / "a.wav", 5.0, 8000, 1)
    b = _write_tone(folder / "b.wav", 5.0, 8000, 1, seed=1)
    (folder / "symbolic.wav").symlink_to(a)
    os.link(a, folder / "z-hard.wav")
    table, skipped = trained.bundle.predict_files([a, folder, tmp_path / "in" / "z-hard.wav"])
    assert table["file"].tolist() == [str(a), str(b)] and skipped.n_used == 2 and skipped.n_skipped == 0
