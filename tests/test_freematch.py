"""The FreeMatch method (esc_lib.methods.freematch): self-adaptive thresholds by hand, the fairness loss, resume,
the settings and the registry."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from conftest import killed_and_resumed, train_consistency, two_classes
from esc_lib import methods
from esc_lib.methods import fixmatch, freematch
from esc_lib.settings import Settings, SettingsError

TINY = "(4)3c-2p"
_data = two_classes


def _settings(**changes):
    values = dict(encoder=TINY, head="8fc", batch_size=8, max_epochs=2, fixmatch_epochs=4, fixmatch_steps=0,
                  fixmatch_ema=0.0, fixmatch_ratio=2, fixmatch_weak="shift:max_shift=1",
                  fixmatch_strong="shift:max_shift=3 + mask:max_freq_width=2:max_time_width=2",
                  freematch_momentum=0.9, freematch_fairness=0.01, methods=["supervised", "freematch"])
    values.update(changes)
    return Settings(**values)


_freematch = functools.partial(train_consistency, "freematch")


P = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.4, 0.35, 0.25]], dtype="float32")


def _state(n_classes=3):
    return np.float32(1 / n_classes), np.full(n_classes, 1 / n_classes, "float32"), np.full(n_classes, 1 / n_classes, "float32")


def test_the_running_means_and_the_thresholds_by_hand():
    confidence, class_confidence, histogram = (np.asarray(v) for v in freematch.update_state(P, *_state(), momentum=0.5))
    # tau = 0.5/3 + 0.5 * mean(0.7, 0.6, 0.4); p~ = 0.5/3 + 0.5 * column means; h~ = 0.5/3 + 0.5 * (2, 1, 0)/3.
    assert confidence == pytest.approx(0.45)
    assert_allclose(class_confidence, [0.4, 0.358333, 0.241667], atol=1e-6)
    assert_allclose(histogram, [0.5, 1 / 3, 1 / 6], atol=1e-6)
    targets, mask, thresholds = freematch.adaptive_targets(P, confidence, class_confidence)
    # thresholds = tau * p~ / max(p~) = 0.45 * (1, 0.358333 / 0.4, 0.241667 / 0.4)
    assert_allclose(thresholds, [0.45, 0.403125, 0.271875], atol=1e-6)
    assert_array_equal(targets, [0, 1, 0])
    assert_array_equal(mask, [1.0, 1.0, 0.0])  # 0.4 < class 0's 0.45
    # The threshold is the arg-max class's: 0.42 passes for class 1 (0.403) and fails for class 0 (0.45).
    _, mask, _ = freematch.adaptive_targets([[0.41, 0.42, 0.17], [0.42, 0.41, 0.17], [0.1, 0.42, 0.48]],
                                            confidence, class_confidence)
    assert_array_equal(mask, [1.0, 0.0, 1.0])


def test_the_fairness_loss_by_hand():
    class_confidence, histogram = np.array([0.4, 0.358333, 0.241667]), np.array([0.5, 1 / 3, 1 / 6])
    p_strong = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]], dtype="float32")
    loss = float(freematch.fairness_loss([1.0, 1.0, 0.0], p_strong, class_confidence, histogram))
    a = class_confidence / histogram
    a /= a.sum()
    # The two masked strong views: mean (0.4, 0.5, 0.1), arg-max histogram (0.5, 0.5, 0), class 2 scaled by 0.
    b = np.array([0.4 / 0.5, 0.5 / 0.5, 0.0])
    b /= b.sum()
    assert loss == pytest.approx(float(np.sum(a * np.log(b + 1e-12))), rel=1e-5)
    assert float(freematch.fairness_loss([0.0, 0.0, 0.0], p_strong, class_confidence, histogram)) == 0.0


def test_the_trainer_keeps_its_running_means_as_variables():
    from esc_lib import models

    network = models.build_classifier((8, 12, 1), 3, encoder=TINY, head="8fc")
    trainer = freematch.FreeMatchTrainer(network, momentum=0.5, fairness=0.0)
    assert isinstance(trainer, fixmatch.ConsistencyTrainer)
    names = {v.path.split("/")[-1] for v in trainer.variables}
    assert {"freematch_confidence", "freematch_class_confidence", "freematch_histogram"} <= names
    targets, mask, logged = trainer.make_targets(P)
    assert float(trainer.confidence.numpy()) == pytest.approx(0.45)
    assert_allclose(trainer.class_confidence.numpy(), [0.4, 0.358333, 0.241667], atol=1e-6)
    assert_array_equal(mask, [1.0, 1.0, 0.0])
    assert float(logged["threshold"]) == pytest.approx(np.mean([0.45, 0.403125, 0.271875]), abs=1e-6)
    assert trainer.extra_loss(mask, P)[0] is None  # fairness 0: no further loss
    for bad, match in (({"momentum": 1.0}, "momentum"), ({"fairness": -1.0}, "fairness")):
        with pytest.raises(ValueError, match=match):
            freematch.FreeMatchTrainer(network, **bad)


def test_the_method_is_registered_with_its_own_settings_section():
    method = methods.get("freematch")
    assert method.name == "freematch" and method.section == "freematch" and method.uses_unlabeled
    assert set(Settings.names(["freematch"])) == {"freematch_momentum", "freematch_fairness"}
    settings = _settings()
    assert set(settings.stage_sections("freematch")) >= {"semisupervised", "freematch", "classifier"}
    assert settings.key("freematch") != settings.replace(freematch_momentum=0.99).key("freematch")
    assert settings.key("freematch") != settings.replace(fixmatch_ratio=3).key("freematch")
    assert settings.key("fixmatch") == settings.replace(freematch_momentum=0.99).key("fixmatch")
    assert "-freematch-" in settings.classifier_id("freematch")
    # Run without fixmatch, FixMatch's non-default settings still name the configuration, and FreeMatch's own.
    assert "-fm-" in settings.config_id and "-frm-m0.9-f0.01" in settings.config_id
    for bad, match in (({"freematch_momentum": 1.0}, "freematch_momentum"), ({"freematch_fairness": -0.1}, "freematch_fairness")):
        with pytest.raises(SettingsError, match=match):
            _settings(**bad)


def test_freematch_logs_its_mask_rate_and_threshold(tmp_path):
    X, y = _data(64)
    run = _freematch((X[:8], y[:8]), (X[8:24], y[8:24]), tmp_path / "run", _settings(), X[24:], seeds=[0])
    history = run.histories[0]
    assert {"unlabeled_loss", "mask_rate", "threshold", "fairness_loss"} <= set(history.columns)
    assert "val_threshold" not in history.columns and "val_mask_rate" not in history.columns
    assert ((history["threshold"] > 0) & (history["threshold"] < 1)).all()
    assert ((history["mask_rate"] >= 0) & (history["mask_rate"] <= 1)).all()


def test_killed_freematch_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    X, y = _data(64)
    settings = _settings(lr_schedule="cosine", augment="mixup:alpha=0.4")
    arguments = dict(seeds=[2], score=X[8:24])
    train, validation = (X[:8], y[:8]), (X[8:24], y[8:24])
    uninterrupted, resumed = killed_and_resumed(
        lambda folder: _freematch(train, validation, folder, settings, X[24:], **arguments), tmp_path, monkeypatch)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.models[0].get_weights(), uninterrupted.models[0].get_weights()))
    assert_array_equal(resumed.scored, uninterrupted.scored)
    assert_allclose(resumed.histories[0]["threshold"], uninterrupted.histories[0]["threshold"])
