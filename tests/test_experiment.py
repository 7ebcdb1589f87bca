"""The cross-validation experiment (esc_lib.experiment): what each step may see, how runs are
named, and the classifier step with the strong preset's pieces.

Every test hands :class:`Experiment` a synthetic dataset (4 classes x 5 folds x
2 clips of made-up 8x12 features, ``tests/conftest.py``) and a synthetic pool:
no audio is read.  The settings' front end (8 kHz, 8 mel bands, hop 3500) gives
8x12 features too, so a bundle exported from these runs is consistent.  The
classifier-step tests train a tiny encoder for a few epochs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import SyntheticPool, synthetic_dataset
from esc_lib import features, training
from esc_lib.experiment import Experiment, Settings
from esc_lib.settings import SettingsError

#: Tiny settings whose front end gives the synthetic features' 8x12x1 shape.
TINY = dict(
    sample_rate=8000, n_mels=8, n_fft=1024, hop_length=3500,
    encoder="(4)3c-2p", head="gap-fc", batch_size=8, max_epochs=2, patience=5,
    cae_batch_size=8, cae_max_epochs=1, folds=[1],
)


def _settings(tmp_path, **changes) -> Settings:
    return Settings(**{**TINY, "run_dir": str(tmp_path / "run"), **changes})


def _experiment(synthetic, settings) -> Experiment:
    dataset, X, pool = synthetic
    return Experiment(settings, dataset=dataset, features=X, pool=pool, verbose=0)


class _Spy:
    """Wraps a function of esc_lib.training, recording each call's arguments and still calling it."""

    def __init__(self, monkeypatch, name):
        self.calls = []
        real = getattr(training, name)

        def spy(*args, **kwargs):
            self.calls.append((args, kwargs))
            return real(*args, **kwargs)

        monkeypatch.setattr(training, name, spy)


def _rows_of(X, standardised, scaler):
    """The row index in ``X`` of each row of ``standardised`` (= ``scaler.transform(X[rows])``)."""
    reference = scaler.transform(X).reshape(len(X), -1)
    rows = []
    for row in np.asarray(standardised).reshape(len(standardised), -1):
        match = np.flatnonzero(np.all(np.isclose(reference, row, atol=1e-6), axis=1))
        assert len(match) == 1
        rows.append(int(match[0]))
    return np.array(rows)


def test_synthetic_settings_give_the_synthetic_feature_shape(synthetic, tmp_path):
    experiment = _experiment(synthetic, _settings(tmp_path))
    assert experiment.feature_params.shape == experiment.features.shape[1:] == (8, 12, 1)


# ---------------------------------------------------------------------------
# Protocol: what each step sees


@pytest.mark.parametrize("test_fold", [1, 3, 5])
def test_split_is_disjoint_and_validation_is_the_next_fold(synthetic, tmp_path, test_fold):
    experiment = _experiment(synthetic, _settings(tmp_path))
    split = experiment.split(test_fold)
    folds = experiment.dataset.folds
    train, validation, test = set(split.train), set(split.validation), set(split.test)
    assert not (train & validation or train & test or validation & test)
    assert len(train | validation | test) == len(folds)
    assert set(folds[split.test]) == {test_fold}
    assert set(folds[split.validation]) == {test_fold % 5 + 1} and split.validation_fold == test_fold % 5 + 1
    assert len(split.test) == len(split.validation) == 8 and len(split.train) == 24


def test_pretraining_never_sees_the_test_fold(synthetic, tmp_path):
    experiment = _experiment(synthetic, _settings(tmp_path))
    data = experiment.pretraining_data(2)
    test_features = experiment.features[experiment.split(2).test]
    assert len(data) == len(experiment.pool.X) + int((experiment.dataset.folds != 2).sum())
    for clip in test_features:
        assert not np.any(np.all(data == clip, axis=(1, 2, 3)))
    assert experiment.cae_dir(2).name == "fold2"
    # Without the labelled folds one CAE serves every fold: the pool only, and a shared folder.
    shared = _experiment(synthetic, _settings(tmp_path, pretrain_on_train_folds=False))
    np.testing.assert_array_equal(shared.pretraining_data(2), shared.pool.X)
    assert shared.cae_dir(2) == shared.cae_dir(4) and shared.cae_dir(2).name == "shared"


def test_no_pretraining_data_is_an_error(synthetic, tmp_path):
    experiment = _experiment(synthetic, _settings(tmp_path, unlabeled="none", pretrain_on_train_folds=False,
                                                  methods=["supervised"]))
    with pytest.raises(ValueError, match="pre-training has no data"):
        experiment.pretraining_data(1)


def test_input_statistics_come_from_the_pretraining_data(synthetic, tmp_path):
    experiment = _experiment(synthetic, _settings(tmp_path))
    expected = features.Standardizer().fit(experiment.pretraining_data(4))
    assert np.allclose(experiment.standardizer(4).transform(experiment.features), expected.transform(experiment.features))
    # Without a pool or the labelled folds in pre-training: the training folds only (not validation, not test).
    alone = _experiment(synthetic, _settings(tmp_path, unlabeled="none", pretrain_on_train_folds=False,
                                             methods=["supervised"]))
    train = alone.split(4).train
    expected = features.Standardizer().fit(alone.features[train])
    assert np.allclose(alone.standardizer(4).transform(alone.features), expected.transform(alone.features))


def test_label_budgets_are_nested_and_per_class(synthetic, tmp_path, monkeypatch):
    """Budgets keep that many clips per class in the training and the validation fold, nested across budgets."""
    spy = _Spy(monkeypatch, "train_classifier")
    settings = _settings(tmp_path, methods=["supervised"], max_epochs=1, label_budgets=[1, 2, 0])
    experiment = _experiment(synthetic, settings)
    metrics, predictions = experiment.run()
    assert sorted(metrics["labels_per_class"]) == [0, 1, 2]
    assert metrics.set_index("labels_per_class")["n_train"].to_dict() == {0: 24, 1: 4, 2: 8}
    assert set(metrics["n_test"]) == {8}  # the test fold is always scored whole
    assert sorted(set(predictions["labels_per_class"])) == [0, 1, 2]
    on_disk = pd.read_csv(experiment.results_dir() / "metrics.csv")
    assert sorted(on_disk["labels_per_class"]) == [0, 1, 2] and on_disk["labels_per_class"].dtype.kind == "i"

    scaler, X, labels = experiment.standardizer(1), experiment.features, experiment.dataset.labels
    chosen = {}
    for args, kwargs in spy.calls:
        (X_train, y_train), (X_validation, y_validation) = args[0], args[1]
        budget = args[3].name.partition("-lpc")[2] or "0"
        chosen[int(budget)] = (_rows_of(X, X_train, scaler), _rows_of(X, X_validation, scaler))
        assert args[3].parent.name == "supervised"
    assert set(chosen) == {0, 1, 2}
    for budget, per_class in ((1, 1), (2, 2)):
        train, validation = chosen[budget]
        assert np.bincount(labels[train]).tolist() == [per_class] * 4
        assert np.bincount(labels[validation]).tolist() == [min(per_class, 2)] * 4
    for part in (0, 1):
        assert set(chosen[1][part]) <= set(chosen[2][part]) <= set(chosen[0][part])
    assert experiment.classifier_dir("supervised", 1, 2).name == "fold1-lpc2"


def test_leakage_filter_reads_the_whole_metadata(tmp_path, monkeypatch):
    """A pool file from the source of a labelled clip is dropped, even when the miniature left that clip out."""
    root = tmp_path / "esc10"
    dataset, X = synthetic_dataset(root=root)
    # Give the B takes their own recording, so the miniature (the A takes) drops those sources entirely.
    meta = dataset.meta
    is_b = meta["take"] == "B"
    meta.loc[is_b, "src_file"] = meta.loc[is_b, "src_file"] + 500
    meta.loc[is_b, "filename"] = [f"{f}-{s}-B-{lab}.wav" for f, s, lab in
                                  zip(meta.loc[is_b, "fold"], meta.loc[is_b, "src_file"], meta.loc[is_b, "label"])]
    (root / "meta").mkdir(parents=True)
    meta.drop(columns=["path", "label"]).to_csv(root / "meta" / "esc50.csv", index=False)
    pool_dir = tmp_path / "unlabeled"
    pool_dir.mkdir()
    leaking = ["000001-1500-0-5.ogg", "000002-2001-0-5.ogg"]  # a dropped B source, a kept A source
    for name in leaking + ["unl-0000.ogg", "unl-0001.ogg", "000003-99999-0-5.ogg"]:
        (pool_dir / name).write_bytes(b"not decoded here")
    monkeypatch.setenv("ESC_UNLABELED_DIR", str(pool_dir))
    experiment = Experiment(_settings(tmp_path, clips_per_class=1), dataset=dataset, features=X,
                            pool=SyntheticPool(), verbose=0)
    assert not (experiment.dataset.meta["src_file"] == 1500).any()  # the miniature dropped it
    names = sorted(path.name for path in experiment.unlabeled_files())
    assert names == ["000003-99999-0-5.ogg", "unl-0000.ogg", "unl-0001.ogg"]
    limited = Experiment(_settings(tmp_path, max_unlabeled=2), dataset=dataset, features=X, pool=SyntheticPool(),
                         verbose=0)
    assert len(limited.unlabeled_files()) == 2
    assert Experiment(_settings(tmp_path, unlabeled="none"), dataset=dataset, features=X, verbose=0).unlabeled_files() == []


# ---------------------------------------------------------------------------
# Data handed in


def test_miniature_of_a_handed_dataset_keeps_features_aligned(tmp_path):
    dataset, X = synthetic_dataset()
    by_name = {name: X[i] for i, name in enumerate(dataset.meta["filename"])}
    experiment = Experiment(_settings(tmp_path, clips_per_class=1), dataset=dataset, features=X, verbose=0)
    meta = experiment.dataset.meta
    assert len(meta) == len(experiment.features) == 20
    assert meta.groupby(["fold", "label"]).size().eq(1).all()
    assert (meta["take"] == "A").all()  # the first clip of each class and fold by file name
    for name, row in zip(meta["filename"], experiment.features):
        np.testing.assert_array_equal(row, by_name[name])
    assert list(meta.index) == list(range(20))
    assert len(dataset) == 40 and len(X) == 40  # the caller's data is left alone


def test_missing_test_fold_raises_before_training(synthetic, tmp_path):
    dataset, X, pool = synthetic
    with pytest.raises(ValueError, match=r"fold\(s\) \[6\] not among the dataset's folds \[1, 2, 3, 4, 5\]"):
        Experiment(_settings(tmp_path, folds=[1, 6]), dataset=dataset, features=X, pool=pool, verbose=0)
    assert not (tmp_path / "run").exists()


def test_features_not_aligned_with_the_dataset_raise(synthetic, tmp_path):
    dataset, X, pool = synthetic
    with pytest.raises(ValueError, match="39 feature rows for 40 clips"):
        Experiment(_settings(tmp_path), dataset=dataset, features=X[:-1], pool=pool, verbose=0)
    with pytest.raises(ValueError, match="without their dataset"):
        Experiment(_settings(tmp_path), features=X, verbose=0)


def test_a_recording_split_across_folds_raises(tmp_path):
    dataset, X = synthetic_dataset()
    meta = dataset.meta
    meta.loc[meta.index[meta["fold"] == 2][0], "src_file"] = int(meta.loc[meta["fold"] == 1, "src_file"].iloc[0])
    with pytest.raises(ValueError, match="must stay in one fold"):
        Experiment(_settings(tmp_path), dataset=dataset, features=X, verbose=0)


# ---------------------------------------------------------------------------
# Settings and run names


@pytest.mark.parametrize("head", ["gap-fc", "gmp-32fc-fc"])
def test_settings_accept_global_pooling_heads(head):
    settings = Settings(head=head, encoder="(16)3c-2p-(32)3c-2p")
    assert settings.head == head and "-c16-32." in settings.config_id


def test_run_names_stay_short_and_tell_encoders_and_augmentations_apart():
    long = Settings(encoder="(16)3c-2p-(32)3c-2p-(64)3c-2p-(128)3c-2p", augment="shift:max_shift=30 + mask:max_freq_width=8 + mixup:alpha=0.4")
    assert len(long.config_id) < 80 and "-aug-shift_mask_mixup." in long.config_id
    assert Settings(encoder="(16)3c-2p").config_id != Settings(encoder="(16)5c-2p").config_id
    assert Settings(augment="mixup:alpha=0.4").config_id != Settings(augment="mixup:alpha=1.0").config_id


@pytest.mark.parametrize(
    "change, same_cae, same_supervised, same_pretrained",
    [
        # classifier section: not the CAE's
        ({"batch_size": 16}, True, False, False),
        ({"max_epochs": 7}, True, False, False),
        ({"lr_schedule": "cosine"}, True, False, False),
        ({"head": "gap-fc"}, True, False, False),
        ({"dropout": 0.3}, True, False, False),
        ({"augment": "mixup:alpha=0.4"}, True, False, False),
        # pretraining section: not the supervised classifier's
        ({"decoder": "upsample"}, False, True, False),
        ({"cae_max_epochs": 7}, False, True, False),
        ({"cae_batch_size": 16}, False, True, False),
        ({"cae_validation_fraction": 0.2}, False, True, False),
        # data, features, network: every stage's
        ({"learning_rate": 0.01}, False, False, False),
        ({"patience": 3}, False, False, False),
        ({"batch_norm": True}, False, False, False),
        ({"filters": 32}, False, False, False),
        ({"clips_per_class": 2}, False, False, False),
        ({"unlabeled": "none"}, False, False, False),
        ({"max_unlabeled": 5}, False, False, False),
        ({"seed": 1}, False, False, False),
        ({"n_mels": 40}, False, False, False),
        ({"deltas": True}, False, False, False),
        # evaluation and output: no trained model changes
        ({"refit_on_validation": True}, True, True, True),
        ({"ensemble": 3}, True, True, True),
        ({"folds": [2, 3]}, True, True, True),
        ({"methods": ["supervised"]}, True, True, True),
        ({"label_budgets": [4, 8]}, True, True, True),
        # ... except a search on the non-test folds' audio: it holds the scored validation fold out
        ({"score": "validation", "methods": ["supervised"]}, False, False, False),
        # one's own recordings' settings, with ESC data: nothing
        ({"n_folds": 3}, True, True, True),
        ({"labelled_layout": "table"}, True, True, True),
        ({"profile": "other"}, True, True, True),
        ({"run_dir": "/tmp/elsewhere"}, True, True, True),
        ({"publish_figures": False}, True, True, True),
        ({"compare_decoders": False}, True, True, True),
        ({"embedding_method": "pca"}, True, True, True),
    ],
)
def test_run_names_change_with_what_they_depend_on(change, same_cae, same_supervised, same_pretrained):
    base, other = Settings(), Settings(**change)
    assert (base.key("cae") == other.key("cae")) == same_cae
    assert (base.key("supervised") == other.key("supervised")) == same_supervised
    assert (base.key("pretrained") == other.key("pretrained")) == same_pretrained
    assert (base.cae_id() == other.cae_id()) == same_cae
    assert (base.classifier_id("supervised") == other.classifier_id("supervised")) == same_supervised
    assert (base.classifier_id("pretrained") == other.classifier_id("pretrained")) == same_pretrained


def test_filters_stop_mattering_once_an_encoder_is_given():
    a, b = Settings(encoder="(8)3c-2p", filters=16), Settings(encoder="(8)3c-2p", filters=64)
    for stage in ("cae", "supervised", "pretrained"):
        assert a.key(stage) == b.key(stage)
    assert Settings(filters=64).key("cae") == Settings(encoder="(64)5c-2p-(64)3c-2p-(64)3c-2p").key("cae")


def test_keys_are_stable_for_given_settings():
    """The key is a function of the settings' values alone: equal settings, equal keys, in any process."""
    values = {"filters": 16, "batch_size": 64, "augment": "mixup:alpha=0.4", "folds": [2]}
    a = Settings(**values)
    b = Settings(**dict(reversed(list(values.items()))))
    for stage in ("cae", "supervised", "pretrained"):
        key = a.key(stage)
        assert len(key) == 8 and int(key, 16) >= 0
        assert key == b.key(stage) == a.replace().key(stage) == Settings.from_mapping(a.model_dump()).key(stage)
        assert json.loads(a.to_json(stage))["key"] == key and json.loads(a.to_json(stage))["stage"] == stage
        assert a.replace(filters=32).key(stage) != key  # one network value changes every stage's key
    assert a.replace(head="gap-fc").key("cae") == a.key("cae")
    assert a.replace(head="gap-fc").key("supervised") != a.key("supervised")
    # Not Python's salted hash: another interpreter gives the same digits.
    code = ("from esc_lib.settings import Settings; "
            f"s = Settings(**{values!r}); print(s.key('cae'), s.key('supervised'), s.key('pretrained'))")
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": "12345", "PATH": ""}).stdout.split()
    assert printed == [a.key("cae"), a.key("supervised"), a.key("pretrained")]


def test_ensemble_and_refit_share_member_zero_with_the_single_run():
    single = Settings(lr_schedule="cosine", max_epochs=50)
    ensemble = Settings(lr_schedule="cosine", max_epochs=50, ensemble=3, refit_on_validation=True)
    for method in ("supervised", "pretrained"):
        assert single.classifier_id(method) == ensemble.classifier_id(method)
    assert single.config_id.endswith("-cosine50")
    assert ensemble.config_id == single.config_id + "-refit-ens3"
    assert Settings(ensemble=1).config_id == Settings().config_id


@pytest.mark.parametrize(
    "values, message",
    [
        ({"batch_size": "abc"}, "batch_size"),
        ({"batch_norm": "false"}, "batch_norm"),
        ({"folds": []}, "folds"),
        ({"dataset": "esc20"}, "dataset"),
        ({"dropout": 1.5}, "dropout"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"ensemble": 0}, "ensemble"),
        ({"labels_per_class": 4}, "unknown parameter 'labels_per_class'"),
        ({"filterz": 16}, "did you mean 'filters'"),
        ({"score": "validation", "refit_on_validation": True}, "refit_on_validation"),
    ],
)
def test_bad_settings_name_the_parameter(values, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_mapping(values)
    with pytest.raises(ValueError, match=message):  # a SettingsError is a ValueError
        Settings(**values)


def test_experiment_validates_a_mapping_of_settings(synthetic):
    dataset, X, pool = synthetic
    experiment = Experiment({**TINY, "folds": 2}, dataset=dataset, features=X, pool=pool, verbose=0)
    assert isinstance(experiment.settings, Settings) and experiment.settings.folds == [2]
    with pytest.raises(SettingsError, match="unknown parameter"):
        Experiment({"no_such": 1}, dataset=dataset, features=X, pool=pool, verbose=0)


def test_settings_from_a_notebook_namespace_take_only_parameters():
    settings = Settings.from_namespace({"filters": 16, "folds": 2, "profile": "x", "methods": ["supervised"],
                                        "np": np, "_private": 1, "print_it": print, "In": []})
    assert settings.filters == 16 and settings.folds == [2] and settings.methods == ["supervised"]
    with pytest.raises(SettingsError, match="clips_per_clas"):
        Settings.from_namespace({"clips_per_clas": 1})


# ---------------------------------------------------------------------------
# The classifier step (trains tiny models)


@pytest.mark.slow
@pytest.mark.parametrize("augment", ["", "shift:max_shift=2 + mask:max_freq_width=2:max_time_width=2 + mixup:alpha=0.4"])
def test_classifier_trains_on_one_hot_targets_with_and_without_mixing(synthetic, tmp_path, augment):
    """Plain and mixed (soft) targets go through the same loss; validation accuracy is recorded; test fold scored."""
    settings = _settings(tmp_path, unlabeled="none", pretrain_on_train_folds=False, methods=["supervised"],
                         encoder="(4)3c-2p-(8)3c-2p", batch_norm=True, dropout=0.3, augment=augment)
    experiment = _experiment(synthetic, settings)
    outcome = experiment.train_classifier(1, "supervised")
    history = outcome["history"]
    assert len(history) == 2
    assert history[["loss", "val_loss", "accuracy", "val_accuracy"]].notna().all().all()
    assert history["val_accuracy"].between(0, 1).all()
    metrics = outcome["metrics"]
    assert metrics["n_test"] == 8 and metrics["n_train"] == 24 and 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["scored_on"] == "test" and metrics["validation_fold"] == 2 and metrics["labels_per_class"] == 0
    assert 0.0 <= metrics["validation_accuracy"] <= 1.0 and metrics["pool_size"] == 0
    predictions = outcome["predictions"]
    assert len(predictions) == 8 and set(predictions["y_pred"]) <= set(range(4))
    test_names = set(experiment.dataset.meta["filename"].iloc[experiment.split(1).test])
    assert set(predictions["filename"]) == test_names
    shape = outcome["model"].input_shape[1:]
    assert shape == (8, 12, 1)
    assert np.allclose(outcome["model"].predict(np.zeros((1, *shape), "float32"), verbose=0).sum(), 1.0, atol=1e-5)
    run = experiment.classifier_dir("supervised", 1)
    written = json.loads((run / "settings.json").read_text())
    assert written["stage"] == "supervised" and written["key"] == settings.key("supervised")


@pytest.mark.slow
def test_cross_validate_both_methods_pretrains_without_the_test_fold(synthetic, tmp_path, monkeypatch):
    """Both methods on one fold: the CAE trains on pool + non-test folds, its encoder starts the classifier."""
    spy = _Spy(monkeypatch, "train_cae")
    settings = _settings(tmp_path, max_epochs=1)
    experiment = _experiment(synthetic, settings)
    metrics, predictions = experiment.cross_validate()
    assert list(metrics["method"]) == ["supervised", "pretrained"]
    assert metrics.set_index("method")["pool_size"].to_dict() == {"supervised": 0, "pretrained": 20}
    assert len(predictions) == 16
    (X_cae, run, passed), _ = spy.calls[0]
    assert len(spy.calls) == 1 and passed is settings
    assert run == experiment.cae_dir(1) and json.loads((run / "settings.json").read_text())["stage"] == "cae"
    assert len(X_cae) == 20 + 32
    test = experiment.standardizer(1).transform(experiment.features[experiment.split(1).test])
    for clip in test:
        assert not np.any(np.all(np.isclose(X_cae, clip), axis=(1, 2, 3)))
    pretrained_run = experiment.classifier_dir("pretrained", 1)
    assert json.loads((pretrained_run / "settings.json").read_text())["stage"] == "pretrained"
    for name in ("metrics.csv", "predictions.csv", "settings.json"):
        assert (experiment.results_dir() / name).is_file()
    assert json.loads((experiment.results_dir() / "settings.json").read_text())["evaluation"]["folds"] == [1]
    # A second call finds everything trained: the same rows, nothing retrained.
    stamp = (pretrained_run / "history.csv").stat().st_mtime_ns
    again, _ = _experiment(synthetic, settings).cross_validate()
    assert (pretrained_run / "history.csv").stat().st_mtime_ns == stamp
    assert len(again) == 2
    np.testing.assert_array_equal(again["accuracy"].to_numpy(), metrics["accuracy"].to_numpy())


@pytest.mark.slow
def test_score_validation_scores_only_the_validation_fold(synthetic, tmp_path, monkeypatch):
    """A search scores the validation fold; the test fold's clips never reach training or scoring."""
    spy = _Spy(monkeypatch, "train_classifier")
    settings = _settings(tmp_path, score="validation", methods=["supervised"], unlabeled="none",
                         pretrain_on_train_folds=False)
    experiment = _experiment(synthetic, settings)
    metrics, predictions = experiment.cross_validate()
    split = experiment.split(1)
    row = metrics.iloc[0]
    assert row["scored_on"] == "validation" and row["n_test"] == len(split.validation) == 8
    meta = experiment.dataset.meta
    validation_names = set(meta["filename"].iloc[split.validation])
    test_names = set(meta["filename"].iloc[split.test])
    assert set(predictions["filename"]) == validation_names and not set(predictions["filename"]) & test_names
    assert pd.read_csv(experiment.results_dir() / "metrics.csv")["scored_on"].tolist() == ["validation"]
    # Nothing of the test fold was passed to training, as training data, watched data or scored data.
    (train, validation, *_), kwargs = spy.calls[0]
    scaler, X = experiment.standardizer(1), experiment.features
    passed = np.concatenate([train[0], validation[0], kwargs["score"]])
    for clip in scaler.transform(X[split.test]):
        assert not np.any(np.all(np.isclose(passed, clip), axis=(1, 2, 3)))
    np.testing.assert_allclose(kwargs["score"], scaler.transform(X[split.validation]))
    # With a label budget the budgeted validation clips are scored.
    outcome = experiment.train_classifier(1, "supervised", labels_per_class=1)
    assert outcome["metrics"]["n_test"] == 4 and set(outcome["predictions"]["filename"]) <= validation_names


@pytest.mark.slow
def test_refit_on_validation_reuses_the_early_stopped_run(synthetic, tmp_path):
    """The refit trains on train + validation for the chosen epochs; the early-stopped run is shared."""
    common = dict(unlabeled="none", pretrain_on_train_folds=False, methods=["supervised"], max_epochs=3)
    plain = _settings(tmp_path, **common)
    refit = _settings(tmp_path, **common, refit_on_validation=True)
    for method in ("supervised", "pretrained"):
        assert plain.classifier_id(method) == refit.classifier_id(method)
    assert refit.config_id == plain.config_id + "-refit"
    first = _experiment(synthetic, plain).train_classifier(1, "supervised")
    experiment = _experiment(synthetic, refit)
    run = experiment.classifier_dir("supervised", 1)
    stamp = (run / "history.csv").stat().st_mtime_ns
    outcome = experiment.train_classifier(1, "supervised")
    best_epoch = int(first["history"]["val_loss"].idxmin()) + 1
    assert outcome["metrics"]["n_train"] == 32 and outcome["metrics"]["epochs"] == best_epoch
    assert experiment.scored_runs("supervised", 1) == [run.with_name("fold1-refit")]
    assert len(pd.read_csv(run.with_name("fold1-refit") / "history.csv")) == best_epoch
    assert len(outcome["history"]) == len(first["history"])  # the early-stopped run was loaded, not retrained
    assert (run / "history.csv").stat().st_mtime_ns == stamp
    assert "val_loss" in experiment.history("supervised", 1).columns


@pytest.mark.slow
def test_cosine_ensemble_with_refit_averages_the_members(synthetic, tmp_path):
    """Cosine + refit: each member trains once on train + validation for all epochs; the score is their mean's."""
    from esc_lib import predict

    common = dict(unlabeled="none", pretrain_on_train_folds=False, methods=["supervised"], max_epochs=3,
                  patience=1, lr_schedule="cosine", ensemble=2)
    experiment = _experiment(synthetic, _settings(tmp_path, **common, refit_on_validation=True))
    outcome = experiment.train_classifier(1, "supervised")
    metrics = outcome["metrics"]
    assert metrics["members"] == 2 and metrics["epochs"] == 3 and metrics["n_train"] == 32
    assert np.isnan(metrics["validation_accuracy"])  # the validation fold trained
    runs = experiment.scored_runs("supervised", 1)
    assert [r.name for r in runs] == ["fold1-refit", "fold1-m1-refit"]
    for run in runs:
        assert len(training.load_history(run)) == 3  # every epoch, patience ignored
        assert not run.with_name(run.name.replace("-refit", "")).exists()  # no run on the training folds alone
    history = experiment.history("supervised", 1)
    assert len(history) == 3 and "val_loss" not in history.columns
    # The learning rate has decayed along the cosine to (almost) zero at the end.
    assert float(outcome["model"].optimizer.learning_rate.numpy()) < 1e-3 * 0.05

    # The test score is that of the mean of the members' probabilities, and an exported bundle is that mean.
    X_test = experiment.standardizer(1).transform(experiment.features[experiment.split(1).test])
    members = [predict._load_model(run / training.MODEL_FILE) for run in runs]
    mean = np.mean([training.predict_proba(m, X_test) for m in members], axis=0)
    assert np.array_equal(mean.argmax(axis=1), outcome["predictions"]["y_pred"].to_numpy())
    np.testing.assert_allclose(outcome["predictions"]["confidence"].to_numpy(), mean.max(axis=1), atol=1e-6)
    bundle = predict.load_bundle(predict.export_from_experiment(experiment, 1, method="supervised"))
    assert np.allclose(training.predict_proba(bundle.model, X_test), mean, atol=1e-5)
    assert len(bundle.info["training_runs"]) == 2
    assert bundle.info["labels_per_class"] == 0 and bundle.info["settings"]["ensemble"] == 2
    assert bundle.classes == experiment.dataset.classes

    # Without the refit the members train on the training folds, watched (not stopped) on the validation fold,
    # and the ensemble's validation accuracy is recorded.
    plain = _experiment(synthetic, _settings(tmp_path, **common))
    outcome = plain.train_classifier(1, "supervised")
    assert 0.0 <= outcome["metrics"]["validation_accuracy"] <= 1.0 and outcome["metrics"]["n_train"] == 24
    assert [len(training.load_history(r)) for r in plain.scored_runs("supervised", 1)] == [3, 3]
    assert "val_loss" in plain.history("supervised", 1).columns


def test_the_sslh_protocol_trains_on_every_other_fold_and_keeps_the_epoch_best_on_the_test_fold(synthetic, tmp_path):
    """SSLH's optimistic protocol (Cances et al. 2022): the budget is drawn from the four other folds, the whole test
    fold is watched, and the epoch most accurate on it is the model scored; named in the configuration."""
    settings = _settings(tmp_path, protocol="sslh", lr_schedule="cosine", max_epochs=4, label_budgets=[1],
                         methods=["supervised"], unlabeled="none", pretrain_on_train_folds=True)
    assert settings.config_id.endswith("-sslhprotocol") and settings.key("supervised") != settings.replace(
        protocol="strict").key("supervised")
    experiment = _experiment(synthetic, settings)
    split = experiment.split(1)
    folds = experiment.dataset.folds
    assert split.watches_test and split.validation_fold == 1 and np.array_equal(split.validation, split.test)
    assert set(folds[split.train]) == {2, 3, 4, 5}
    data = experiment.split_data(1, labels_per_class=1)
    assert set(folds[data.train_rows]) <= {2, 3, 4, 5} and len(data.train_rows) == 4  # 1 per class, from any other fold
    assert np.array_equal(data.validation_rows, split.test) and np.array_equal(data.score_rows, split.test)
    row = experiment.train_classifier(1, "supervised", labels_per_class=1)
    history = experiment.history("supervised", 1, labels_per_class=1)
    assert len(history) == 4  # every epoch trained
    best = history["val_accuracy"].max()
    assert row["metrics"]["accuracy"] == pytest.approx(best)  # the kept epoch is the one most accurate on the test fold
    done = json.loads((experiment.classifier_dir("supervised", 1, 1) / "done.json").read_text())
    assert done["monitor"] == "val_accuracy" and done["best"] == pytest.approx(best)


@pytest.mark.parametrize("changes", [{"refit_on_validation": True}, {"score": "validation"}])
def test_the_sslh_protocol_has_no_validation_fold_to_refit_on_or_score(tmp_path, changes):
    with pytest.raises(SettingsError, match="protocol 'sslh'"):
        _settings(tmp_path, protocol="sslh", **changes)


@pytest.mark.slow
def test_folds_side_by_side_give_the_rows_one_process_would_load(synthetic, tmp_path, capsys):
    """``jobs: 2``: each fold's CAE, then every (budget, fold), trained in worker processes, rows written per
    budget, each task's lines kept in the run folder and relayed here; one process afterwards finds every
    run finished and scores the same."""
    settings = _settings(tmp_path, folds=[1, 2], label_budgets=[1, 0], max_epochs=1, jobs=2)
    dataset, X, pool = synthetic
    experiment = Experiment(settings, dataset=dataset, features=X, pool=pool, verbose=1)
    metrics, predictions = experiment.run()
    assert "[fold 2, 1 per class] pretrained classifier" in capsys.readouterr().out
    assert sorted(zip(metrics["labels_per_class"], metrics["fold"], metrics["method"])) == sorted(
        (budget, fold, method) for budget in (1, 0) for fold in (1, 2) for method in ("supervised", "pretrained"))
    assert set(predictions.groupby(["labels_per_class", "fold", "method"]).size()) == {8}  # a test fold's clips
    logs = experiment.run_dir / "logs" / settings.config_id
    assert sorted(path.name for path in logs.iterdir()) == ["lpc0-fold1.log", "lpc0-fold2.log", "lpc1-fold1.log",
                                                            "lpc1-fold2.log", "pretrain-fold1.log", "pretrain-fold2.log"]
    assert "CAE" in (logs / "pretrain-fold2.log").read_text()  # the encoders trained side by side first
    said = (logs / "pretrain-fold1.log").read_text()
    assert "this process on 1 thread" in said or "GPU(s)" in said  # the device line tells the worker's one thread
    assert "pretrained classifier" in (logs / "lpc1-fold2.log").read_text()
    stamps = {path: path.stat().st_mtime_ns for path in (experiment.run_dir / "classifiers").rglob("history.csv")}
    assert len(stamps) == 8
    serial = _experiment(synthetic, settings.replace(jobs=1))
    for budget in (1, 0):
        again, _ = serial.cross_validate(labels_per_class=budget)
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps  # nothing retrained
    key = ["labels_per_class", "fold", "method"]
    pd.testing.assert_frame_equal(again.sort_values(key).reset_index(drop=True)[key + ["accuracy", "epochs"]],
                                  metrics.sort_values(key).reset_index(drop=True)[key + ["accuracy", "epochs"]])
    # Side by side again: every pair is finished, so it is loaded in this process, no worker started.
    sizes = {path: path.stat().st_size for path in logs.iterdir()}
    rerun, _ = _experiment(synthetic, settings).run()
    assert {path: path.stat().st_size for path in logs.iterdir()} == sizes
    pd.testing.assert_frame_equal(rerun.sort_values(key).reset_index(drop=True)[key + ["accuracy"]],
                                  metrics.sort_values(key).reset_index(drop=True)[key + ["accuracy"]])


def test_jobs_and_a_mirrored_model_exclude_each_other(tmp_path):
    with pytest.raises(SettingsError, match="jobs"):
        _settings(tmp_path, jobs=2, distribute="mirrored")


@pytest.mark.slow
def test_a_killed_parent_leaves_no_worker_training(tmp_path):
    """The process running ``jobs: 2`` is killed (SIGKILL, as a stopped kernel): its workers end too,
    instead of writing into a run folder another process may be resuming."""
    import os
    import re
    import signal
    import time
    from pathlib import Path

    run = tmp_path / "run"
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import SyntheticPool, synthetic_dataset
from esc_lib.experiment import Experiment, Settings
dataset, X = synthetic_dataset()
settings = Settings(**{{**{TINY!r}, "run_dir": {str(run)!r}, "methods": ["supervised"], "folds": [1, 2], "max_epochs": 2000, "jobs": 2}})
Experiment(settings, dataset=dataset, features=X, pool=SyntheticPool(), verbose=1).run()
"""
    said = tmp_path / "stderr.txt"
    with open(said, "w") as stderr:
        parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=stderr)
    workers: set[int] = set()
    deadline = time.monotonic() + 240
    try:
        while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(1)
            for log in run.glob("logs/*/*.log"):
                workers |= {int(pid) for pid in re.findall(r"worker process (\d+)", log.read_text())}
        assert len(workers) == 2, f"two workers should have started training; the parent said {said.read_text()[-800:]}"
    finally:
        parent.kill()
        parent.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as stat:  # a zombie no longer runs
            return stat.read().split(")")[-1].split()[0] != "Z"

    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} kept running after their parent was killed"

