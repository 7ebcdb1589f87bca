"""The mean teacher method (esc_lib.methods.meanteacher): ramp-up, the teacher's average, resume, the protocol.

Tiny synthetic data (no audio): the teacher is an exponential moving average
of the student, the consistency weight ramps up, a killed run resumes to the
same weights, the test fold never reaches the unlabeled clips, and the method
runs through the orchestrator like any other.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import killed_and_resumed, two_classes
from esc_lib import methods, training
from esc_lib.experiment import Experiment
from esc_lib.methods import meanteacher
from esc_lib.settings import Settings, SettingsError

TINY = "(4)3c-2p"
_data = two_classes


def _settings(**changes):
    values = dict(encoder=TINY, head="8fc", batch_size=8, max_epochs=2, meanteacher_epochs=4, meanteacher_ratio=2,
                  meanteacher_student_view="shift:max_shift=2", meanteacher_teacher_view="shift:max_shift=1",
                  methods=["supervised", "meanteacher"])
    values.update(changes)
    return Settings(**values)


def _train(run_dir, settings, X, y, unlabeled, **kwargs):
    epochs = settings.meanteacher_epochs or settings.max_epochs
    return training.train_classifier(
        (X[:8], y[:8]), (X[8:24], y[8:24]), 2, run_dir, settings, stage="meanteacher", max_epochs=epochs,
        consistency=meanteacher.Consistency(settings, unlabeled, epochs), **kwargs)


def test_rampup_rises_from_near_zero_to_the_weight_and_the_decay_warms_up():
    assert meanteacher.rampup_weight(0, 100, 50.0) == pytest.approx(50.0 * math.exp(-5))
    assert meanteacher.rampup_weight(50, 100, 50.0) == pytest.approx(50.0 * math.exp(-1.25))
    assert meanteacher.rampup_weight(100, 100, 50.0) == meanteacher.rampup_weight(1000, 100, 50.0) == 50.0
    assert meanteacher.rampup_weight(0, 0, 7.0) == 7.0  # no ramp-up
    weights = [meanteacher.rampup_weight(step, 40, 1.0) for step in range(41)]
    assert all(a < b for a, b in zip(weights, weights[1:]))
    # The teacher averages about the last tenth of the steps (FixMatch's average), then at most ``ema`` -
    # not the mean of every step since the first, which over a few hundred steps keeps near-random weights.
    assert [meanteacher.ema_decay(step, 0.99) for step in (0, 10, 90)] == pytest.approx([0.1, 11 / 20, 91 / 100])
    assert meanteacher.ema_decay(10_000, 0.99) == 0.99


def test_the_method_is_registered_with_its_own_settings_section():
    method = methods.get("meanteacher")
    assert method.name == "meanteacher" and method.section == "meanteacher" and method.uses_unlabeled
    assert set(Settings.names(["meanteacher"])) == {
        "meanteacher_weight", "meanteacher_ema", "meanteacher_rampup", "meanteacher_ratio", "meanteacher_epochs",
        "meanteacher_steps", "meanteacher_student_view", "meanteacher_teacher_view"}
    settings = _settings()
    assert settings.key("meanteacher") != settings.replace(meanteacher_weight=1.0).key("meanteacher")
    assert settings.key("supervised") == settings.replace(meanteacher_weight=1.0).key("supervised")
    assert "-mt-" in settings.config_id and "-e4" in settings.config_id and "-meanteacher-" in settings.classifier_id("meanteacher")
    for bad, match in (({"meanteacher_ema": 1.0}, "meanteacher_ema"), ({"meanteacher_ratio": 0}, "meanteacher_ratio"),
                       ({"meanteacher_student_view": "shiftt"}, "shiftt"), ({"methods": ["mean_teacher"]}, "mean_teacher")):
        with pytest.raises(SettingsError, match=match):
            _settings(**bad)


def test_the_teacher_is_the_students_average_and_is_what_is_scored(tmp_path):
    X, y = _data(96)
    # ema 0: the teacher copies the student after every step.
    copied = _train(tmp_path / "copy", _settings(meanteacher_ema=0.0), X, y, X[24:], seeds=[0], score=X[8:24])
    trainer_networks = {}
    real = meanteacher._trainer_class()

    class Spy(real):
        def __init__(self, classifier, **kwargs):
            super().__init__(classifier, **kwargs)
            trainer_networks["student"], trainer_networks["teacher"] = self.student, classifier

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(meanteacher, "_trainer_class", lambda: Spy)
        averaged = _train(tmp_path / "average", _settings(meanteacher_ema=0.9), X, y, X[24:], seeds=[0], score=X[8:24])
        copy_again = _train(tmp_path / "copy-spied", _settings(meanteacher_ema=0.0), X, y, X[24:], seeds=[0])
    student, teacher = trainer_networks["student"], trainer_networks["teacher"]
    for a, b in zip(student.weights, teacher.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)  # ema 0: one and the same
    assert copy_again.models[0] is teacher  # the teacher is the classifier returned and scored
    # With a decay the teacher lags: its weights differ from the student's, and it is the one scored.
    assert not all(np.allclose(a, b) for a, b in zip(copied.models[0].get_weights(), averaged.models[0].get_weights()))
    history = averaged.histories[0]
    assert {"consistency_loss", "consistency_weight"} <= set(history.columns)
    assert "val_consistency_loss" not in history.columns
    assert history["consistency_weight"].is_monotonic_increasing and history["consistency_weight"].iloc[-1] > 1.0
    # The trainer's ramp-up is rampup_weight's: each epoch's mean weight over its steps (one step per epoch here).
    settings = _settings(meanteacher_ema=0.9)
    rampup_steps = settings.meanteacher_rampup * settings.meanteacher_epochs
    expected = [meanteacher.rampup_weight(step, rampup_steps, settings.meanteacher_weight) for step in range(len(history))]
    np.testing.assert_allclose(history["consistency_weight"], expected, rtol=1e-5)
    assert averaged.scored.shape == (16, 2) and np.allclose(averaged.scored.sum(axis=1), 1.0, atol=1e-5)
    assert (tmp_path / "average" / "settings.json").read_text().count('"stage": "meanteacher"') == 1


def test_the_teachers_targets_use_the_batch_statistics_and_leave_its_average_alone():
    """The teacher runs batch norm on the batch (as the reference implementations do), but its moving statistics
    stay the average of the student's: its forward pass on clips of another mean does not move them."""
    import keras
    import tensorflow as tf

    from esc_lib import models

    keras.utils.set_random_seed(0)
    network = models.build_classifier((8, 12, 1), 2, encoder=TINY, head="8fc", batch_norm=True)
    trainer = meanteacher._trainer_class()(network, weight=5.0, ema=0.9)
    training.compile_classifier(trainer)
    assert network.trainable  # a Keras batch norm layer that is not trainable ignores training=True
    teacher = trainer.teacher_statistics
    assert len(teacher) == 2 * sum(isinstance(layer, keras.layers.BatchNormalization) for layer in network.layers) > 0
    student = [v for layer in trainer.student.layers if isinstance(layer, keras.layers.BatchNormalization)
               for v in (layer.moving_mean, layer.moving_variance)]
    rng = np.random.default_rng(0)
    expected = [v.numpy() for v in teacher]
    for step in range(3):
        # the teacher's view far from the others (mean 3): a forward pass that updated its statistics would show
        views = [tf.constant(rng.normal(mean, 1, size=(n, 8, 12, 1)), "float32") for mean, n in ((0, 4), (3, 8), (0, 8))]
        trainer.train_step((tuple(views), tf.constant([0, 1, 0, 1])))
        decay = meanteacher.ema_decay(step, 0.9)
        expected = [decay * e + (1 - decay) * s.numpy() for e, s in zip(expected, student)]
        for e, t in zip(expected, teacher):
            np.testing.assert_allclose(t.numpy(), e, rtol=1e-5, atol=1e-6)


def test_mean_teacher_learns_the_labelled_task(tmp_path):
    X, y = _data(160)
    settings = _settings(meanteacher_epochs=15, learning_rate=0.01, meanteacher_weight=5.0)
    run = _train(tmp_path / "learn", settings, X, y, X[24:], seeds=[0], score=X[24:])
    assert np.mean(run.scored.argmax(axis=1) == y[24:]) >= 0.9
    assert run.histories[0]["loss"].iloc[-1] < run.histories[0]["loss"].iloc[0]


def test_a_killed_mean_teacher_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    X, y = _data(64)
    settings = _settings(lr_schedule="cosine", augment="mixup:alpha=0.4")
    uninterrupted, resumed = killed_and_resumed(
        lambda folder: _train(folder, settings, X, y, X[24:], seeds=[3], score=X[8:24]), tmp_path, monkeypatch)
    for a, b in zip(resumed.models[0].get_weights(), uninterrupted.models[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(resumed.scored, uninterrupted.scored)


def test_mean_teacher_through_the_orchestrator_never_sees_the_test_fold(synthetic, tmp_path, monkeypatch):
    dataset, features, pool = synthetic
    seen = {}
    real = training.train_classifier

    def spy(*args, consistency=None, **kwargs):
        if consistency is not None:
            seen["unlabeled"] = consistency.unlabeled
        return real(*args, consistency=consistency, **kwargs)

    monkeypatch.setattr(training, "train_classifier", spy)
    settings = _settings(folds=[3], run_dir=str(tmp_path / "run"), meanteacher_epochs=1)
    experiment = Experiment(settings, dataset=dataset, features=features, pool=pool, verbose=0)
    metrics = experiment.cross_validate()[0]
    assert list(metrics["method"]) == ["supervised", "meanteacher"]
    row = metrics.set_index("method").loc["meanteacher"]
    assert row["pool_size"] == len(pool.X) and row["epochs"] == 1 and 0 <= row["accuracy"] <= 1
    scaler = experiment.standardizer(3)
    unlabeled = seen["unlabeled"]
    assert len(unlabeled) == len(pool.X) + int((dataset.folds != 3).sum())
    for clip in scaler.transform(features[dataset.folds == 3]):
        assert not np.any(np.all(np.isclose(unlabeled, clip), axis=(1, 2, 3)))


def test_a_length_in_steps_is_whole_passes_over_the_labelled_clips():
    """meanteacher_steps: the same optimiser steps at every label budget; at 4 labels per class of ESC-10
    (40 clips, batches of 32: 2 steps a pass) 700 steps are the 350 passes chosen on the validation folds."""
    from esc_lib.methods.meanteacher import MeanTeacher

    settings = Settings(methods=["supervised", "meanteacher"], meanteacher_steps=700)
    assert [MeanTeacher.epochs(settings, n) for n in (40, 80, 160, 240)] == [350, 233, 140, 88]
    assert MeanTeacher.epochs(Settings(meanteacher_epochs=350), 240) == 350
    assert MeanTeacher.epochs(Settings(), 40) == Settings().max_epochs
    assert MeanTeacher.epochs(Settings(meanteacher_steps=1), 240) == 1
    with pytest.raises(SettingsError, match="meanteacher_steps 700 and meanteacher_epochs 350"):
        Settings(methods=["meanteacher"], meanteacher_steps=700, meanteacher_epochs=350)
    # Runs made before the setting keep their folders.
    default = Settings(methods=["meanteacher"])
    assert default.key("meanteacher") == default.replace(meanteacher_steps=0).key("meanteacher")
    assert default.replace(meanteacher_steps=700).config_id.endswith("-mt-s700")
