"""The cross-validation protocol (esc_lib.experiment): what each step may see, how runs are
named, and the classifier step with the strong preset's pieces.

The protocol tests use a tiny ESC-10 miniature (1 clip per class and fold) and a
few unlabeled files; only the classifier-step tests train (2 tiny epochs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from esc_lib import features
from esc_lib.experiment import Experiment, Settings

@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("augment", ["", "shift:max_shift=2 + mask:max_freq_width=2:max_time_width=2 + mixup:alpha=0.4"])
def test_classifier_trains_on_one_hot_targets_with_and_without_mixing(esc10_root, isolated_cache, tmp_path, augment):
    """Plain and mixed (soft) targets go through the same loss; validation accuracy is recorded; test fold scored."""
    settings = Settings(
        unlabeled="none", pretrain_on_train_folds=False, clips_per_class=1, folds=[1],
        n_mels=16, n_fft=4096, hop_length=4096, encoder="(4)3c-2p-(8)3c-2p", head="gmp-fc",
        batch_norm=True, dropout=0.3, augment=augment, batch_size=8, max_epochs=2, patience=5,
        run_dir=str(tmp_path / "run"),
    )
    outcome = Experiment(settings, verbose=0).train_classifier(1, "supervised")
    history = outcome["history"]
    assert len(history) == 2
    assert history[["loss", "val_loss", "accuracy", "val_accuracy"]].notna().all().all()
    assert history["val_accuracy"].between(0, 1).all()
    metrics = outcome["metrics"]
    assert metrics["n_test"] == 10 and 0.0 <= metrics["accuracy"] <= 1.0
    predictions = outcome["predictions"]
    assert len(predictions) == 10 and set(predictions["y_pred"]) <= set(range(10))
    shape = outcome["model"].input_shape[1:]
    assert shape[0] == 16
    assert np.allclose(outcome["model"].predict(np.zeros((1, *shape), "float32"), verbose=0).sum(), 1.0, atol=1e-5)


@pytest.mark.parametrize("head", ["gap-fc", "gmp-32fc-fc"])
def test_settings_accept_global_pooling_heads(head):
    settings = Settings(head=head, encoder="(16)3c-2p-(32)3c-2p")
    assert settings.head == head and "-c16-32." in settings.config_id


def test_run_names_stay_short_and_tell_encoders_and_augmentations_apart():
    long = Settings(encoder="(16)3c-2p-(32)3c-2p-(64)3c-2p-(128)3c-2p", augment="shift:max_shift=30 + mask:max_freq_width=8 + mixup:alpha=0.4")
    assert len(long.config_id) < 80 and "-aug-shift_mask_mixup." in long.config_id
    assert Settings(encoder="(16)3c-2p").config_id != Settings(encoder="(16)5c-2p").config_id
    assert Settings(augment="mixup:alpha=0.4").config_id != Settings(augment="mixup:alpha=1.0").config_id


@pytest.fixture(scope="module")
def experiment(esc10_root, unlabeled_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("experiment")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ESC_CACHE_DIR", str(root / "cache"))
        settings = Settings(clips_per_class=1, max_unlabeled=5, run_dir=str(root / "run"))
        exp = Experiment(settings, verbose=0)
        exp.features, exp.pool  # extract while the cache variable is set
        yield exp


@pytest.mark.realdata
@pytest.mark.parametrize("test_fold", [1, 3, 5])
def test_split_is_disjoint_and_validation_is_the_next_fold(experiment, test_fold):
    split = experiment.split(test_fold)
    folds = experiment.dataset.folds
    train, validation, test = (set(split[k]) for k in ("train", "validation", "test"))
    assert not (train & validation or train & test or validation & test)
    assert len(train | validation | test) == len(folds)
    assert set(folds[split["test"]]) == {test_fold}
    assert set(folds[split["validation"]]) == {test_fold % 5 + 1}


@pytest.mark.realdata
def test_pretraining_never_sees_the_test_fold(experiment):
    data = experiment.pretraining_data(2)
    test_features = experiment.features[experiment.split(2)["test"]]
    assert len(data) == len(experiment.pool.X) + int((experiment.dataset.folds != 2).sum())
    for clip in test_features:
        assert not np.any(np.all(data == clip, axis=(1, 2, 3)))


@pytest.mark.realdata
def test_input_statistics_come_from_the_pretraining_data(experiment):
    expected = features.Standardizer().fit(experiment.pretraining_data(4))
    assert np.allclose(experiment.standardizer(4).transform(experiment.features), expected.transform(experiment.features))


@pytest.mark.realdata
def test_budget_is_nested_and_per_class(experiment):
    indices = np.arange(len(experiment.dataset))
    small, large = experiment._budget(indices, 1, seed=3), experiment._budget(indices, 3, seed=3)
    assert set(small) <= set(large)
    assert np.bincount(experiment.dataset.labels[small]).tolist() == [1] * 10
    assert np.bincount(experiment.dataset.labels[large]).tolist() == [3] * 10


@pytest.mark.realdata
def test_leakage_filter_reads_the_whole_metadata(experiment):
    files = experiment.unlabeled_files()
    assert len(files) == 5  # unl-*.ogg names carry no Freesound id: nothing to filter, nothing lost


@pytest.mark.parametrize(
    "change, same_cae, same_supervised",
    [
        ({"batch_size": 16}, True, False),
        ({"decoder": "upsample"}, False, True),
        ({"learning_rate": 0.01}, False, False),
        ({"clips_per_class": 2}, False, False),
        ({"unlabeled": "none"}, False, False),
        ({"max_epochs": 7}, True, False),
        ({"cae_max_epochs": 7}, False, True),
        ({"lr_schedule": "cosine"}, True, False),
    ],
)
def test_run_names_change_with_what_they_depend_on(change, same_cae, same_supervised):
    base, other = Settings(), Settings(**change)
    assert (base.cae_id() == other.cae_id()) == same_cae
    assert (base.classifier_id("supervised") == other.classifier_id("supervised")) == same_supervised
    assert base.classifier_id("pretrained") != other.classifier_id("pretrained")


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
        ({"no_such": 1}, "unknown experiment parameter"),
    ],
)
def test_bad_settings_name_the_parameter(values, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_mapping(values)


def test_pick_takes_only_settings():
    settings = Settings.pick({"filters": 16, "folds": 2, "profile": "x", "methods": ["supervised"]})
    assert settings.filters == 16 and settings.folds == [2]


@pytest.mark.realdata
@pytest.mark.slow
def test_refit_on_validation_reuses_the_early_stopped_run(esc10_root, isolated_cache, tmp_path):
    """The refit trains on train + validation for the chosen epochs; the early-stopped run is shared."""
    common = dict(
        unlabeled="none", pretrain_on_train_folds=False, clips_per_class=1, folds=[1],
        n_mels=16, n_fft=4096, hop_length=4096, encoder="(4)3c-2p", head="gap-fc",
        batch_size=8, max_epochs=3, patience=5, run_dir=str(tmp_path / "run"),
    )
    plain = Settings(**common)
    refit = Settings(**common, refit_on_validation=True)
    for method in ("supervised", "pretrained"):
        assert plain.classifier_id(method) == refit.classifier_id(method)
    assert refit.config_id == plain.config_id + "-refit"
    first = Experiment(plain, verbose=0).train_classifier(1, "supervised")
    experiment = Experiment(refit, verbose=0)
    outcome = experiment.train_classifier(1, "supervised")
    best_epoch = int(first["history"]["val_loss"].idxmin()) + 1
    assert outcome["metrics"]["n_train"] == 40 and outcome["metrics"]["epochs"] == best_epoch
    refit_dir = experiment.classifier_dir("supervised", 1).with_name("fold1-refit")
    assert len(pd.read_csv(refit_dir / "history.csv")) == best_epoch
    assert len(outcome["history"]) == len(first["history"])  # the early-stopped run was loaded, not retrained


def test_settings_added_later_keep_the_published_run_folders():
    """Run folders of results published before lr_schedule/ensemble existed keep their digests (pinned here)."""
    settings = Settings()
    assert settings.digest() == "3e2dc34d"
    assert settings.classifier_id("supervised").endswith("-28a91a4f")


def test_ensemble_and_refit_share_member_zero_with_the_single_run():
    single = Settings(lr_schedule="cosine", max_epochs=50)
    ensemble = Settings(lr_schedule="cosine", max_epochs=50, ensemble=3, refit_on_validation=True)
    for method in ("supervised", "pretrained"):
        assert single.classifier_id(method) == ensemble.classifier_id(method)
    assert single.config_id.endswith("-cosine50")
    assert ensemble.config_id == single.config_id + "-refit-ens3"
    assert Settings(ensemble=1).config_id == Settings().config_id


@pytest.mark.realdata
@pytest.mark.slow
def test_cosine_ensemble_with_refit_averages_the_members(esc10_root, isolated_cache, tmp_path):
    """Cosine + refit: each member trains once on train + validation for all epochs; the score is their mean's."""
    from esc_lib import predict, training

    common = dict(
        unlabeled="none", pretrain_on_train_folds=False, clips_per_class=1, folds=[1],
        n_mels=16, n_fft=4096, hop_length=4096, encoder="(4)3c-2p", head="gap-fc",
        batch_size=8, max_epochs=3, patience=1, lr_schedule="cosine", ensemble=2, run_dir=str(tmp_path / "run"),
    )
    experiment = Experiment(Settings(**common, refit_on_validation=True), verbose=0)
    outcome = experiment.train_classifier(1, "supervised")
    metrics = outcome["metrics"]
    assert metrics["members"] == 2 and metrics["epochs"] == 3 and metrics["n_train"] == 40
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
    X_test = experiment.standardizer(1).transform(experiment.features[experiment.split(1)["test"]])
    members = [predict._load_model(run / training.MODEL_FILE) for run in runs]
    mean = np.mean([training.predict_proba(m, X_test) for m in members], axis=0)
    assert np.array_equal(mean.argmax(axis=1), outcome["predictions"]["y_pred"].to_numpy())
    bundle = predict.load_bundle(predict.export_from_experiment(experiment, 1, method="supervised"))
    assert np.allclose(training.predict_proba(bundle.model, X_test), mean, atol=1e-5)
    assert len(bundle.info["training_runs"]) == 2

    # Without the refit the members train on the training folds, watched (not stopped) on the validation fold,
    # and the ensemble's validation accuracy is recorded.
    plain = Experiment(Settings(**common), verbose=0)
    outcome = plain.train_classifier(1, "supervised")
    assert 0.0 <= outcome["metrics"]["validation_accuracy"] <= 1.0 and outcome["metrics"]["n_train"] == 30
    assert [len(training.load_history(r)) for r in plain.scored_runs("supervised", 1)] == [3, 3]
    assert "val_loss" in plain.history("supervised", 1).columns
