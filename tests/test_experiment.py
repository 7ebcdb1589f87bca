"""The CV protocol's classifier step with the strong preset's pieces (esc_lib.experiment)."""

from __future__ import annotations

import numpy as np
import pytest

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
    assert settings.head == head and "16_3c_2p" in settings.config_id
