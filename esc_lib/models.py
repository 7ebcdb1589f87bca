"""Models built from the paper's architecture notation.

The paper (section 4, after Zhao et al.) writes architectures as a chain of
tokens joined by ``-``:

==============  ===============================================  ==============
token           layer                                            example
==============  ===============================================  ==============
``(f)kc``       k x k convolution with f filters, ReLU            ``(64)5c``
``(f)kxjc``     k x j convolution (rows x columns)               ``(32)3x5c``
``Np``          N x N max-pooling (stride N, padding "same")     ``2p``
``NxMp``        N x M max-pooling                                ``1x2p``
``Nfc``         fully connected layer with N units                ``128fc``
``fc``          the output layer, sized by the number of classes  ``128fc-fc``
``gap``         global average pooling over mel bands and time   ``gap-fc``
``gmp``         global max pooling over mel bands and time       ``gmp-fc``
``gapt``        average over time only, mel rows kept (flattened) ``gapt-fc``
``gmpt``        max over time only, mel rows kept (flattened)     ``gmpt-fc``
                (global pooling tokens: first token of a classifier head only)
==============  ===============================================  ==============

Spaces around tokens are ignored and a leading ``-`` is allowed, so the
paper's ``(64) 5c-2p- (64) 3c-2p`` and ``-128fc-50fc`` both parse.  A bad
token raises :class:`NotationError`, which says where it is, what it is and
what was expected.

* :func:`build_cae` -- the convolutional autoencoder: the encoder as written,
  and a decoder that mirrors it (transposed convolutions back to each
  convolution's input channels; switch unpooling or upsampling for each
  pooling; ReLU everywhere except the linear last layer; MSE loss).
* :func:`build_classifier` -- the same encoder, a fully connected head, and
  a softmax output.
* :func:`transfer_encoder` -- copy the pre-trained encoder into a classifier.
  Encoder layers have the same names in both models (``encoder_conv_1``,
  ``encoder_bn_1``, ``encoder_pool_1``, ``encoder_fc_1``, ...), so weights
  move by name.
* :func:`encoder_features` -- input -> flattened encoder output, for 2-D
  embedding plots.

Inputs are channels-last ``[batch, n_mels, n_frames, channels]``; the paper's
features are 28 x 36 x 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import keras

from esc_lib.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D, UpSampling2DLike

__all__ = [
    "NotationError",
    "LayerSpec",
    "PAPER_ENCODER",
    "PAPER_HEAD",
    "PAPER_INPUT_SHAPE",
    "BN_MOMENTUM",
    "DECODERS",
    "parse_notation",
    "format_notation",
    "encoder_notation",
    "build_cae",
    "build_classifier",
    "transfer_encoder",
    "encoder_layer_names",
    "encoder_features",
]

#: The paper's encoder, ``(f)5c-2p-(f)3c-2p-(f)3c-2p`` with f = 64 (section 4.4, table 2).
PAPER_ENCODER = "(64)5c-2p-(64)3c-2p-(64)3c-2p"
#: The paper's classifier head on ESC-50 (table 2): a 128-unit layer, then 50 classes.
PAPER_HEAD = "128fc-50fc"
#: The paper's feature shape: 28 mel bands x 36 frames x 1 channel.
PAPER_INPUT_SHAPE = (28, 36, 1)
#: The inverses of max-pooling the CAE decoder can use (section 2.4).
DECODERS = ("unpool", "upsample")

#: Momentum of the batch-norm moving statistics.  Keras' default, 0.99, is
#: made for long runs: after the ~100 steps of an early-stopped run on a few
#: hundred clips, about a third of the moving statistics is still the
#: initial (0, 1), and a classifier that learns well scores near chance on
#: validation (measured on ESC-10 fold 1: 21% with 0.99; see profiles/strong.yaml).
BN_MOMENTUM = 0.9

_ENCODER_PREFIX = "encoder_"

_EXPECTED = "a layer: '(filters)kc' (e.g. '(64)5c'), 'Np' (e.g. '2p' or '1x2p'), 'Nfc' (e.g. '128fc'), 'gap', 'gmp', 'gapt' or 'gmpt'"

_CONV = re.compile(r"\(\s*(?P<filters>\d+)\s*\)\s*(?P<rows>\d+)(?:\s*x\s*(?P<cols>\d+))?\s*c", re.IGNORECASE)
_POOL = re.compile(r"(?P<rows>\d+)(?:\s*x\s*(?P<cols>\d+))?\s*p", re.IGNORECASE)
_FC = re.compile(r"(?P<units>\d+)?\s*fc", re.IGNORECASE)
_GLOBAL = re.compile(r"g(?P<kind>[am])p(?P<time>t?)", re.IGNORECASE)
#: Global pooling tokens -> Keras layer (``...t``: over the time axis only, then flattened).
_GLOBAL_POOLING = {
    "gap": "GlobalAveragePooling2D", "gmp": "GlobalMaxPooling2D", "gapt": "AveragePooling2D", "gmpt": "MaxPooling2D",
}


class NotationError(ValueError):
    """An architecture string that does not parse or does not fit where it is used.

    Attributes
    ----------
    text : str
        The whole notation.
    position : int
        0-based character offset of the offending token in ``text``.
    token : str
        The offending token (stripped).
    expected : str
        What would have been valid there.
    """

    def __init__(self, text: str, position: int, token: str, expected: str):
        self.text = text
        self.position = position
        self.token = token
        self.expected = expected
        shown = repr(token) if token else "an empty token"
        message = (
            f"bad architecture notation at position {position} ({shown}): expected {expected}\n"
            f"    {text}\n"
            f"    {' ' * position}^"
        )
        super().__init__(message)


@dataclass(frozen=True)
class LayerSpec:
    """One token of the notation.

    Attributes
    ----------
    kind : {"conv", "pool", "fc", "gap", "gmp", "gapt", "gmpt"}
    filters : int or None
        Convolution filters (``conv`` only).
    kernel_size : tuple of 2 ints or None
        Convolution kernel (rows, columns) (``conv`` only).
    pool_size : tuple of 2 ints or None
        Pooling window = stride (``pool`` only).
    units : int or None
        Dense units (``fc`` only); None for a bare ``fc``, whose size comes
        from the number of classes.
    token : str
        The token as written (stripped).
    position : int
        Character offset of the token in the notation (for error messages).
    """

    kind: str
    filters: int | None = None
    kernel_size: tuple[int, int] | None = None
    pool_size: tuple[int, int] | None = None
    units: int | None = None
    token: str = ""
    position: int = 0

    def notation(self) -> str:
        """The token in canonical form (``(64)5c``, ``1x2p``, ``128fc``, ``fc``, ``gap``)."""
        if self.kind in _GLOBAL_POOLING:
            return self.kind
        if self.kind == "conv":
            rows, cols = self.kernel_size
            size = f"{rows}" if rows == cols else f"{rows}x{cols}"
            return f"({self.filters}){size}c"
        if self.kind == "pool":
            rows, cols = self.pool_size
            return f"{rows}p" if rows == cols else f"{rows}x{cols}p"
        return "fc" if self.units is None else f"{self.units}fc"


def _positive(text: str, position: int, token: str, value: str, what: str) -> int:
    number = int(value)
    if number < 1:
        raise NotationError(text, position, token, f"{what} > 0")
    return number


def parse_notation(text: str) -> list[LayerSpec]:
    """Parse the paper's architecture notation.

    Parameters
    ----------
    text : str
        Tokens joined by ``-``, e.g. ``"(64)5c-2p-(64)3c-2p-(64)3c-2p"``,
        ``"-128fc-50fc"`` or ``"(32)3c-2p-128fc"``.  Case and spaces around
        tokens do not matter; one leading ``-`` is allowed (the paper writes
        the head as a continuation).  An empty string is an empty
        architecture.

    Returns
    -------
    specs : list of LayerSpec
        One per token, in order.

    Raises
    ------
    NotationError
        For a token that is not a layer, a size of 0, or an empty token
        (``--`` or a trailing ``-``); the message points at the token.
    TypeError
        If ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"architecture notation must be a string, got {type(text).__name__}")
    specs: list[LayerSpec] = []
    if not text.strip():
        return specs
    start = 0
    stripped = text.lstrip()
    if stripped.startswith("-"):
        start = len(text) - len(stripped) + 1
    position = start
    for raw in text[start:].split("-"):
        token = raw.strip()
        token_position = position + (len(raw) - len(raw.lstrip()))
        if not token:
            raise NotationError(text, token_position, token, _EXPECTED + " between the '-' separators")
        if match := _CONV.fullmatch(token):
            filters = _positive(text, token_position, token, match["filters"], "a number of filters")
            rows = _positive(text, token_position, token, match["rows"], "a kernel size")
            cols = _positive(text, token_position, token, match["cols"] or match["rows"], "a kernel size")
            spec = LayerSpec("conv", filters=filters, kernel_size=(rows, cols), token=token, position=token_position)
        elif match := _POOL.fullmatch(token):
            rows = _positive(text, token_position, token, match["rows"], "a pool size")
            cols = _positive(text, token_position, token, match["cols"] or match["rows"], "a pool size")
            spec = LayerSpec("pool", pool_size=(rows, cols), token=token, position=token_position)
        elif match := _FC.fullmatch(token):
            units = None
            if match["units"] is not None:
                units = _positive(text, token_position, token, match["units"], "a number of units")
            spec = LayerSpec("fc", units=units, token=token, position=token_position)
        elif match := _GLOBAL.fullmatch(token):
            spec = LayerSpec(f"g{match['kind'].lower()}p{match['time'].lower()}", token=token, position=token_position)
        else:
            hint = _EXPECTED
            if re.fullmatch(r"\d+\s*(x\s*\d+)?\s*c", token, re.IGNORECASE):
                hint = "a convolution written '(filters)kc', e.g. '(64)5c' (the filters go in parentheses)"
            raise NotationError(text, token_position, token, hint)
        specs.append(spec)
        position += len(raw) + 1
    return specs


def format_notation(specs) -> str:
    """Canonical notation for a list of :class:`LayerSpec` (inverse of :func:`parse_notation`)."""
    return "-".join(spec.notation() for spec in specs)


def encoder_notation(filters: int) -> str:
    """The paper's encoder with ``filters`` per convolution: ``(f)5c-2p-(f)3c-2p-(f)3c-2p``.

    Parameters
    ----------
    filters : int > 0
        The grid searched in section 4.4 was 16, 32 and 64.
    """
    if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
        raise ValueError(f"filters must be a positive int, got {filters!r}")
    return f"({filters})5c-2p-({filters})3c-2p-({filters})3c-2p"


def _as_specs(notation, what: str) -> tuple[str, list[LayerSpec]]:
    if isinstance(notation, str):
        return notation, parse_notation(notation)
    specs = list(notation)
    if not all(isinstance(spec, LayerSpec) for spec in specs):
        raise TypeError(f"{what} must be a notation string or a list of LayerSpec, got {notation!r}")
    return format_notation(specs), specs


def _check_encoder(text: str, specs: list[LayerSpec], what: str) -> None:
    seen_fc = False
    for spec in specs:
        if spec.kind in _GLOBAL_POOLING:
            raise NotationError(
                text, spec.position, spec.token,
                f"no '{spec.kind}' in the {what}: global pooling cannot be mirrored by a decoder; "
                f"write it as the first token of the classifier head (e.g. head='{spec.kind}-fc')",
            )
        if spec.kind == "fc":
            if spec.units is None:
                raise NotationError(text, spec.position, spec.token, f"a sized fully connected layer 'Nfc' in the {what}")
            seen_fc = True
        elif seen_fc:
            raise NotationError(
                text, spec.position, spec.token,
                f"only fully connected layers after the first 'fc' in the {what} (no convolution or pooling)",
            )


def _check_input_shape(input_shape) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be (n_mels, n_frames, channels), got {input_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be three positive ints (n_mels, n_frames, channels), got {input_shape!r}")
    return shape


def _conv_block(tensor, spec: LayerSpec, index: int, batch_norm: bool):
    """Convolution + ReLU (+ batch norm between them) with the shared encoder names."""
    if batch_norm:
        tensor = keras.layers.Conv2D(
            spec.filters, spec.kernel_size, padding="same", use_bias=False, name=f"encoder_conv_{index}"
        )(tensor)
        tensor = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"encoder_bn_{index}")(tensor)
        return keras.layers.Activation("relu", name=f"encoder_relu_{index}")(tensor)
    return keras.layers.Conv2D(
        spec.filters, spec.kernel_size, padding="same", activation="relu", name=f"encoder_conv_{index}"
    )(tensor)


def _dense_block(tensor, units: int, name: str, batch_norm: bool, bn_name: str, activation="relu"):
    if batch_norm:
        tensor = keras.layers.Dense(units, use_bias=False, name=name)(tensor)
        tensor = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=bn_name)(tensor)
        return keras.layers.Activation(activation, name=name + "_relu")(tensor)
    return keras.layers.Dense(units, activation=activation, name=name)(tensor)


def _encoder(inputs, specs: list[LayerSpec], batch_norm: bool, switches: bool):
    """Build the encoder; return its output and what the decoder needs to mirror each layer."""
    tensor = inputs
    records = []
    counts = {"conv": 0, "pool": 0, "fc": 0}
    flattened = False
    for spec in specs:
        counts[spec.kind] += 1
        index = counts[spec.kind]
        if spec.kind == "conv":
            records.append(("conv", spec, index, tensor.shape[-1]))
            tensor = _conv_block(tensor, spec, index, batch_norm)
        elif spec.kind == "pool":
            name = f"encoder_pool_{index}"
            if switches:
                reference = tensor
                tensor, argmax = MaxPoolingWithArgmax2D(spec.pool_size, padding="same", name=name)(tensor)
                records.append(("pool", spec, index, (reference, argmax)))
            else:
                records.append(("pool", spec, index, (tensor, None)))
                tensor = keras.layers.MaxPooling2D(spec.pool_size, padding="same", name=name)(tensor)
        else:
            if not flattened:
                records.append(("flatten", spec, index, tuple(tensor.shape[1:])))
                tensor = keras.layers.Flatten(name="encoder_flatten")(tensor)
                flattened = True
            records.append(("fc", spec, index, tensor.shape[-1]))
            tensor = _dense_block(tensor, spec.units, f"encoder_fc_{index}", batch_norm, f"encoder_fc_bn_{index}")
    return tensor, records


def build_cae(input_shape=PAPER_INPUT_SHAPE, encoder: str = PAPER_ENCODER, decoder: str = "unpool",
              batch_norm: bool = False, name: str | None = None) -> keras.Model:
    """The convolutional autoencoder: the encoder as written and its mirror image.

    Parameters
    ----------
    input_shape : tuple of 3 ints > 0
        ``(n_mels, n_frames, channels)``; the paper's is ``(28, 36, 1)``.
        Sizes the pools do not divide are fine: pooling pads ("same") and
        the decoder crops back, so the output has exactly this shape.
    encoder : str or list of LayerSpec
        Notation of the encoder, e.g. :data:`PAPER_ENCODER` or
        ``encoder_notation(32)``.  It must start with a convolution or a
        fully connected layer (so the decoder ends in a linear layer with
        weights); fully connected layers may only come last and are mirrored
        by fully connected layers and a reshape.
    decoder : {"unpool", "upsample"}
        Inverse of each pooling: switch unpooling (the paper's default) or
        upsampling (repeat each value over its window).
    batch_norm : bool
        Batch normalisation between each hidden layer and its ReLU (the
        paper tried it, section 4.4); never on the linear output.
    name : str, optional
        Model name; default ``"cae_unpool"`` / ``"cae_upsample"``.

    Returns
    -------
    keras.Model
        Uncompiled; input and output [shape=(batch, *input_shape)].  Encoder
        layers are named as in :func:`build_classifier`.

    Raises
    ------
    NotationError
        Bad notation, or an encoder that is empty, starts with a pooling, or
        has a convolution/pooling after a fully connected layer.
    ValueError
        Bad ``input_shape`` or ``decoder``.
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    input_shape = _check_input_shape(input_shape)
    text, specs = _as_specs(encoder, "encoder")
    if not specs:
        raise NotationError(text, 0, text.strip(), "at least one layer in the encoder")
    _check_encoder(text, specs, "encoder")
    if specs[0].kind == "pool":
        raise NotationError(
            text, specs[0].position, specs[0].token,
            "a convolution or fully connected layer first, so the decoder can end in a linear layer",
        )

    inputs = keras.Input(shape=input_shape, name="input")
    code, records = _encoder(inputs, specs, batch_norm, switches=(decoder == "unpool"))

    tensor = code
    last = len(records) - 1
    # Walk the encoder backwards; the mirror of the first weighted encoder
    # layer (a flatten may come before it) produces the reconstruction and is
    # therefore linear.
    first_weighted = min(i for i, record in enumerate(records) if record[0] in ("conv", "fc"))
    for position in range(last, -1, -1):
        kind, spec, index, info = records[position]
        is_output = position == first_weighted
        if kind == "fc":
            units = info
            if is_output or not batch_norm:
                tensor = keras.layers.Dense(
                    units, activation=None if is_output else "relu", name=f"decoder_fc_{index}",
                    dtype="float32" if is_output else None,  # the reconstruction in float32 under mixed precision
                )(tensor)
            else:
                tensor = _dense_block(tensor, units, f"decoder_fc_{index}", True, f"decoder_fc_bn_{index}")
        elif kind == "flatten":
            tensor = keras.layers.Reshape(info, name="decoder_reshape")(tensor)
        elif kind == "pool":
            reference, argmax = info
            if decoder == "unpool":
                tensor = MaxUnpooling2D(name=f"decoder_unpool_{index}")([tensor, argmax, reference])
            else:
                tensor = UpSampling2DLike(spec.pool_size, name=f"decoder_upsample_{index}")([tensor, reference])
        else:
            channels = info
            layer_name = f"decoder_deconv_{index}"
            if is_output:
                tensor = keras.layers.Conv2DTranspose(
                    channels, spec.kernel_size, padding="same", activation=None, name=layer_name,
                    dtype="float32",  # the reconstruction in float32 under mixed precision
                )(tensor)
            elif batch_norm:
                tensor = keras.layers.Conv2DTranspose(
                    channels, spec.kernel_size, padding="same", use_bias=False, name=layer_name
                )(tensor)
                tensor = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"decoder_bn_{index}")(tensor)
                tensor = keras.layers.Activation("relu", name=f"decoder_relu_{index}")(tensor)
            else:
                tensor = keras.layers.Conv2DTranspose(
                    channels, spec.kernel_size, padding="same", activation="relu", name=layer_name
                )(tensor)
    return keras.Model(inputs, tensor, name=name or f"cae_{decoder}")


def _resolve_head(text: str, specs: list[LayerSpec], n_classes: int) -> tuple[list[int], str, str | None]:
    """Split a head into hidden layer sizes; check or supply the output layer.

    Rules: an optional first ``gap``, ``gmp``, ``gapt`` or ``gmpt`` (global
    average / max pooling, over time only for ``...t``, instead of flattening
    the encoder output); a bare last ``fc`` is the output layer
    (n_classes units); a last ``Nfc`` with N == n_classes is the output
    layer; with two or more fc layers the last one is the output layer, so
    any other N is an error; a single ``Nfc`` of another size (the default
    ``128fc``) is a hidden layer and the output layer is appended.

    Returns
    -------
    hidden : list of int
    output : {"given", "appended"}
    pooling : {"gap", "gmp", "gapt", "gmpt"} or None
        The head's global pooling, if any.
    """
    pooling = specs[0].kind if specs and specs[0].kind in _GLOBAL_POOLING else None
    if pooling:
        specs = specs[1:]
    for spec in specs:
        if spec.kind in _GLOBAL_POOLING:
            raise NotationError(text, spec.position, spec.token, f"'{spec.kind}' only as the first token of the head")
        if spec.kind != "fc":
            raise NotationError(
                text, spec.position, spec.token, "only fully connected layers 'Nfc' in the head (after an optional first global pooling token)"
            )
    for spec in specs[:-1]:
        if spec.units is None:
            raise NotationError(text, spec.position, spec.token, "a size 'Nfc' (only the last fc may be a bare 'fc')")
    if not specs:
        return [], "appended", pooling
    last = specs[-1]
    hidden = [spec.units for spec in specs[:-1]]
    if last.units is None or last.units == n_classes:
        return hidden, "given", pooling
    if len(specs) >= 2:
        raise NotationError(
            text, last.position, last.token,
            f"an output layer of n_classes={n_classes} units as the last fc ('{n_classes}fc', or a bare 'fc' "
            f"to take the size from the data); '{last.token}' does not match the {n_classes} classes",
        )
    return [last.units], "appended", pooling


def build_classifier(input_shape, n_classes: int, encoder: str = PAPER_ENCODER, head: str = "128fc",
                     batch_norm: bool = False, dropout: float = 0.0, name: str | None = None) -> keras.Model:
    """The classifier: the CAE's encoder, a fully connected head and a softmax output.

    Parameters
    ----------
    input_shape : tuple of 3 ints > 0
        ``(n_mels, n_frames, channels)``.
    n_classes : int >= 2
        Units of the softmax output layer.
    encoder : str or list of LayerSpec
        Same notation as for :func:`build_cae`; layers get the same names,
        so :func:`transfer_encoder` can copy a pre-trained encoder in.  The
        encoder's pooling layers are plain max-pooling (same values as the
        CAE's switch pooling, no switches needed).
    head : str or list of LayerSpec
        Fully connected layers after the encoder (ReLU), optionally after a
        first ``gap`` / ``gmp`` token: global average / max pooling of the
        encoder's feature maps instead of flattening them (few weights; any
        input size, e.g. ``"gap-fc"``), or ``gapt`` / ``gmpt``: the same over
        time only, keeping one value per mel row and channel.  The output layer
        (softmax, ``n_classes`` units) is the head's last ``fc`` when that is
        written bare (``"128fc-fc"``) or has ``n_classes`` units; a head of two
        or more fc layers must end with it (the paper's ``"128fc-50fc"`` on
        ESC-50); otherwise (a single ``Nfc``, e.g. the default ``"128fc"``,
        or an empty head) it is appended.
    batch_norm : bool
        Batch normalisation between each hidden layer and its ReLU.
    dropout : float in [0, 1)
        Dropout rate before every fully connected layer (0 = none, as in
        the paper).
    name : str, optional
        Model name; default ``"classifier"``.

    Returns
    -------
    keras.Model
        Uncompiled; input [shape=(batch, *input_shape)], output class
        probabilities [shape=(batch, n_classes)] from the layer ``"output"``.

    Raises
    ------
    NotationError
        Bad notation; a non-fc token in the head; a head whose output layer
        disagrees with ``n_classes``.
    ValueError
        Bad ``input_shape``, ``n_classes`` or ``dropout``.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
    if not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}")
    input_shape = _check_input_shape(input_shape)
    encoder_text, encoder_specs = _as_specs(encoder, "encoder")
    _check_encoder(encoder_text, encoder_specs, "encoder")
    head_text, head_specs = _as_specs(head, "head")
    hidden, _, pooling = _resolve_head(head_text, head_specs, n_classes)

    inputs = keras.Input(shape=input_shape, name="input")
    tensor, _ = _encoder(inputs, encoder_specs, batch_norm, switches=False)
    if pooling:
        if len(tensor.shape) != 4:
            raise NotationError(
                head_text, head_specs[0].position, head_specs[0].token,
                f"an encoder that ends in a convolution or pooling before '{pooling}' (its output is already flat)",
            )
        if pooling in ("gap", "gmp"):
            tensor = getattr(keras.layers, _GLOBAL_POOLING[pooling])(name=f"head_{pooling}")(tensor)
        else:
            # Over every frame of each mel row: the frequency position of what was found is kept.
            frames = int(tensor.shape[2])
            tensor = getattr(keras.layers, _GLOBAL_POOLING[pooling])(pool_size=(1, frames), name=f"head_{pooling}")(tensor)
            tensor = keras.layers.Flatten(name="head_flatten")(tensor)
    elif len(tensor.shape) > 2:
        tensor = keras.layers.Flatten(name="encoder_flatten")(tensor)
    for index, units in enumerate(hidden, start=1):
        if dropout:
            tensor = keras.layers.Dropout(dropout, name=f"head_dropout_{index}")(tensor)
        tensor = _dense_block(tensor, units, f"head_fc_{index}", batch_norm, f"head_bn_{index}")
    if dropout:
        tensor = keras.layers.Dropout(dropout, name="output_dropout")(tensor)
    # float32 under mixed precision too: a softmax in float16 loses the small probabilities.
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="output", dtype="float32")(tensor)
    return keras.Model(inputs, outputs, name=name or "classifier")


def encoder_layer_names(model: keras.Model) -> list[str]:
    """Names of the encoder layers of ``model`` that hold weights, in order."""
    return [layer.name for layer in model.layers if layer.name.startswith(_ENCODER_PREFIX) and layer.weights]


def transfer_encoder(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy the encoder weights of ``source`` (e.g. a trained CAE) into ``target`` (e.g. a classifier).

    Layers are matched by name (``encoder_conv_1``, ``encoder_bn_1``, ...):
    every encoder layer with weights must exist in both models with the same
    weight shapes.  Both trainable weights and batch-norm statistics move.

    Parameters
    ----------
    source, target : keras.Model
        Built with :func:`build_cae` / :func:`build_classifier` from the
        same encoder notation and ``batch_norm`` setting.

    Returns
    -------
    names : list of str
        The layers copied, in order.

    Raises
    ------
    ValueError
        No encoder layer in common, encoder layers present in one model
        only, or weights of different shapes (e.g. different filters or a
        batch-norm mismatch).
    """
    source_names = encoder_layer_names(source)
    target_names = encoder_layer_names(target)
    if not set(source_names) & set(target_names):
        raise ValueError(
            f"transfer_encoder: no encoder layers in common between {source.name!r} ({source_names}) and "
            f"{target.name!r} ({target_names}); build both from the same encoder notation"
        )
    only_source = [n for n in source_names if n not in target_names]
    only_target = [n for n in target_names if n not in source_names]
    if only_source or only_target:
        raise ValueError(
            f"transfer_encoder: the encoders differ: only in {source.name!r}: {only_source}; only in "
            f"{target.name!r}: {only_target} (same notation and batch_norm setting for both?)"
        )
    for layer_name in target_names:
        source_weights = source.get_layer(layer_name).get_weights()
        target_layer = target.get_layer(layer_name)
        source_shapes = [w.shape for w in source_weights]
        target_shapes = [tuple(w.shape) for w in target_layer.weights]
        if source_shapes != target_shapes:
            raise ValueError(
                f"transfer_encoder: layer {layer_name!r} has weights of shapes {source_shapes} in "
                f"{source.name!r} but {target_shapes} in {target.name!r}"
            )
        target_layer.set_weights(source_weights)
    return target_names


def encoder_features(model: keras.Model) -> keras.Model:
    """A model mapping the input to the flattened encoder output.

    Works for a CAE (the code after the last pooling) and for a classifier
    (the input to its head); the layers, and so the weights, are shared
    with ``model``.

    Returns
    -------
    keras.Model
        Input [shape=(batch, *input_shape)] -> features [shape=(batch, d)],
        e.g. d = 4 * 5 * 64 = 1280 for the paper's encoder on 28 x 36.
    """
    encoder_layers = [layer for layer in model.layers if layer.name.startswith(_ENCODER_PREFIX)]
    if not encoder_layers:
        raise ValueError(f"encoder_features: model {model.name!r} has no layers named '{_ENCODER_PREFIX}*'")
    output = encoder_layers[-1].output
    if isinstance(output, (list, tuple)):
        output = output[0]  # the pooled values of a switch-pooling layer, not its switches
    if len(output.shape) > 2:
        output = keras.layers.Flatten(name="features_flatten")(output)
    return keras.Model(model.inputs, output, name=f"{model.name}_features")
