"""Switch pooling and unpooling layers for the convolutional autoencoder.

Max-pooling is many-to-one; a decoder has to undo it.  The paper (section 2.4)
compares two inverses:

* **switch unpooling** (Zhao et al.): the encoder's pooling layer records the
  position of each maximum (the *switches*); the decoder puts each value back
  at that position and zeros everywhere else
  (:class:`MaxPoolingWithArgmax2D` + :class:`MaxUnpooling2D`);
* **upsampling**: every value is repeated over its pooling window
  (:class:`UpSampling2DLike`).

Pooling uses ``padding="same"`` by default, so a size that the pool does not
divide is rounded up (28x36 -> 14x18 -> 7x9 -> 4x5), and both inverses take
the pre-pool tensor as a *reference* so they come back to exactly its shape
(4x5 -> 7x9, not 8x10).

The layers hold no weights, work for any batch size (all shapes are read at
run time), are differentiable (the pooling's gradient routes through the
switches; the unpooling's gradient is a gather at the switches), and are
registered with Keras under the package ``esc_lib`` so a saved ``.keras``
model that contains them loads again once :mod:`esc_lib.layers` is imported
(:mod:`esc_lib.models` imports it).

All tensors are channels-last: ``[batch, height, width, channels]``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["MaxPoolingWithArgmax2D", "MaxUnpooling2D", "UpSampling2DLike"]

_PADDINGS = ("same", "valid")


def _pair(value, name: str, owner: str) -> tuple[int, int]:
    """``2`` -> ``(2, 2)``; ``(1, 2)`` stays; anything else is a ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be an int or a pair of ints, got {value!r}") from None
    if len(pair) != 2 or any(v < 1 for v in pair) or any(isinstance(v, bool) for v in value):
        raise ValueError(f"{owner}: {name} must be one or two positive ints, got {value!r}")
    return pair


def _pooled_length(length, pool: int, padding: str):
    if length is None:
        return None
    if padding == "same":
        return -(-length // pool)
    return length // pool


@keras.saving.register_keras_serializable(package="esc_lib")
class MaxPoolingWithArgmax2D(keras.layers.Layer):
    """Max-pooling that also returns where each maximum came from.

    Windows do not overlap (the stride equals ``pool_size``).

    Parameters
    ----------
    pool_size : int or tuple of 2 ints > 0
        Window ``(rows, columns)``; an int means a square window.
    padding : {"same", "valid"}
        ``"same"`` keeps the partial windows at the bottom/right edge (output
        size ``ceil(n / pool)``); ``"valid"`` drops them (``floor(n / pool)``).
    **kwargs
        Passed to :class:`keras.layers.Layer` (``name``, ``dtype``, ...).

    Call arguments
    --------------
    inputs : tensor [shape=(batch, height, width, channels)], float

    Returns
    -------
    [pooled, argmax]
        ``pooled`` [shape=(batch, height', width', channels)], the maxima;
        ``argmax`` [same shape], int64: the flat index of each maximum in
        the input, ``((b * height + y) * width + x) * channels + c`` (the batch
        is part of the index, so :class:`MaxUnpooling2D` needs nothing else).
    """

    def __init__(self, pool_size=(2, 2), padding="same", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size", type(self).__name__)
        padding = str(padding).lower()
        if padding not in _PADDINGS:
            raise ValueError(f"{type(self).__name__}: padding must be one of {_PADDINGS}, got {padding!r}")
        self.padding = padding

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{type(self).__name__} expects 4-D input (batch, height, width, channels), "
                f"got shape {tuple(input_shape)}"
            )
        # No weights: the switches are outputs, not state.
        self.built = True

    def call(self, inputs):
        window = (1, *self.pool_size, 1)
        pooled, argmax = tf.nn.max_pool_with_argmax(
            inputs,
            ksize=window,
            strides=window,
            padding=self.padding.upper(),
            include_batch_in_index=True,
        )
        return [pooled, argmax]

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        shape = (
            batch,
            _pooled_length(height, self.pool_size[0], self.padding),
            _pooled_length(width, self.pool_size[1], self.padding),
            channels,
        )
        return [shape, shape]

    def compute_output_spec(self, inputs):
        pooled_shape, argmax_shape = self.compute_output_shape(inputs.shape)
        return [
            keras.KerasTensor(pooled_shape, dtype=inputs.dtype),
            keras.KerasTensor(argmax_shape, dtype="int64"),
        ]

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "padding": self.padding})
        return config


@keras.saving.register_keras_serializable(package="esc_lib")
class MaxUnpooling2D(keras.layers.Layer):
    """Switch unpooling: each value goes back to where its maximum was; zeros elsewhere.

    The inverse of :class:`MaxPoolingWithArgmax2D`.  There is nothing to
    configure: the switches say where every value goes and the reference
    tensor gives the output shape.

    Call arguments
    --------------
    inputs : [values, argmax, reference]
        ``values`` [shape=(batch, h', w', c)], float: what to unpool (in an
        autoencoder, the decoder's tensor at this depth);
        ``argmax`` [shape=(batch, h', w', c)], int64: the switches from the
        matching :class:`MaxPoolingWithArgmax2D`;
        ``reference`` [shape=(batch, height, width, c)]: the tensor that went
        into that pooling layer; only its shape is used.

    Returns
    -------
    unpooled : tensor [shape=(batch, height, width, c)]
        Same shape as ``reference``.
    """

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects three inputs [values, argmax, reference], "
                f"got {input_shape!r}"
            )
        values_shape, argmax_shape, reference_shape = (tuple(s) for s in input_shape)
        if len(values_shape) != 4 or len(reference_shape) != 4:
            raise ValueError(
                f"{type(self).__name__}: values and reference must be 4-D, got {values_shape} and {reference_shape}"
            )
        if values_shape[1:] != argmax_shape[1:] and None not in values_shape[1:] + argmax_shape[1:]:
            raise ValueError(
                f"{type(self).__name__}: values {values_shape} and argmax {argmax_shape} must have the same shape"
            )
        if None not in (values_shape[-1], reference_shape[-1]) and values_shape[-1] != reference_shape[-1]:
            raise ValueError(
                f"{type(self).__name__}: values have {values_shape[-1]} channels but the reference has "
                f"{reference_shape[-1]}; unpool before changing the number of channels"
            )
        self.built = True

    def call(self, inputs):
        values, argmax, reference = inputs
        output_shape = tf.shape(reference, out_type=tf.int64)
        size = tf.reduce_prod(output_shape)
        # Windows do not overlap, so every switch is distinct and scatter_nd
        # (which would add duplicates) just places each value.
        flat = tf.scatter_nd(
            tf.reshape(tf.cast(argmax, tf.int64), (-1, 1)),
            tf.reshape(values, (-1,)),
            tf.reshape(size, (1,)),
        )
        return tf.reshape(flat, output_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[2])

    def compute_output_spec(self, inputs):
        values, _, reference = inputs
        return keras.KerasTensor(reference.shape, dtype=values.dtype)


@keras.saving.register_keras_serializable(package="esc_lib")
class UpSampling2DLike(keras.layers.Layer):
    """Upsampling to a reference shape: repeat each value over its window, then crop.

    The paper's *upsampling* inverse of max-pooling.  Repeating a 4x5 map by
    2 gives 8x10; cropping the bottom/right edge to the reference gives the
    7x9 that went into the pooling layer (``padding="same"`` pads at the
    bottom/right, so that is where the extra row/column belongs).

    Parameters
    ----------
    size : int or tuple of 2 ints > 0
        Repeat factor ``(rows, columns)``, the pool size being inverted.
    **kwargs
        Passed to :class:`keras.layers.Layer`.

    Call arguments
    --------------
    inputs : [values, reference]
        ``values`` [shape=(batch, h', w', c)]; ``reference``
        [shape=(batch, height, width, c)] with ``height <= h' * rows`` and
        ``width <= w' * columns``; only its shape is used.

    Returns
    -------
    upsampled : tensor [shape=(batch, height, width, c)]
    """

    def __init__(self, size=(2, 2), **kwargs):
        super().__init__(**kwargs)
        self.size = _pair(size, "size", type(self).__name__)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(f"{type(self).__name__} expects two inputs [values, reference], got {input_shape!r}")
        values_shape, reference_shape = (tuple(s) for s in input_shape)
        for axis in (1, 2):
            small, big = values_shape[axis], reference_shape[axis]
            if None not in (small, big) and not (small * self.size[axis - 1] >= big):
                raise ValueError(
                    f"{type(self).__name__}: {values_shape} upsampled by {self.size} cannot cover the "
                    f"reference shape {reference_shape}"
                )
        self.built = True

    def call(self, inputs):
        values, reference = inputs
        repeated = tf.repeat(tf.repeat(values, self.size[0], axis=1), self.size[1], axis=2)
        shape = tf.shape(reference)
        return repeated[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shape):
        values_shape, reference_shape = input_shape
        return (values_shape[0], reference_shape[1], reference_shape[2], values_shape[3])

    def compute_output_spec(self, inputs):
        values, reference = inputs
        shape = self.compute_output_shape((values.shape, reference.shape))
        return keras.KerasTensor(shape, dtype=values.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size})
        return config
