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
  trained again;
* **TensorBoard logs** (Keras' :class:`keras.callbacks.TensorBoard`, epoch
  scalars only) in ``tensorboard/``, written after each epoch's checkpoint and
  flushed at once, so ``tensorboard --logdir runs/`` follows a long run live; a
  resumed run appends from the epoch it resumes at.

Run folder layout::

    run_dir/
        checkpoint.json           the commit point of the last checkpoint
        checkpoints/epoch-NNNN.npz  its variables (model + optimizer)
        best.npz                  the best weights so far (for the final restore)
        model.keras               the best model, written when the run ends
                                  (loadable with keras.saving.load_model)
        history.csv               epoch, loss, ..., val_loss, ..., seconds, improved
        done.json                 written when the run has finished
        tensorboard/train/, tensorboard/validation/
                                  TensorBoard event files (one per process that trained)

:func:`train_cae` (or :func:`esc_lib.methods.contrastive.train_contrastive`) and :func:`train_classifier`
are the two stages and the only training path of the project (notebooks,
tests and benchmarks call them): the CAE learns to reconstruct unlabeled features; a classifier
takes its encoder (or starts from scratch, the supervised baseline) and
trains all weights on labelled data, with the schedule, augmentation, refit
and ensemble its settings ask for.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
    "train_cae",
    "write_settings",
    "check_learning_rate",
    "numerics",
    "train_classifier",
    "ClassifierRun",
    "member_runs",
    "evaluate",
    "predict_proba",
]

class _NotRetracing:
    """Drops TensorFlow's "triggered tf.function retracing" warning (a :class:`logging.Filter`).

    A run trains dozens of models in one process; each traces its own train and
    validation step, once for full batches and once for the last, smaller one.
    TensorFlow counts those traces across models and warns of "excessive
    retracing", which here is neither excessive nor fixable without dropping
    the last batch (which would change every result).  Other warnings pass.
    """

    def filter(self, record) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


if not any(isinstance(f, _NotRetracing) for f in tf.get_logger().filters):
    tf.get_logger().addFilter(_NotRetracing())

CHECKPOINT_FILE = "checkpoint.json"
CHECKPOINT_DIR = "checkpoints"
BEST_FILE = "best.npz"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
DONE_FILE = "done.json"
TENSORBOARD_DIR = "tensorboard"
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


_STRATEGIES: dict[str, tf.distribute.Strategy] = {}
_DEVICES_SAID: set = set()


def device_summary(precision: str = "float32", distribute: str = "none") -> str:
    """One line: what TensorFlow trains on (the GPUs by name, else the CPU), in which precision, on how many replicas."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
        where = f"{len(gpus)} GPU(s): " + ", ".join(f"{gpu.name.split(':', 1)[-1]} {name}" for gpu, name in zip(gpus, names))
    else:
        threads = tf.config.threading.get_intra_op_parallelism_threads()  # 0: TensorFlow's default, every core
        used = f", this process on {threads} thread{'s' if threads > 1 else ''}" if threads else ""
        where = f"the CPU ({os.cpu_count()} cores{used}; TensorFlow sees no GPU)"
    replicas = _strategy(distribute).num_replicas_in_sync if distribute == "mirrored" else 1
    spread = f", MirroredStrategy over {replicas} replica(s)" if distribute == "mirrored" else ""
    return f"training on {where}, TensorFlow {tf.__version__}, precision {precision}{spread}"


def _strategy(distribute: str) -> tf.distribute.Strategy:
    """The process's one MirroredStrategy (every visible GPU, else the CPU)."""
    if distribute not in _STRATEGIES:
        _STRATEGIES[distribute] = tf.distribute.MirroredStrategy()
    return _STRATEGIES[distribute]


@contextlib.contextmanager
def numerics(settings, say=print):
    """Build, compile and train inside this: the settings' ``precision`` (Keras' global dtype policy,
    restored afterwards) and ``distribute`` (a MirroredStrategy's scope).

    Says once per process and combination which device(s) train (:func:`device_summary`; ``say=None``:
    silently); mixed float16 without a GPU gets a note (it is slower on a CPU, not faster).
    """
    say = say or (lambda line: None)
    precision = getattr(settings, "precision", "float32")
    distribute = getattr(settings, "distribute", "none")
    if (precision, distribute) not in _DEVICES_SAID:
        _DEVICES_SAID.add((precision, distribute))
        line = device_summary(precision, distribute)
        if precision == "mixed_float16" and not tf.config.list_physical_devices("GPU"):
            line += " (note: float16 is emulated on a CPU, slower than float32; it is meant for GPUs)"
        say(line)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        with _strategy(distribute).scope() if distribute == "mirrored" else contextlib.nullcontext():
            yield
    finally:
        keras.config.set_dtype_policy(previous)


def check_learning_rate(learning_rate) -> float:
    """``learning_rate`` as a float, or a ``ValueError`` when it is not a positive finite number."""
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
    rate = check_learning_rate(learning_rate)
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
    model.compile(optimizer=keras.optimizers.Adam(check_learning_rate(learning_rate)), loss="mse")
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


@contextlib.contextmanager
def _built_aside(model: keras.Model, stream, initial_epoch: int):
    """Under a distribution strategy, build ``model`` on a batch made aside, not on one of ``fit``'s.

    Keras' ``fit`` under a strategy builds the model on a batch it draws from
    a first pass over the dataset; with :func:`_epochs_dataset` that pass is
    epoch ``initial_epoch``, so training would start at the epoch after it
    and every epoch would see the next one's batch order.  Here the model is
    built on the first batch of ``stream.epoch(initial_epoch)`` (a stream's
    epochs are pure functions of their number) and Keras' draw is skipped.
    Without a strategy nothing changes.
    """
    if getattr(model, "_distribute_strategy", None) is None:
        yield
        return
    x, y = next(iter(stream.epoch(initial_epoch)))
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=(x, y))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    try:
        yield
    finally:
        del model._maybe_symbolic_build


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


class _EpochLine(keras.callbacks.Callback):
    """Prints one line per epoch: ``epoch 12/100: loss 0.512, accuracy 0.844, val_loss 0.61, ... (1.4 s)``."""

    def __init__(self, max_epochs: int):
        super().__init__()
        self.max_epochs = int(max_epochs)
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        values = ", ".join(f"{name} {float(value):.4g}" for name, value in (logs or {}).items())
        print(f"    epoch {epoch + 1}/{self.max_epochs}: {values} ({time.monotonic() - self._start:.1f} s)", flush=True)


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
        higher_is_better = self.monitor.endswith("accuracy")
        improved = math.isfinite(value) and (best is None or (value > best if higher_is_better else value < best))
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


class _TensorBoardLog(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback at its cheapest (epoch scalars: no graph, histograms, images or profiling),
    flushed at the end of every epoch.

    The summary writers otherwise flush every two minutes or when closed at the end of training: a
    run watched live would lag, and a killed one would lose the epochs since the last flush, which
    the resumed run (starting after its last checkpoint) never writes again.
    """

    def __init__(self, log_dir: Path):
        super().__init__(log_dir=str(log_dir), histogram_freq=0, write_graph=False, write_images=False,
                         write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        for writer in getattr(self, "_writers", {}).values():
            writer.flush()


_TENSORBOARD_MISSING_SAID = False


def _tensorboard_callbacks(run_dir: Path) -> list:
    """``[_TensorBoardLog]`` writing to ``run_dir/tensorboard``, or ``[]`` (said once) where TensorBoard is not installed.

    ``tf.summary`` needs the ``tensorboard`` package (pinned in the lock); an environment built before
    it was pinned trains on without logs instead of failing at the first epoch's end.
    """
    import importlib.util
    import warnings

    global _TENSORBOARD_MISSING_SAID
    if importlib.util.find_spec("tensorboard") is None:
        if not _TENSORBOARD_MISSING_SAID:
            _TENSORBOARD_MISSING_SAID = True
            warnings.warn("the tensorboard package is not installed: training runs write no TensorBoard logs "
                          "(scripts/bootstrap.sh installs the pinned one)", stacklevel=3)
        return []
    return [_TensorBoardLog(run_dir / TENSORBOARD_DIR)]


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
    # The old run's curves would be drawn over the new one's: they go too.
    shutil.rmtree(run_dir / TENSORBOARD_DIR, ignore_errors=True)


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


def _remove_leftovers(run_dir: Path) -> None:
    """Delete temporaries a killed process left half-written (``.<name>.<hex>.tmp[.suffix]``, esc_lib.atomic).

    The run folder has one writer at a time, so any temporary found when a run
    starts or resumes is a leftover: the file it was to become was never committed.
    """
    for folder in (run_dir, run_dir / CHECKPOINT_DIR):
        if folder.is_dir():
            for leftover in folder.glob(".*.tmp*"):
                if leftover.is_file():
                    leftover.unlink()


def fit(model: keras.Model, train, validation=None, run_dir=None, max_epochs: int = 100, patience: int | None = 5,
        seed: int = 0, resume: bool = True, verbose: int = 1, callbacks: Sequence = (),
        batch_size: int = 32, restore_best: bool = True, monitor: str | None = None) -> pd.DataFrame:
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
        Extra callbacks; they run after the checkpoint of each epoch is written
        (and after the epoch's TensorBoard scalars, ``run_dir/tensorboard``).
    batch_size : int > 0
        Only for array ``train`` data.
    restore_best : bool
        True: end with the weights of the epoch with the lowest monitored
        loss.  False: keep the last epoch's weights (e.g. retraining for a
        number of epochs chosen before, with nothing to monitor).  Recorded
        in ``done.json``, so a finished run loads the same weights.
    monitor : str, optional
        The epoch log that early stopping and "best" follow: ``val_loss`` (the default with validation
        data, else ``loss``), lowest best; a name ending in ``accuracy`` (e.g. ``val_accuracy``,
        SSLH's rule), highest best.

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
    monitor = monitor or ("loss" if validation is None else "val_loss")

    if not resume:
        _clear_run(run_dir)
    _remove_leftovers(run_dir)
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
            getattr(model, "inference_model", model).trainable = True  # as after training (below)
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
        stream = _training_stream(train, batch_size, seed)
        dataset, steps = _epochs_dataset(stream, initial_epoch)
        validation_data, validation_steps = _validation_data(validation, initial_epoch)
        with _built_aside(model, stream, initial_epoch):
            model.fit(
                dataset,
                steps_per_epoch=steps,
                validation_data=validation_data,
                validation_steps=validation_steps,
                epochs=max_epochs,
                initial_epoch=initial_epoch,
                shuffle=False,  # the stream orders the batches
                # One line per epoch (Keras' verbose=2 prints two, verbose=1 a bar that fills a log with carriage returns).
                # The recorder first: TensorBoard logs an epoch once its checkpoint is committed, so a
                # resumed run (from that checkpoint) never logs an epoch twice.
                callbacks=[recorder, *([_EpochLine(max_epochs)] if verbose else []), *_tensorboard_callbacks(run_dir),
                           *callbacks],
                verbose=0,
            )

    # Restore the best weights (from memory when this call saw them, else from disk).
    if not restore_best:
        pass  # the last epoch's weights, already in the model (trained or loaded from the checkpoint)
    elif recorder.best_in_memory is not None:
        for variable, value in zip(model.variables, recorder.best_in_memory):
            variable.assign(value)
    elif (run_dir / BEST_FILE).exists():
        _load_state(model, run_dir / BEST_FILE, with_optimizer=False)
    # A trainer (esc_lib.semi) wraps the network it trains: the network is what is saved and used. A moving
    # average of the weights (FixMatch's, mean teacher's) was frozen to the optimiser while it trained; the
    # classifier handed on and saved is trainable like any other (fine-tuned later, it must learn).
    network = getattr(model, "inference_model", model)
    network.trainable = True
    _save_model(network, run_dir / MODEL_FILE)
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
# The two stages: the one training path of the project


def write_settings(run_dir: Path, settings, stage: str) -> None:
    """``settings.json``: what this run folder's models depend on (the sections its key hashes).

    Written when the folder is new; a folder that already holds other
    settings is an error rather than a model silently reused.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path, text = run_dir / "settings.json", settings.to_json(stage)
    if path.is_file() and path.read_text() != text:
        stored = json.loads(path.read_text())
        wanted = json.loads(text)
        differ = sorted(f"{section}.{name}" for section in wanted if isinstance(wanted[section], dict)
                        for name in wanted[section] if stored.get(section, {}).get(name) != wanted[section][name])
        raise TrainingError(
            f"{run_dir} was trained with other settings (differ: {', '.join(differ) or 'stage/key'}); "
            f"remove the folder or use another run folder")
    if not path.is_file():
        atomic.write_text(path, text)


def train_cae(X, run_dir, settings, *, decoder: str | None = None, verbose: int = 0) -> tuple[keras.Model, pd.DataFrame]:
    """Stage 1: train (or load, when finished before) the CAE on unlabeled features.

    A share ``settings.cae_validation_fraction`` of ``X`` (chosen with
    ``settings.seed``, :func:`esc_lib.protocol.holdout`) is held out for early
    stopping; the encoder, batch norm, batch size, epochs, patience and
    learning rate come from ``settings``.

    Parameters
    ----------
    X : np.ndarray [shape=(n, n_mels, n_frames, channels)] or esc_lib.store.LazyRows
        Standardised pre-training features (the pool, plus the non-test
        folds' audio when the protocol allows it); a ``LazyRows`` (an
        on-disk pool, standardised as read) is streamed a batch at a time,
        in the batches the in-memory array would give.
    run_dir : str or Path
        Run folder, see :func:`fit`; ``settings.json`` is written there.
    settings : esc_lib.settings.Settings
    decoder : {"unpool", "upsample"}, optional
        Overrides ``settings.decoder`` (the reconstruction figure trains both).

    Returns
    -------
    model : keras.Model
        The CAE with its best weights (also ``run_dir/model.keras``).
    history : pandas.DataFrame
    """
    from esc_lib import protocol, store

    lazy = isinstance(X, store.LazyRows)  # rows read from disk a batch at a time (an on-disk pool)
    if not lazy:
        X = np.asarray(X, dtype="float32")
    if X.ndim != 4:
        raise TrainingError(f"train_cae: X must be [n, n_mels, n_frames, channels], got shape {X.shape}")
    if decoder not in (None, settings.decoder):
        settings = settings.replace(decoder=decoder)
    run_dir = Path(run_dir)
    try:
        train, validation = protocol.holdout(len(X), settings.cae_validation_fraction, settings.seed)
    except ValueError as error:
        raise TrainingError(f"train_cae: pre-training data: {error}") from None
    write_settings(run_dir, settings, "cae")
    with numerics(settings, say=print if verbose else None):
        set_seed(settings.seed)
        model = models.build_cae(X.shape[1:], encoder=settings.encoder_notation, decoder=settings.decoder,
                                 batch_norm=settings.batch_norm)
        compile_autoencoder(model, learning_rate=settings.learning_rate)
        history = fit(model, *_cae_streams(X, train, validation, settings, lazy),
                      run_dir=run_dir, max_epochs=settings.cae_max_epochs, patience=settings.patience,
                      seed=settings.seed, verbose=verbose)
    return model, history


def _cae_streams(X, train, validation, settings, lazy: bool):
    """The CAE's training and validation streams: from memory, or gathered from the store a batch at a time."""
    from esc_lib import store
    from esc_lib.streams import BatchStream

    if lazy:  # the same batches as the in-memory streams below, gathered a batch at a time
        return (store.RowStream(X, train, settings.cae_batch_size, seed=settings.seed),
                store.RowStream(X, validation, 256, shuffle=False))
    return (BatchStream(X[train], batch_size=settings.cae_batch_size, seed=settings.seed, target="input"),
            BatchStream(X[validation], batch_size=256, shuffle=False, target="input"))


def _loaded_or(run_dir: Path, message: str) -> str:
    """The line to print before a run: ``message``, or that the finished run is loaded instead."""
    return f"  load the finished run {run_dir}" if run_state(run_dir)["done"] is not None else message


def member_runs(run_dir, ensemble: int = 1, refit: bool = False) -> list[Path]:
    """The run folders whose models are scored: ``run_dir`` for member 0, ``<run_dir>-m<k>`` for the others,
    each with ``-refit`` appended when the refit model is the scored one."""
    run_dir = Path(run_dir)
    runs = [run_dir.with_name(run_dir.name + (f"-m{member}" if member else "")) for member in range(ensemble)]
    return [run.with_name(run.name + "-refit") for run in runs] if refit else runs


@dataclass
class ClassifierRun:
    """What :func:`train_classifier` gives back.

    Attributes
    ----------
    validation : np.ndarray [shape=(n_validation, n_classes)] or None
        Mean class probabilities of the members on the validation clips, by
        models that did not train on them (None when every member did).
    scored : np.ndarray [shape=(n_scored, n_classes)] or None
        Mean class probabilities on ``score`` (None when no clips were given).
    histories : list of pandas.DataFrame
        Per member: the run watched on the validation fold, else its only run.
    epochs : list of int
        Per member, the epochs of the scored model.
    models : list of keras.Model
        Per member, the scored model.
    runs : list of Path
        Per member, the scored model's run folder (see :func:`member_runs`).
    seconds : float
        Training time of every run folder involved (members and refits), from
        their histories: what the classifier cost, also when it was loaded.
    """

    validation: np.ndarray | None
    scored: np.ndarray | None
    histories: list
    epochs: list
    models: list
    runs: list
    seconds: float = 0.0


def train_classifier(train, validation, n_classes: int, run_dir, settings, *, seeds: Sequence[int],
                     pretrained=None, consistency=None, stage: str | None = None, score=None, verbose: int = 0,
                     say=None, initial: Sequence[keras.Model] | None = None,
                     max_epochs: int | None = None) -> ClassifierRun:
    """Stage 2: one classifier, or an ensemble, from a pre-trained encoder or from scratch.

    Everything the classifier settings describe happens here, on one path:
    the augmentation of training batches, the learning-rate schedule
    (``constant`` with early stopping on the validation loss and the best
    weights restored, or ``cosine`` trained to the end), the refit on
    training + validation folds (``refit_on_validation``: for the epochs
    early stopping chose, or, with ``cosine``, the only run), and ensembles
    (one member per seed, probabilities averaged).  Each member's run is
    checkpointed every epoch and resumes bit-identically after a kill; a
    finished run is loaded, not trained again.

    Parameters
    ----------
    train, validation : (X, y)
        Standardised features [n, n_mels, n_frames, channels] and integer
        labels in ``0..n_classes-1``.  ``validation`` is watched (and, with a
        refit, trained on afterwards).
    n_classes : int >= 2
    run_dir : str or Path
        Member 0's run folder; the others are derived (:func:`member_runs`).
    settings : esc_lib.settings.Settings
    seeds : sequence of int
        One seed per member (:func:`esc_lib.protocol.member_seed`);
        ``len(seeds)`` members are trained.
    pretrained : keras.Model, optional
        The CAE (or contrastive encoder) whose encoder initialises every
        member; None is the supervised baseline (random initialisation).
    consistency : object, optional
        A semi-supervised method's training on labelled and unlabeled batches together
        (e.g. :class:`esc_lib.methods.fixmatch.Consistency`): its ``stream(X, Y, seed, augment)``
        gives each member's batches (labelled clips and the unlabeled clips it holds) and its
        ``trainer(model, Y)`` wraps the classifier in the Keras model whose ``train_step`` is the
        method's loss.  None: train on the labelled clips alone.
    stage : str, optional
        The method, for ``settings.json`` (default: ``pretrained`` with a
        pre-trained encoder, else ``supervised``; required with ``consistency``).
    initial : sequence of keras.Model, optional
        Trained classifiers of this network (e.g. a self-training teacher's
        members) whose weights start the members, member ``i`` from
        ``initial[i % len(initial)]``, instead of a random initialisation
        (after ``pretrained``'s encoder, which they overwrite).
    max_epochs : int, optional
        Epochs at most (the cosine schedule's length) instead of the settings'.
    score : np.ndarray, optional
        Features whose class probabilities are returned (e.g. the test fold).
    say : callable, optional
        Receives one line per step (e.g. ``print``).

    Returns
    -------
    ClassifierRun
    """
    from esc_lib import augment as augmentations
    from esc_lib import streams

    X_train, y_train = _as_arrays(train, "train")
    X_validation, y_validation = _as_arrays(validation, "validation")
    if not seeds:
        raise TrainingError("train_classifier: seeds must name at least one member")
    if consistency is not None and not stage:
        raise TrainingError("train_classifier: name the stage (the method) of a consistency-trained classifier")
    stage = stage or ("supervised" if pretrained is None else "pretrained")
    say = say or (lambda message: None)
    augment = augmentations.from_spec(settings.augment, n_classes=n_classes) if settings.augment else None
    cosine = settings.lr_schedule == "cosine"
    if max_epochs is None:
        max_epochs = settings.max_epochs
    elif max_epochs < 1:
        raise TrainingError(f"train_classifier: max_epochs must be at least 1, got {max_epochs}")
    initial = list(initial or [])
    # One-hot targets for training and validation alike, so soft targets from
    # mixing and plain ones go through the same loss and metric.
    Y_train, Y_validation = one_hot(y_train, n_classes), one_hot(y_validation, n_classes)

    def build_and_fit(X, Y, run: Path, seed: int, epochs: int, watch, patience, restore_best: bool, member: int,
                      monitor: str | None = None):
        trained_runs.append(run)
        write_settings(run, settings, stage)
        with numerics(settings, say=say):
            set_seed(seed)
            model = models.build_classifier(
                X.shape[1:], n_classes, encoder=settings.encoder_notation, head=settings.head,
                batch_norm=settings.batch_norm, dropout=settings.dropout,
            )
            if pretrained is not None:
                models.transfer_encoder(pretrained, model)
            if initial:
                start = initial[member % len(initial)]
                if [w.shape for w in start.weights] != [w.shape for w in model.weights]:
                    raise TrainingError(
                        f"train_classifier: the initial model {start.name!r} is another network than {settings.encoder_notation!r} "
                        f"with head {settings.head!r}; start from a classifier of the same settings")
                model.set_weights(start.get_weights())
            if consistency is None:
                stream = streams.BatchStream(X, Y, batch_size=settings.batch_size, seed=seed, augment=augment)
                trained = model
            else:
                stream = consistency.stream(X, Y, seed, augment)
                trained = consistency.trainer(model, Y)
            decay_steps = epochs * stream.steps_per_epoch if cosine else None
            compile_classifier(trained, learning_rate=settings.learning_rate, label_smoothing=settings.label_smoothing,
                               decay_steps=decay_steps)
            history = fit(trained, stream, watch, run_dir=run, max_epochs=epochs, patience=patience,
                          restore_best=restore_best, seed=seed, verbose=verbose, monitor=monitor)
            return model, history

    X_both = np.concatenate([X_train, X_validation])
    Y_both = np.concatenate([Y_train, Y_validation])
    first_runs = member_runs(run_dir, len(seeds))
    trained_runs = []
    validation_probabilities, scored, histories, epochs_used, models_used = [], [], [], [], []
    for member, (seed, run) in enumerate(zip(seeds, first_runs)):
        refit_run = run.with_name(run.name + "-refit")
        if len(seeds) > 1:  # an ensemble: say which member
            say(f"  member {member} (seed {seed})")
        if cosine and settings.refit_on_validation:
            # A cosine schedule has nothing to choose on the validation fold (it
            # always trains max_epochs): train once on train + validation.
            say(_loaded_or(refit_run, f"  train on {len(X_both)} train + validation clips for {max_epochs} epochs -> {refit_run}"))
            model, history = build_and_fit(X_both, Y_both, refit_run, seed, max_epochs, None, None, False, member)
            epochs = max_epochs
        else:
            say(_loaded_or(run, f"  train on {len(X_train)} clips, watch {len(X_validation)} validation clips -> {run}"))
            if getattr(settings, "protocol", "strict") == "sslh":
                # SSLH's rule: every epoch trained, the one most accurate on the watched fold (the test fold) kept.
                model, history = build_and_fit(
                    X_train, Y_train, run, seed, max_epochs, (X_validation, Y_validation), None, restore_best=True,
                    member=member, monitor="val_accuracy")
            else:
                # A cosine schedule is trained to its end; the constant rate stops early on the validation loss.
                model, history = build_and_fit(
                    X_train, Y_train, run, seed, max_epochs, (X_validation, Y_validation),
                    None if cosine else settings.patience, restore_best=not cosine, member=member,
                )
            validation_probabilities.append(predict_proba(model, X_validation))
            epochs = len(history)
            if settings.refit_on_validation:
                # Both folds are training folds: retrain from the same start for
                # the epochs early stopping chose, keeping the last weights.
                epochs = int(history.loc[history["val_loss"].idxmin(), "epoch"])
                say(_loaded_or(refit_run, f"  refit on {len(X_both)} train + validation clips for {epochs} epochs -> {refit_run}"))
                model, _ = build_and_fit(X_both, Y_both, refit_run, seed, epochs, None, None, False, member)
        if score is not None:
            scored.append(predict_proba(model, score))
        histories.append(history)
        epochs_used.append(epochs)
        models_used.append(model)
    return ClassifierRun(
        validation=np.mean(validation_probabilities, axis=0) if validation_probabilities else None,
        scored=np.mean(scored, axis=0) if scored else None,
        histories=histories, epochs=epochs_used, models=models_used,
        runs=member_runs(run_dir, len(seeds), refit=settings.refit_on_validation),
        seconds=float(sum(load_history(run).get("seconds", pd.Series(dtype=float)).sum() for run in trained_runs)),
    )


# ---------------------------------------------------------------------------
# Evaluation


def predict_proba(model: keras.Model, X, batch_size: int = 256, chunk: int = 4096) -> np.ndarray:
    """Class probabilities [shape=(n, n_classes)] for features X [shape=(n, *input_shape)].

    ``X`` may be an :class:`esc_lib.store.LazyRows` (an on-disk pool): it is read ``chunk`` rows at a time.
    """
    from esc_lib import store

    if isinstance(X, store.LazyRows):
        parts = [predict_proba(model, X[start:start + chunk], batch_size) for start in range(0, len(X), chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, model.output_shape[-1]), dtype="float32")
    X = np.asarray(X, dtype="float32")
    if len(X) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype="float32")
    return np.asarray(model.predict(X, batch_size=batch_size, verbose=0))


def predict_embeddings(model: keras.Model, X, batch_size: int = 256) -> np.ndarray:
    """A classifier's embeddings [shape=(n, d)]: the input of its softmax layer (``output``), for features X.

    In inference mode (dropout off); ``X`` may be a :class:`esc_lib.store.LazyRows`, as for :func:`predict_proba`.
    """
    embedding = keras.Model(model.inputs, model.get_layer("output").input, name=f"{model.name}_embedding")
    return predict_proba(embedding, X, batch_size)


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
