"""Using unlabeled audio beyond the paper's CAE: consistency training and contrastive pre-training.

Two post-2017 ways, both options of the one training path
(:func:`esc_lib.training.train_classifier` and :func:`esc_lib.training.train_contrastive`):

* **FixMatch-style consistency training** (Sohn et al. 2020) of the classifier
  on labelled and unlabeled batches together.  Each unlabeled clip is seen
  twice, weakly and strongly augmented; where the classifier is confident
  (max probability >= ``threshold``) about the weak view, its arg-max becomes
  the target of the strong view.  Loss = supervised cross-entropy +
  ``weight`` x the masked cross-entropy on the strong views.
* **Contrastive pre-training of the encoder** (SimCLR, Chen et al. 2020,
  as used for audio by e.g. COLA and BYOL-A's predecessors): two augmented
  views of each unlabeled clip are pulled together and pushed away from the
  other clips of the batch (NT-Xent loss) through a small projection head;
  the encoder then initialises the classifier like the CAE's does.

* **Self-training** (a teacher's pseudo-labels, as in Noisy Student, Xie et
  al. 2020, without growing the student): the supervised classifier labels
  the unlabeled clips; those it is confident about (:func:`select_pseudo_labels`)
  join the labelled clips, and a student of the same network, trained from
  scratch with the same augmentation and dropout (its noise), learns from both.
  Each round's student may teach the next.  Unlike FixMatch, the pseudo-labels
  come from a finished classifier, so they need no long schedule to appear.

Augmentations come from :mod:`esc_lib.augment` (NumPy, seeded per epoch by
the streams here), so an epoch is reproducible and a killed run resumes
bit-identically through :func:`esc_lib.training.fit`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from esc_lib.store import LazyRows
from esc_lib.streams import epochs_dataset

__all__ = [
    "pseudo_labels",
    "select_pseudo_labels",
    "propagate_labels",
    "nt_xent",
    "SemiSupervisedStream",
    "TwoViewStream",
    "ConsistencyTrainer",
    "ContrastiveTrainer",
    "build_contrastive",
]


# ---------------------------------------------------------------------------
# Losses


def pseudo_labels(probabilities, threshold: float):
    """FixMatch's targets from the weak views' class probabilities.

    Parameters
    ----------
    probabilities : tensor or array [shape=(n, n_classes)]
    threshold : float in [0, 1]
        Only predictions at least this confident count.

    Returns
    -------
    targets : int tensor [shape=(n,)]
        The arg-max class of each clip.
    mask : float tensor [shape=(n,)]
        1.0 where ``max(probabilities) >= threshold``, else 0.0.
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    probabilities = tf.convert_to_tensor(probabilities)
    confidence = tf.reduce_max(probabilities, axis=-1)
    return tf.argmax(probabilities, axis=-1, output_type=tf.int32), tf.cast(confidence >= threshold, probabilities.dtype)


def align_distribution(probabilities, marginal, target):
    """ReMixMatch's distribution alignment: scale each clip's class probabilities by ``target / marginal``, renormalised.

    Parameters
    ----------
    probabilities : tensor or array [shape=(n, n_classes)]
        The weak views' predictions.
    marginal : tensor or array [shape=(n_classes,)]
        The running mean of the model's predictions on unlabeled clips.
    target : tensor or array [shape=(n_classes,)]
        The class distribution the predictions should have (the labelled clips').

    Returns
    -------
    tensor [shape=(n, n_classes)]
        Rows that sum to 1; classes the model over-predicts are pulled down, the others up,
        so the pseudo-labels do not pile onto the classes the model already favours.
    """
    probabilities = tf.convert_to_tensor(probabilities)
    marginal = tf.cast(tf.convert_to_tensor(marginal), probabilities.dtype)
    target = tf.cast(tf.convert_to_tensor(target), probabilities.dtype)
    aligned = probabilities * target / tf.maximum(marginal, 1e-6)
    return aligned / tf.maximum(tf.reduce_sum(aligned, axis=-1, keepdims=True), 1e-12)


#: Neighbours of each clip in :func:`propagate_labels`' graph (Iscen et al. 2019 use 50 of 50 000 images;
#: a split at 4 labels per class has ~240 clips, 24 per class).
PROPAGATION_NEIGHBORS = 10
#: How much of its neighbours' labels a clip takes each step (sklearn's ``alpha``; 0.99 in Iscen et al.).
PROPAGATION_ALPHA = 0.99


def propagate_labels(labelled, y, unlabeled, n_classes: int, neighbors: int = PROPAGATION_NEIGHBORS,
                     alpha: float = PROPAGATION_ALPHA) -> np.ndarray:
    """Class distributions of unlabeled clips by label spreading over a nearest-neighbour graph of embeddings.

    The labelled and unlabeled embeddings (L2-normalised, so distance is
    cosine) form one k-nearest-neighbour graph; the labelled clips' classes
    spread along it (:class:`sklearn.semi_supervised.LabelSpreading`), so an
    unlabeled clip takes the classes of the clips it lies among, not only the
    side of the classifier's boundary it falls on.

    Parameters
    ----------
    labelled : array [shape=(n, d)]
    y : array of int [shape=(n,)]
        The labelled clips' classes, in ``range(n_classes)``.
    unlabeled : array [shape=(m, d)]
    n_classes : int
    neighbors : int > 0
    alpha : float in (0, 1)

    Returns
    -------
    np.ndarray [shape=(m, n_classes)]
        Rows summing to 1 (a class no labelled clip has gets 0), ready for :func:`select_pseudo_labels`.
    """
    from sklearn.semi_supervised import LabelSpreading

    labelled, unlabeled = np.asarray(labelled, dtype="float64"), np.asarray(unlabeled, dtype="float64")
    y = np.asarray(y, dtype="int64")
    if labelled.ndim != 2 or unlabeled.ndim != 2 or labelled.shape[1] != unlabeled.shape[1]:
        raise ValueError(f"embeddings must be [n, d] with the same d, got {labelled.shape} and {unlabeled.shape}")
    if len(y) != len(labelled) or len(y) == 0 or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"y must give each of the {len(labelled)} labelled clips a class in range({n_classes})")
    if len(unlabeled) == 0:
        return np.zeros((0, n_classes))
    X = np.concatenate([labelled, unlabeled])
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    spreading = LabelSpreading(kernel="knn", n_neighbors=min(int(neighbors), len(X) - 1), alpha=alpha, max_iter=1000)
    spreading.fit(X, np.concatenate([y, -np.ones(len(unlabeled), dtype="int64")]))
    distributions = np.zeros((len(unlabeled), n_classes))
    distributions[:, spreading.classes_] = spreading.label_distributions_[len(labelled):]
    distributions = np.nan_to_num(distributions)  # an isolated clip: no label reached it
    return distributions / np.maximum(distributions.sum(axis=1, keepdims=True), 1e-12)


def select_pseudo_labels(probabilities, threshold: float, per_class: int = 0):
    """Self-training's pseudo-labelled clips: the teacher's confident predictions, optionally capped per class.

    Parameters
    ----------
    probabilities : array [shape=(n, n_classes)]
        The teacher's class probabilities for the unlabeled clips.
    threshold : float in [0, 1]
        A clip is kept when its top probability is at least this.
    per_class : int >= 0
        Keep at most this many clips per predicted class, the most confident
        first (ties: the earlier clip); 0 keeps every confident clip.  A cap
        stops a class the teacher over-predicts from swamping the student.

    Returns
    -------
    rows : np.ndarray of int [shape=(k,)]
        The kept clips, in increasing order.
    labels : np.ndarray of int [shape=(k,)]
        Their pseudo-labels (the teacher's arg-max).
    confidence : np.ndarray of float [shape=(k,)]
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 0:
        raise ValueError(f"per_class must be an integer >= 0 (0: no cap), got {per_class!r}")
    probabilities = np.asarray(probabilities, dtype="float64")
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities must be [n_clips, n_classes], got shape {probabilities.shape}")
    labels, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    kept = np.flatnonzero(confidence >= float(threshold))
    if per_class:
        order = kept[np.lexsort((kept, -confidence[kept]))]  # most confident first, then by row
        rank = np.zeros(len(order), dtype=int)
        seen: dict[int, int] = {}
        for i, row in enumerate(order):
            rank[i] = seen.get(labels[row], 0)
            seen[labels[row]] = rank[i] + 1
        kept = np.sort(order[rank < per_class])
    return kept, labels[kept], confidence[kept]


def nt_xent(z1, z2, temperature: float):
    """The normalised temperature-scaled cross-entropy of SimCLR for two views [shape=(b, d)] each.

    Each of the 2b embeddings must pick its partner view among the 2b - 1
    others by cosine similarity / ``temperature``; returns the mean loss.
    """
    z = tf.math.l2_normalize(tf.concat([z1, z2], axis=0), axis=1)
    n = tf.shape(z1)[0]
    logits = tf.matmul(z, z, transpose_b=True) / temperature
    logits = logits - 1e9 * tf.eye(2 * n, dtype=logits.dtype)  # an embedding is not its own partner
    partners = tf.concat([tf.range(n, 2 * n), tf.range(0, n)], axis=0)
    return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(partners, logits, from_logits=True))


# ---------------------------------------------------------------------------
# Streams


def _spec(array) -> tf.TensorSpec:
    array = np.asarray(array)
    return tf.TensorSpec(shape=(None, *array.shape[1:]), dtype=tf.as_dtype(array.dtype))


def _check_positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class SemiSupervisedStream:
    """Labelled and unlabeled batches side by side, for consistency training.

    One epoch is one pass over the labelled clips in a seeded order, in
    steps of ``batch_size`` (the last one smaller), exactly as supervised
    training's :class:`esc_lib.streams.BatchStream`, so FixMatch trains as many
    optimiser steps as the baseline it is compared with.  Each step also takes
    ``ratio * batch_size`` unlabeled clips, drawn from seeded permutations
    repeated as often as needed (with few unlabeled clips they recur within
    an epoch, with many a pass takes several epochs).

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
    """

    def __init__(self, X, Y, X_unlabeled, batch_size: int, ratio: int, seed: int, augment=None, weak=None, strong=None):
        self.X, self.Y = np.asarray(X), np.asarray(Y)
        # An array, or an esc_lib.store.LazyRows (an on-disk pool): each step gathers its rows.
        self.X_unlabeled = X_unlabeled if isinstance(X_unlabeled, LazyRows) else np.asarray(X_unlabeled)
        if len(self.X) == 0 or len(self.X) != len(self.Y):
            raise ValueError(f"SemiSupervisedStream: {len(self.X)} labelled clips with {len(self.Y)} targets")
        if len(self.X_unlabeled) == 0:
            raise ValueError("SemiSupervisedStream: no unlabeled clips (the pool and the non-test folds are empty)")
        self.batch_size = _check_positive(batch_size, "batch_size")
        self.ratio = _check_positive(ratio, "ratio")
        self.seed = int(seed)
        self.augment, self.weak, self.strong = augment, weak, strong

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.X) / self.batch_size)

    def epoch(self, epoch: int):
        rng = np.random.default_rng([self.seed, int(epoch)])
        labelled = rng.permutation(len(self.X))
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
            yield (x.astype("float32"), weak.astype("float32"), strong.astype("float32")), y.astype("float32")

    def as_dataset(self, initial_epoch: int = 0):
        x = self.X[:1].astype("float32")
        signature = ((_spec(x), _spec(x), _spec(x)), _spec(self.Y[:1].astype("float32")))
        return epochs_dataset(self, initial_epoch, signature)


class TwoViewStream:
    """Two augmented views of each unlabeled clip, ``((view_1, view_2), dummy)`` per batch, for contrastive training.

    ``dummy`` is a zero per clip (Keras wants a target); the batches of an
    epoch follow a permutation seeded by ``(seed, epoch)`` of ``rows`` (default:
    every row of ``X``, an array or an :class:`esc_lib.store.LazyRows`, whose
    rows each batch gathers); the last partial batch is dropped (a
    contrastive batch needs its negatives).
    """

    def __init__(self, X, batch_size: int, seed: int, augment, rows=None):
        self.X = X if isinstance(X, LazyRows) else np.asarray(X)
        self.rows = np.arange(len(self.X)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.batch_size = _check_positive(batch_size, "batch_size")
        if len(self.rows) < 2 or len(self.rows) < self.batch_size:
            raise ValueError(
                f"TwoViewStream: {len(self.rows)} clips cannot fill a contrastive batch of {self.batch_size}; "
                f"lower contrastive_batch_size or add unlabeled audio")
        self.seed, self.augment = int(seed), augment

    @property
    def steps_per_epoch(self) -> int:
        return len(self.rows) // self.batch_size

    def epoch(self, epoch: int):
        rng = np.random.default_rng([self.seed, int(epoch)])
        order = self.rows[rng.permutation(len(self.rows))]
        augment_rng = np.random.default_rng([self.seed, int(epoch), 1])
        for step in range(self.steps_per_epoch):
            x = np.asarray(self.X[order[step * self.batch_size:(step + 1) * self.batch_size]])
            first, second = self.augment(x, None, augment_rng)[0], self.augment(x, None, augment_rng)[0]
            yield (first.astype("float32"), second.astype("float32")), np.zeros(len(x), "float32")

    def as_dataset(self, initial_epoch: int = 0):
        x = np.asarray(self.X[self.rows[:1]]).astype("float32")
        return epochs_dataset(self, initial_epoch, ((_spec(x), _spec(x)), tf.TensorSpec((None,), tf.float32)))


# ---------------------------------------------------------------------------
# Trainers: a Keras model around the network, with its own training step


def _replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


def _for_replicas(loss):
    """A loss averaged over this replica's batch, divided as Keras divides its own (``compute_loss``) under a
    distribution strategy, so the gradients summed over the replicas average over the global batch."""
    replicas = _replicas()
    return loss / tf.cast(replicas, loss.dtype) if replicas > 1 else loss


class _Trainer(keras.Model):
    """Wraps ``network``: calling it is calling the network (so validation and prediction are the network's),
    training runs :meth:`train_step`; :func:`esc_lib.training.fit` saves ``inference_model``."""

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

    def _apply(self, tape, scaled_loss) -> None:
        """Apply the gradients of ``scaled_loss``: the loss through ``self.optimizer.scale_loss`` inside the tape
        (mixed float16's loss-scale optimizer multiplies it, and divides the gradients back)."""
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))

    def _step(self, loss, extra: dict, y=None, y_pred=None) -> dict:
        """Update the metrics; ``loss`` is the replica's share (:func:`_for_replicas`), logged as the whole."""
        replicas = _replicas()
        loss = loss * tf.cast(replicas, loss.dtype) if replicas > 1 else loss
        results = {}
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            elif metric.name in extra:
                metric.update_state(extra[metric.name])
            elif y is not None and metric.name not in ("unlabeled_loss", "mask_rate"):
                metric.update_state(y, y_pred)
            results[metric.name] = metric.result()
        return results


class ConsistencyTrainer(_Trainer):
    """FixMatch-style training of a classifier on ``SemiSupervisedStream`` batches.

    Parameters
    ----------
    classifier : keras.Model
        Softmax outputs; compiled on this wrapper with the classifier's loss
        (:func:`esc_lib.training.compile_classifier`).
    threshold : float in [0, 1]
        Confidence a weak view's prediction needs to become a target.
    weight : float >= 0
        Weight of the unlabeled loss.
    align : array [shape=(n_classes,)], optional
        The labelled clips' class distribution: the weak views' predictions are
        aligned to it (:func:`align_distribution`, ReMixMatch) through a running
        mean of the predictions on unlabeled batches (momentum ``ALIGN_MOMENTUM``),
        a variable of this trainer, so a resumed run continues it.  None: no alignment.

    Logs ``loss`` (total), ``accuracy`` (labelled batch), ``unlabeled_loss``
    and ``mask_rate`` (share of unlabeled clips above the threshold).
    """

    #: The running mean's momentum: about the last 10 unlabeled batches (a 4-label budget gives
    #: ESC-10 2 steps an epoch, so ReMixMatch's 128-batch window would barely move in a run).
    ALIGN_MOMENTUM = 0.9

    def __init__(self, classifier: keras.Model, threshold: float = 0.95, weight: float = 1.0, align=None, **kwargs):
        super().__init__(classifier, **kwargs)
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        if float(weight) < 0:
            raise ValueError(f"weight must be >= 0, got {weight!r}")
        self.threshold, self.weight = float(threshold), float(weight)
        self.target = None
        if align is not None:
            target = np.asarray(align, dtype="float32")
            n_classes = int(classifier.output_shape[-1])
            if target.shape != (n_classes,) or (target < 0).any() or not np.isclose(target.sum(), 1.0, atol=1e-4):
                raise ValueError(f"align must be a class distribution of {n_classes} non-negative shares summing to 1, "
                                 f"got {target.tolist()}")
            self.target = tf.constant(target)
            self.marginal = self.add_weight(
                name="unlabeled_marginal", shape=(n_classes,), trainable=False, aggregation="mean",
                initializer=keras.initializers.Constant(target))
        self.unlabeled_loss = keras.metrics.Mean(name="unlabeled_loss")
        self.mask_rate = keras.metrics.Mean(name="mask_rate")

    def train_step(self, data):
        (x_labelled, x_weak, x_strong), y = data
        n_labelled, n_unlabeled = tf.shape(x_labelled)[0], tf.shape(x_weak)[0]
        with tf.GradientTape() as tape:
            # One forward pass over all three parts, so batch norm sees them together.
            probabilities = self.network(tf.concat([x_labelled, x_weak, x_strong], axis=0), training=True)
            p_labelled = probabilities[:n_labelled]
            p_weak = tf.stop_gradient(probabilities[n_labelled:n_labelled + n_unlabeled])
            if self.target is not None:
                momentum = self.ALIGN_MOMENTUM
                self.marginal.assign(momentum * self.marginal + (1.0 - momentum) * tf.reduce_mean(p_weak, axis=0))
                p_weak = align_distribution(p_weak, self.marginal, self.target)
            p_strong = probabilities[n_labelled + n_unlabeled:]
            supervised = self.compute_loss(x=x_labelled, y=y, y_pred=p_labelled)  # already divided among replicas
            targets, mask = pseudo_labels(p_weak, self.threshold)
            unlabeled = tf.reduce_mean(mask * keras.losses.sparse_categorical_crossentropy(targets, p_strong))
            loss = supervised + self.weight * _for_replicas(unlabeled)
            scaled = self.optimizer.scale_loss(loss)
        self._apply(tape, scaled)
        return self._step(loss, {"unlabeled_loss": unlabeled, "mask_rate": tf.reduce_mean(mask)}, y, p_labelled)

    def test_step(self, data):
        # Validation is plain classification: loss and accuracy, without the unlabeled trackers.
        x, y = data
        probabilities = self.network(x, training=False)
        loss = self.compute_loss(x=x, y=y, y_pred=probabilities)
        results = self._step(loss, {}, y, probabilities)
        return {name: value for name, value in results.items() if name not in ("unlabeled_loss", "mask_rate")}


def build_contrastive(input_shape, encoder: str, batch_norm: bool, projection: int = 128, hidden: int = 256) -> keras.Model:
    """The encoder (layer names as in the classifier, so :func:`esc_lib.models.transfer_encoder` moves it)
    followed by global max + average pooling and a two-layer projection head [shape=(b, projection)]."""
    from esc_lib import models

    cae = models.build_cae(input_shape, encoder=encoder, decoder="upsample", batch_norm=batch_norm)
    encoded = [layer for layer in cae.layers if layer.name.startswith("encoder_")][-1].output
    pooled = keras.layers.Concatenate(name="projection_pool")([
        keras.layers.GlobalMaxPooling2D(name="projection_gmp")(encoded),
        keras.layers.GlobalAveragePooling2D(name="projection_gap")(encoded),
    ])
    hidden_layer = keras.layers.Dense(hidden, activation="relu", name="projection_hidden")(pooled)
    output = keras.layers.Dense(projection, name="projection_output", dtype="float32")(hidden_layer)
    return keras.Model(cae.inputs, output, name="contrastive_encoder")


class ContrastiveTrainer(_Trainer):
    """SimCLR-style training of ``network`` (see :func:`build_contrastive`) on ``TwoViewStream`` batches.

    Logs ``loss`` (NT-Xent); validation data, if any, is scored the same way.
    """

    def __init__(self, network: keras.Model, temperature: float = 0.2, **kwargs):
        super().__init__(network, **kwargs)
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)

    def _loss(self, views, training: bool):
        first, second = views
        z = self.network(tf.concat([first, second], axis=0), training=training)
        n = tf.shape(first)[0]
        # Negatives come from this replica's share of the batch (as SimCLR without a cross-replica gather).
        return _for_replicas(nt_xent(z[:n], z[n:], self.temperature))

    def train_step(self, data):
        views, _ = data
        with tf.GradientTape() as tape:
            loss = self._loss(views, training=True)
            scaled = self.optimizer.scale_loss(loss)
        self._apply(tape, scaled)
        return self._step(loss, {})

    def test_step(self, data):
        views, _ = data
        return self._step(self._loss(views, training=False), {})
