"""Architecture notation, CAE, classifier and encoder transfer (esc_lib.models)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from esc_lib import models
from esc_lib.layers import MaxUnpooling2D, UpSampling2DLike
from esc_lib.models import (
    PAPER_ENCODER,
    PAPER_HEAD,
    LayerSpec,
    NotationError,
    build_cae,
    build_classifier,
    encoder_features,
    encoder_notation,
    format_notation,
    parse_notation,
    transfer_encoder,
)

TINY = "(3)3c-2p-(4)3c-2p-(2)3c-2p"


# ---------------------------------------------------------------------------
# Notation


@pytest.mark.parametrize(
    "text, canonical, kinds",
    [
        (PAPER_ENCODER, PAPER_ENCODER, ["conv", "pool"] * 3),
        ("-128fc-50fc", "128fc-50fc", ["fc", "fc"]),
        ("(32)3c-2p-128fc", "(32)3c-2p-128fc", ["conv", "pool", "fc"]),
        ("(64) 5c-2p- (64) 3c-2p", "(64)5c-2p-(64)3c-2p", ["conv", "pool", "conv", "pool"]),  # the paper's spacing
        ("(16)3x5C-1x2P-FC", "(16)3x5c-1x2p-fc", ["conv", "pool", "fc"]),
        ("", "", []),
        ("GAP-fc", "gap-fc", ["gap", "fc"]),
        ("gmp-64fc-fc", "gmp-64fc-fc", ["gmp", "fc", "fc"]),
    ],
)
def test_parse_notation(text, canonical, kinds):
    specs = parse_notation(text)
    assert [spec.kind for spec in specs] == kinds
    assert format_notation(specs) == canonical


def test_parse_notation_fields():
    conv, pool, fc, bare = parse_notation("(64)5c-1x2p-128fc-fc")
    assert (conv.filters, conv.kernel_size) == (64, (5, 5))
    assert pool.pool_size == (1, 2)
    assert fc.units == 128 and bare.units is None
    assert (fc.token, fc.position) == ("128fc", 12)


@pytest.mark.parametrize(
    "text, position, token",
    [
        ("(64)5c-2q", 7, "2q"),
        ("(64)5c--2p", 7, ""),
        ("(64)5c-2p-", 10, ""),
        ("64c-2p", 0, "64c"),
        ("(0)3c", 0, "(0)3c"),
        ("(8)0c", 0, "(8)0c"),
        ("(8)3c-0p", 6, "0p"),
        ("(8)3c-2p-0fc", 9, "0fc"),
        ("(8)3c-2p- 12 fc x", 10, "12 fc x"),
        ("(8)3c-(2p", 6, "(2p"),
    ],
)
def test_bad_notation_points_at_the_token(text, position, token):
    with pytest.raises(NotationError) as caught:
        parse_notation(text)
    error = caught.value
    assert (error.position, error.token) == (position, token)
    assert error.expected
    # The message shows the notation with a caret under the token.
    lines = str(error).splitlines()
    assert lines[-2].strip() == text.strip()
    assert lines[-1].index("^") - lines[-2].index(text[:1] or " ") == position


def test_notation_must_be_a_string():
    with pytest.raises(TypeError):
        parse_notation(42)


def test_encoder_notation():
    assert encoder_notation(64) == PAPER_ENCODER
    assert encoder_notation(16) == "(16)5c-2p-(16)3c-2p-(16)3c-2p"
    for bad in (0, -3, 2.5, "64", True):
        with pytest.raises(ValueError):
            encoder_notation(bad)


# ---------------------------------------------------------------------------
# CAE


def test_paper_cae_shapes_and_linear_output():
    model = build_cae((28, 36, 1))
    assert model.input_shape == (None, 28, 36, 1)
    assert model.output_shape == (None, 28, 36, 1)
    assert [model.get_layer(f"encoder_pool_{i}").output[0].shape[1:3] for i in (1, 2, 3)] == [
        (14, 18), (7, 9), (4, 5)]
    assert sum(isinstance(layer, MaxUnpooling2D) for layer in model.layers) == 3
    last = model.layers[-1]
    assert isinstance(last, keras.layers.Conv2DTranspose)
    assert last.activation.__name__ == "linear"
    hidden = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D,)) and layer is not last]
    assert all(layer.activation.__name__ == "relu" for layer in hidden)


@pytest.mark.parametrize("decoder", ["unpool", "upsample"])
@pytest.mark.parametrize("shape", [(28, 36, 1), (27, 35, 2), (5, 3, 1), (9, 16, 1)])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_cae_output_shape_equals_input_shape(decoder, shape, batch_norm):
    model = build_cae(shape, TINY, decoder=decoder, batch_norm=batch_norm)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    out = model.predict(x, verbose=0)
    assert out.shape == x.shape
    inverse = MaxUnpooling2D if decoder == "unpool" else UpSampling2DLike
    assert sum(isinstance(layer, inverse) for layer in model.layers) == 3
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == batch_norm


def test_cae_with_dense_code_and_unpool_regularity():
    model = build_cae((8, 10, 1), "(4)3c-2p-16fc")
    assert model.get_layer("encoder_fc_1").units == 16
    assert model.output_shape == (None, 8, 10, 1)
    # Switch unpooling: the decoder input to the last deconvolution is zero off the switches.
    probe = keras.Model(model.input, model.get_layer("decoder_unpool_1").output)
    out = probe.predict(np.random.default_rng(1).normal(size=(3, 8, 10, 1)).astype("float32"), verbose=0)
    assert (out != 0).sum(axis=(1, 2)).max() <= 4 * 5


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"encoder": "2p-(8)3c"}, NotationError),
        ({"encoder": ""}, NotationError),
        ({"encoder": "(8)3c-16fc-2p"}, NotationError),
        ({"encoder": "(8)3c-fc"}, NotationError),
        ({"decoder": "deconv"}, ValueError),
        ({"input_shape": (28, 36)}, ValueError),
        ({"input_shape": (28, 0, 1)}, ValueError),
    ],
)
def test_cae_bad_arguments(kwargs, error):
    arguments = {"input_shape": (8, 8, 1), "encoder": TINY}
    arguments.update(kwargs)
    with pytest.raises(error):
        build_cae(**arguments)


def test_cae_saves_and_reloads(tmp_path):
    model = build_cae((9, 11, 1), TINY)
    path = tmp_path / "cae.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    x = np.random.default_rng(2).normal(size=(4, 9, 11, 1)).astype("float32")
    assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


# ---------------------------------------------------------------------------
# Classifier


def _dense_sizes(model):
    return [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]


@pytest.mark.parametrize(
    "head, n_classes, sizes",
    [
        ("128fc", 10, [128, 10]),  # the default head: the output layer is appended
        ("128fc-fc", 7, [128, 7]),  # bare fc: its size comes from the data
        (PAPER_HEAD, 50, [128, 50]),  # the paper's ESC-50 head
        ("-64fc-32fc-10fc", 10, [64, 32, 10]),
        ("10fc", 10, [10]),  # a single fc of n_classes units is the output layer
        ("", 4, [4]),
        ("gap-fc", 6, [6]),
        ("gap-32fc", 10, [32, 10]),
        ("gmp-fc", 3, [3]),
    ],
)
def test_classifier_output_size_from_n_classes(head, n_classes, sizes):
    model = build_classifier((12, 10, 1), n_classes, encoder=TINY, head=head)
    assert _dense_sizes(model) == sizes
    assert model.output_shape == (None, n_classes)
    assert model.get_layer("output").activation.__name__ == "softmax"
    probabilities = model.predict(np.zeros((2, 12, 10, 1), "float32"), verbose=0)
    assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_paper_classifier():
    model = build_classifier((28, 36, 1), 10)
    assert model.get_layer("encoder_flatten").output.shape[1:] == (4 * 5 * 64,)
    assert [model.get_layer(f"encoder_conv_{i}").kernel_size for i in (1, 2, 3)] == [(5, 5), (3, 3), (3, 3)]
    assert _dense_sizes(model) == [128, 10]


@pytest.mark.parametrize(
    "head, n_classes, position, token",
    [
        (PAPER_HEAD, 10, 6, "50fc"),  # the paper's ESC-50 head on ESC-10
        ("128fc-(8)3c", 10, 6, "(8)3c"),
        ("fc-10fc", 10, 0, "fc"),
        ("32fc-gap", 10, 5, "gap"),  # gap only first
        ("gap-gap-fc", 10, 4, "gap"),
        ("gap-gmp-fc", 10, 4, "gmp"),
    ],
)
def test_classifier_head_errors_point_at_the_token(head, n_classes, position, token):
    with pytest.raises(NotationError) as caught:
        build_classifier((12, 10, 1), n_classes, encoder=TINY, head=head)
    assert (caught.value.position, caught.value.token) == (position, token)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_classes": 1}, {"n_classes": 2.0}, {"dropout": 1.0}, {"dropout": -0.1}, {"input_shape": "28x36"}],
)
def test_classifier_bad_arguments(kwargs):
    arguments = {"input_shape": (12, 10, 1), "n_classes": 3, "encoder": TINY}
    arguments.update(kwargs)
    with pytest.raises(ValueError):
        build_classifier(**arguments)


def test_classifier_dropout_and_batch_norm_layers():
    model = build_classifier((12, 10, 1), 3, encoder=TINY, head="16fc", batch_norm=True, dropout=0.5)
    names = [layer.name for layer in model.layers]
    assert {"encoder_bn_1", "encoder_bn_2", "encoder_bn_3", "head_bn_1", "head_dropout_1", "output_dropout"} <= set(
        names)


@pytest.mark.parametrize("pooling, reduce", [("gap", np.mean), ("gmp", np.max)])
def test_global_pooling_head(pooling, reduce):
    model = build_classifier((12, 10, 1), 3, encoder=TINY, head=f"{pooling}-fc")
    assert model.get_layer(f"head_{pooling}").output.shape[1:] == (2,)  # the last conv's channels
    x = np.random.default_rng(0).normal(size=(2, 12, 10, 1)).astype("float32")
    maps = keras.Model(model.inputs, model.get_layer("encoder_pool_3").output).predict(x, verbose=0)
    pooled = keras.Model(model.inputs, model.get_layer(f"head_{pooling}").output).predict(x, verbose=0)
    assert_allclose(pooled, reduce(maps, axis=(1, 2)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling, reduce", [("gapt", np.mean), ("gmpt", np.max)])
def test_time_pooling_head_keeps_the_mel_rows(pooling, reduce):
    """``gapt`` / ``gmpt`` pool over time only: one value per mel row and channel, in that order."""
    model = build_classifier((12, 10, 1), 3, encoder="(2)3c-2p", head=f"{pooling}-fc")
    x = np.random.default_rng(0).normal(size=(2, 12, 10, 1)).astype("float32")
    maps = keras.Model(model.inputs, model.get_layer("encoder_pool_1").output).predict(x, verbose=0)
    flat = keras.Model(model.inputs, model.get_layer("head_flatten").output).predict(x, verbose=0)
    assert flat.shape == (2, 6 * 2)
    assert_allclose(flat, reduce(maps, axis=2).reshape(2, -1), rtol=1e-5, atol=1e-6)
    with pytest.raises(NotationError, match="first token"):
        build_classifier((12, 10, 1), 3, encoder="(2)3c-2p", head=f"16fc-{pooling}-fc")


def test_gap_head_with_batch_norm():
    model = build_classifier((12, 10, 1), 3, encoder=TINY, head="gap-fc", batch_norm=True)
    assert "encoder_flatten" not in [layer.name for layer in model.layers]
    assert model.get_layer("encoder_bn_1").momentum == pytest.approx(models.BN_MOMENTUM)


def test_gap_is_not_an_encoder_layer():
    with pytest.raises(NotationError, match="head"):
        build_cae((12, 10, 1), encoder="(3)3c-gap")
    with pytest.raises(NotationError, match="gmp"):
        build_classifier((12, 10, 1), 3, encoder="(3)3c-gmp")
    with pytest.raises(NotationError, match="already flat"):
        build_classifier((12, 10, 1), 3, encoder="(3)3c-2p-8fc", head="gap-fc")


# ---------------------------------------------------------------------------
# Transfer and features


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("decoder", ["unpool", "upsample"])
def test_transfer_encoder_copies_weights(batch_norm, decoder):
    keras.utils.set_random_seed(0)
    cae = build_cae((12, 10, 1), TINY, decoder=decoder, batch_norm=batch_norm)
    classifier = build_classifier((12, 10, 1), 5, encoder=TINY, batch_norm=batch_norm)
    before_head = classifier.get_layer("head_fc_1").get_weights()
    assert not np.array_equal(cae.get_layer("encoder_conv_1").get_weights()[0],
                              classifier.get_layer("encoder_conv_1").get_weights()[0])
    copied = transfer_encoder(cae, classifier)
    expected = ["encoder_conv_1", "encoder_conv_2", "encoder_conv_3"]
    if batch_norm:
        expected = ["encoder_conv_1", "encoder_bn_1", "encoder_conv_2", "encoder_bn_2", "encoder_conv_3",
                    "encoder_bn_3"]
    assert copied == expected
    for name in copied:
        for a, b in zip(cae.get_layer(name).get_weights(), classifier.get_layer(name).get_weights()):
            assert_array_equal(a, b)
    for a, b in zip(before_head, classifier.get_layer("head_fc_1").get_weights()):
        assert_array_equal(a, b)
    # Same encoder weights -> same features from both models.
    x = np.random.default_rng(3).normal(size=(4, 12, 10, 1)).astype("float32")
    assert_allclose(encoder_features(cae).predict(x, verbose=0), encoder_features(classifier).predict(x, verbose=0),
                    rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "source_kwargs, target_kwargs, message",
    [
        ({"encoder": TINY}, {"encoder": "(3)3c-2p-(5)3c-2p-(2)3c-2p"}, "shapes"),
        ({"encoder": TINY, "batch_norm": True}, {"encoder": TINY}, "differ"),
        ({"encoder": TINY}, {"encoder": "(3)3c-2p"}, "differ"),
    ],
)
def test_transfer_encoder_mismatch_raises(source_kwargs, target_kwargs, message):
    source = build_cae((12, 10, 1), **source_kwargs)
    target = build_classifier((12, 10, 1), 3, **target_kwargs)
    with pytest.raises(ValueError, match=message):
        transfer_encoder(source, target)


def test_transfer_encoder_without_common_layers_raises():
    inputs = keras.Input(shape=(12, 10, 1))
    plain = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(inputs))
    with pytest.raises(ValueError, match="no encoder layers in common"):
        transfer_encoder(plain, build_classifier((12, 10, 1), 3, encoder=TINY))


def test_encoder_features_shape():
    cae = build_cae((28, 36, 1), encoder_notation(8))
    features = encoder_features(cae)
    assert features.output_shape == (None, 4 * 5 * 8)
    x = np.random.default_rng(4).normal(size=(3, 28, 36, 1)).astype("float32")
    assert features.predict(x, verbose=0).shape == (3, 160)
    with pytest.raises(ValueError, match="encoder"):
        encoder_features(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))


def test_layer_spec_is_a_value():
    assert parse_notation("(8)3c")[0] == LayerSpec("conv", filters=8, kernel_size=(3, 3), token="(8)3c", position=0)
    assert models.DECODERS == ("unpool", "upsample")


def test_cae_of_a_dense_encoder_ends_linear():
    """An encoder that starts with fc still reconstructs through a linear layer (negative inputs possible)."""
    cae = models.build_cae((4, 6, 1), "32fc-16fc")
    weighted = [layer for layer in cae.layers if layer.weights]
    assert weighted[-1].get_config()["activation"] == "linear"
    assert cae.output_shape[1:] == (4, 6, 1)
