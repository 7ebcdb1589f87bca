"""Training: seeds, compile, fit with checkpoints and resume, pre-train -> fine-tune.

:func:`fit` is the one training loop of the project.  Around ``model.fit`` it
adds what a long run on a shared machine needs:

* **early stopping** on the validation loss with a patience (the paper's 5,
  section 4.2); the best weights are restored at the end;
* a **checkpoint every epoch**, written atomically (model weights, optimizer
  state, the dropout random-generator state, the early-stopping state and the
  epoch), so a run killed at any moment leaves the last complete epoch on disk;
* **resume**: called again on the same run folder, an interrupted run goes on
  from its last checkpoint with the same data order (the stream's order
  depends only on its seed and the epoch) and ends with the same weights as
  a run that was never interrupted;
* ``history.csv`` (one row per epoch, rewritten atomically), the best model as
  ``model.keras`` and a ``done.json`` marker: a finished run is loaded, not
  trained again.

Run folder layout::

    run_dir/
        checkpoint.json           the commit point of the last checkpoint
        checkpoints/epoch-NNNN.npz  its variables (model + optimizer)
        best.npz                  the best weights so far (for the final restore)
        model.keras               the best model, written when the run ends
                                  (loadable with keras.saving.load_model)
        history.csv               epoch, loss, ..., val_loss, ..., seconds, improved
        done.json                 written when the run has finished

:func:`pretrain_cae` and :func:`finetune` are the paper's two stages: the
CAE learns to reconstruct unlabeled features; a classifier takes its encoder
and trains all weights on labelled data.  :func:`finetune` without a
pre-trained model is the supervised baseline (same classifier, random
initialisation).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn import metrics

from esc_lib import atomic, models

__all__ = [
    "TrainingError",
    "set_seed",
    "ClassCrossentropy",
    "one_hot",
    "compile_classifier",
    "compile_autoencoder",
    "fit",
    "load_history",
    "run_state",
    "pretrain_cae",
    "finetune",
    "evaluate",
    "predict_proba",
]

CHECKPOINT_FILE = "checkpoint.json"
CHECKPOINT_DIR = "checkpoints"
BEST_FILE = "best.npz"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
DONE_FILE = "done.json"
_STATE_VERSION = 1


class TrainingError(ValueError):
    """A run folder that does not fit the call (another model, another seed), or a bad argument."""


# ---------------------------------------------------------------------------
# Seeds and compilation


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and Keras/TensorFlow, and make TensorFlow ops deterministic.

    Call it *before* building a model: the initial weights and the dropout
    layers' generators are drawn when the model is built.  With op
    determinism on, the same seed gives the same run on the same machine
    (same TensorFlow build, same CPU); other machines may round differently.

    Parameters
    ----------
    seed : int >= 0
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _check_learning_rate(learning_rate) -> float:
    if not isinstance(learning_rate, (int, float)) or not (0 < learning_rate < math.inf):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    return float(learning_rate)


@keras.saving.register_keras_serializable(package="esc_lib")
class ClassCrossentropy(keras.losses.Loss):
    """Cross-entropy for either kind of class target, chosen from the target's shape.

    * integer labels [shape=(b,) or (b, 1)] -> sparse categorical cross-entropy;
    * one-hot or soft targets [shape=(b, n_classes)] (e.g. from
      :class:`esc_lib.augment.Mixup`, or :func:`one_hot`) -> categorical
      cross-entropy, with optional label smoothing.

    The choice is made from static shapes when Keras traces the training and
    the evaluation step, so a model compiled once trains on soft targets
    and validates on one-hot ones without any special case.  (Keras'
    ``"accuracy"`` metric is chosen from the first batch's target shape: give
    training and validation the same kind of target, as
    :class:`esc_lib.experiment.Experiment` does with :func:`one_hot`.)

    Parameters
    ----------
    label_smoothing : float in [0, 1)
        Applied to one-hot / soft targets only.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "class_crossentropy", **kwargs):
        if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        dense = len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == y_pred.shape[-1] and y_pred.shape[-1] != 1
        if dense:
            return keras.losses.categorical_crossentropy(y_true, y_pred, label_smoothing=self.label_smoothing)
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing)
        return config


def one_hot(labels, n_classes: int) -> np.ndarray:
    """Integer labels [shape=(n,)] -> one-hot targets float32 [shape=(n, n_classes)].

    Raises
    ------
    ValueError
        Labels that are not 1-D integers in ``0..n_classes-1``.
    """
    labels = np.asarray(labels)
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"one_hot: n_classes must be a positive int, got {n_classes!r}")
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"one_hot: labels must be a 1-D integer array, got dtype {labels.dtype} shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"one_hot: labels must lie in 0..{n_classes - 1}, got {labels.min()}..{labels.max()}")
    return np.eye(n_classes, dtype=np.float32)[labels]


def compile_classifier(model: keras.Model, learning_rate: float = 1e-3, label_smoothing: float = 0.0,
                       decay_steps: int | None = None) -> keras.Model:
    """Adam (the paper's 0.001), :class:`ClassCrossentropy` (integer labels or one-hot / soft targets), accuracy.

    With ``decay_steps`` the learning rate follows a cosine from
    ``learning_rate`` down to 0 over that many optimizer steps (e.g. epochs x
    batches per epoch) instead of staying constant.  The schedule reads the
    optimizer's step counter, which checkpoints keep, so a resumed run
    continues it exactly.
    """
    rate = _check_learning_rate(learning_rate)
    if decay_steps is not None:
        if isinstance(decay_steps, bool) or not isinstance(decay_steps, int) or decay_steps < 1:
            raise ValueError(f"decay_steps must be a positive int or None, got {decay_steps!r}")
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps)
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss=ClassCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
    )
    return model


def compile_autoencoder(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    """Adam (the paper's 0.001) and the mean squared reconstruction error."""
    model.compile(optimizer=keras.optimizers.Adam(_check_learning_rate(learning_rate)), loss="mse")
    return model


# ---------------------------------------------------------------------------
# Atomic files


def _write_json(path: Path, payload: dict) -> None:
    atomic.write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic.atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)


def _save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic.atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **arrays)


def _save_model(model: keras.Model, path: Path) -> None:
    # Keras insists on the .keras extension, so the temporary name keeps it.
    with atomic.atomic_path(path, suffix=".keras") as temporary:
        model.save(temporary)


# ---------------------------------------------------------------------------
# Model and optimizer state


def _fingerprint(model: keras.Model) -> list:
    """What must match between a run folder and the model resuming it: the variable shapes."""
    return [list(map(int, v.shape)) for v in model.variables]


def _ensure_optimizer_built(model: keras.Model) -> None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise TrainingError(f"model {model.name!r} is not compiled; use compile_classifier / compile_autoencoder")
    if not optimizer.built:
        optimizer.build(model.trainable_variables)


def _state_arrays(model: keras.Model, with_optimizer: bool) -> dict[str, np.ndarray]:
    # model.variables includes the dropout layers' seed-generator states,
    # which Keras' own save_weights leaves out; without them a resumed run
    # would draw different dropout masks.
    arrays = {f"model_{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    if with_optimizer:
        arrays.update({f"optimizer_{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(model.optimizer.variables)})
    return arrays


def _assign(variables: Sequence, arrays, prefix: str, source: Path) -> None:
    keys = sorted(k for k in arrays.files if k.startswith(prefix))
    if len(keys) != len(variables):
        raise TrainingError(
            f"{source}: holds {len(keys)} {prefix.rstrip('_')} variables, the model has {len(variables)}; "
            f"was this run folder made with another architecture?"
        )
    for key, variable in zip(keys, variables):
        value = arrays[key]
        if tuple(value.shape) != tuple(variable.shape):
            raise TrainingError(
                f"{source}: variable {variable.path} has shape {tuple(variable.shape)} in the model but "
                f"{tuple(value.shape)} on disk; was this run folder made with another architecture?"
            )
        variable.assign(value)


def _load_state(model: keras.Model, path: Path, with_optimizer: bool) -> None:
    with np.load(path) as arrays:
        _assign(model.variables, arrays, "model_", path)
        if with_optimizer:
            _ensure_optimizer_built(model)
            _assign(model.optimizer.variables, arrays, "optimizer_", path)


# ---------------------------------------------------------------------------
# Data


def _is_stream(data) -> bool:
    return hasattr(data, "as_dataset") and hasattr(data, "epoch")


def _as_arrays(data, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TrainingError(
            f"{what} must be an esc_lib.streams.BatchStream or a pair (X, y) of arrays "
            f"(y=None for an autoencoder), got {type(data).__name__}"
        )
    X, y = data
    X = np.asarray(X)
    if X.ndim < 2 or len(X) == 0:
        raise TrainingError(f"{what}: X must be a non-empty array [n, ...], got shape {X.shape}")
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(X):
            raise TrainingError(f"{what}: X has {len(X)} rows but y has {len(y)}")
    return X, y


def _training_stream(train, batch_size: int, seed: int):
    if _is_stream(train):
        return train
    from esc_lib.streams import BatchStream

    X, y = _as_arrays(train, "train")
    return BatchStream(X, y, batch_size=batch_size, shuffle=True, seed=seed, target="input" if y is None else "label")


def _epochs_dataset(stream, initial_epoch: int):
    """One endless dataset, epoch after epoch, and the number of batches per epoch.

    ``BatchStream.as_dataset(e)`` yields epoch ``e + i`` on its i-th pass, so
    ``repeat()`` chains the epochs in order.  Keras then keeps one iterator
    for the whole run and takes ``steps_per_epoch`` batches per epoch.  (Given
    a finite dataset of unknown length instead, Keras runs every epoch into
    the end of the data, warns "ran out of data", and with a known length
    opens a spare iterator at the end of each epoch, which would start the
    next epoch's generator early and skip an epoch of data order.)
    """
    steps = int(stream.steps_per_epoch)
    if steps < 1:
        raise TrainingError(f"fit: the stream has steps_per_epoch={steps}; it yields no batches")
    return stream.as_dataset(initial_epoch).repeat(), steps


def _validation_data(validation, initial_epoch: int):
    """``(validation_data, validation_steps)`` for ``model.fit``."""
    if validation is None:
        return None, None
    if _is_stream(validation):
        return _epochs_dataset(validation, initial_epoch)
    X, y = _as_arrays(validation, "validation")
    return (X, X if y is None else y), None


# ---------------------------------------------------------------------------
# The run recorder: early stopping + checkpoint + history, in one callback


class _RunRecorder(keras.callbacks.Callback):
    """Early stopping, per-epoch checkpoint and history; its state lives in the run folder."""

    def __init__(self, run_dir: Path, monitor: str, patience: int | None, state: dict, history: list[dict]):
        super().__init__()
        self.run_dir = run_dir
        self.monitor = monitor
        self.patience = patience
        self.state = state
        self.rows = history
        self.best_in_memory: list[np.ndarray] | None = None
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        completed = epoch + 1
        if self.monitor not in logs:
            raise TrainingError(
                f"fit: {self.monitor!r} is not in the epoch logs {sorted(logs)}; pass validation data to "
                f"monitor the validation loss"
            )
        value = float(logs[self.monitor])
        best = self.state["best"]
        improved = math.isfinite(value) and (best is None or value < best)
        if improved:
            self.state.update(best=value, best_epoch=completed, wait=0)
            self.best_in_memory = [np.array(v.numpy()) for v in self.model.variables]
            # The best weights go to a small .npz (fast); model.keras is written
            # once, at the end, from the restored best weights.
            _save_arrays(self.run_dir / BEST_FILE, _state_arrays(self.model, with_optimizer=False))
        else:
            self.state["wait"] += 1
        if self.patience is not None and self.state["wait"] >= self.patience:
            self.state["stopped"] = True
            self.model.stop_training = True

        row = {"epoch": completed}
        row.update({key: float(val) for key, val in logs.items()})
        row.update(seconds=time.perf_counter() - self._started, improved=improved)
        self.rows.append(row)
        _write_csv(self.run_dir / HISTORY_FILE, pd.DataFrame(self.rows))

        # The weights file first, then checkpoint.json, the commit point: a
        # crash in between leaves the previous checkpoint valid.
        weights = Path(CHECKPOINT_DIR) / f"epoch-{completed:04d}.npz"
        _save_arrays(self.run_dir / weights, _state_arrays(self.model, with_optimizer=True))
        previous = self.state.get("weights")
        self.state.update(epoch=completed, weights=str(weights.as_posix()))
        _write_json(self.run_dir / CHECKPOINT_FILE, self.state)
        if previous and previous != self.state["weights"]:
            (self.run_dir / previous).unlink(missing_ok=True)


def load_history(run_dir) -> pd.DataFrame:
    """The per-epoch history of a run folder (empty frame if none yet)."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.exists():
        return pd.DataFrame()
    return pd.read_csv(path)


def run_state(run_dir) -> dict:
    """What a run folder says about itself: ``{"done": dict or None, "checkpoint": dict or None}``."""
    run_dir = Path(run_dir)
    result = {}
    for key, name in (("done", DONE_FILE), ("checkpoint", CHECKPOINT_FILE)):
        path = run_dir / name
        result[key] = json.loads(path.read_text()) if path.exists() else None
    return result


def _clear_run(run_dir: Path) -> None:
    for name in (CHECKPOINT_FILE, BEST_FILE, MODEL_FILE, HISTORY_FILE, DONE_FILE):
        (run_dir / name).unlink(missing_ok=True)
    checkpoints = run_dir / CHECKPOINT_DIR
    if checkpoints.is_dir():
        for path in checkpoints.glob("epoch-*.npz"):
            path.unlink()


def _check_same_run(saved: dict, model: keras.Model, seed: int, path: Path) -> None:
    if saved.get("fingerprint") != _fingerprint(model):
        raise TrainingError(
            f"{path} belongs to a model with other variable shapes than {model.name!r}; use a new run_dir "
            f"(or resume=False to start this one over)"
        )
    if saved.get("seed") != seed:
        raise TrainingError(
            f"{path} was started with seed={saved.get('seed')}; resuming with seed={seed} would not reproduce it "
            f"(pass the same seed, or resume=False to start over)"
        )


def fit(model: keras.Model, train, validation=None, run_dir=None, max_epochs: int = 100, patience: int | None = 5,
        seed: int = 0, resume: bool = True, verbose: int = 1, callbacks: Sequence = (),
        batch_size: int = 32, restore_best: bool = True) -> pd.DataFrame:
    """Train a compiled model with early stopping, per-epoch checkpoints and resume.

    Parameters
    ----------
    model : keras.Model
        Compiled (:func:`compile_classifier` / :func:`compile_autoencoder`).
        For a repeatable run build it after ``set_seed(seed)``.
    train : esc_lib.streams.BatchStream or (X, y)
        Training data.  A stream is used as is (its own seed orders the
        batches); arrays become ``BatchStream(X, y, batch_size, shuffle=True,
        seed=seed)``, with ``y=None`` meaning an autoencoder (target = input).
    validation : BatchStream or (X, y), optional
        Monitored for early stopping (``val_loss``).  Without it the
        training loss is monitored.
    run_dir : str or Path
        The run folder (created).  See the module docstring for its files.
    max_epochs : int > 0
    patience : int >= 0 or None
        Epochs without improvement of the monitored loss before stopping
        (the paper's 5).  None trains for ``max_epochs``; the best weights
        are restored either way (unless ``restore_best`` is False).
    seed : int >= 0
        Passed to :func:`set_seed` at the start (and used for the array
        stream).  Recorded in the run folder; resuming needs the same seed.
    resume : bool
        True: continue the run folder's last checkpoint, load a finished run
        instead of training it again, or extend a run that had reached its
        ``max_epochs`` when called with a larger one.  False: start over
        (this function's files in ``run_dir`` are replaced).
    verbose : int
        Keras' progress output (0 silent, 1 bar, 2 one line per epoch).
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks; they run after the checkpoint of each epoch is written.
    batch_size : int > 0
        Only for array ``train`` data.
    restore_best : bool
        True: end with the weights of the epoch with the lowest monitored
        loss.  False: keep the last epoch's weights (e.g. retraining for a
        number of epochs chosen before, with nothing to monitor).  Recorded
        in ``done.json``, so a finished run loads the same weights.

    Returns
    -------
    history : pandas.DataFrame
        One row per epoch (all epochs of the run, resumed or not): ``epoch``
        (1-based), the Keras logs (``loss``, ``accuracy``, ``val_loss``, ...),
        ``seconds`` and ``improved``.  ``model`` holds the best weights.

    Raises
    ------
    TrainingError
        Bad arguments, a model that is not compiled, or a run folder made by
        another architecture or seed.
    """
    if run_dir is None:
        raise TrainingError("fit: run_dir is required (checkpoints, history.csv and model.keras go there)")
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise TrainingError(f"fit: max_epochs must be a positive int, got {max_epochs!r}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 0):
        raise TrainingError(f"fit: patience must be a non-negative int or None, got {patience!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise TrainingError(f"fit: batch_size must be a positive int, got {batch_size!r}")
    _ensure_optimizer_built(model)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(seed)
    monitor = "loss" if validation is None else "val_loss"

    if not resume:
        _clear_run(run_dir)
    saved = run_state(run_dir)
    done, checkpoint = saved["done"], saved["checkpoint"]
    if done is not None:
        _check_same_run(done, model, seed, run_dir / DONE_FILE)
        extendable = not done.get("stopped") and done["epochs"] < max_epochs and checkpoint is not None
        if not extendable:
            if not done.get("restore_best", True) and checkpoint is not None:
                _load_state(model, run_dir / checkpoint["weights"], with_optimizer=True)
            elif (run_dir / BEST_FILE).exists():
                _load_state(model, run_dir / BEST_FILE, with_optimizer=False)
            elif checkpoint is not None:
                _load_state(model, run_dir / checkpoint["weights"], with_optimizer=True)
            return load_history(run_dir)
        (run_dir / DONE_FILE).unlink()

    if checkpoint is not None:
        _check_same_run(checkpoint, model, seed, run_dir / CHECKPOINT_FILE)
        _load_state(model, run_dir / checkpoint["weights"], with_optimizer=True)
        state = dict(checkpoint)
        state["stopped"] = bool(state.get("stopped")) and patience is not None and state["wait"] >= patience
        history = load_history(run_dir)
        # history.csv is written before checkpoint.json: drop a row the
        # checkpoint never committed.
        rows = history[history["epoch"] <= state["epoch"]].to_dict("records") if len(history) else []
    else:
        state = {
            "version": _STATE_VERSION, "epoch": 0, "weights": None, "best": None, "best_epoch": None,
            "wait": 0, "stopped": False, "monitor": monitor, "seed": seed, "fingerprint": _fingerprint(model),
        }
        rows = []
    state.update(patience=patience, max_epochs=max_epochs)
    if state.get("monitor") != monitor:
        raise TrainingError(
            f"fit: {run_dir} monitored {state.get('monitor')!r}, this call would monitor {monitor!r} "
            f"(validation data given in one call and not the other?)"
        )

    recorder = _RunRecorder(run_dir, monitor, patience, state, rows)
    initial_epoch = state["epoch"]
    if initial_epoch < max_epochs and not state["stopped"]:
        dataset, steps = _epochs_dataset(_training_stream(train, batch_size, seed), initial_epoch)
        validation_data, validation_steps = _validation_data(validation, initial_epoch)
        model.fit(
            dataset,
            steps_per_epoch=steps,
            validation_data=validation_data,
            validation_steps=validation_steps,
            epochs=max_epochs,
            initial_epoch=initial_epoch,
            shuffle=False,  # the stream orders the batches
            callbacks=[recorder, *callbacks],
            verbose=verbose,
        )

    # Restore the best weights (from memory when this call saw them, else from disk).
    if not restore_best:
        pass  # the last epoch's weights, already in the model (trained or loaded from the checkpoint)
    elif recorder.best_in_memory is not None:
        for variable, value in zip(model.variables, recorder.best_in_memory):
            variable.assign(value)
    elif (run_dir / BEST_FILE).exists():
        _load_state(model, run_dir / BEST_FILE, with_optimizer=False)
    _save_model(model, run_dir / MODEL_FILE)
    _write_json(
        run_dir / DONE_FILE,
        {
            "epochs": state["epoch"], "stopped": bool(state["stopped"]), "best": state["best"],
            "best_epoch": state["best_epoch"], "monitor": monitor, "seed": seed,
            "fingerprint": state["fingerprint"], "max_epochs": max_epochs, "patience": patience,
            "restore_best": bool(restore_best),
        },
    )
    return pd.DataFrame(recorder.rows)


# ---------------------------------------------------------------------------
# The paper's two stages


def _split(n: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 < validation_fraction < 1.0:
        raise TrainingError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_validation = max(1, int(round(n * validation_fraction)))
    if n_validation >= n:
        raise TrainingError(f"cannot hold out {validation_fraction:.0%} of {n} examples for validation")
    return order[n_validation:], order[:n_validation]


def pretrain_cae(X, run_dir, encoder: str = models.PAPER_ENCODER, decoder: str = "unpool",
                 batch_norm: bool = False, validation=None, validation_fraction: float = 0.1,
                 batch_size: int = 32, max_epochs: int = 100, patience: int | None = 5, seed: int = 0,
                 learning_rate: float = 1e-3, resume: bool = True, verbose: int = 1,
                 callbacks: Sequence = ()) -> tuple[keras.Model, pd.DataFrame]:
    """Stage 1: train the CAE to reconstruct unlabeled features.

    Parameters
    ----------
    X : np.ndarray [shape=(n, n_mels, n_frames, channels)]
        Unlabeled (standardised) features.
    run_dir : str or Path
        Run folder, see :func:`fit`.
    encoder, decoder, batch_norm
        See :func:`esc_lib.models.build_cae`.
    validation : np.ndarray, optional
        Held-out features for early stopping; by default a random
        ``validation_fraction`` of ``X`` (chosen by ``seed``) is held out.
    batch_size, max_epochs, patience, seed, learning_rate, resume, verbose, callbacks
        See :func:`fit`; the paper used batch size 32, Adam 0.001, patience 5.

    Returns
    -------
    model : keras.Model
        The CAE with its best weights (also saved as ``run_dir/model.keras``).
    history : pandas.DataFrame
    """
    X = np.asarray(X, dtype="float32")
    if X.ndim != 4:
        raise TrainingError(f"pretrain_cae: X must be [n, n_mels, n_frames, channels], got shape {X.shape}")
    if validation is None:
        train_rows, validation_rows = _split(len(X), validation_fraction, seed)
        X_train, X_validation = X[train_rows], X[validation_rows]
    else:
        X_train, X_validation = X, np.asarray(validation, dtype="float32")
    set_seed(seed)
    model = models.build_cae(X.shape[1:], encoder=encoder, decoder=decoder, batch_norm=batch_norm)
    compile_autoencoder(model, learning_rate)
    history = fit(model, (X_train, None), (X_validation, None), run_dir, max_epochs=max_epochs, patience=patience,
                  seed=seed, resume=resume, verbose=verbose, callbacks=callbacks, batch_size=batch_size)
    return model, history


def _input_shape(train) -> tuple[int, ...]:
    if _is_stream(train):
        X = getattr(train, "X", None)
        if X is None:
            raise TrainingError("finetune: pass input_shape= when train is a stream without an X attribute")
        return tuple(np.shape(X)[1:])
    X, _ = _as_arrays(train, "train")
    return tuple(X.shape[1:])


def finetune(train, validation, run_dir, n_classes: int, pretrained=None, encoder: str = models.PAPER_ENCODER,
             head: str = "128fc", batch_norm: bool = False, dropout: float = 0.0, input_shape=None,
             batch_size: int = 32, max_epochs: int = 100, patience: int | None = 5, seed: int = 0,
             learning_rate: float = 1e-3, resume: bool = True, verbose: int = 1,
             callbacks: Sequence = ()) -> tuple[keras.Model, pd.DataFrame]:
    """Stage 2: a classifier, initialised from a pre-trained encoder (or at random), trained on labels.

    All weights are trained (fine-tuning).  With ``pretrained=None`` this is
    the supervised baseline: the same classifier from random initialisation.

    Parameters
    ----------
    train, validation : BatchStream or (X, y)
        Labelled data, see :func:`fit`; ``y`` holds ints in ``0..n_classes-1``.
    run_dir : str or Path
        Run folder, see :func:`fit`.
    n_classes : int >= 2
    pretrained : keras.Model or str or Path, optional
        The trained CAE, or the path of its ``model.keras``; its encoder
        weights are copied with :func:`esc_lib.models.transfer_encoder`.
    encoder, head, batch_norm, dropout
        See :func:`esc_lib.models.build_classifier`; ``encoder`` and
        ``batch_norm`` must match the pre-trained CAE.
    input_shape : tuple, optional
        Taken from the training arrays (or the stream's ``X``) when omitted.
    batch_size, max_epochs, patience, seed, learning_rate, resume, verbose, callbacks
        See :func:`fit`.

    Returns
    -------
    model : keras.Model
        The classifier with its best weights (also ``run_dir/model.keras``).
    history : pandas.DataFrame
    """
    if input_shape is None:
        input_shape = _input_shape(train)
    if isinstance(pretrained, (str, os.PathLike)):
        pretrained = keras.saving.load_model(pretrained, compile=False)
    set_seed(seed)
    name = "classifier_pretrained" if pretrained is not None else "classifier"
    model = models.build_classifier(input_shape, n_classes, encoder=encoder, head=head, batch_norm=batch_norm,
                                    dropout=dropout, name=name)
    if pretrained is not None:
        models.transfer_encoder(pretrained, model)
    compile_classifier(model, learning_rate)
    history = fit(model, train, validation, run_dir, max_epochs=max_epochs, patience=patience, seed=seed,
                  resume=resume, verbose=verbose, callbacks=callbacks, batch_size=batch_size)
    return model, history


# ---------------------------------------------------------------------------
# Evaluation


def predict_proba(model: keras.Model, X, batch_size: int = 256) -> np.ndarray:
    """Class probabilities [shape=(n, n_classes)] for features X [shape=(n, *input_shape)]."""
    X = np.asarray(X, dtype="float32")
    if len(X) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype="float32")
    return np.asarray(model.predict(X, batch_size=batch_size, verbose=0))


def evaluate(model: keras.Model, X, y, batch_size: int = 256) -> dict:
    """Accuracy and cross-entropy of a classifier on labelled features.

    Returns
    -------
    dict
        ``accuracy`` (float in [0, 1]), ``loss`` (mean cross-entropy,
        :func:`sklearn.metrics.log_loss` of the probabilities clipped at 1e-7), ``n`` (number of examples),
        ``predictions`` (np.ndarray of int [shape=(n,)]).
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"evaluate: y must be a 1-D array of {len(X)} integer labels, got shape {y.shape}")
    probabilities = predict_proba(model, X, batch_size=batch_size)
    if len(y) and (y.min() < 0 or y.max() >= probabilities.shape[1]):
        raise ValueError(f"evaluate: labels must be in 0..{probabilities.shape[1] - 1}, got {y.min()}..{y.max()}")
    if len(y) == 0:
        raise ValueError("evaluate: no examples")
    predictions = probabilities.argmax(axis=1)
    labels = np.arange(probabilities.shape[1])
    return {
        "accuracy": float(metrics.accuracy_score(y, predictions)),
        "loss": float(metrics.log_loss(y, np.clip(probabilities, 1e-7, 1.0), labels=labels)),
        "n": int(len(y)),
        "predictions": predictions,
    }
