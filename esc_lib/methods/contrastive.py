"""``contrastive``: the classifier starts from an encoder pre-trained contrastively on the unlabeled clips.

SimCLR (Chen et al. 2020), as used for audio by e.g. COLA: two augmented views
(``contrastive_augment``) of each unlabeled clip are pulled together and pushed
away from the other clips of the batch (:func:`nt_xent`) through a small
projection head (:func:`build_contrastive`); the encoder then initialises the
classifier as the CAE's does, and all weights are fine-tuned on the labelled
clips.  The encoder is a pre-training stage of the protocol
(:meth:`esc_lib.experiment.Experiment.pretrain_contrastive` calls
:func:`train_contrastive`, section ``selfsupervised``), one per fold.

The Keras pieces are built on first use, so importing the method registry
imports no TensorFlow.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from esc_lib.methods.base import Method, SplitData, Trained
from esc_lib.methods.supervised import train_from

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["Contrastive", "METHOD", "train_contrastive", "build_contrastive", "nt_xent", "TwoViewStream",
           "ContrastiveTrainer"]


class Contrastive(Method):
    def starts_from(self, settings) -> str | None:
        return "contrastive"

    def key_sections(self, settings) -> tuple:
        return ("data", "features", "network", "selfsupervised", "classifier")

    def train(self, split: SplitData) -> Trained:
        return Trained.of(train_from(split, self.name, pretrained=split.encoder("contrastive")))


METHOD = Contrastive(
    name="contrastive", summary="from an encoder pre-trained contrastively on the unlabeled clips (SimCLR), fine-tuned",
    section="selfsupervised", folder_tag="-simclr", tag_prefix="cl",
    tag_letters={"contrastive_epochs": "e", "contrastive_batch_size": "b", "contrastive_temperature": "t"})


# ---------------------------------------------------------------------------
# The pre-training stage


def train_contrastive(X, run_dir, settings, *, verbose: int = 0) -> tuple:
    """Self-supervised pre-training of the encoder (SimCLR-style), or load it when finished.

    Two views of each clip (``settings.contrastive_augment``) through the
    encoder and a projection head; the NT-Xent loss on a held-out share
    (``contrastive_validation_fraction``, chosen as the CAE's hold-out) decides early stopping.

    Parameters
    ----------
    X : np.ndarray [shape=(n, n_mels, n_frames, channels)] or esc_lib.store.LazyRows
        Standardised unlabeled features (the same data rule as the CAE's); a
        ``LazyRows`` (an on-disk pool) is read a batch at a time, in the
        batches the array would give.
    run_dir : str or Path
    settings : esc_lib.settings.Settings

    Returns
    -------
    model : keras.Model
        Encoder + projection head; its ``encoder_*`` layers initialise a
        classifier through :func:`esc_lib.models.transfer_encoder`.
    history : pandas.DataFrame
    """
    import keras
    import numpy as np

    from esc_lib import augment as augmentations
    from esc_lib import protocol, store, training

    if not isinstance(X, store.LazyRows):  # an on-disk pool stays there: batches gather their rows
        X = np.asarray(X, dtype="float32")
    if X.ndim != 4:
        raise training.TrainingError(f"train_contrastive: X must be [n, n_mels, n_frames, channels], got shape {X.shape}")
    run_dir = Path(run_dir)
    try:
        train, validation = protocol.holdout(len(X), settings.contrastive_validation_fraction, settings.seed)
    except ValueError as error:
        raise training.TrainingError(f"train_contrastive: pre-training data: {error}") from None
    views = augmentations.from_spec(settings.augmentation("contrastive_augment"))
    batch = min(settings.contrastive_batch_size, len(train))
    training.write_settings(run_dir, settings, "contrastive_encoder")
    with training.numerics(settings, say=print if verbose else None):
        training.set_seed(settings.seed)
        network = build_contrastive(X.shape[1:], settings.encoder_notation, settings.batch_norm)
        model = _trainer_class()(network, temperature=settings.contrastive_temperature)
        model.compile(optimizer=keras.optimizers.Adam(training.check_learning_rate(settings.learning_rate)))
        history = training.fit(
            model,
            TwoViewStream(X, batch, settings.seed, views, rows=train),
            TwoViewStream(X, min(batch, len(validation)), settings.seed + 1, views, rows=validation),
            run_dir=run_dir, max_epochs=settings.contrastive_epochs, patience=settings.patience, seed=settings.seed,
            verbose=verbose,
        )
    return network, history


def build_contrastive(input_shape, encoder: str, batch_norm: bool, projection: int = 128, hidden: int = 256) -> keras.Model:
    """The encoder (layer names as in the classifier, so :func:`esc_lib.models.transfer_encoder` moves it)
    followed by global max + average pooling and a two-layer projection head [shape=(b, projection)]."""
    import keras

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


def nt_xent(z1, z2, temperature: float):
    """The normalised temperature-scaled cross-entropy of SimCLR for two views [shape=(b, d)] each.

    Each of the 2b embeddings must pick its partner view among the 2b - 1
    others by cosine similarity / ``temperature``; returns the mean loss.
    """
    import keras
    import tensorflow as tf

    z = tf.math.l2_normalize(tf.concat([z1, z2], axis=0), axis=1)
    n = tf.shape(z1)[0]
    logits = tf.matmul(z, z, transpose_b=True) / temperature
    logits = logits - 1e9 * tf.eye(2 * n, dtype=logits.dtype)  # an embedding is not its own partner
    partners = tf.concat([tf.range(n, 2 * n), tf.range(0, n)], axis=0)
    return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(partners, logits, from_logits=True))


class TwoViewStream:
    """Two augmented views of each unlabeled clip, ``((view_1, view_2), dummy)`` per batch, for contrastive training.

    ``dummy`` is a zero per clip (Keras wants a target); the batches of an
    epoch follow a permutation seeded by ``(seed, epoch)`` of ``rows`` (default:
    every row of ``X``, an array or an :class:`esc_lib.store.LazyRows`, whose
    rows each batch gathers); the last partial batch is dropped (a
    contrastive batch needs its negatives).
    """

    def __init__(self, X, batch_size: int, seed: int, augment, rows=None):
        from esc_lib import semi
        from esc_lib.store import LazyRows

        self.X = X if isinstance(X, LazyRows) else np.asarray(X)
        self.rows = np.arange(len(self.X)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.batch_size = semi.check_positive(batch_size, "batch_size")
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
        import tensorflow as tf

        from esc_lib import semi
        from esc_lib.streams import epochs_dataset

        x = np.asarray(self.X[self.rows[:1]]).astype("float32")
        return epochs_dataset(self, initial_epoch, ((semi.tensor_spec(x), semi.tensor_spec(x)), tf.TensorSpec((None,), tf.float32)))


@functools.cache
def _trainer_class():
    import tensorflow as tf

    from esc_lib import semi

    class ContrastiveTrainer(semi.Trainer):
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
            return semi.for_replicas(nt_xent(z[:n], z[n:], self.temperature))

        def train_step(self, data):
            views, _ = data
            with tf.GradientTape() as tape:
                loss = self._loss(views, training=True)
                scaled = self.optimizer.scale_loss(loss)
            self.apply_loss(tape, scaled)
            return self.step_metrics(loss, {})

        def test_step(self, data):
            views, _ = data
            return self.step_metrics(self._loss(views, training=False), {})

    return ContrastiveTrainer


def __getattr__(name: str):
    # PEP 562: the Keras class is made on first access, so the registry imports without TensorFlow.
    if name == "ContrastiveTrainer":
        return _trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
