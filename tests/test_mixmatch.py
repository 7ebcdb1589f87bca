"""The MixMatch method (esc_lib.methods.mixmatch): sharpening, the mixup of labelled and unlabeled rows and the
ramp-up by hand, the two weak views, resume, the settings and the registry."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from conftest import killed_and_resumed, train_consistency, two_classes
from esc_lib import methods
from esc_lib.methods import fixmatch, mixmatch
from esc_lib.settings import Settings, SettingsError

TINY = "(4)3c-2p"
_data = two_classes


def _settings(**changes):
    values = dict(encoder=TINY, head="8fc", batch_size=8, max_epochs=2, fixmatch_epochs=4, fixmatch_steps=0,
                  fixmatch_ema=0.0, fixmatch_ratio=2, fixmatch_weak="shift:max_shift=1",
                  mixmatch_weight=5.0, mixmatch_rampup=0.5, methods=["supervised", "mixmatch"])
    values.update(changes)
    return Settings(**values)


_mixmatch = functools.partial(train_consistency, "mixmatch")


def test_sharpening_and_the_guessed_targets_by_hand():
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]], dtype="float32")
    # T = 0.5: squares, renormalised.
    assert_allclose(mixmatch.sharpen(p, 0.5), [[0.36 / 0.46, 0.09 / 0.46, 0.01 / 0.46], [0.04 / 0.44, 0.04 / 0.44, 0.36 / 0.44]],
                    rtol=1e-5)
    assert_allclose(mixmatch.sharpen(p, 1.0), p, rtol=1e-6)  # T = 1: unchanged
    # The two views are averaged first: (0.6, 0.3, 0.1) and (0.2, 0.5, 0.3) -> (0.4, 0.4, 0.2) -> (0.16, 0.16, 0.04) / 0.36.
    other = np.array([[0.2, 0.5, 0.3], [0.2, 0.2, 0.6]], dtype="float32")
    q = np.asarray(mixmatch.guess_targets([p, other], 0.5))
    assert_allclose(q[0], [4 / 9, 4 / 9, 1 / 9], rtol=1e-5)
    assert_allclose(q.sum(axis=1), 1.0, rtol=1e-6)
    assert q[1].max() > 0.6  # sharper than the views' 0.6
    # With an alignment, it acts on the mean before the sharpening: halving class 0's share of (0.4, 0.4, 0.2)
    # gives (0.2, 0.4, 0.2) / 0.8, sharpened (0.04, 0.16, 0.04) / 0.24.
    halve_first = lambda mean: mean * np.array([0.5, 1.0, 1.0], "float32") / np.sum(mean * [0.5, 1.0, 1.0], axis=1, keepdims=True)
    assert_allclose(np.asarray(mixmatch.guess_targets([p, other], 0.5, align=halve_first))[0], [1 / 6, 2 / 3, 1 / 6], rtol=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        mixmatch.sharpen(p, 0.0)


def test_the_mixup_of_labelled_and_unlabeled_rows_by_hand():
    # One labelled row (one-hot class 0) and one unlabeled clip in two views with its guessed target.
    x = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 4.0]], dtype="float32")
    targets = np.array([[1.0, 0.0], [0.25, 0.75], [0.25, 0.75]], dtype="float32")
    order = np.array([2, 0, 1])
    # lam 0.3 is kept as max(0.3, 0.7) = 0.7: each row dominates its mixture.
    for lam in (0.3, 0.7):
        mixed_x, mixed_t = (np.asarray(v) for v in mixmatch.mix(x, targets, lam, order))
        assert_allclose(mixed_x, [[0.7, 1.2], [0.3, 1.4], [0.0, 3.4]], rtol=1e-6)
        assert_allclose(mixed_t, [[0.775, 0.225], [0.475, 0.525], [0.25, 0.75]], rtol=1e-6)
    assert_allclose(mixmatch.mix(x, targets, 1.0, order)[0], x)
    # The ramp-up of the unlabeled weight: linear to its full value, then constant.
    assert [mixmatch.rampup(s, 10, 4.0) for s in (0, 5, 10, 20)] == [0.0, 2.0, 4.0, 4.0]
    assert mixmatch.rampup(0, 0, 4.0) == 4.0


def test_the_stream_gives_two_weak_views_and_the_trainer_its_ramp_up(tmp_path):
    X, y = _data(40)
    settings = _settings()
    consistency = methods.get("mixmatch").consistency(settings, X[8:])
    assert isinstance(consistency, mixmatch.MixConsistency)
    Y = np.eye(2, dtype="float32")[y[:8]]
    stream = consistency.stream(X[:8], Y, 3, None)
    assert stream.strong is stream.weak and stream.mix == 0.0
    (x_labelled, x_one, x_two), _ = next(iter(stream.epoch(0)))
    assert x_one.shape == x_two.shape == (16, *X.shape[1:]) and not np.array_equal(x_one, x_two)
    from esc_lib import models

    trainer = consistency.trainer(models.build_classifier(X.shape[1:], 2, encoder=TINY, head="8fc"), Y)
    assert isinstance(trainer, fixmatch.ConsistencyTrainer)
    # 4 epochs of one step (8 labelled clips, batch 8): ramp-up over half of them.
    assert trainer.rampup_steps == pytest.approx(2.0) and trainer.weight == 5.0 and trainer.seed == 3
    # The guesses are aligned to the labelled clips' class shares by default, not without mixmatch_align.
    assert_allclose(trainer.target, Y.mean(axis=0)) and trainer.marginal.shape == (2,)
    unaligned = methods.get("mixmatch").consistency(settings.replace(mixmatch_align=False), X[8:])
    unaligned.stream(X[:8], Y, 3, None)
    assert unaligned.trainer(models.build_classifier(X.shape[1:], 2, encoder=TINY, head="8fc"), Y).target is None
    for bad, match in (({"temperature": 0.0}, "temperature"), ({"alpha": 0.0}, "alpha"), ({"weight": -1.0}, "weight")):
        with pytest.raises(ValueError, match=match):
            mixmatch.MixMatchTrainer(models.build_classifier(X.shape[1:], 2, encoder=TINY, head="8fc"), **bad)


def test_the_method_is_registered_with_its_own_settings_section():
    method = methods.get("mixmatch")
    assert method.name == "mixmatch" and method.section == "mixmatch" and method.uses_unlabeled
    assert set(Settings.names(["mixmatch"])) == {"mixmatch_temperature", "mixmatch_alpha", "mixmatch_weight",
                                                 "mixmatch_rampup", "mixmatch_align"}
    settings = _settings()
    assert set(settings.stage_sections("mixmatch")) >= {"semisupervised", "mixmatch", "classifier"}
    assert settings.key("mixmatch") != settings.replace(mixmatch_alpha=0.5).key("mixmatch")
    assert settings.key("mixmatch") != settings.replace(fixmatch_ratio=3).key("mixmatch")
    assert settings.key("mixmatch") != settings.replace(mixmatch_align=False).key("mixmatch")
    assert settings.replace(mixmatch_align=False).config_id.endswith("-mm-w5-r0.5-d0")
    assert settings.key("fixmatch") == settings.replace(mixmatch_alpha=0.5).key("fixmatch")
    assert settings.key("freematch") == settings.replace(mixmatch_alpha=0.5).key("freematch")
    assert "-mixmatch-" in settings.classifier_id("mixmatch")
    # Run without fixmatch, FixMatch's non-default settings still name the configuration, and MixMatch's own.
    assert "-fm-" in settings.config_id and settings.config_id.endswith("-mm-w5-r0.5")
    both = settings.replace(methods=["supervised", "fixmatch", "mixmatch"])
    assert both.config_id.count("-fm-") == 1
    for bad, match in (({"mixmatch_temperature": 0.0}, "mixmatch_temperature"), ({"mixmatch_alpha": 0.0}, "mixmatch_alpha"),
                       ({"mixmatch_weight": -1.0}, "mixmatch_weight"), ({"mixmatch_rampup": 1.5}, "mixmatch_rampup")):
        with pytest.raises(SettingsError, match=match):
            _settings(**bad)


def test_mixmatch_logs_its_unlabeled_loss_and_weight(tmp_path):
    X, y = _data(64)
    run = _mixmatch((X[:8], y[:8]), (X[8:24], y[8:24]), tmp_path / "run", _settings(), X[24:], seeds=[0])
    history = run.histories[0]
    assert {"unlabeled_loss", "unlabeled_weight", "mask_rate"} <= set(history.columns)
    assert "val_unlabeled_weight" not in history.columns
    # Ramp-up over 2 of 4 steps: the epochs' weights 0, 2.5, then 5 (the full weight).
    assert_allclose(history["unlabeled_weight"], [0.0, 2.5, 5.0, 5.0])
    assert (history["unlabeled_loss"] >= 0).all() and np.isfinite(history["loss"]).all()


def test_killed_mixmatch_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    X, y = _data(64)
    settings = _settings(lr_schedule="cosine", augment="mixup:alpha=0.4", fixmatch_ema=0.9)
    arguments = dict(seeds=[2], score=X[8:24])
    train, validation = (X[:8], y[:8]), (X[8:24], y[8:24])
    uninterrupted, resumed = killed_and_resumed(
        lambda folder: _mixmatch(train, validation, folder, settings, X[24:], **arguments), tmp_path, monkeypatch)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.models[0].get_weights(), uninterrupted.models[0].get_weights()))
    assert_array_equal(resumed.scored, uninterrupted.scored)
    assert_allclose(resumed.histories[0]["unlabeled_loss"], uninterrupted.histories[0]["unlabeled_loss"])
