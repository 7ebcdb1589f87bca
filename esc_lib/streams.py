"""Pescador streams of feature arrays, and the one adapter to Keras ``fit``.

The paper fed its networks with Pescador.  Here every clip (or window of an
unlabeled pool) is one :class:`pescador.Streamer` that yields that example
once; an epoch permutes the streamers with a generator seeded by
``(seed, epoch)``, chains them with :class:`pescador.ChainMux` and groups the
examples with :func:`pescador.buffer_stream`.  So an epoch visits every
example exactly once, and its order depends only on ``(seed, epoch)``: a run
resumed at epoch ``k`` sees the same batches as an uninterrupted one.

(A :class:`pescador.StochasticMux` in ``"exhaustive"`` mode would interleave
the streamers at random too, but it draws each new streamer with a
probability vector over all of them, O(n) per example, which is O(n^2) per
epoch: minutes for the 50 000-clip ESC-US pool.  The seeded permutation plus
``ChainMux`` is O(n).)

:meth:`BatchStream.as_dataset` is the single adapter to Keras: a
``tf.data.Dataset`` whose i-th iteration yields epoch ``initial_epoch + i``.
TensorFlow is imported only there, so this module is cheap to import.
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import Callable, Iterator

import numpy as np
import pescador

__all__ = ["Augmentation", "BatchStream", "epochs_dataset"]

#: ``(x_batch, y_batch, rng) -> (x_batch, y_batch)``; ``y_batch`` is None when
#: the stream's target is its input.  See :mod:`esc_lib.augment`.
Augmentation = Callable[[np.ndarray, "np.ndarray | None", np.random.Generator], tuple]

_TARGETS = ("label", "input")


def _example_streamer(X: np.ndarray, y: np.ndarray | None, index: int) -> pescador.Streamer:
    """One streamer that yields example ``index`` once.

    The generator function is a closure: Pescador deep-copies a streamer's
    arguments each time it activates it, and a closure keeps the (possibly
    large) arrays out of those arguments.
    """
    if y is None:
        def example():
            yield {"x": X[index]}
    else:
        def example():
            yield {"x": X[index], "y": y[index]}
    return pescador.Streamer(example)


class BatchStream:
    """Seeded, epoch-based batches of features (and labels) through Pescador.

    Parameters
    ----------
    X : np.ndarray [shape=(n, ...)]
        Features, e.g. ``(n, n_mels, n_frames, n_channels)`` from
        :func:`esc_lib.features.extract_clips`.
    y : np.ndarray [shape=(n,) or (n, n_classes)] or None
        Integer labels or one-hot / soft targets; None for an unlabeled pool.
    batch_size : int > 0
    shuffle : bool
        Permute the examples each epoch (seeded); otherwise keep their order.
    seed : int
        Seed of the permutation and of the augmentation's random generator.
    target : {"label", "input"}
        Batches are ``(x, y)`` for "label", ``(x, x)`` for "input" (autoencoders).
    augment : callable or None
        ``augment(x_batch, y_batch, rng) -> (x_batch, y_batch)``, applied to
        each batch (see :mod:`esc_lib.augment`); ``y_batch`` is None with
        ``target="input"``, and the augmented ``x`` is then both input and target.
        ``rng`` is seeded by ``(seed, epoch)``, so augmented epochs repeat too.
    drop_remainder : bool
        Drop the last, smaller batch of an epoch.

    Attributes
    ----------
    steps_per_epoch : int
        Batches per epoch.

    Examples
    --------
    >>> stream = BatchStream(X_train, y_train, batch_size=32, seed=0)
    >>> model.fit(stream.as_dataset(), epochs=50)          # no steps_per_epoch needed
    >>> for x_batch, y_batch in stream.epoch(3): ...      # plain NumPy
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray | None = None,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        target: str = "label",
        augment: Augmentation | None = None,
        drop_remainder: bool = False,
    ):
        X = np.asarray(X)
        if X.ndim < 1 or len(X) == 0:
            raise ValueError(f"X must hold at least one example along axis 0, got shape {X.shape}")
        if y is not None:
            y = np.asarray(y)
            if y.ndim < 1 or len(y) != len(X):
                raise ValueError(f"y must have one entry per example of X ({len(X)}), got shape {y.shape}")
        if target not in _TARGETS:
            raise ValueError(f"target must be one of {_TARGETS}, got {target!r}")
        if target == "label" and y is None:
            raise ValueError("target='label' needs labels y; use target='input' for unlabeled data")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if drop_remainder and batch_size > len(X):
            raise ValueError(
                f"drop_remainder=True with batch_size={batch_size} > {len(X)} examples leaves no batch"
            )
        if augment is not None and not callable(augment):
            raise ValueError(f"augment must be callable (x, y, rng) -> (x, y) or None, got {augment!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.X, self.y = X, (y if target == "label" else None)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.target = target
        self.augment = augment
        self.drop_remainder = bool(drop_remainder)
        self._streamers = [_example_streamer(self.X, self.y, i) for i in range(len(X))]

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __repr__(self) -> str:
        return (
            f"BatchStream(n={len(self.X)}, batch_size={self.batch_size}, steps_per_epoch={self.steps_per_epoch}, "
            f"shuffle={self.shuffle}, seed={self.seed}, target={self.target!r}, "
            f"augment={self.augment!r}, drop_remainder={self.drop_remainder})"
        )

    @property
    def n_examples(self) -> int:
        return len(self.X)

    @property
    def steps_per_epoch(self) -> int:
        if self.drop_remainder:
            return len(self.X) // self.batch_size
        return math.ceil(len(self.X) / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """Indices of the examples in the order epoch ``epoch`` visits them."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        if not self.shuffle:
            return np.arange(len(self.X))
        return np.random.default_rng([self.seed, int(epoch)]).permutation(len(self.X))

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The batches of one epoch.

        Yields
        ------
        x_batch : np.ndarray [shape=(b, ...)]
        target : np.ndarray [shape=(b,) or (b, n_classes) for "label"; like x_batch for "input"]
            ``b = batch_size``, except a smaller last batch unless ``drop_remainder``.
        """
        order = self.order(epoch)
        mux = pescador.ChainMux([self._streamers[i] for i in order], mode="exhaustive")
        rng = np.random.default_rng([self.seed, int(epoch), 1])
        batches = pescador.buffer_stream(mux, self.batch_size, partial=not self.drop_remainder)
        for batch in batches:
            x_batch, y_batch = batch["x"], batch.get("y")
            if self.augment is not None:
                x_batch, y_batch = self.augment(x_batch, y_batch, rng)
            yield (x_batch, x_batch) if self.target == "input" else (x_batch, y_batch)

    def as_dataset(self, initial_epoch: int = 0):
        """The stream as a ``tf.data.Dataset`` for ``keras.Model.fit``.

        Each iteration over the dataset (Keras starts one per epoch) yields the
        next epoch: ``initial_epoch``, ``initial_epoch + 1``, ...  To resume a
        run at epoch ``k``, pass ``initial_epoch=k`` here and to ``fit``.  The
        cardinality is ``steps_per_epoch``, so ``fit`` needs no
        ``steps_per_epoch`` (do not pass one: Keras then keeps one iterator
        across epochs and this dataset would run dry after the first).
        Batches are prefetched in the background.

        Returns
        -------
        tf.data.Dataset
            Elements ``(x_batch, target)`` as in :meth:`epoch`.
        """
        import tensorflow as tf

        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
            raise ValueError(f"initial_epoch must be a non-negative integer, got {initial_epoch!r}")
        # The signature comes from a real batch, so an augmentation that turns
        # integer labels into soft ones is described correctly.
        x_probe, t_probe = next(iter(self.epoch(int(initial_epoch))))
        signature = tuple(
            tf.TensorSpec(shape=(None, *np.shape(part)[1:]), dtype=tf.as_dtype(np.asarray(part).dtype))
            for part in (x_probe, t_probe)
        )
        return epochs_dataset(self, initial_epoch, signature)


def epochs_dataset(stream, initial_epoch: int, signature):
    """``stream`` as a prefetched ``tf.data.Dataset``: each iteration yields its next epoch.

    ``stream`` has ``epoch(e)`` (a generator of batches matching
    ``signature``) and ``steps_per_epoch``; the first iteration is epoch
    ``initial_epoch``, the next ``initial_epoch + 1``, ... (what
    :func:`esc_lib.training.fit` relies on to resume).  Shared by
    :class:`BatchStream` and the streams of :mod:`esc_lib.semi`.
    """
    import tensorflow as tf

    epochs = itertools.count(int(initial_epoch))
    lock = threading.Lock()

    def generator():
        with lock:
            epoch = next(epochs)
        yield from stream.epoch(epoch)

    dataset = tf.data.Dataset.from_generator(generator, output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(stream.steps_per_epoch))
    return dataset.prefetch(tf.data.AUTOTUNE)
