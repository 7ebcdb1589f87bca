"""Pescador batch streams and their Keras adapter."""

from __future__ import annotations

import numpy as np
import pytest

from esc_lib import augment
from esc_lib.streams import BatchStream


def numbered(n: int, shape=(3, 4, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Examples whose every value is their index, and labels index % 3."""
    X = np.broadcast_to(np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1), (n, *shape)).copy()
    return X, np.arange(n) % 3


def ids(x_batch: np.ndarray) -> list[int]:
    return [int(example.flat[0]) for example in x_batch]


@pytest.mark.parametrize(
    "n, batch_size, drop_remainder, sizes",
    [(10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (8, 4, False, [4, 4]), (3, 5, False, [3]), (1, 1, False, [1])],
)
@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_shapes_labels_and_sizes(n, batch_size, drop_remainder, sizes, shuffle):
    X, y = numbered(n)
    stream = BatchStream(X, y, batch_size=batch_size, shuffle=shuffle, drop_remainder=drop_remainder)
    batches = list(stream.epoch(0))
    assert [len(x) for x, _ in batches] == sizes
    assert stream.steps_per_epoch == len(stream) == len(sizes)
    seen = []
    for x_batch, y_batch in batches:
        assert x_batch.shape[1:] == (3, 4, 1) and x_batch.dtype == np.float32
        assert y_batch.shape == (len(x_batch),)
        np.testing.assert_array_equal(y_batch, np.array(ids(x_batch)) % 3)
        seen += ids(x_batch)
    if drop_remainder:
        assert len(set(seen)) == len(seen) == sum(sizes)
    else:
        assert sorted(seen) == list(range(n)), "every example exactly once per epoch"
    if not shuffle:
        assert seen == list(range(len(seen)))


def test_order_depends_only_on_seed_and_epoch():
    X, y = numbered(50)
    first = BatchStream(X, y, batch_size=8, seed=7)
    again = BatchStream(X, y, batch_size=8, seed=7)
    orders = {e: sum((ids(x) for x, _ in first.epoch(e)), []) for e in range(3)}
    assert orders[0] == sum((ids(x) for x, _ in again.epoch(0)), [])
    # A run resumed at epoch 2 sees the batches an uninterrupted run saw.
    assert sum((ids(x) for x, _ in again.epoch(2)), []) == orders[2]
    assert orders[0] != orders[1] != orders[2]
    assert orders[0] != sum((ids(x) for x, _ in BatchStream(X, y, batch_size=8, seed=8).epoch(0)), [])
    np.testing.assert_array_equal(first.order(1), orders[1])


def test_one_hot_targets_pass_through():
    X, y = numbered(6)
    one_hot = np.eye(3, dtype=np.float32)[y]
    for x_batch, y_batch in BatchStream(X, one_hot, batch_size=4).epoch(0):
        np.testing.assert_array_equal(y_batch, np.eye(3)[np.array(ids(x_batch)) % 3])


def test_input_target_for_autoencoders_needs_no_labels():
    X, _ = numbered(7)
    batches = list(BatchStream(X, batch_size=3, target="input").epoch(0))
    assert [len(x) for x, _ in batches] == [3, 3, 1]
    for x_batch, target in batches:
        assert target is x_batch


def test_augment_hook_is_applied_per_batch_and_reproducible():
    X, y = numbered(10)
    calls = []

    def add_noise(x_batch, y_batch, rng):
        calls.append(len(x_batch))
        return x_batch + rng.normal(size=x_batch.shape).astype(np.float32), y_batch

    stream = BatchStream(X, y, batch_size=4, augment=add_noise)
    first = [x for x, _ in stream.epoch(1)]
    second = [x for x, _ in stream.epoch(1)]
    assert calls == [4, 4, 2, 4, 4, 2]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], X[stream.order(1)[:4]])
    other = [x for x, _ in stream.epoch(2)]
    assert not np.array_equal(np.sort(first[0].ravel()), np.sort(other[0].ravel()))


def test_mixup_through_the_stream_gives_soft_labels():
    X, y = numbered(12)
    stream = BatchStream(X, y, batch_size=6, augment=augment.Mixup(alpha=1.0, n_classes=3))
    for x_batch, y_batch in stream.epoch(0):
        assert y_batch.shape == (6, 3) and y_batch.dtype == np.float32
        np.testing.assert_allclose(y_batch.sum(axis=1), 1.0, rtol=1e-6)


def test_input_target_with_augmentation_uses_the_augmented_batch():
    X, _ = numbered(6)
    shift = augment.TimeShift(max_shift=1, mode="fill", fill_value=-1.0)
    stream = BatchStream(X, batch_size=6, target="input", augment=shift)
    for x_batch, target in stream.epoch(0):
        assert target is x_batch
        # ... and the batch really is augmented: a filled (-1) column appears.
        assert not np.array_equal(x_batch, X[stream.order(0)])
        assert (x_batch == -1.0).any()


def test_the_source_arrays_are_not_modified():
    X, y = numbered(8)
    before = X.copy()
    stream = BatchStream(X, y, batch_size=4, augment=augment.SpecMask(value=-9.0))
    list(stream.epoch(0))
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"y": None}, "target='label' needs labels"),
        ({"y": np.zeros(3)}, "one entry per example"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"target": "labels"}, "target must be"),
        ({"augment": "mixup"}, "augment must be callable"),
        ({"seed": -1}, "seed"),
        ({"batch_size": 20, "drop_remainder": True}, "leaves no batch"),
        ({"X": np.zeros((0, 3, 4, 1))}, "at least one example"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    X, y = numbered(10)
    arguments = {"X": X, "y": y, **kwargs}
    with pytest.raises(ValueError, match=message):
        BatchStream(**arguments)


@pytest.mark.parametrize("epoch", [-1, 1.5])
def test_bad_epoch_raises(epoch):
    X, y = numbered(4)
    with pytest.raises(ValueError, match="epoch"):
        list(BatchStream(X, y).epoch(epoch))


@pytest.mark.slow
def test_as_dataset_feeds_keras_fit_one_epoch_per_iteration():
    import keras
    import tensorflow as tf

    X, y = numbered(20)
    X = X + np.random.default_rng(0).normal(size=X.shape).astype(np.float32)
    stream = BatchStream(X, y, batch_size=8, seed=3)
    generated = []
    original = stream.epoch

    def spying_epoch(epoch):
        generated.append(epoch)
        return original(epoch)

    stream.epoch = spying_epoch
    dataset = stream.as_dataset(initial_epoch=0)
    assert int(dataset.cardinality()) == stream.steps_per_epoch == 3
    assert dataset.element_spec[0].shape.as_list() == [None, 3, 4, 1]
    generated.clear()  # the signature probe is not an epoch of training

    model = keras.Sequential([keras.Input((3, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(dataset, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert generated == [0, 1]

    # A resumed run (initial_epoch=5) yields exactly the batches of epoch 5, then 6.
    resumed = stream.as_dataset(initial_epoch=5)
    for epoch in (5, 6):
        for (x_tf, y_tf), (x_np, y_np) in zip(resumed, original(epoch), strict=True):
            np.testing.assert_array_equal(x_tf.numpy(), x_np)
            np.testing.assert_array_equal(y_tf.numpy(), y_np)
    assert tf.is_tensor(next(iter(resumed))[0])


@pytest.mark.slow
def test_as_dataset_with_soft_labels_and_autoencoder_targets():
    X, y = numbered(10)
    soft = BatchStream(X, y, batch_size=4, augment=augment.Mixup(alpha=1.0, n_classes=3)).as_dataset()
    assert soft.element_spec[1].shape.as_list() == [None, 3]
    assert soft.element_spec[1].dtype.name == "float32"
    autoencoder = BatchStream(X, batch_size=4, target="input").as_dataset()
    for x_batch, target in autoencoder:
        np.testing.assert_array_equal(x_batch.numpy(), target.numpy())
    with pytest.raises(ValueError, match="initial_epoch"):
        BatchStream(X, y).as_dataset(initial_epoch=-1)
