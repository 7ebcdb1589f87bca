"""Training loop: early stopping, atomic checkpoints, history, resume; the two stages train_cae -> train_classifier
(schedule, augmentation, refit, ensembles, settings.json, resume) (esc_lib.training)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from conftest import kill_after
from esc_lib import models, training
from esc_lib.settings import Settings
from esc_lib.training import TrainingError

SHAPE = (8, 10, 1)
TINY = "(4)3c-2p-(4)3c-2p"
LOSS_COLUMNS = ["loss", "accuracy", "val_loss", "val_accuracy"]


def _data(n=96, seed=0):
    """Four classes from the sign of the means of the top and bottom halves: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, *SHAPE)).astype("float32")
    y = (X[:, :4].mean(axis=(1, 2, 3)) > 0).astype("int64") + 2 * (X[:, 4:].mean(axis=(1, 2, 3)) > 0)
    return X, y


def _classifier(seed=0, dropout=0.3, learning_rate=1e-3):
    training.set_seed(seed)
    model = models.build_classifier(SHAPE, 4, encoder=TINY, head="16fc", dropout=dropout)
    return training.compile_classifier(model, learning_rate)


def _same_weights(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


class _CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


# ---------------------------------------------------------------------------
# Seeds and compile


def test_set_seed_makes_initialisation_repeatable():
    a, b, c = _classifier(seed=3), _classifier(seed=3), _classifier(seed=4)
    assert _same_weights(a, b)
    assert not _same_weights(a, c)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_set_seed_rejects_bad_seeds(seed):
    with pytest.raises(ValueError):
        training.set_seed(seed)


def test_compile_uses_adam_and_the_right_loss():
    classifier = _classifier()
    assert isinstance(classifier.optimizer, keras.optimizers.Adam)
    assert float(classifier.optimizer.learning_rate) == pytest.approx(1e-3)
    assert isinstance(classifier.loss, training.ClassCrossentropy)
    cae = training.compile_autoencoder(models.build_cae(SHAPE, TINY), learning_rate=5e-4)
    assert cae.loss == "mse"
    assert float(cae.optimizer.learning_rate) == pytest.approx(5e-4)
    with pytest.raises(ValueError):
        training.compile_classifier(classifier, learning_rate=0)


def test_class_crossentropy_equals_keras_for_both_kinds_of_target():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(5), size=6).astype("float32")
    labels = rng.integers(0, 5, size=6)
    loss = training.ClassCrossentropy()
    sparse = float(loss(labels, probabilities))
    expected = float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, probabilities)))
    assert sparse == pytest.approx(expected, rel=1e-5)
    # one-hot targets give the same value; soft targets the categorical one
    assert float(loss(training.one_hot(labels, 5), probabilities)) == pytest.approx(expected, rel=1e-5)
    soft = rng.dirichlet(np.ones(5), size=6).astype("float32")
    expected_soft = float(np.mean(keras.losses.categorical_crossentropy(soft, probabilities)))
    assert float(loss(soft, probabilities)) == pytest.approx(expected_soft, rel=1e-5)
    smoothed = training.ClassCrossentropy(label_smoothing=0.2)
    expected_smooth = float(np.mean(keras.losses.categorical_crossentropy(soft, probabilities, label_smoothing=0.2)))
    assert float(smoothed(soft, probabilities)) == pytest.approx(expected_smooth, rel=1e-5)
    restored = training.ClassCrossentropy.from_config(smoothed.get_config())
    assert restored.label_smoothing == pytest.approx(0.2)


@pytest.mark.parametrize("label_smoothing", [-0.1, 1.0, "0.1"])
def test_class_crossentropy_rejects_bad_smoothing(label_smoothing):
    with pytest.raises(ValueError, match="label_smoothing"):
        training.ClassCrossentropy(label_smoothing=label_smoothing)


def test_one_hot():
    assert_array_equal(training.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert training.one_hot(np.array([1]), 2).dtype == np.float32


@pytest.mark.parametrize(
    "labels, n_classes",
    [(np.array([0, 3]), 3), (np.array([-1]), 3), (np.array([[0, 1]]), 3), (np.array([0.5]), 3), (np.array([0]), 0)],
)
def test_one_hot_rejects_bad_labels(labels, n_classes):
    with pytest.raises(ValueError, match="one_hot"):
        training.one_hot(labels, n_classes)


def test_fit_with_mixup_soft_targets_and_one_hot_validation(tmp_path):
    """Mixing makes soft targets; one-hot validation goes through the same loss and accuracy."""
    from esc_lib.augment import Mixup
    from esc_lib.streams import BatchStream

    X, y = _data()
    targets = training.one_hot(y, 4)
    history = training.fit(
        _classifier(),
        BatchStream(X, targets, batch_size=16, seed=0, augment=Mixup(alpha=0.4)),
        (X[:32], targets[:32]),
        tmp_path, max_epochs=2, verbose=0,
    )
    assert len(history) == 2 and history[LOSS_COLUMNS].notna().all().all()
    assert history["val_accuracy"].between(0, 1).all()


# ---------------------------------------------------------------------------
# fit: files, history, early stopping


def test_fit_writes_history_checkpoint_and_best_model(tmp_path):
    X, y = _data()
    model = _classifier()
    history = training.fit(model, (X, y), (X[:32], y[:32]), tmp_path, max_epochs=3, patience=5, verbose=0)
    assert list(history["epoch"]) == [1, 2, 3]
    assert set(LOSS_COLUMNS + ["seconds", "improved"]) <= set(history.columns)
    on_disk = pd.read_csv(tmp_path / "history.csv")
    pd.testing.assert_frame_equal(on_disk, history, check_dtype=False)
    checkpoint = json.loads((tmp_path / "checkpoint.json").read_text())
    assert checkpoint["epoch"] == 3 and (tmp_path / checkpoint["weights"]).exists()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["epoch-0003.npz"]  # older ones removed
    done = json.loads((tmp_path / "done.json").read_text())
    assert done["epochs"] == 3 and done["best_epoch"] == int(history["val_loss"].idxmin()) + 1
    # Nothing half-written is left behind.
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert_array_equal(reloaded.predict(X[:8], verbose=0), model.predict(X[:8], verbose=0))


def test_early_stopping_restores_the_best_weights(tmp_path):
    X, y = _data()
    # Validation labels permuted against the training labels: the validation loss is
    # lowest early and rises while the model learns the training labels.
    y_validation = (y + 1) % 4
    model = _classifier(dropout=0.0, learning_rate=1e-2)
    patience = 2
    history = training.fit(model, (X, y), (X, y_validation), tmp_path, max_epochs=30, patience=patience, verbose=0)
    best_epoch = int(history["val_loss"].idxmin()) + 1
    assert len(history) == best_epoch + patience < 30  # stopped by patience, not by max_epochs
    assert history["val_loss"].iloc[-1] > history["val_loss"].min()
    result = model.evaluate(X, y_validation, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(history["val_loss"].min(), rel=1e-5)
    assert json.loads((tmp_path / "done.json").read_text())["stopped"] is True


def test_restore_best_false_keeps_the_last_weights_also_when_loaded(tmp_path):
    X, y = _data()
    model = _classifier(dropout=0.0, learning_rate=1e-2)
    history = training.fit(model, (X, y), (X, (y + 1) % 4), tmp_path, max_epochs=4, patience=None,
                           restore_best=False, verbose=0)
    assert len(history) == 4
    last = [np.array(v) for v in model.get_weights()]
    assert json.loads((tmp_path / "done.json").read_text())["restore_best"] is False
    loaded = _classifier(dropout=0.0, learning_rate=1e-2)
    training.fit(loaded, (X, y), (X, (y + 1) % 4), tmp_path, max_epochs=4, patience=None, restore_best=False, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(last, loaded.get_weights()))
    # the validation loss was lowest before the last epoch here, so the best weights differ
    if int(history["val_loss"].idxmin()) != 3:
        best = _classifier(dropout=0.0, learning_rate=1e-2)
        training.fit(best, (X, y), (X, (y + 1) % 4), tmp_path / "best", max_epochs=4, patience=None, verbose=0)
        assert not _same_weights(best, loaded)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A crash while writing epoch 3's checkpoint leaves epoch 2's intact and resumable."""
    X, y = _data()
    real_savez = np.savez

    def failing_savez(handle, **arrays):
        if "epoch-0003" in getattr(handle, "name", ""):
            handle.write(b"half a checkpoint")
            raise OSError("disk full")
        return real_savez(handle, **arrays)

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        training.fit(_classifier(), (X, y), (X[:32], y[:32]), tmp_path, max_epochs=4, verbose=0)
    monkeypatch.setattr(np, "savez", real_savez)

    checkpoint = json.loads((tmp_path / "checkpoint.json").read_text())
    assert checkpoint["epoch"] == 2 and checkpoint["weights"] == "checkpoints/epoch-0002.npz"
    assert not (tmp_path / "checkpoints" / "epoch-0003.npz").exists()
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    with np.load(tmp_path / checkpoint["weights"]) as arrays:
        assert len(arrays.files) > 0
    # history.csv had epoch 3 written before the crash; resuming drops it and redoes epoch 3.
    resumed = training.fit(_classifier(), (X, y), (X[:32], y[:32]), tmp_path, max_epochs=4, verbose=0)
    assert list(resumed["epoch"]) == [1, 2, 3, 4]
    uninterrupted_model = _classifier()
    uninterrupted = training.fit(uninterrupted_model, (X, y), (X[:32], y[:32]), tmp_path / "ref", max_epochs=4,
                                 verbose=0)
    pd.testing.assert_frame_equal(resumed[LOSS_COLUMNS], uninterrupted[LOSS_COLUMNS])


# ---------------------------------------------------------------------------
# Resume


@pytest.mark.slow
def test_resumed_run_ends_with_the_same_weights(tmp_path):
    """Killed after epoch 2 of 5 and resumed in a fresh model = never interrupted, bit for bit.

    Dropout is on, so this also covers the dropout generators' state, which
    the checkpoint stores beside the weights and the optimizer state.
    """
    X, y = _data()
    validation = (X[:32], y[:32])

    uninterrupted = _classifier()
    history_a = training.fit(uninterrupted, (X, y), validation, tmp_path / "a", max_epochs=5, patience=None,
                             verbose=0)
    final_a = json.loads((tmp_path / "a" / "checkpoint.json").read_text())

    with pytest.raises(KeyboardInterrupt):
        training.fit(_classifier(), (X, y), validation, tmp_path / "b", max_epochs=5, patience=None, verbose=0,
                     callbacks=[kill_after(2)])
    assert json.loads((tmp_path / "b" / "checkpoint.json").read_text())["epoch"] == 2
    assert not (tmp_path / "b" / "done.json").exists()

    counter = _CountEpochs()
    resumed = _classifier()  # a new process would build a fresh model too
    history_b = training.fit(resumed, (X, y), validation, tmp_path / "b", max_epochs=5, patience=None, verbose=0,
                             callbacks=[counter])
    assert counter.epochs == 3  # epochs 3, 4, 5 only
    pd.testing.assert_frame_equal(history_b[LOSS_COLUMNS], history_a[LOSS_COLUMNS])  # exact
    assert _same_weights(resumed, uninterrupted)  # best weights, exact
    with np.load(tmp_path / "a" / final_a["weights"]) as a, \
            np.load(tmp_path / "b" / "checkpoints" / "epoch-0005.npz") as b:
        assert a.files == b.files
        for key in a.files:  # last-epoch model + optimizer state, exact
            assert_array_equal(a[key], b[key])


def _tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard event files under ``folder``: ``{tag: [(step, value), ...]}``, all files merged."""
    import tensorflow as tf

    scalars = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return {tag: sorted(points) for tag, points in scalars.items()}


@pytest.mark.slow
def test_tensorboard_logs_go_to_their_own_folder_and_a_resumed_run_appends_to_them(tmp_path):
    """Epoch scalars under run_dir/tensorboard (train, validation), nothing among the checkpoints; killed after
    epoch 2 of 4 and resumed, the logs hold each epoch once, equal to an uninterrupted run's, and the weights too."""
    X, y = _data()
    validation = (X[:32], y[:32])
    uninterrupted = _classifier()
    training.fit(uninterrupted, (X, y), validation, tmp_path / "a", max_epochs=4, patience=None, verbose=0)
    logs = tmp_path / "a" / "tensorboard"
    assert sorted(p.name for p in logs.iterdir()) == ["train", "validation"]
    assert [p.name for p in (tmp_path / "a" / "checkpoints").iterdir()] == ["epoch-0004.npz"]
    a_train, a_validation = _tensorboard_scalars(logs / "train"), _tensorboard_scalars(logs / "validation")
    assert [step for step, _ in a_train["epoch_loss"]] == [0, 1, 2, 3]  # Keras counts epochs from 0
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(a_train)
    assert not any(tag.startswith(("batch_", "epoch_steps")) for tag in a_train)  # epoch scalars only: cheap
    history = training.load_history(tmp_path / "a")
    np.testing.assert_allclose([v for _, v in a_validation["epoch_loss"]], history["val_loss"], rtol=1e-6)

    with pytest.raises(KeyboardInterrupt):
        training.fit(_classifier(), (X, y), validation, tmp_path / "b", max_epochs=4, patience=None, verbose=0,
                     callbacks=[kill_after(2)])
    assert [s for s, _ in _tensorboard_scalars(tmp_path / "b" / "tensorboard" / "train")["epoch_loss"]] == [0, 1]
    resumed = _classifier()
    training.fit(resumed, (X, y), validation, tmp_path / "b", max_epochs=4, patience=None, verbose=0)
    assert _same_weights(resumed, uninterrupted)
    logs = tmp_path / "b" / "tensorboard"
    assert len(list((logs / "train").glob("events.out.tfevents.*"))) == 2  # one per process that trained
    assert _tensorboard_scalars(logs / "train")["epoch_loss"] == a_train["epoch_loss"]  # each epoch once, same values
    assert _tensorboard_scalars(logs / "validation")["epoch_loss"] == a_validation["epoch_loss"]

    # Starting over (resume=False) drops the old curves with the rest of the run.
    training.fit(_classifier(), (X, y), validation, tmp_path / "b", max_epochs=1, verbose=0, resume=False)
    assert [s for s, _ in _tensorboard_scalars(logs / "train")["epoch_loss"]] == [0]


@pytest.mark.slow
def test_extending_a_finished_run_equals_a_longer_run(tmp_path):
    X, y = _data()
    validation = (X[:32], y[:32])
    long = _classifier()
    training.fit(long, (X, y), validation, tmp_path / "long", max_epochs=4, patience=None, verbose=0)
    short = _classifier()
    training.fit(short, (X, y), validation, tmp_path / "short", max_epochs=2, patience=None, verbose=0)
    extended = _classifier()
    history = training.fit(extended, (X, y), validation, tmp_path / "short", max_epochs=4, patience=None, verbose=0)
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert _same_weights(extended, long)


def test_a_finished_run_is_loaded_not_retrained(tmp_path):
    X, y = _data()
    trained = _classifier()
    first = training.fit(trained, (X, y), (X[:32], y[:32]), tmp_path, max_epochs=2, verbose=0)
    stamp = (tmp_path / "history.csv").stat().st_mtime_ns
    counter = _CountEpochs()
    again = _classifier()
    second = training.fit(again, (X, y), (X[:32], y[:32]), tmp_path, max_epochs=2, verbose=0, callbacks=[counter])
    assert counter.epochs == 0
    assert (tmp_path / "history.csv").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(first, second, check_dtype=False)
    assert _same_weights(again, trained)


def test_resume_false_starts_over(tmp_path):
    X, y = _data()
    training.fit(_classifier(), (X, y), (X[:32], y[:32]), tmp_path, max_epochs=2, verbose=0)
    history = training.fit(_classifier(), (X, y), (X[:32], y[:32]), tmp_path, max_epochs=1, verbose=0, resume=False)
    assert list(history["epoch"]) == [1]
    assert len(pd.read_csv(tmp_path / "history.csv")) == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seed": 1}, "seed"),
        ({"model": lambda: training.compile_classifier(models.build_classifier(SHAPE, 4, encoder="(5)3c-2p"))},
         "variable shapes"),
    ],
)
def test_resuming_with_another_seed_or_model_raises(tmp_path, change, message):
    X, y = _data()
    with pytest.raises(KeyboardInterrupt):
        training.fit(_classifier(), (X, y), (X[:32], y[:32]), tmp_path, max_epochs=3, verbose=0,
                     callbacks=[kill_after(1)])
    model = change["model"]() if "model" in change else _classifier()
    with pytest.raises(TrainingError, match=message):
        training.fit(model, (X, y), (X[:32], y[:32]), tmp_path, max_epochs=3, verbose=0, seed=change.get("seed", 0))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"run_dir": None}, "run_dir"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"patience": -1}, "patience"),
        ({"batch_size": 0}, "batch_size"),
        ({"train": [1, 2, 3]}, "BatchStream"),
        ({"train": (np.zeros((4, *SHAPE)), np.zeros(3))}, "rows"),
    ],
)
def test_fit_rejects_bad_arguments(tmp_path, kwargs, message):
    X, y = _data(16)
    arguments = {"model": _classifier(), "train": (X, y), "validation": (X, y), "run_dir": tmp_path,
                 "max_epochs": 1, "verbose": 0}
    arguments.update(kwargs)
    with pytest.raises(TrainingError, match=message):
        training.fit(**arguments)


def test_fit_needs_a_compiled_model(tmp_path):
    X, y = _data(16)
    with pytest.raises(TrainingError, match="compile"):
        training.fit(models.build_classifier(SHAPE, 4, encoder=TINY), (X, y), (X, y), tmp_path, verbose=0)


def test_fit_takes_streams(tmp_path):
    from esc_lib.streams import BatchStream

    X, y = _data()
    history = training.fit(
        _classifier(),
        BatchStream(X, y, batch_size=16, seed=0),
        BatchStream(X[:32], y[:32], batch_size=64, shuffle=False),
        tmp_path, max_epochs=2, verbose=0,
    )
    assert len(history) == 2 and history["val_loss"].notna().all()


# ---------------------------------------------------------------------------
# The two stages: train_cae -> train_classifier


def _settings(**changes):
    """Tiny settings for both stages: the TINY encoder, a 16-unit head, a couple of epochs."""
    values = dict(encoder=TINY, head="16fc", batch_size=16, max_epochs=2, patience=5, dropout=0.0,
                  cae_batch_size=16, cae_max_epochs=2, seed=0)
    values.update(changes)
    return Settings(**values)


def _stage(run_dir):
    return json.loads((run_dir / "settings.json").read_text())


def _inject_callbacks(monkeypatch, *extra):
    """Make every training.fit call of train_classifier / train_cae also run ``extra`` callbacks."""
    real = training.fit

    def fit(*args, callbacks=(), **kwargs):
        return real(*args, callbacks=[*callbacks, *extra], **kwargs)

    monkeypatch.setattr(training, "fit", fit)
    return real


@pytest.mark.slow
def test_train_cae_then_train_classifier_and_supervised_baseline(tmp_path):
    import esc_lib.layers  # noqa: F401  (registers the CAE's custom layers for loading)

    X, y = _data(128)
    settings = _settings(cae_max_epochs=3)
    cae, cae_history = training.train_cae(X, tmp_path / "cae", settings)
    assert cae_history["val_loss"].notna().all() and cae_history["loss"].iloc[-1] < cae_history["loss"].iloc[0]
    assert cae.output_shape == (None, *SHAPE)
    assert _stage(tmp_path / "cae")["stage"] == "cae" and _stage(tmp_path / "cae")["key"] == settings.key("cae")

    train, validation = (X[:96], y[:96]), (X[96:], y[96:])
    # From the saved CAE, as a notebook would do it in another session.
    saved_cae = keras.saving.load_model(tmp_path / "cae" / "model.keras")
    pretrained = training.train_classifier(train, validation, 4, tmp_path / "pre", settings, seeds=[0],
                                           pretrained=saved_cae, score=X[96:])
    baseline = training.train_classifier(train, validation, 4, tmp_path / "sup", settings, seeds=[0], score=X[96:])
    assert len(pretrained.histories[0]) == 2 and pretrained.runs == [tmp_path / "pre"]
    assert pretrained.validation.shape == (32, 4) and pretrained.scored.shape == (32, 4)
    assert _stage(tmp_path / "pre")["stage"] == "pretrained" and _stage(tmp_path / "sup")["stage"] == "supervised"
    assert _stage(tmp_path / "pre")["key"] == settings.key("pretrained")
    model, base = pretrained.models[0], baseline.models[0]
    # Fine-tuning moved the transferred encoder weights (all weights train).
    assert not np.array_equal(model.get_layer("encoder_conv_1").get_weights()[0],
                              cae.get_layer("encoder_conv_1").get_weights()[0])
    for run, trained in (("pre", model), ("sup", base)):
        reloaded = keras.saving.load_model(tmp_path / run / "model.keras")
        assert_array_equal(training.predict_proba(reloaded, X[96:]), training.predict_proba(trained, X[96:]))
    # The first epoch starts from different weights: pre-trained vs random.
    assert not _same_weights(model, base)
    # Same seed, random initialisation: the supervised baseline is repeatable.
    again = training.train_classifier(train, validation, 4, tmp_path / "sup-again", settings, seeds=[0], score=X[96:])
    assert_array_equal(again.scored, baseline.scored)


def test_train_classifier_starts_from_the_cae_encoder(tmp_path, monkeypatch):
    """Before its first step, every pre-trained member holds the CAE's encoder weights exactly."""
    X, y = _data(32)
    settings = _settings(max_epochs=1)
    training.set_seed(7)
    cae = models.build_cae(SHAPE, TINY)
    seen = []
    real = training.fit

    def fit(model, *args, **kwargs):
        seen.append(model.get_layer("encoder_conv_2").get_weights()[0].copy())
        return real(model, *args, **kwargs)

    monkeypatch.setattr(training, "fit", fit)
    training.train_classifier((X, y), (X[:8], y[:8]), 4, tmp_path / "run", settings, seeds=[0, 1000], pretrained=cae)
    assert len(seen) == 2
    for weights in seen:
        assert_array_equal(weights, cae.get_layer("encoder_conv_2").get_weights()[0])


def test_train_classifier_checks_the_pretrained_encoder(tmp_path):
    X, y = _data(16)
    cae = models.build_cae(SHAPE, "(3)3c-2p")
    with pytest.raises(ValueError, match="transfer_encoder"):
        training.train_classifier((X, y), (X, y), 4, tmp_path, _settings(max_epochs=1), seeds=[0], pretrained=cae)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"seeds": []}, "seeds"), ({"train": [1, 2, 3]}, "BatchStream"), ({"validation": (np.zeros((4, *SHAPE)), np.zeros(3))}, "rows")],
)
def test_train_classifier_rejects_bad_arguments(tmp_path, kwargs, message):
    X, y = _data(16)
    arguments = {"train": (X, y), "validation": (X, y), "n_classes": 4, "run_dir": tmp_path,
                 "settings": _settings(max_epochs=1), "seeds": [0]}
    arguments.update(kwargs)
    with pytest.raises(TrainingError, match=message):
        training.train_classifier(**arguments)


def test_train_cae_rejects_bad_data_and_loads_a_finished_run(tmp_path):
    with pytest.raises(TrainingError, match="train_cae"):
        training.train_cae(np.zeros((4, 8, 10)), tmp_path / "flat", _settings())
    with pytest.raises(TrainingError, match="pre-training data"):
        training.train_cae(np.zeros((1, *SHAPE)), tmp_path / "one", _settings())
    X, _ = _data(48)
    first, history = training.train_cae(X, tmp_path / "cae", _settings(cae_max_epochs=1))
    stamp = (tmp_path / "cae" / "history.csv").stat().st_mtime_ns
    again, history_again = training.train_cae(X, tmp_path / "cae", _settings(cae_max_epochs=1))
    assert (tmp_path / "cae" / "history.csv").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(history, history_again, check_dtype=False)
    assert _same_weights(first, again)
    # The decoder override trains the other decoder, and its settings.json says so.
    training.train_cae(X, tmp_path / "upsample", _settings(cae_max_epochs=1), decoder="upsample")
    assert _stage(tmp_path / "upsample")["pretraining"]["decoder"] == "upsample"


def test_cosine_schedule_trains_every_epoch_and_decays_the_rate_to_zero(tmp_path):
    X, y = _data()
    # Validation labels permuted: with a constant rate early stopping would end this run after 2 epochs.
    settings = _settings(lr_schedule="cosine", max_epochs=3, patience=1, learning_rate=0.01)
    run = training.train_classifier((X, y), (X, (y + 1) % 4), 4, tmp_path / "run", settings, seeds=[0])
    history = run.histories[0]
    assert list(history["epoch"]) == [1, 2, 3] and run.epochs == [3]  # patience ignored
    assert "val_loss" in history.columns  # still watched (and scored) on the validation fold
    optimizer = run.models[0].optimizer
    steps = 3 * int(np.ceil(len(X) / 16))
    assert int(optimizer.iterations.numpy()) == steps
    assert float(optimizer.learning_rate.numpy()) < 0.01 * 1e-3  # the cosine has reached (about) zero
    schedule = optimizer.get_config()["learning_rate"]  # the serialised CosineDecay
    assert schedule["config"]["decay_steps"] == steps and schedule["config"]["initial_learning_rate"] == 0.01
    done = training.run_state(tmp_path / "run")["done"]
    assert done["restore_best"] is False and done["patience"] is None and done["epochs"] == 3


def test_label_smoothing_reaches_the_classifiers_loss_and_names_its_runs(tmp_path):
    """label_smoothing: the compiled loss smooths the targets, so no epoch's loss falls below the smoothed targets' entropy."""
    X, y = _data()
    smoothing, k = 0.5, 4
    settings = _settings(lr_schedule="cosine", max_epochs=4, learning_rate=0.01, label_smoothing=smoothing)
    run = training.train_classifier((X, y), (X, y), k, tmp_path / "run", settings, seeds=[0])
    loss = run.models[0].loss
    assert isinstance(loss, training.ClassCrossentropy) and loss.label_smoothing == smoothing
    target = np.full(k, smoothing / k) + np.eye(k)[0] * (1 - smoothing)
    entropy = float(-(target * np.log(target)).sum())
    assert (run.histories[0]["loss"] >= entropy - 1e-3).all()
    # Named in the configuration and the classifier's key; at 0, the names and keys of earlier runs.
    plain = settings.replace(label_smoothing=0.0)
    assert "-ls0.5" in settings.config_id and "-ls" not in plain.config_id
    assert settings.key("supervised") != plain.key("supervised") and settings.key("cae") == plain.key("cae")
    assert "label_smoothing" not in plain.stage_settings("supervised")["classifier"]


def test_mixup_augmentation_trains_on_soft_targets(tmp_path, monkeypatch):
    """With mixup the training batches carry soft targets; validation stays one-hot; the run trains."""
    X, y = _data()
    streams = []
    real = training.fit

    def fit(model, train, *args, **kwargs):
        streams.append(train)
        return real(model, train, *args, **kwargs)

    monkeypatch.setattr(training, "fit", fit)
    settings = _settings(augment="shift:max_shift=2 + mask:max_freq_width=2:max_time_width=2 + mixup:alpha=0.4",
                         dropout=0.3)
    run = training.train_classifier((X, y), (X[:32], y[:32]), 4, tmp_path / "mixed", settings, seeds=[0])
    history = run.histories[0]
    assert len(history) == 2 and history[LOSS_COLUMNS].notna().all().all()
    assert history["val_accuracy"].between(0, 1).all()
    x_batch, y_batch = next(iter(streams[0].epoch(0)))
    assert y_batch.shape == (16, 4)
    np.testing.assert_allclose(y_batch.sum(axis=1), 1.0, rtol=1e-5)
    assert ((y_batch > 0) & (y_batch < 1)).any()  # mixed, not one-hot
    plain = training.train_classifier((X, y), (X[:32], y[:32]), 4, tmp_path / "plain", _settings(dropout=0.3), seeds=[0])
    assert not np.allclose(plain.histories[0]["loss"], history["loss"])


def test_refit_trains_for_the_epochs_early_stopping_chose(tmp_path):
    X, y = _data()
    train, validation = (X[:64], y[:64]), (X[64:], (y[64:] + 1) % 4)  # validation loss rises: early stop
    common = dict(max_epochs=20, patience=2, learning_rate=0.01)
    watched = training.train_classifier(train, validation, 4, tmp_path / "fold1", _settings(**common), seeds=[0])
    history = watched.histories[0]
    best_epoch = int(history["val_loss"].idxmin()) + 1
    assert len(history) == best_epoch + 2 < 20
    stamp = (tmp_path / "fold1" / "history.csv").stat().st_mtime_ns

    settings = _settings(**common, refit_on_validation=True)
    refit = training.train_classifier(train, validation, 4, tmp_path / "fold1", settings, seeds=[0], score=X[:8])
    assert refit.runs == [tmp_path / "fold1-refit"]
    assert refit.epochs == [best_epoch]
    # The early-stopped run was loaded, not retrained; its history is the one reported.
    assert (tmp_path / "fold1" / "history.csv").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(refit.histories[0], history, check_dtype=False)
    refit_history = training.load_history(tmp_path / "fold1-refit")
    assert len(refit_history) == best_epoch and "val_loss" not in refit_history.columns
    done = training.run_state(tmp_path / "fold1-refit")["done"]
    assert done["epochs"] == best_epoch and done["restore_best"] is False
    # Trained on train + validation (96 clips, 6 batches of 16 per epoch).
    assert int(refit.models[0].optimizer.iterations.numpy()) == best_epoch * 6
    assert refit.validation is not None  # from the watched model, which never trained on the validation fold
    assert_array_equal(refit.scored, training.predict_proba(refit.models[0], X[:8]))
    assert not _same_weights(refit.models[0], watched.models[0])
    assert _stage(tmp_path / "fold1-refit")["stage"] == "supervised"


def test_cosine_refit_trains_once_on_train_and_validation(tmp_path):
    X, y = _data(64)
    settings = _settings(lr_schedule="cosine", max_epochs=2, refit_on_validation=True)
    run = training.train_classifier((X[:48], y[:48]), (X[48:], y[48:]), 4, tmp_path / "fold1", settings, seeds=[0])
    assert run.runs == [tmp_path / "fold1-refit"] and run.epochs == [2]
    assert not (tmp_path / "fold1").exists()  # nothing to choose on the validation fold: no watched run
    assert run.validation is None and "val_loss" not in run.histories[0].columns
    assert int(run.models[0].optimizer.iterations.numpy()) == 2 * 4


def test_ensemble_members_average_and_every_run_folder_has_its_settings(tmp_path):
    import esc_lib.layers  # noqa: F401

    X, y = _data()
    train, validation, test = (X[:64], y[:64]), (X[64:80], y[64:80]), X[80:]
    settings = _settings(ensemble=2, refit_on_validation=True, max_epochs=2)
    run = training.train_classifier(train, validation, 4, tmp_path / "fold1", settings, seeds=[1, 1001], score=test)
    assert run.runs == [tmp_path / "fold1-refit", tmp_path / "fold1-m1-refit"]
    assert run.runs == training.member_runs(tmp_path / "fold1", 2, refit=True)
    assert len(run.models) == len(run.histories) == len(run.epochs) == 2
    members = [keras.saving.load_model(folder / training.MODEL_FILE) for folder in run.runs]
    probabilities = [training.predict_proba(member, test) for member in members]
    np.testing.assert_allclose(run.scored, np.mean(probabilities, axis=0), atol=1e-6)
    assert not np.allclose(probabilities[0], probabilities[1])  # different seeds, different members
    for folder in ("fold1", "fold1-refit", "fold1-m1", "fold1-m1-refit"):
        written = _stage(tmp_path / folder)
        assert written["stage"] == "supervised" and written["key"] == settings.key("supervised")
        assert set(written) == {"stage", "key", "data", "features", "network", "classifier"}
    assert training.run_state(tmp_path / "fold1-m1")["done"]["seed"] == 1001

    # A finished ensemble is loaded, not trained again.
    stamps = {f: (tmp_path / f / "history.csv").stat().st_mtime_ns for f in ("fold1", "fold1-refit", "fold1-m1-refit")}
    again = training.train_classifier(train, validation, 4, tmp_path / "fold1", settings, seeds=[1, 1001], score=test)
    assert stamps == {f: (tmp_path / f / "history.csv").stat().st_mtime_ns for f in stamps}
    np.testing.assert_array_equal(again.scored, run.scored)


@pytest.mark.slow
def test_killed_train_classifier_resumes_to_the_same_weights(tmp_path, monkeypatch):
    """A classifier run killed after epoch 2 of 4 and resumed = never interrupted, bit for bit.

    Cosine schedule, dropout and mixing are on: the schedule's step counter,
    the dropout generators and the augmentation's generator all resume.
    """
    X, y = _data()
    train, validation = (X[:64], y[:64]), (X[64:], y[64:])
    settings = _settings(lr_schedule="cosine", max_epochs=4, dropout=0.3, augment="shift:max_shift=2 + mixup:alpha=0.4")
    uninterrupted = training.train_classifier(train, validation, 4, tmp_path / "a", settings, seeds=[5], score=X[:16])

    real = _inject_callbacks(monkeypatch, kill_after(2))
    with pytest.raises(KeyboardInterrupt):
        training.train_classifier(train, validation, 4, tmp_path / "b", settings, seeds=[5], score=X[:16])
    assert training.run_state(tmp_path / "b")["checkpoint"]["epoch"] == 2
    assert not (tmp_path / "b" / "done.json").exists()

    monkeypatch.setattr(training, "fit", real)
    counter = _CountEpochs()
    _inject_callbacks(monkeypatch, counter)
    resumed = training.train_classifier(train, validation, 4, tmp_path / "b", settings, seeds=[5], score=X[:16])
    assert counter.epochs == 2  # epochs 3 and 4 only
    pd.testing.assert_frame_equal(resumed.histories[0][LOSS_COLUMNS], uninterrupted.histories[0][LOSS_COLUMNS])
    assert _same_weights(resumed.models[0], uninterrupted.models[0])
    assert_array_equal(resumed.scored, uninterrupted.scored)
    with np.load(tmp_path / "a" / "checkpoints" / "epoch-0004.npz") as a, \
            np.load(tmp_path / "b" / "checkpoints" / "epoch-0004.npz") as b:
        assert a.files == b.files
        for key in a.files:  # model + optimizer state (with the schedule's step), exact
            assert_array_equal(a[key], b[key])


def test_evaluate_and_predict_proba():
    X, y = _data(20)
    model = _classifier()
    probabilities = training.predict_proba(model, X, batch_size=7)
    assert probabilities.shape == (20, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    result = training.evaluate(model, X, y)
    assert result["n"] == 20
    assert result["accuracy"] == pytest.approx(np.mean(probabilities.argmax(axis=1) == y))
    expected_loss = -np.mean(np.log(np.clip(probabilities[np.arange(20), y], 1e-7, 1)))
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-4)
    assert training.predict_proba(model, X[:0]).shape == (0, 4)
    with pytest.raises(ValueError, match="labels"):
        training.evaluate(model, X, np.full(20, 4))
    with pytest.raises(ValueError, match="1-D"):
        training.evaluate(model, X, y[:5])


# ---------------------------------------------------------------------------
# Real data


@pytest.mark.realdata
@pytest.mark.slow
def test_paper_classifier_learns_esc10_fold1(esc10_root, isolated_cache):
    """ESC-10, paper features, fold 1 as test: the supervised paper classifier is clearly above chance."""
    from esc_lib import features
    from esc_lib.data import datasets

    dataset = datasets.load_esc10(esc10_root)
    X = features.extract_clips(dataset.paths, features.PAPER, progress=False)
    assert X.shape == (400, 28, 36, 1)
    folds, y = dataset.folds, dataset.labels
    train, validation, test = np.isin(folds, [3, 4, 5]), folds == 2, folds == 1
    scaler = features.Standardizer().fit(X[train])
    run = training.train_classifier(
        (scaler.transform(X[train]), y[train]), (scaler.transform(X[validation]), y[validation]), 10,
        isolated_cache.parent / "run", Settings(max_epochs=6, patience=5, seed=0), seeds=[0],
    )
    result = training.evaluate(run.models[0], scaler.transform(X[test]), y[test])
    print(f"ESC-10 fold 1, {len(run.histories[0])} epochs: test accuracy {result['accuracy']:.3f}")
    assert result["n"] == 80
    assert result["accuracy"] >= 0.30  # chance is 0.10


def test_a_run_folder_trained_with_other_settings_is_an_error(tmp_path):
    """settings.json guards the folder: the same key with other values (a collision) is refused, not reused."""
    X, y = _data(32)
    settings = _settings(max_epochs=1)
    training.train_classifier((X[:16], y[:16]), (X[16:], y[16:]), 4, tmp_path / "run", settings, seeds=[0])
    stored = json.loads((tmp_path / "run" / "settings.json").read_text())
    stored["classifier"]["dropout"] = 0.5  # as if another configuration had written this folder
    (tmp_path / "run" / "settings.json").write_text(json.dumps(stored))
    with pytest.raises(TrainingError, match="other settings .*classifier.dropout"):
        training.train_classifier((X[:16], y[:16]), (X[16:], y[16:]), 4, tmp_path / "run", settings, seeds=[0])


def test_resume_removes_the_temporaries_a_kill_left(tmp_path, monkeypatch):
    """kill -9 during a checkpoint write leaves .epoch-NNNN.npz.<hex>.tmp; the resumed run removes it."""
    X, y = _data(32)
    settings = _settings(max_epochs=2)
    real = _inject_callbacks(monkeypatch, kill_after(1))
    with pytest.raises(KeyboardInterrupt):
        training.train_classifier((X[:16], y[:16]), (X[16:], y[16:]), 4, tmp_path / "run", settings, seeds=[0])
    leftover = tmp_path / "run" / "checkpoints" / ".epoch-0002.npz.1a2b3c4d.tmp"
    leftover.write_bytes(b"half a checkpoint")
    (tmp_path / "run" / ".history.csv.5e6f7a8b.tmp").write_text("epoch\n")
    monkeypatch.setattr(training, "fit", real)
    training.train_classifier((X[:16], y[:16]), (X[16:], y[16:]), 4, tmp_path / "run", settings, seeds=[0])
    assert not list((tmp_path / "run").rglob(".*.tmp*"))
    assert training.run_state(tmp_path / "run")["done"]["epochs"] == 2


def test_the_retracing_warning_of_many_models_is_dropped_and_other_warnings_pass():
    import logging

    import tensorflow as tf

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep()
    tf.get_logger().addHandler(handler)
    try:
        tf.get_logger().warning("5 out of the last 9 calls to <function f> triggered tf.function retracing. Tracing is expensive")
        tf.get_logger().warning("something else")
    finally:
        tf.get_logger().removeHandler(handler)
    assert records == ["something else"]
