"""Switch pooling/unpooling and upsampling layers (esc_lib.layers)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_array_equal

from esc_lib.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D, UpSampling2DLike


def _pool_unpool_model(shape, pool_size=(2, 2), padding="same"):
    inputs = keras.Input(shape=shape)
    pooled, argmax = MaxPoolingWithArgmax2D(pool_size, padding=padding)(inputs)
    unpooled = MaxUnpooling2D()([pooled, argmax, inputs])
    return keras.Model(inputs, [pooled, argmax, unpooled])


def _reference_unpool(x, pool_size, padding):
    """Loop implementation: keep each window's first maximum, zero the rest."""
    batch, height, width, channels = x.shape
    rows, cols = pool_size
    out_h = -(-height // rows) if padding == "same" else height // rows
    out_w = -(-width // cols) if padding == "same" else width // cols
    pooled = np.zeros((batch, out_h, out_w, channels), x.dtype)
    unpooled = np.zeros_like(x)
    for b in range(batch):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    window = x[b, i * rows:(i + 1) * rows, j * cols:(j + 1) * cols, c]
                    r, s = np.unravel_index(np.argmax(window), window.shape)
                    pooled[b, i, j, c] = window[r, s]
                    unpooled[b, i * rows + r, j * cols + s, c] = window[r, s]
    return pooled, unpooled


@pytest.mark.parametrize("batch_size", [1, 3])
def test_unpool_2x2_block_keeps_only_the_max(batch_size):
    block = np.array([[1, 2], [3, 4]], dtype="float32")[None, :, :, None]
    x = np.concatenate([block * (k + 1) for k in range(batch_size)])
    pooled, argmax, unpooled = _pool_unpool_model((2, 2, 1)).predict(x, verbose=0)
    expected = np.concatenate([np.array([[0, 0], [0, 4]], "float32")[None, :, :, None] * (k + 1)
                               for k in range(batch_size)])
    assert_array_equal(unpooled, expected)
    assert_array_equal(pooled[:, 0, 0, 0], 4 * np.arange(1, batch_size + 1))
    assert argmax.dtype == np.int64
    # The switch includes the batch: example k's max is at flat index 4k + 3.
    assert_array_equal(argmax[:, 0, 0, 0], 4 * np.arange(batch_size) + 3)


@pytest.mark.parametrize(
    "padding, expected_pooled, expected_unpooled",
    [
        # "same": the odd last column is a window of its own and keeps its value.
        ("same", [[2, 3], [4, 3]], [[0, 2, 3], [0, 4, 3]]),
        # "valid" (the seed's Keras default): the last column is dropped, as in its test.
        ("valid", [[2], [4]], [[0, 2, 0], [0, 4, 0]]),
    ],
)
def test_1x2_pool_over_odd_width(padding, expected_pooled, expected_unpooled):
    x = np.array([[1, 2, 3], [3, 4, 3]], dtype="float32")[None, :, :, None]
    pooled, _, unpooled = _pool_unpool_model((2, 3, 1), pool_size=(1, 2), padding=padding).predict(x, verbose=0)
    assert_array_equal(pooled[0, :, :, 0], expected_pooled)
    assert_array_equal(unpooled[0, :, :, 0], expected_unpooled)
    assert unpooled.shape == x.shape


@pytest.mark.parametrize(
    "shape, pool_size, padding",
    [
        ((28, 36, 2), (2, 2), "same"),
        ((7, 9, 3), (2, 2), "same"),
        ((5, 7, 1), (3, 2), "same"),
        ((7, 9, 3), (2, 2), "valid"),
        ((4, 6, 2), (1, 3), "valid"),
    ],
)
def test_matches_loop_reference(shape, pool_size, padding):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, *shape)).astype("float32")  # continuous values: no ties
    pooled, _, unpooled = _pool_unpool_model(shape, pool_size, padding).predict(x, verbose=0)
    expected_pooled, expected_unpooled = _reference_unpool(x, pool_size, padding)
    assert_array_equal(pooled, expected_pooled)
    assert_array_equal(unpooled, expected_unpooled)


def test_paper_odd_sizes_go_down_and_back_exactly():
    inputs = keras.Input(shape=(28, 36, 1))
    tensor, references, switches = inputs, [], []
    for _ in range(3):
        references.append(tensor)
        tensor, argmax = MaxPoolingWithArgmax2D()(tensor)
        switches.append(argmax)
    assert tuple(tensor.shape[1:3]) == (4, 5)
    assert [tuple(r.shape[1:3]) for r in references] == [(28, 36), (14, 18), (7, 9)]
    for reference, argmax in zip(reversed(references), reversed(switches)):
        tensor = MaxUnpooling2D()([tensor, argmax, reference])
    assert tuple(tensor.shape[1:]) == (28, 36, 1)
    x = np.random.default_rng(0).normal(size=(5, 28, 36, 1)).astype("float32")
    out = keras.Model(inputs, tensor).predict(x, verbose=0)
    assert out.shape == x.shape
    # 4 * 5 maxima of 8 x 8 blocks survive, in place.
    nonzero = out != 0
    assert nonzero.sum(axis=(1, 2, 3)).tolist() == [20] * 5
    assert_array_equal(out[nonzero], x[nonzero])


def test_any_batch_size_in_one_model():
    model = _pool_unpool_model((4, 6, 2))
    rng = np.random.default_rng(1)
    for n in (1, 5, 7):
        x = rng.normal(size=(n, 4, 6, 2)).astype("float32")
        # batch_size=2 makes a partial last batch
        _, _, unpooled = model.predict(x, batch_size=2, verbose=0)
        assert_array_equal(unpooled, _reference_unpool(x, (2, 2), "same")[1])


def test_gradients_flow_through_both_layers():
    pool = MaxPoolingWithArgmax2D()
    unpool = MaxUnpooling2D()
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 5, 7, 3)).astype("float32"))
    weights = tf.constant(np.random.default_rng(3).normal(size=(2, 5, 7, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        pooled, argmax = pool(x)
        loss = tf.reduce_sum(unpool([pooled * 2.0, argmax, x]) * weights)
    gradient = tape.gradient(loss, x).numpy()
    _, unpooled = _reference_unpool(x.numpy(), (2, 2), "same")
    is_max = unpooled != 0
    # d loss / d x = 2 * weight at each window's maximum, 0 elsewhere.
    np.testing.assert_allclose(gradient[is_max], 2.0 * weights.numpy()[is_max], rtol=1e-6)
    assert_array_equal(gradient[~is_max], 0.0)


def test_a_model_with_the_layers_trains():
    inputs = keras.Input(shape=(6, 8, 1))
    hidden = keras.layers.Conv2D(3, 3, padding="same", activation="relu")(inputs)
    pooled, argmax = MaxPoolingWithArgmax2D()(hidden)
    code = keras.layers.Conv2D(3, 3, padding="same", activation="relu")(pooled)
    unpooled = MaxUnpooling2D()([code, argmax, hidden])
    outputs = keras.layers.Conv2DTranspose(1, 3, padding="same")(unpooled)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x = np.random.default_rng(4).normal(size=(16, 6, 8, 1)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, x, batch_size=4, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # Every weight tensor below the unpooling received gradient.
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("layer", [MaxPoolingWithArgmax2D((1, 2), padding="valid"), MaxUnpooling2D(),
                                   UpSampling2DLike((3, 2))])
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def test_saved_model_reloads_and_predicts_the_same(tmp_path):
    inputs = keras.Input(shape=(7, 9, 2))
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    pooled, argmax = MaxPoolingWithArgmax2D(name="pool")(hidden)
    unpooled = MaxUnpooling2D(name="unpool")([pooled, argmax, hidden])
    upsampled = UpSampling2DLike(name="upsample")([pooled, hidden])
    outputs = keras.layers.Concatenate()([unpooled, upsampled])
    model = keras.Model(inputs, outputs)
    path = tmp_path / "layers.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.get_layer("unpool"), MaxUnpooling2D)
    assert isinstance(reloaded.get_layer("pool"), MaxPoolingWithArgmax2D)
    x = np.random.default_rng(5).normal(size=(3, 7, 9, 2)).astype("float32")
    assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_upsampling_repeats_then_crops_to_reference():
    values = np.array([[1, 2], [3, 4]], dtype="float32")[None, :, :, None]
    reference = np.zeros((1, 3, 3, 1), dtype="float32")
    out = UpSampling2DLike((2, 2))([tf.constant(values), tf.constant(reference)]).numpy()
    assert_array_equal(out[0, :, :, 0], [[1, 1, 2], [1, 1, 2], [3, 3, 4]])


@pytest.mark.parametrize(
    "make",
    [
        lambda: MaxPoolingWithArgmax2D(pool_size=0),
        lambda: MaxPoolingWithArgmax2D(pool_size=(2, 2, 2)),
        lambda: MaxPoolingWithArgmax2D(pool_size="2"),
        lambda: MaxPoolingWithArgmax2D(padding="full"),
        lambda: UpSampling2DLike(size=-1),
    ],
)
def test_bad_arguments_raise(make):
    with pytest.raises(ValueError):
        make()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="4-D"):
        MaxPoolingWithArgmax2D()(keras.Input(shape=(8,)))
    x = keras.Input(shape=(4, 4, 3))
    pooled, argmax = MaxPoolingWithArgmax2D()(x)
    with pytest.raises(ValueError, match="three inputs"):
        MaxUnpooling2D()([pooled, argmax])
    with pytest.raises(ValueError, match="same shape"):
        MaxUnpooling2D()([keras.layers.Conv2D(5, 1)(pooled), argmax, x])
    with pytest.raises(ValueError, match="cannot cover"):
        UpSampling2DLike((2, 2))([pooled, keras.Input(shape=(9, 4, 3))])
