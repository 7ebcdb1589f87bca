"""The shared machinery of the semi-supervised methods (:mod:`esc_lib.methods`): batches of labelled and
unlabeled clips side by side, and the Keras model whose ``train_step`` a method's loss replaces.

* :class:`SemiSupervisedStream` -- each step, a labelled batch and ``ratio`` times as many unlabeled
  clips, each in two views (FixMatch's weak and strong, mean teacher's teacher and student views).
* :class:`Trainer` -- wraps the classifier: calling it is calling the classifier (so validation,
  prediction and the saved model are the classifier's), training runs the subclass's
  ``train_step``; :func:`for_replicas` divides a loss as Keras does under a distribution strategy.

Augmentations come from :mod:`esc_lib.augment` (NumPy, seeded per epoch by the
streams here), so an epoch is reproducible and a killed run resumes
bit-identically through :func:`esc_lib.training.fit`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from esc_lib.store import LazyRows
from esc_lib.streams import epochs_dataset

__all__ = ["SemiSupervisedStream", "mix_dominant", "Trainer", "replicas", "for_replicas", "tensor_spec", "check_positive"]


# ---------------------------------------------------------------------------
# Streams


def tensor_spec(array) -> tf.TensorSpec:
    """The ``tf.TensorSpec`` of a batch of rows like ``array``'s (any number of them)."""
    array = np.asarray(array)
    return tf.TensorSpec(shape=(None, *array.shape[1:]), dtype=tf.as_dtype(array.dtype))


def check_positive(value, name: str) -> int:
    """``value`` as an int, or a ``ValueError`` naming ``name`` when it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class SemiSupervisedStream:
    """Labelled and unlabeled batches side by side, for consistency training.

    By default one epoch is one pass over the labelled clips in a seeded order,
    in steps of ``batch_size`` (the last one smaller), exactly as supervised
    training's :class:`esc_lib.streams.BatchStream`, so a method trains as many
    optimiser steps as the baseline it is compared with.  With
    ``steps_per_epoch`` an epoch is that many steps of full ``batch_size``
    labelled batches instead, drawn like the unlabeled ones, so a run's length
    in optimiser steps no longer depends on how many clips are labelled (as in
    the published FixMatch runs).  Each step also takes ``ratio * batch_size``
    unlabeled clips, drawn from seeded permutations repeated as often as needed
    (with few unlabeled clips they recur within an epoch, with many a pass
    takes several epochs).

    Each step yields ``((x_labelled, x_weak, x_strong), y_labelled)``:
    the labelled batch through ``augment`` (e.g. mixup, so ``y`` may be soft),
    and each unlabeled clip through ``weak`` and through ``strong``.

    Parameters
    ----------
    X, Y : np.ndarray [shape=(n, ...)], [shape=(n, n_classes)]
        Labelled features and one-hot targets.
    X_unlabeled : np.ndarray [shape=(m, ...)]
    batch_size, ratio : int > 0
    seed : int >= 0
    augment, weak, strong : callable ``(x, y, rng) -> (x, y)`` or None
    steps_per_epoch : int > 0, optional
        Steps of an epoch; None: one pass over the labelled clips.
    mix : float >= 0
        0: no mixing.  Otherwise (SSLH's FixMatch + mixup) each labelled clip is mixed with a random
        strong view and each strong view with a random labelled clip, at ``lam ~ Beta(mix, mix)`` kept
        >= 0.5, so each clip dominates its mixture and keeps its own target (the labelled clip's class,
        the strong view's pseudo-label from its weak view, which stays unmixed).
    """

    def __init__(self, X, Y, X_unlabeled, batch_size: int, ratio: int, seed: int, augment=None, weak=None, strong=None,
                 steps_per_epoch: int | None = None, mix: float = 0.0):
        self.X, self.Y = np.asarray(X), np.asarray(Y)
        # An array, or an esc_lib.store.LazyRows (an on-disk pool): each step gathers its rows.
        self.X_unlabeled = X_unlabeled if isinstance(X_unlabeled, LazyRows) else np.asarray(X_unlabeled)
        if len(self.X) == 0 or len(self.X) != len(self.Y):
            raise ValueError(f"SemiSupervisedStream: {len(self.X)} labelled clips with {len(self.Y)} targets")
        if len(self.X_unlabeled) == 0:
            raise ValueError("SemiSupervisedStream: no unlabeled clips (the pool and the non-test folds are empty)")
        self.batch_size = check_positive(batch_size, "batch_size")
        self.ratio = check_positive(ratio, "ratio")
        self.seed = int(seed)
        self.augment, self.weak, self.strong = augment, weak, strong
        self.fixed_steps = None if steps_per_epoch is None else check_positive(steps_per_epoch, "steps_per_epoch")
        if isinstance(mix, bool) or not isinstance(mix, (int, float)) or not mix >= 0:
            raise ValueError(f"mix must be a number >= 0 (0: no mixing), got {mix!r}")
        self.mix = float(mix)

    @property
    def steps_per_epoch(self) -> int:
        return self.fixed_steps or math.ceil(len(self.X) / self.batch_size)

    def epoch(self, epoch: int):
        rng = np.random.default_rng([self.seed, int(epoch)])
        if self.fixed_steps is None:
            labelled = rng.permutation(len(self.X))
        else:
            # Full batches from permutations repeated as needed: every clip once before any twice.
            needed = self.fixed_steps * self.batch_size
            labelled = np.concatenate([rng.permutation(len(self.X)) for _ in range(math.ceil(needed / len(self.X)))])
        step_u = self.ratio * self.batch_size
        needed = self.steps_per_epoch * step_u
        cycles = math.ceil(needed / len(self.X_unlabeled))
        unlabeled = np.concatenate([rng.permutation(len(self.X_unlabeled)) for _ in range(cycles)])[:needed]
        augment_rng = np.random.default_rng([self.seed, int(epoch), 1])
        for step in range(self.steps_per_epoch):
            rows = labelled[step * self.batch_size:(step + 1) * self.batch_size]
            x, y = self.X[rows], self.Y[rows]
            if self.augment is not None:
                x, y = self.augment(x, y, augment_rng)
            u = self.X_unlabeled[unlabeled[step * step_u:(step + 1) * step_u]]
            weak = self.weak(u, None, augment_rng)[0] if self.weak is not None else u
            strong = self.strong(u, None, augment_rng)[0] if self.strong is not None else u
            if self.mix:
                x, strong = mix_dominant(x, strong, self.mix, augment_rng), mix_dominant(strong, x, self.mix, augment_rng)
            yield (x.astype("float32"), weak.astype("float32"), strong.astype("float32")), y.astype("float32")

    def as_dataset(self, initial_epoch: int = 0):
        x = self.X[:1].astype("float32")
        signature = ((tensor_spec(x), tensor_spec(x), tensor_spec(x)), tensor_spec(self.Y[:1].astype("float32")))
        return epochs_dataset(self, initial_epoch, signature)


def mix_dominant(x: np.ndarray, partners: np.ndarray, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Each row of ``x`` mixed with a random row of ``partners``: ``lam x + (1 - lam) partner``, with
    ``lam = max(b, 1 - b)``, ``b ~ Beta(alpha, alpha)``, so the row of ``x`` dominates (and keeps its target)."""
    lam = rng.beta(alpha, alpha, size=len(x))
    lam = np.maximum(lam, 1.0 - lam).astype(x.dtype)[:, None, None, None]
    chosen = rng.integers(0, len(partners), size=len(x))
    return lam * x + (1 - lam) * partners[chosen].astype(x.dtype, copy=False)


# ---------------------------------------------------------------------------
# Trainers: a Keras model around the network, with its own training step


def replicas() -> int:
    """Replicas of the current distribution strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def for_replicas(loss):
    """A loss averaged over this replica's batch, divided as Keras divides its own (``compute_loss``) under a
    distribution strategy, so the gradients summed over the replicas average over the global batch."""
    count = replicas()
    return loss / tf.cast(count, loss.dtype) if count > 1 else loss


class Trainer(keras.Model):
    """Wraps ``network``: calling it is calling the network (so validation and prediction are the network's),
    training runs :meth:`train_step`; :func:`esc_lib.training.fit` saves ``inference_model``."""

    #: Metrics of the training step alone (a method's unlabeled loss, ...): not updated from labels, not
    #: reported by :meth:`test_step`.
    TRAINING_ONLY: tuple = ()

    def __init__(self, network: keras.Model, **kwargs):
        super().__init__(name=f"{type(self).__name__.lower()}_{network.name}", **kwargs)
        self.network = network

    @property
    def inference_model(self) -> keras.Model:
        return self.network

    def call(self, inputs, training=False):
        if isinstance(inputs, (tuple, list)):
            # A training batch's parts (labelled + views): Keras builds the model on one under a
            # distribution strategy; the network's output is that of the first part.
            inputs = inputs[0]
        return self.network(inputs, training=training)

    def apply_loss(self, tape, scaled_loss) -> None:
        """Apply the gradients of ``scaled_loss``: the loss through ``self.optimizer.scale_loss`` inside the tape
        (mixed float16's loss-scale optimizer multiplies it, and divides the gradients back)."""
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))

    def step_metrics(self, loss, extra: dict, y=None, y_pred=None) -> dict:
        """Update the metrics; ``loss`` is the replica's share (:func:`for_replicas`), logged as the whole."""
        count = replicas()
        loss = loss * tf.cast(count, loss.dtype) if count > 1 else loss
        results = {}
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            elif metric.name in extra:
                metric.update_state(extra[metric.name])
            elif y is not None and metric.name not in self.TRAINING_ONLY:
                metric.update_state(y, y_pred)
            results[metric.name] = metric.result()
        return results

    def test_step(self, data) -> dict:
        """Validation is plain classification: loss and accuracy of the network on labelled ``(x, y)``,
        without the training-only trackers (a subclass whose validation differs overrides it)."""
        x, y = data
        probabilities = self.network(x, training=False)
        loss = self.compute_loss(x=x, y=y, y_pred=probabilities)
        results = self.step_metrics(loss, {}, y, probabilities)
        return {name: value for name, value in results.items() if name not in self.TRAINING_ONLY}
