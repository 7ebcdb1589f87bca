"""Ways of using unlabeled audio beyond the CAE (esc_lib.methods: fixmatch, contrastive, selftrain) and the machinery
they share (esc_lib.semi).

Tiny synthetic data (no audio): the unsupervised losses fall, pseudo-labels
respect the threshold, the test fold never reaches the unlabeled stream, and a
killed run resumes to the same weights.
"""

from __future__ import annotations

import functools

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from conftest import killed_and_resumed, train_consistency, two_classes
from esc_lib import protocol, semi, training
from esc_lib.experiment import Experiment
from esc_lib.methods import contrastive, fixmatch, selftrain
from esc_lib.settings import Settings, SettingsError

SHAPE = (8, 12, 1)
TINY = "(4)3c-2p"
_data = two_classes


_fixmatch = functools.partial(train_consistency, "fixmatch")


def _settings(**changes):
    # FixMatch counted in passes over the labelled clips and without the weights' average, unless a test says so.
    values = dict(encoder=TINY, head="8fc", batch_size=8, max_epochs=2, cae_max_epochs=2, fixmatch_epochs=3,
                  fixmatch_steps=0, fixmatch_ema=0.0,
                  fixmatch_ratio=2, fixmatch_threshold=0.6, fixmatch_weak="shift:max_shift=1",
                  fixmatch_strong="shift:max_shift=3 + mask:max_freq_width=2:max_time_width=2",
                  contrastive_epochs=3, contrastive_batch_size=8, contrastive_augment="shift:max_shift=3 + mask:max_freq_width=2",
                  methods=["supervised", "fixmatch", "contrastive"])
    values.update(changes)
    return Settings(**values)


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.8, 1.0])
def test_pseudo_labels_respect_the_threshold(threshold):
    probabilities = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.5, 0.5]], "float32")
    targets, mask = pseudo_labels = fixmatch.pseudo_labels(probabilities, threshold)
    assert_array_equal(targets.numpy(), [0, 0, 1, 0])
    assert_array_equal(mask.numpy(), (probabilities.max(axis=1) >= threshold).astype("float32"))
    assert pseudo_labels


def test_pseudo_labels_reject_a_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        fixmatch.pseudo_labels(np.ones((1, 2), "float32") / 2, 1.5)


def test_nt_xent_is_low_when_views_agree_and_high_when_they_do_not():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(16, 8)).astype("float32")
    same = float(contrastive.nt_xent(z, z, 0.1))
    other = float(contrastive.nt_xent(z, rng.normal(size=(16, 8)).astype("float32"), 0.1))
    assert same < 0.5 < 2.0 < other  # about log(2b - 1) = 3.4 for unrelated views


def test_semi_supervised_stream_pairs_each_unlabeled_clip_with_two_views_and_repeats_by_epoch():
    X, y = _data(10)
    U = np.random.default_rng(1).normal(size=(25, *SHAPE)).astype("float32")
    from esc_lib.augment import from_spec
    from esc_lib.streams import BatchStream

    stream = semi.SemiSupervisedStream(X, training.one_hot(y, 2), U, batch_size=4, ratio=2, seed=3,
                                       weak=from_spec("shift:max_shift=1"), strong=from_spec("mask:max_freq_width=3"))
    # An epoch is a pass over the labelled clips, as many steps as supervised training takes.
    assert stream.steps_per_epoch == BatchStream(X, training.one_hot(y, 2), batch_size=4, seed=3).steps_per_epoch == 3
    batches = list(stream.epoch(0))
    assert len(batches) == 3
    (x, weak, strong), targets = batches[0]
    assert x.shape == (4, *SHAPE) and weak.shape == strong.shape == (8, *SHAPE) and targets.shape == (4, 2)
    assert sum(len(b[0][0]) for b in batches) == 10  # every labelled clip once per epoch
    # 3 steps x 8 unlabeled clips: 24 different ones of the 25 (a permutation, no clip twice).
    marked = U.copy()
    marked[:, 0, 0, 0] = np.arange(len(U))
    plain = semi.SemiSupervisedStream(X, training.one_hot(y, 2), marked, batch_size=4, ratio=2, seed=3)
    seen = np.concatenate([b[0][1][:, 0, 0, 0] for b in plain.epoch(0)])
    assert len(seen) == 24 and len(set(seen.tolist())) == 24
    # With more steps than unlabeled clips the permutations repeat: every clip once per pass.
    few = semi.SemiSupervisedStream(X, training.one_hot(y, 2), marked[:5], batch_size=4, ratio=2, seed=3)
    seen = np.concatenate([b[0][1][:, 0, 0, 0] for b in few.epoch(0)])
    assert len(seen) == 24 and all(sorted(seen[i:i + 5].tolist()) == [0, 1, 2, 3, 4] for i in range(0, 20, 5))
    again = list(stream.epoch(0))
    assert all(np.array_equal(a[0][2], b[0][2]) for a, b in zip(batches, again))
    assert not np.array_equal(list(stream.epoch(1))[0][0][1], batches[0][0][1])


def test_fixmatch_unlabeled_loss_falls_and_confident_share_rises(tmp_path):
    X, y = _data(96)
    settings = _settings(fixmatch_epochs=30, fixmatch_threshold=0.0, learning_rate=0.01)  # 30 steps of 8 + 16
    run = _fixmatch((X[:8], y[:8]), (X[8:24], y[8:24]), tmp_path / "fixmatch", settings, X[24:], seeds=[0], score=X[8:24])
    history = run.histories[0]
    assert {"unlabeled_loss", "mask_rate"} <= set(history.columns)
    assert "val_unlabeled_loss" not in history.columns
    assert history["unlabeled_loss"].iloc[-1] < history["unlabeled_loss"].iloc[0]
    assert (history["mask_rate"] == 1.0).all()  # threshold 0: every clip gets a target
    assert run.scored.shape == (16, 2)
    assert (tmp_path / "fixmatch" / "settings.json").read_text().count('"stage": "fixmatch"') == 1


def test_a_threshold_of_one_masks_every_unlabeled_clip(tmp_path):
    X, y = _data(48)
    run = _fixmatch((X[:8], y[:8]), (X[8:16], y[8:16]), tmp_path / "r", _settings(fixmatch_threshold=1.0), X[16:], seeds=[0])
    history = run.histories[0]
    assert (history["mask_rate"] < 1.0).all() and (history["unlabeled_loss"] <= history["mask_rate"] * 10).all()


def test_contrastive_loss_falls_and_its_encoder_initialises_the_classifier(tmp_path):
    from esc_lib import models

    X, _ = _data(64)
    settings = _settings(contrastive_epochs=6, learning_rate=0.01)
    network, history = contrastive.train_contrastive(X, tmp_path / "simclr", settings)
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    classifier = models.build_classifier(SHAPE, 2, encoder=TINY, head="8fc")
    copied = models.transfer_encoder(network, classifier)
    assert copied and all(name.startswith("encoder_") for name in copied)
    assert_array_equal(classifier.get_layer(copied[0]).get_weights()[0], network.get_layer(copied[0]).get_weights()[0])
    # A finished run is loaded, not trained again.
    again, history_again = contrastive.train_contrastive(X, tmp_path / "simclr", settings)
    assert len(history_again) == len(history)
    assert all(np.array_equal(a, b) for a, b in zip(again.get_weights(), network.get_weights()))


def test_distribution_alignment_pulls_down_the_favoured_class_and_keeps_rows_distributions():
    p = np.array([[0.6, 0.3, 0.1], [0.5, 0.25, 0.25], [0.2, 0.2, 0.6]], "float32")
    uniform = np.full(3, 1 / 3, "float32")
    # A model whose predictions already have the target's shares is left as it is.
    np.testing.assert_allclose(fixmatch.align_distribution(p, uniform, uniform).numpy(), p, rtol=1e-6)
    # One that favours class 0 has it pulled down and the others pulled up, each row still summing to 1.
    aligned = fixmatch.align_distribution(p, np.array([0.6, 0.2, 0.2], "float32"), uniform).numpy()
    np.testing.assert_allclose(aligned.sum(axis=1), 1.0, rtol=1e-6)
    assert (aligned[:, 0] < p[:, 0]).all() and (aligned[:, 1:] > p[:, 1:]).all()
    assert aligned[1].argmax() != 0  # the second clip's target moves off the favoured class


def test_fixmatch_with_alignment_tracks_the_unlabeled_predictions_and_refuses_a_bad_target(tmp_path):
    from esc_lib import models

    X, y = _data(64)
    settings = _settings(fixmatch_epochs=3, fixmatch_align=True, fixmatch_threshold=0.0)
    assert "-fm-" in settings.config_id and "-a1" in settings.config_id
    seen = {}
    real = fixmatch.ConsistencyTrainer.train_step

    def spy(self, data):
        seen["marginal"] = self.marginal
        return real(self, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fixmatch.ConsistencyTrainer, "train_step", spy)
        run = _fixmatch((X[:8], y[:8]), (X[8:24], y[8:24]), tmp_path / "aligned", settings, X[24:], seeds=[0])
    marginal = seen["marginal"].numpy()
    # Started at the labelled shares, moved by the unlabeled predictions, still a distribution.
    np.testing.assert_allclose(marginal.sum(), 1.0, rtol=1e-5)
    assert not np.allclose(marginal, np.bincount(y[:8], minlength=2) / 8)
    assert (run.histories[0]["mask_rate"] == 1.0).all()
    network = models.build_classifier(SHAPE, 2, encoder=TINY, head="8fc")
    with pytest.raises(ValueError, match="align must be a class distribution of 2"):
        fixmatch.ConsistencyTrainer(network, align=[0.5, 0.4])
    with pytest.raises(ValueError, match="align must be a class distribution of 2"):
        fixmatch.ConsistencyTrainer(network, align=[0.2, 0.3, 0.5])


@pytest.mark.parametrize("align", [False, True], ids=["plain", "aligned"])
def test_killed_fixmatch_run_resumes_to_the_same_weights(tmp_path, monkeypatch, align):
    X, y = _data(64)
    settings = _settings(fixmatch_epochs=4, lr_schedule="cosine", augment="mixup:alpha=0.4", fixmatch_align=align)
    arguments = dict(seeds=[2], score=X[8:24])
    train, validation = (X[:8], y[:8]), (X[8:24], y[8:24])
    uninterrupted, resumed = killed_and_resumed(
        lambda folder: _fixmatch(train, validation, folder, settings, X[24:], **arguments), tmp_path, monkeypatch)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.models[0].get_weights(), uninterrupted.models[0].get_weights()))
    assert_array_equal(resumed.scored, uninterrupted.scored)


def _spy_unlabeled(monkeypatch):
    seen = {}
    real_classifier, real_contrastive = training.train_classifier, contrastive.train_contrastive

    def spy_classifier(*args, consistency=None, **kwargs):
        if consistency is not None:
            seen["fixmatch"] = consistency.unlabeled
        return real_classifier(*args, consistency=consistency, **kwargs)

    def spy_contrastive(X, *args, **kwargs):
        seen["contrastive"] = X
        return real_contrastive(X, *args, **kwargs)

    monkeypatch.setattr(training, "train_classifier", spy_classifier)
    monkeypatch.setattr(contrastive, "train_contrastive", spy_contrastive)
    return seen


def test_the_test_fold_never_enters_the_unlabeled_stream(synthetic, tmp_path, monkeypatch):
    """FixMatch's and the contrastive encoder's unlabeled clips: the pool and the non-test folds, never the test fold."""
    dataset, features, pool = synthetic
    seen = _spy_unlabeled(monkeypatch)
    settings = _settings(folds=[3], run_dir=str(tmp_path / "run"), fixmatch_epochs=1, contrastive_epochs=1)
    experiment = Experiment(settings, dataset=dataset, features=features, pool=pool, verbose=0)
    experiment.cross_validate(methods=["fixmatch", "contrastive"])
    scaler = experiment.standardizer(3)
    test_clips = scaler.transform(features[dataset.folds == 3])
    others = scaler.transform(features[dataset.folds != 3])
    for method in ("fixmatch", "contrastive"):
        unlabeled = seen[method]
        assert len(unlabeled) == len(pool.X) + len(others), method
        for clip in test_clips:
            assert not np.any(np.all(np.isclose(unlabeled, clip), axis=(1, 2, 3))), method
    metrics = experiment.cross_validate(methods=["fixmatch", "contrastive"])[0]
    assert set(metrics["method"]) == {"fixmatch", "contrastive"} and (metrics["pool_size"] == len(pool.X)).all()


def test_a_search_scored_on_the_validation_fold_leaves_its_audio_out_of_the_unlabeled_stream(synthetic, tmp_path, monkeypatch):
    """score='validation' with pretrain_on_train_folds: neither the test nor the (scored) validation fold is unlabeled data."""
    dataset, features, pool = synthetic
    seen = _spy_unlabeled(monkeypatch)
    settings = _settings(folds=[3], run_dir=str(tmp_path / "run"), fixmatch_epochs=1, contrastive_epochs=1,
                         unlabeled="none", pretrain_on_train_folds=True, score="validation")
    experiment = Experiment(settings, dataset=dataset, features=features, pool=pool, verbose=0)
    validation_fold = experiment.split(3).validation_fold
    metrics = experiment.cross_validate(methods=["fixmatch", "contrastive"])[0]
    assert (metrics["scored_on"] == "validation").all()
    scaler = experiment.standardizer(3)
    training_folds = ~np.isin(dataset.folds, [3, validation_fold])
    for method in ("fixmatch", "contrastive"):
        unlabeled = seen[method]
        assert len(unlabeled) == training_folds.sum(), method
        np.testing.assert_allclose(unlabeled, scaler.transform(features[training_folds]), rtol=1e-6)
    # The statistics too come from the training folds alone, and the runs are not those of a test-scored study.
    np.testing.assert_allclose(scaler.mean_, features[training_folds].mean(axis=(0, 2)).reshape(scaler.mean_.shape), rtol=1e-4)
    assert settings.key("fixmatch") != settings.replace(score="test").key("fixmatch")
    assert settings.replace(score="test", refit_on_validation=False).key("supervised") != settings.key("supervised")


# ---------------------------------------------------------------------------
# Self-training


def test_select_pseudo_labels_keeps_confident_clips_and_caps_each_class():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.95, 0.05], [0.3, 0.7], [0.5, 0.5]])
    rows, labels, confidence = selftrain.select_pseudo_labels(probabilities, 0.7)
    assert_array_equal(rows, [0, 2, 3, 4])
    assert_array_equal(labels, [0, 1, 0, 1])
    assert (confidence >= 0.7).all()
    # At most one per class: the most confident of each.
    rows, labels, _ = selftrain.select_pseudo_labels(probabilities, 0.7, per_class=1)
    assert_array_equal(rows, [2, 3])
    assert_array_equal(labels, [1, 0])
    assert len(selftrain.select_pseudo_labels(probabilities, 1.0)[0]) == 0
    assert_array_equal(selftrain.select_pseudo_labels(probabilities, 0.0)[0], np.arange(6))


@pytest.mark.parametrize("threshold, per_class", [(-0.1, 0), (1.5, 0), (0.5, -1), (0.5, 1.5), (0.5, True)])
def test_select_pseudo_labels_rejects_bad_parameters(threshold, per_class):
    with pytest.raises(ValueError, match="threshold|per_class"):
        selftrain.select_pseudo_labels(np.full((2, 2), 0.5), threshold, per_class)


def _spy_selftrain(monkeypatch):
    """The training sets each student sees, by run folder."""
    seen = {}
    real = training.train_classifier

    def spy(train, validation, n_classes, run_dir, settings, **kwargs):
        if kwargs.get("stage") == "selftrain":
            seen[str(run_dir)] = train
        return real(train, validation, n_classes, run_dir, settings, **kwargs)

    monkeypatch.setattr(training, "train_classifier", spy)
    return seen


def test_selftrain_students_learn_from_the_teachers_pseudo_labels_never_from_the_test_fold(synthetic, tmp_path, monkeypatch):
    dataset, features, pool = synthetic
    seen = _spy_selftrain(monkeypatch)
    settings = _settings(folds=[3], run_dir=str(tmp_path / "run"), selftrain_threshold=0.3, selftrain_rounds=2,
                         methods=["supervised", "selftrain"])
    experiment = Experiment(settings, dataset=dataset, features=features, pool=pool, verbose=0)
    metrics = experiment.cross_validate()[0]
    split = experiment.split(3)
    scaler = experiment.standardizer(3)
    final = experiment.classifier_dir("selftrain", 3)
    assert sorted(seen) == sorted([str(final.with_name(final.name + "-round1")), str(final)])
    test_clips = scaler.transform(features[split.test])
    labelled = scaler.transform(features[split.train])
    for run, (X, y) in seen.items():
        pseudo = pd.read_csv(Path(run) / "pseudo_labels.csv")
        assert (pseudo["confidence"] >= 0.3).all() and len(pseudo) > 0
        assert len(X) == len(split.train) + len(pseudo)
        np.testing.assert_allclose(X[:len(split.train)], labelled, rtol=1e-6)
        assert_array_equal(y[len(split.train):], pseudo["label"])
        for clip in test_clips:  # no test clip among the pseudo-labelled ones
            assert not np.any(np.all(np.isclose(X, clip), axis=(1, 2, 3)))
        # Sources: pool files and the validation fold's clips (the labelled training clips are not pseudo-labelled).
        names = set(dataset.meta["filename"])
        labelled_names = set(dataset.meta["filename"].iloc[split.train])
        assert not set(pseudo["source"]) & labelled_names
        assert set(pseudo["source"]) & names <= set(dataset.meta["filename"].iloc[split.validation])
    # The teacher is the supervised method's own run (loaded, not trained twice); the cost counts it.
    rows = metrics.set_index("method")
    assert rows.loc["selftrain", "seconds"] > rows.loc["supervised", "seconds"]
    assert settings.classifier_id("selftrain") != settings.replace(selftrain_threshold=0.5).classifier_id("selftrain")
    assert "-st-t0.3-r2" in settings.config_id
    assert settings.key("fixmatch") == settings.replace(selftrain_threshold=0.5).key("fixmatch")


def test_selftrain_from_the_cae_with_an_ensemble_teacher(synthetic, tmp_path, monkeypatch):
    """selftrain_init: pretrained - the CAE-initialised classifier teaches and every student starts from the CAE's
    encoder; selftrain_teachers: 2 - that run and a second seed's member teach together, probabilities averaged."""
    dataset, features, pool = synthetic
    calls = []
    real = training.train_classifier

    def spy(train, validation, n_classes, run_dir, settings, **kwargs):
        outcome = real(train, validation, n_classes, run_dir, settings, **kwargs)
        calls.append(dict(run=Path(run_dir), stage=kwargs["stage"], encoder=kwargs.get("pretrained"),
                          seeds=list(kwargs["seeds"]), outcome=outcome))
        return outcome

    monkeypatch.setattr(training, "train_classifier", spy)
    settings = _settings(folds=[3], run_dir=str(tmp_path / "run"), selftrain_threshold=0.0, selftrain_teachers=2,
                         selftrain_init="pretrained", methods=["supervised", "selftrain"])
    experiment = Experiment(settings, dataset=dataset, features=features, pool=pool, verbose=0)
    assert list(experiment.pretrain_all()) == ["fold 3"]  # notebook 02 trains the CAE the students start from
    experiment.train_classifier(3, "selftrain")
    teacher, student = calls
    assert teacher["stage"] == "pretrained" and teacher["run"] == experiment.classifier_dir("pretrained", 3)
    assert len(teacher["seeds"]) == 2 and teacher["seeds"][0] == protocol.member_seed(settings.seed, 3, 0)
    assert (teacher["run"].parent / "fold3-m1").is_dir() and len(student["seeds"]) == 1
    cae = experiment.pretrain(3)[0]
    assert teacher["encoder"] is not None and student["encoder"] is not None
    assert teacher["encoder"].name == student["encoder"].name == cae.name
    # The pseudo-labels' confidences are the two members' mean probabilities.
    split = experiment.split(3)
    X_unlabeled = experiment.standardised_unlabeled(3, exclude=split.train)
    mean = np.mean([training.predict_proba(m, X_unlabeled) for m in teacher["outcome"].models], axis=0)
    pseudo = pd.read_csv(experiment.classifier_dir("selftrain", 3) / "pseudo_labels.csv")
    np.testing.assert_allclose(pseudo["confidence"], mean[pseudo["row"]].max(axis=1), atol=1e-5)
    assert_array_equal(pseudo["label"], mean[pseudo["row"]].argmax(axis=1))
    # The students' keys follow the CAE they start from; the defaults keep the keys of earlier runs.
    assert settings.key("selftrain") != settings.replace(cae_max_epochs=3).key("selftrain")
    assert settings.replace(selftrain_init="scratch").key("selftrain") == settings.replace(
        selftrain_init="scratch", cae_max_epochs=3).key("selftrain")
    assert "-st-t0-n2-ipretrained" in settings.config_id
    assert Settings(methods=["supervised", "selftrain"]).key("selftrain") == "366cf746"  # before these settings


@pytest.mark.parametrize("student", [{}, {"selftrain_student": "teacher", "selftrain_student_epochs": 4}],
                         ids=["scratch", "warm"])
def test_a_killed_selftrain_student_resumes_on_its_pseudo_labels_to_the_same_weights(
        synthetic, tmp_path, monkeypatch, student):
    from conftest import kill_after

    dataset, features, pool = synthetic
    settings = _settings(folds=[3], selftrain_threshold=0.3, methods=["supervised", "selftrain"], max_epochs=3, **student)

    def experiment(name):
        return Experiment(settings.replace(run_dir=str(tmp_path / name)), dataset=dataset, features=features, pool=pool, verbose=0)

    uninterrupted = experiment("a").train_classifier(3, "selftrain")
    real = training.fit
    calls = {"n": 0}

    def killing_fit(*args, callbacks=(), **kwargs):
        calls["n"] += 1  # the first fit is the teacher's; kill the student's
        extra = [kill_after(2)] if calls["n"] == 2 else []
        return real(*args, callbacks=[*callbacks, *extra], **kwargs)

    monkeypatch.setattr(training, "fit", killing_fit)
    with pytest.raises(KeyboardInterrupt):
        experiment("b").train_classifier(3, "selftrain")
    monkeypatch.setattr(training, "fit", real)
    resumed = experiment("b").train_classifier(3, "selftrain")
    assert all(np.array_equal(a, b) for a, b in zip(resumed["model"].get_weights(), uninterrupted["model"].get_weights()))
    assert resumed["metrics"]["accuracy"] == uninterrupted["metrics"]["accuracy"]
    # Pseudo-labels that no longer match the unlabeled clips are refused, naming the file.
    path = experiment("b").classifier_dir("selftrain", 3) / "pseudo_labels.csv"
    frame = pd.read_csv(path)
    frame.loc[0, "source"] = "elsewhere.wav"
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="pseudo_labels.csv names other unlabeled clips"):
        experiment("b").train_classifier(3, "selftrain")


def test_fixmatch_and_the_contrastive_encoder_train_from_an_on_disk_pool_as_from_memory(tmp_path):
    """A LazyRows (the store's rows, standardised as read) gives the batches the array gives: same weights."""
    from esc_lib import store

    X, y = _data(64)
    half = store.LazyRows([X[24:40], X[40:]], transform=lambda rows: rows * 0.5)
    memory = np.concatenate([X[24:40], X[40:]]) * 0.5
    settings = _settings(fixmatch_epochs=2, contrastive_epochs=2)
    runs = {}
    for name, unlabeled in (("disk", half), ("memory", memory)):
        run = _fixmatch((X[:8], y[:8]), (X[8:24], y[8:24]), tmp_path / f"fixmatch-{name}", settings, unlabeled,
                        seeds=[2])
        encoder, _ = contrastive.train_contrastive(unlabeled, tmp_path / f"contrastive-{name}", settings)
        runs[name] = (run.models[0].get_weights(), encoder.get_weights())
    for disk, memory_ in zip(runs["disk"], runs["memory"]):
        assert all(np.array_equal(a, b) for a, b in zip(disk, memory_))
    probabilities = training.predict_proba(runs and run.models[0], half, chunk=5)
    np.testing.assert_allclose(probabilities, training.predict_proba(run.models[0], memory), rtol=1e-5, atol=1e-6)


def test_train_classifier_starts_from_the_initial_models_weights(tmp_path):
    """initial: member i starts from initial[i mod n]; a near-zero rate keeps those weights, a random start does not."""
    X, y = _data(48)
    settings = _settings(learning_rate=1e-12, augment="", dropout=0.0)
    teacher = training.train_classifier((X[:24], y[:24]), (X[24:], y[24:]), 2, tmp_path / "teacher",
                                        settings.replace(learning_rate=0.01), seeds=[0])
    warm = training.train_classifier((X[:24], y[:24]), (X[24:], y[24:]), 2, tmp_path / "warm", settings, seeds=[1, 2],
                                     initial=teacher.models, max_epochs=1)
    cold = training.train_classifier((X[:24], y[:24]), (X[24:], y[24:]), 2, tmp_path / "cold", settings, seeds=[1],
                                     max_epochs=1)
    start = teacher.models[0].get_weights()
    for model in warm.models:
        for a, b in zip(model.trainable_weights, teacher.models[0].trainable_weights):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    assert not all(np.allclose(a, b, atol=1e-3) for a, b in zip(cold.models[0].get_weights(), start))
    assert [len(h) for h in warm.histories] == [1, 1] and len(cold.histories[0]) == 1
    with pytest.raises(training.TrainingError, match="another network"):
        training.train_classifier((X[:24], y[:24]), (X[24:], y[24:]), 2, tmp_path / "other", settings.replace(head="4fc"),
                                  seeds=[1], initial=teacher.models)
    with pytest.raises(training.TrainingError, match="max_epochs must be at least 1"):
        training.train_classifier((X[:24], y[:24]), (X[24:], y[24:]), 2, tmp_path / "none", settings, seeds=[1],
                                  max_epochs=0)


def _spy_classifiers(monkeypatch) -> list[dict]:
    """Record each training.train_classifier call: its stage, start, unlabeled clips, epochs, folder and outcome."""
    calls = []
    real = training.train_classifier

    def spy(train, validation, n_classes, run_dir, settings, **kwargs):
        outcome = real(train, validation, n_classes, run_dir, settings, **kwargs)
        consistency = kwargs.get("consistency")
        calls.append(dict(stage=kwargs["stage"], initial=kwargs.get("initial"),
                          unlabeled=None if consistency is None else consistency.unlabeled,
                          epochs=kwargs.get("max_epochs"), run=Path(run_dir), outcome=outcome))
        return outcome

    monkeypatch.setattr(training, "train_classifier", spy)
    return calls


def test_warm_selftrain_students_start_from_their_teacher_for_their_own_epochs(synthetic, tmp_path, monkeypatch):
    """selftrain_student: teacher - each round's student is given its teacher's models; selftrain_student_epochs its length."""
    dataset, features, pool = synthetic
    calls = _spy_classifiers(monkeypatch)
    settings = _settings(folds=[3], run_dir=str(tmp_path / "run"), selftrain_threshold=0.3, selftrain_rounds=2,
                         selftrain_student="teacher", selftrain_student_epochs=1, methods=["supervised", "selftrain"])
    Experiment(settings, dataset=dataset, features=features, pool=pool, verbose=0).train_classifier(3, "selftrain")
    teacher, first, second = calls
    assert teacher["stage"] == "supervised" and teacher["initial"] is None and teacher["epochs"] is None
    assert first["initial"] == teacher["outcome"].models and second["initial"] == first["outcome"].models
    assert first["epochs"] == second["epochs"] == 1
    assert [len(h) for h in (first["outcome"].histories[0], second["outcome"].histories[0])] == [1, 1]
    assert len(teacher["outcome"].histories[0]) == settings.max_epochs
    # Named in the configuration and the students' key; at their defaults, the keys of earlier runs.
    assert "-steacher-se1" in settings.config_id
    scratch = settings.replace(selftrain_student="scratch", selftrain_student_epochs=0)
    assert scratch.key("selftrain") != settings.key("selftrain") and scratch.key("supervised") == settings.key("supervised")
    assert "-steacher" not in scratch.config_id and not re.search(r"-se\d", scratch.config_id)


def test_warm_students_refuse_a_refit_teacher_they_would_stop_early_on():
    """A warm student of a refit teacher, watched on the validation fold the teacher trained on: a settings error."""
    warm = dict(selftrain_student="teacher", methods=["supervised", "selftrain"], refit_on_validation=True)
    with pytest.raises(SettingsError, match="selftrain_student 'teacher' with refit_on_validation"):
        Settings(**warm, lr_schedule="constant")
    # Cosine with a refit watches nothing; from scratch, or without a refit, nothing is biased.
    Settings(**warm, lr_schedule="cosine")
    Settings(**{**warm, "selftrain_student": "scratch"}, lr_schedule="constant")
    Settings(**{**warm, "refit_on_validation": False}, lr_schedule="constant")


def test_selftrain_cap_grows_by_round(synthetic, tmp_path):
    """selftrain_cap_growth: round r keeps at most per_class + (r-1) x growth pseudo-labels of each class."""
    dataset, features, pool = synthetic
    settings = _settings(folds=[3], run_dir=str(tmp_path / "run"), selftrain_threshold=0.0, selftrain_rounds=3,
                         selftrain_per_class=1, selftrain_cap_growth=2, methods=["supervised", "selftrain"])
    Experiment(settings, dataset=dataset, features=features, pool=pool, verbose=0).cross_validate()
    final = Experiment(settings, dataset=dataset, features=features, pool=pool, verbose=0).classifier_dir("selftrain", 3)
    runs = [final.with_name(f"{final.name}-round1"), final.with_name(f"{final.name}-round2"), final]
    per_class = [pd.read_csv(run / "pseudo_labels.csv")["label"].value_counts() for run in runs]
    # Threshold 0: every class the teacher predicts at all fills its cap (1, 3, 5), never more.
    for counts, cap in zip(per_class, (1, 3, 5)):
        assert counts.max() == cap
    assert "-g2" in settings.config_id
    plain = settings.replace(selftrain_cap_growth=0)
    assert "-g" not in plain.config_id.split("-st-")[1]
    assert plain.key("selftrain") != settings.key("selftrain")
    with pytest.raises(SettingsError, match="selftrain_cap_growth 2 grows a cap, but selftrain_per_class is 0"):
        settings.replace(selftrain_per_class=0)


def test_warm_fixmatch_fine_tunes_the_supervised_classifier_of_the_fold(synthetic, tmp_path, monkeypatch):
    """fixmatch_init: supervised - FixMatch starts from the fold's supervised run (trained once, loaded after) for fixmatch_epochs."""
    dataset, features, pool = synthetic
    calls = _spy_classifiers(monkeypatch)
    settings = _settings(folds=[3], run_dir=str(tmp_path / "run"), fixmatch_init="supervised",
                         methods=["supervised", "fixmatch"])
    experiment = Experiment(settings, dataset=dataset, features=features, pool=pool, verbose=0)
    supervised = experiment.train_classifier(3, "supervised")
    warm = experiment.train_classifier(3, "fixmatch")
    first, start, consistency = calls
    assert start["stage"] == "supervised" and start["run"] == first["run"] and start["unlabeled"] is None
    assert consistency["initial"] == start["outcome"].models and consistency["unlabeled"] is not None
    # The start is the supervised method's own run: loaded, not trained again, and the same weights.
    assert len(start["outcome"].histories[0]) == settings.max_epochs
    for a, b in zip(start["outcome"].models[0].get_weights(), supervised["model"].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(consistency["outcome"].histories[0]) == settings.fixmatch_epochs
    # Its cost counts the classifier it starts from.
    assert warm["metrics"]["seconds"] == pytest.approx(
        consistency["outcome"].seconds + start["outcome"].seconds, abs=0.11)
    # Named in the configuration and FixMatch's key only; at the default, the keys of earlier runs.
    assert "-isupervised" in settings.config_id
    scratch = settings.replace(fixmatch_init="scratch")
    assert scratch.key("fixmatch") != settings.key("fixmatch") and scratch.key("supervised") == settings.key("supervised")
    assert "-isupervised" not in scratch.config_id


def test_warm_fixmatch_refuses_a_refit_start_it_would_stop_early_on():
    warm = dict(fixmatch_init="supervised", methods=["supervised", "fixmatch"], refit_on_validation=True)
    with pytest.raises(SettingsError, match="fixmatch_init 'supervised' with refit_on_validation"):
        Settings(**warm, lr_schedule="constant")
    Settings(**warm, lr_schedule="cosine")
    Settings(**{**warm, "fixmatch_init": "scratch"}, lr_schedule="constant")


def test_propagate_labels_follows_the_clusters_the_unlabeled_clips_lie_in():
    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    truth = np.repeat(np.arange(3), 20)
    X = centres[truth] + rng.normal(scale=0.5, size=(60, 3))
    labelled = np.array([0, 20, 40])  # one labelled clip per class
    unlabeled = np.setdiff1d(np.arange(60), labelled)
    distributions = selftrain.propagate_labels(X[labelled], truth[labelled], X[unlabeled], n_classes=4)
    assert distributions.shape == (57, 4)
    np.testing.assert_allclose(distributions.sum(axis=1), 1.0)
    assert_array_equal(distributions.argmax(axis=1), truth[unlabeled])
    assert (distributions[:, 3] == 0).all()  # no labelled clip of class 3: it gets nothing
    assert selftrain.propagate_labels(X[labelled], truth[labelled], X[:0], n_classes=3).shape == (0, 3)


@pytest.mark.parametrize("y, unlabeled_dim, match", [
    ([0, 1, 5], 3, r"a class in range\(3\)"), ([0, 1], 3, "each of the 3 labelled clips"), ([0, 1, 2], 2, "same d")])
def test_propagate_labels_rejects_bad_inputs(y, unlabeled_dim, match):
    with pytest.raises(ValueError, match=match):
        selftrain.propagate_labels(np.ones((3, 3)), y, np.ones((4, unlabeled_dim)), n_classes=3)


def test_selftrain_by_propagation_labels_with_the_teachers_embeddings(synthetic, tmp_path, monkeypatch):
    """selftrain_labeler: propagation - label spreading over the teacher's embeddings gives the pseudo-labels."""
    dataset, features, pool = synthetic
    calls = []
    real = selftrain.propagate_labels

    def spy(labelled, y, unlabeled, n_classes, **kwargs):
        calls.append((np.asarray(labelled), np.asarray(y), np.asarray(unlabeled)))
        out = real(labelled, y, unlabeled, n_classes, **kwargs)
        calls[-1] += (out,)
        return out

    monkeypatch.setattr(selftrain, "propagate_labels", spy)
    settings = _settings(folds=[3], run_dir=str(tmp_path / "run"), selftrain_threshold=0.3, selftrain_per_class=3,
                         selftrain_labeler="propagation", methods=["supervised", "selftrain"])
    experiment = Experiment(settings, dataset=dataset, features=features, pool=pool, verbose=0)
    experiment.cross_validate()
    split, scaler = experiment.split(3), experiment.standardizer(3)
    (labelled, y, unlabeled, distributions), = calls  # one round, one teacher member
    teacher = experiment.train_classifier(3, "supervised")["model"]
    np.testing.assert_allclose(labelled, training.predict_embeddings(teacher, scaler.transform(features[split.train])),
                               rtol=1e-5, atol=1e-6)
    assert_array_equal(y, dataset.labels[split.train])
    assert labelled.shape[1] == unlabeled.shape[1] == 8  # the '8fc' head's units, the softmax layer's input
    pseudo = pd.read_csv(experiment.classifier_dir("selftrain", 3) / "pseudo_labels.csv")
    rows, expected, _ = selftrain.select_pseudo_labels(distributions, 0.3, 3)
    assert_array_equal(pseudo["row"], rows)
    assert_array_equal(pseudo["label"], expected)
    assert len(pseudo) > 0 and pseudo["label"].value_counts().max() <= 3
    assert "-lpropagation" in settings.config_id
    assert settings.key("selftrain") != settings.replace(selftrain_labeler="classifier").key("selftrain")


def test_a_stream_of_fixed_steps_draws_full_labelled_batches_whatever_the_labelled_set_size():
    X, y = _data(6)
    marked = X.copy()
    marked[:, 0, 0, 0] = np.arange(len(X))
    U = np.random.default_rng(1).normal(size=(40, *SHAPE)).astype("float32")
    stream = semi.SemiSupervisedStream(marked, training.one_hot(y, 2), U, batch_size=4, ratio=2, seed=3, steps_per_epoch=5)
    assert stream.steps_per_epoch == 5
    batches = list(stream.epoch(0))
    assert len(batches) == 5 and all(len(b[0][0]) == 4 and len(b[0][1]) == 8 for b in batches)
    seen = np.concatenate([b[0][0][:, 0, 0, 0] for b in batches]).astype(int)
    # 20 labelled rows from permutations of the 6 clips: every clip once before any twice.
    assert all(sorted(seen[i:i + 6].tolist()) == list(range(6)) for i in (0, 6, 12))
    with pytest.raises(ValueError, match="steps_per_epoch"):
        semi.SemiSupervisedStream(X, training.one_hot(y, 2), U, batch_size=4, ratio=2, seed=3, steps_per_epoch=0)


def test_fixmatch_mixup_mixes_labelled_clips_and_strong_views_each_dominating_its_mixture():
    X, y = _data(8)
    Y = training.one_hot(y, 2)
    labelled = np.full((8, *SHAPE), 1.0, dtype="float32")
    U = np.full((16, *SHAPE), -1.0, dtype="float32")
    stream = semi.SemiSupervisedStream(labelled, Y, U, batch_size=8, ratio=2, seed=0, mix=0.75)
    (x, weak, strong), targets = next(iter(stream.epoch(0)))
    # lam >= 0.5: a labelled clip stays >= 0 (1 * lam - 1 * (1 - lam)), a strong view <= 0; the weak views are not mixed.
    assert (x[:, 0, 0, 0] >= 0).all() and (x[:, 0, 0, 0] < 1).any()
    assert (strong[:, 0, 0, 0] <= 0).all() and (strong[:, 0, 0, 0] > -1).any()
    assert (weak == -1).all() and set(map(tuple, targets.tolist())) <= {(0.0, 1.0), (1.0, 0.0)}  # targets unmixed
    with pytest.raises(ValueError, match="mix"):
        semi.SemiSupervisedStream(labelled, Y, U, batch_size=8, ratio=2, seed=0, mix=-1)


@pytest.mark.parametrize("n_unlabeled, steps, expected", [
    (280, 2700, (300, 9)),     # ESC-10 at 4 labels per class: an epoch is a pass over the unlabeled clips
    (871, 2700, (97, 28)),     # with the pool: passes of 28 steps, 97 of them (2 716 steps)
    (250_000, 2700, (27, 100)),  # a large pool: epochs of at most 100 steps
    (280, 5, (1, 5)),
])
def test_fixmatch_counts_its_run_in_optimiser_steps(n_unlabeled, steps, expected):
    settings = Settings(fixmatch_steps=steps, fixmatch_ratio=1, batch_size=32)
    consistency = fixmatch.Consistency(settings, np.zeros((n_unlabeled, 1)))
    epochs, per_epoch = consistency.schedule(n_labelled=40)
    assert (epochs, per_epoch) == expected and epochs * per_epoch >= steps
    assert consistency.schedule(n_labelled=400) == expected  # however many clips are labelled
    legacy = fixmatch.Consistency(Settings(fixmatch_steps=0, fixmatch_epochs=7), np.zeros((n_unlabeled, 1)))
    assert legacy.schedule(n_labelled=40) == (7, None)


def test_fixmatch_refuses_a_length_given_both_in_steps_and_in_epochs():
    with pytest.raises(SettingsError, match="fixmatch_steps 2700 and fixmatch_epochs 5"):
        Settings(methods=["supervised", "fixmatch"], fixmatch_epochs=5)


def test_fixmatch_runs_its_steps_and_validates_scores_and_saves_the_average_of_its_weights(tmp_path):
    import keras

    X, y = _data(64)
    settings = _settings(fixmatch_epochs=0, fixmatch_steps=12, fixmatch_ema=0.9, fixmatch_threshold=0.0, batch_size=4,
                         learning_rate=0.01)
    run = _fixmatch((X[:8], y[:8]), (X[8:24], y[8:24]), tmp_path / "fixmatch", settings, X[24:], seeds=[0], score=X[8:24])
    history = run.histories[0]
    # 40 unlabeled clips in steps of 2 x 4: a pass is 5 steps, so 3 epochs of 4 steps make the 12.
    assert len(history) == 3
    model = run.models[0]
    assert model.trainable  # frozen to the optimiser while it was the average; the classifier handed on learns
    # The averaged network is what was scored and saved.
    assert_array_equal(run.scored, training.predict_proba(model, X[8:24]))
    saved = keras.models.load_model(tmp_path / "fixmatch" / "model.keras", compile=False)
    assert all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), model.get_weights()))
    # The finished run loaded: the same scores, the same trainable classifier.
    again = _fixmatch((X[:8], y[:8]), (X[8:24], y[8:24]), tmp_path / "fixmatch", settings, X[24:], seeds=[0], score=X[8:24])
    assert again.models[0].trainable
    assert_array_equal(again.scored, run.scored)


def test_the_average_of_the_weights_lags_the_trained_ones_and_equals_them_without_decay(tmp_path):
    from esc_lib import models

    X, y = _data(32)
    Y = training.one_hot(y, 2)
    for ema in (0.0, 0.9):
        training.set_seed(0)
        network = models.build_classifier(SHAPE, 2, encoder=TINY, head="8fc")
        trainer = fixmatch.ConsistencyTrainer(network, threshold=0.0, ema=ema)
        training.compile_classifier(trainer, learning_rate=0.05)
        stream = semi.SemiSupervisedStream(X[:8], Y[:8], X[8:], batch_size=4, ratio=1, seed=0)
        trainer.fit(stream.as_dataset().take(6), epochs=1, verbose=0)
        same = all(np.array_equal(a, b) for a, b in zip(trainer.network.get_weights(), trainer.student.get_weights()))
        assert same == (ema == 0.0)
        assert (trainer.student is trainer.network) == (ema == 0.0)
    assert [round(fixmatch.ema_decay(step, 0.999), 3) for step in (0, 10, 1000, 10**6)] == [0.1, 0.55, 0.991, 0.999]
