"""On-the-fly augmentations of feature batches, for :class:`esc_lib.streams.BatchStream`.

Each augmentation is a callable ``(x_batch, y_batch, rng) -> (x_batch, y_batch)``:

* ``x_batch`` : np.ndarray [shape=(b, n_mels, n_frames, n_channels)]
* ``y_batch`` : np.ndarray [shape=(b,) integer labels or (b, n_classes) targets], or None
  (autoencoder streams)
* ``rng`` : np.random.Generator, supplied by the stream and seeded by
  ``(seed, epoch)``, so an augmented epoch is reproducible.

They never modify their inputs in place.  Combine several with :class:`Compose`,
or build a chain from a short text (a profile or notebook parameter) with
:func:`from_spec`, e.g. ``"shift:max_shift=4 + mask:freq_masks=2 + mixup:alpha=0.2"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TimeShift", "FreqShift", "TimeStretch", "SpecMask", "Cutout", "Occlusion", "Speed", "Mixup", "Compose",
           "from_spec", "NAMES"]

_TIME_AXIS = 2
_FREQ_AXIS = 1


def _check_batch(x: np.ndarray, who: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{who} expects x of shape (batch, n_mels, n_frames, n_channels), got {x.shape}")
    return x


def _non_negative_int(value, name: str, who: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{who}.{name} must be a non-negative integer, got {value!r}")


@dataclass(frozen=True)
class TimeShift:
    """Shift each example along time by a random number of frames in ``[-max_shift, max_shift]``.

    Parameters
    ----------
    max_shift : int >= 0
        Largest shift in frames.
    mode : {"roll", "fill"}
        "roll" wraps frames around (the clip is treated as a loop); "fill"
        shifts and fills the vacated frames with ``fill_value``.
    fill_value : float or None
        With "fill": the value of vacated frames; None uses each example's
        minimum (silence, on a dB scale).
    """

    max_shift: int = 4
    mode: str = "roll"
    fill_value: float | None = None

    def __post_init__(self) -> None:
        _non_negative_int(self.max_shift, "max_shift", "TimeShift")
        if self.mode not in ("roll", "fill"):
            raise ValueError(f"TimeShift.mode must be 'roll' or 'fill', got {self.mode!r}")

    def __call__(self, x, y, rng: np.random.Generator):
        x = _check_batch(x, "TimeShift")
        shifts = rng.integers(-self.max_shift, self.max_shift + 1, size=len(x))
        out = np.empty_like(x)
        for i, shift in enumerate(shifts):
            out[i] = np.roll(x[i], int(shift), axis=_TIME_AXIS - 1)
            if self.mode == "fill" and shift:
                value = x[i].min() if self.fill_value is None else self.fill_value
                if shift > 0:
                    out[i, :, :shift] = value
                else:
                    out[i, :, shift:] = value
        return out, y


@dataclass(frozen=True)
class FreqShift:
    """Shift each example along the mel axis by a random number of bands in ``[-max_shift, max_shift]``.

    A shift of a few mel bands is roughly a pitch shift (Salamon & Bello 2017 found pitch shifting
    the most useful augmentation for environmental sounds), done on the features.

    Parameters
    ----------
    max_shift : int >= 0
        Largest shift in mel bands.
    mode : {"fill", "roll"}
        "fill" (the default) shifts and fills the vacated bands with ``fill_value``; "roll"
        wraps the top bands round to the bottom.
    fill_value : float or None
        With "fill": the value of vacated bands; None repeats the nearest band that was kept
        (the lowest after an upward shift, the highest after a downward one).
    """

    max_shift: int = 2
    mode: str = "fill"
    fill_value: float | None = None

    def __post_init__(self) -> None:
        _non_negative_int(self.max_shift, "max_shift", "FreqShift")
        if self.mode not in ("roll", "fill"):
            raise ValueError(f"FreqShift.mode must be 'roll' or 'fill', got {self.mode!r}")

    def __call__(self, x, y, rng: np.random.Generator):
        x = _check_batch(x, "FreqShift")
        n_mels = x.shape[_FREQ_AXIS]
        shifts = rng.integers(-self.max_shift, self.max_shift + 1, size=len(x))
        out = np.empty_like(x)
        for i, shift in enumerate(shifts):
            shift = int(shift)
            out[i] = np.roll(x[i], shift, axis=_FREQ_AXIS - 1)
            if self.mode == "fill" and shift:
                shift = max(-n_mels, min(n_mels, shift))
                if shift > 0:
                    out[i, :shift] = x[i, :1] if self.fill_value is None else self.fill_value
                else:
                    out[i, shift:] = x[i, -1:] if self.fill_value is None else self.fill_value
        return out, y


@dataclass(frozen=True)
class TimeStretch:
    """Stretch or compress each example in time by a random rate, keeping its number of frames.

    The rate ``r`` is log-uniform in ``[1 / max_rate, max_rate]``; output frame ``j`` is the input
    at position ``(offset + j) / r``, linearly interpolated between frames.  A stretched example
    (``r > 1``) is a random window of the longer clip; a compressed one (``r < 1``) continues
    round the clip as a loop, as :class:`TimeShift`'s "roll" treats it.  (A time stretch on the
    features: faster or slower events, pitch unchanged.)

    Parameters
    ----------
    max_rate : float >= 1
        1 is the identity; 1.25 stretches by up to 25% and compresses by up to 20%.
    """

    max_rate: float = 1.2

    def __post_init__(self) -> None:
        if isinstance(self.max_rate, bool) or not isinstance(self.max_rate, (int, float)) or not self.max_rate >= 1:
            raise ValueError(f"TimeStretch.max_rate must be a number >= 1, got {self.max_rate!r}")

    def __call__(self, x, y, rng: np.random.Generator):
        x = _check_batch(x, "TimeStretch")
        n_frames = x.shape[_TIME_AXIS]
        spread = np.log(float(self.max_rate))
        rates = np.exp(rng.uniform(-spread, spread, size=len(x)))
        offsets = rng.uniform(0.0, 1.0, size=len(x))
        frames = np.arange(n_frames, dtype=np.float64)
        out = np.empty_like(x)
        for i, (rate, offset) in enumerate(zip(rates, offsets)):
            start = offset * max(0.0, n_frames * rate - n_frames)
            position = (start + frames) / rate
            below = np.floor(position)
            weight = (position - below).astype(x.dtype)[None, :, None]
            first = below.astype(np.int64) % n_frames
            second = (first + 1) % n_frames
            out[i] = x[i][:, first] * (1 - weight) + x[i][:, second] * weight
        return out, y


@dataclass(frozen=True)
class SpecMask:
    """SpecAugment-style masking: blank random bands of mel bins and of frames.

    Each example gets ``freq_masks`` masks of ``0..max_freq_width`` adjacent
    mel bands and ``time_masks`` masks of ``0..max_time_width`` adjacent
    frames (in every channel), set to ``value``.

    Parameters
    ----------
    freq_masks, time_masks : int >= 0
    max_freq_width, max_time_width : int >= 0
    value : float or None
        Fill value; None uses each example's mean (0 after standardisation).
    """

    freq_masks: int = 1
    max_freq_width: int = 4
    time_masks: int = 1
    max_time_width: int = 4
    value: float | None = None

    def __post_init__(self) -> None:
        for name in ("freq_masks", "max_freq_width", "time_masks", "max_time_width"):
            _non_negative_int(getattr(self, name), name, "SpecMask")

    def __call__(self, x, y, rng: np.random.Generator):
        x = _check_batch(x, "SpecMask")
        out = x.copy()
        n_mels, n_frames = x.shape[_FREQ_AXIS], x.shape[_TIME_AXIS]
        for i in range(len(x)):
            value = x[i].mean() if self.value is None else self.value
            for _ in range(self.freq_masks):
                width = int(rng.integers(0, min(self.max_freq_width, n_mels) + 1))
                start = int(rng.integers(0, n_mels - width + 1))
                out[i, start : start + width, :, :] = value
            for _ in range(self.time_masks):
                width = int(rng.integers(0, min(self.max_time_width, n_frames) + 1))
                start = int(rng.integers(0, n_frames - width + 1))
                out[i, :, start : start + width, :] = value
        return out, y


def _fraction(value, name: str, who: str, upper: float = 1.0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= upper:
        raise ValueError(f"{who}.{name} must be a number in [0, {upper:g}], got {value!r}")


def _applied(p: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Which of ``n`` examples an augmentation with probability ``p`` changes (all when p is 1)."""
    return np.ones(n, dtype=bool) if p >= 1 else rng.random(n) < p


@dataclass(frozen=True)
class Cutout:
    """Blank one random rectangle of each example: its height and width each a uniform share in
    ``[min_size, max_size]`` of the mel bands and of the frames (SSLH's spectrogram cutout).

    Parameters
    ----------
    min_size, max_size : float in [0, 1]
        Shares of each axis; SSLH's weak view 0.1-0.5, strong view 0.5-1.
    p : float in [0, 1]
        Probability that an example is changed (SSLH's weak view: 0.5 for each augmentation).
    value : float or None
        Fill value; None uses each example's mean (0 after standardisation).
    """

    min_size: float = 0.1
    max_size: float = 0.5
    p: float = 1.0
    value: float | None = None

    def __post_init__(self) -> None:
        for name in ("min_size", "max_size", "p"):
            _fraction(getattr(self, name), name, "Cutout")
        if self.min_size > self.max_size:
            raise ValueError(f"Cutout.min_size {self.min_size} is above max_size {self.max_size}")

    def __call__(self, x, y, rng: np.random.Generator):
        x = _check_batch(x, "Cutout")
        out = x.copy()
        n_mels, n_frames = x.shape[_FREQ_AXIS], x.shape[_TIME_AXIS]
        changed = _applied(self.p, len(x), rng)
        shares = rng.uniform(self.min_size, self.max_size, size=(len(x), 2))
        corners = rng.random((len(x), 2))
        for i in np.flatnonzero(changed):
            height, width = int(round(shares[i, 0] * n_mels)), int(round(shares[i, 1] * n_frames))
            top, left = int(corners[i, 0] * (n_mels - height + 1)), int(corners[i, 1] * (n_frames - width + 1))
            out[i, top:top + height, left:left + width, :] = x[i].mean() if self.value is None else self.value
        return out, y


@dataclass(frozen=True)
class Occlusion:
    """Silence one random stretch of each example: a span of a uniform share in ``[0, max_size]`` of the
    frames, set to the example's minimum (SSLH's waveform occlusion, on the features).

    Parameters
    ----------
    max_size : float in [0, 1]
        Largest share of the frames; SSLH's weak view 0.25, strong view 0.75.
    p : float in [0, 1]
        Probability that an example is changed.
    """

    max_size: float = 0.25
    p: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_size", "p"):
            _fraction(getattr(self, name), name, "Occlusion")

    def __call__(self, x, y, rng: np.random.Generator):
        x = _check_batch(x, "Occlusion")
        out = x.copy()
        n_frames = x.shape[_TIME_AXIS]
        changed = _applied(self.p, len(x), rng)
        widths = (rng.uniform(0.0, self.max_size, size=len(x)) * n_frames).round().astype(int)
        starts = rng.random(len(x))
        for i in np.flatnonzero(changed):
            start = int(starts[i] * (n_frames - widths[i] + 1))
            out[i, :, start:start + widths[i], :] = x[i].min()
        return out, y


@dataclass(frozen=True)
class Speed:
    """Play each example at a random speed, keeping its number of frames: SSLH's resample-pad-crop, on the
    time axis of the features.

    The clip is resampled to ``rate`` times its length (``rate`` uniform in ``[min_rate, max_rate]``, linear
    interpolation between frames); a longer one is cropped to a random window, a shorter one is placed at
    a random offset and padded with the example's minimum (silence).  Unlike :class:`TimeStretch` nothing
    wraps round.  (Resampling the waveform also shifts the pitch; :class:`FreqShift` adds that.)

    Parameters
    ----------
    min_rate, max_rate : float > 0
        SSLH's weak view 0.5-1.5, strong view 0.25-1.75.
    p : float in [0, 1]
        Probability that an example is changed.
    """

    min_rate: float = 0.5
    max_rate: float = 1.5
    p: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_rate", "max_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Speed.{name} must be a number > 0, got {value!r}")
        if self.min_rate > self.max_rate:
            raise ValueError(f"Speed.min_rate {self.min_rate} is above max_rate {self.max_rate}")
        _fraction(self.p, "p", "Speed")

    def __call__(self, x, y, rng: np.random.Generator):
        x = _check_batch(x, "Speed")
        out = x.copy()
        n_frames = x.shape[_TIME_AXIS]
        changed = _applied(self.p, len(x), rng)
        rates = rng.uniform(self.min_rate, self.max_rate, size=len(x))
        offsets = rng.random(len(x))
        for i in np.flatnonzero(changed):
            length = max(1, int(round(rates[i] * n_frames)))
            # Frame k of the resampled clip is the input at k / rate.
            position = np.minimum(np.arange(length) * (n_frames - 1) / max(length - 1, 1), n_frames - 1)
            below = np.floor(position).astype(np.int64)
            above = np.minimum(below + 1, n_frames - 1)
            weight = (position - below).astype(x.dtype)[None, :, None]
            resampled = x[i][:, below] * (1 - weight) + x[i][:, above] * weight
            if length >= n_frames:
                start = int(offsets[i] * (length - n_frames + 1))
                out[i] = resampled[:, start:start + n_frames]
            else:
                start = int(offsets[i] * (n_frames - length + 1))
                out[i] = x[i].min()
                out[i, :, start:start + length] = resampled
        return out, y


@dataclass(frozen=True)
class Mixup:
    """Mix each example with a partner: ``lam * a + (1 - lam) * b``, targets likewise.

    With ``between_class=True`` (as in between-class learning, Tokozume et
    al. 2018) the partner is drawn from another class of the batch; an
    example whose class is the only one in the batch stays unmixed.  Integer
    labels become soft one-hot targets of ``n_classes`` columns (train with
    ``categorical_crossentropy``); one-hot / soft targets are mixed as they
    are.  Without labels (``y=None``, autoencoders) partners are random.

    Parameters
    ----------
    alpha : float > 0
        ``lam ~ Beta(alpha, alpha)``; ``alpha=1`` is uniform, as in BC learning.
    n_classes : int > 0 or None
        Needed when the labels are integers.
    between_class : bool
        Partners from other classes only.
    """

    alpha: float = 0.2
    n_classes: int | None = None
    between_class: bool = True

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise ValueError(f"Mixup.alpha must be > 0, got {self.alpha!r}")
        if self.n_classes is not None and (not isinstance(self.n_classes, (int, np.integer)) or self.n_classes < 1):
            raise ValueError(f"Mixup.n_classes must be a positive integer or None, got {self.n_classes!r}")

    def _targets(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(soft targets float32 [b, k], class of each example [b])."""
        if y.ndim == 1:
            if self.n_classes is None:
                raise ValueError("Mixup needs n_classes to turn integer labels into soft targets")
            labels = y.astype(np.int64)
            if labels.min() < 0 or labels.max() >= self.n_classes:
                raise ValueError(f"Mixup: labels must lie in 0..{self.n_classes - 1}, got {labels.min()}..{labels.max()}")
            return np.eye(self.n_classes, dtype=np.float32)[labels], labels
        if y.ndim == 2:
            return y.astype(np.float32), y.argmax(axis=1)
        raise ValueError(f"Mixup expects y of shape (b,) or (b, n_classes), got {y.shape}")

    def __call__(self, x, y, rng: np.random.Generator):
        x = _check_batch(x, "Mixup")
        n = len(x)
        lam = rng.beta(self.alpha, self.alpha, size=n).astype(np.float32)
        if y is None:
            partners = rng.permutation(n)
            soft = classes = None
        else:
            y = np.asarray(y)
            if len(y) != n:
                raise ValueError(f"Mixup: x has {n} examples but y has {len(y)}")
            soft, classes = self._targets(y)
            if self.between_class:
                partners = np.arange(n)
                for i in range(n):
                    others = np.flatnonzero(classes != classes[i])
                    if len(others):
                        partners[i] = others[rng.integers(len(others))]
            else:
                partners = rng.permutation(n)
        mixed_x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[partners]
        mixed_x = mixed_x.astype(x.dtype, copy=False)
        if soft is None:
            return mixed_x, None
        mixed_y = lam[:, None] * soft + (1 - lam[:, None]) * soft[partners]
        return mixed_x, mixed_y.astype(np.float32)


class Compose:
    """Apply augmentations one after the other."""

    def __init__(self, *augmentations):
        for augmentation in augmentations:
            if not callable(augmentation):
                raise ValueError(f"Compose needs callables (x, y, rng) -> (x, y), got {augmentation!r}")
        self.augmentations = augmentations

    def __call__(self, x, y, rng: np.random.Generator):
        for augmentation in self.augmentations:
            x, y = augmentation(x, y, rng)
        return x, y

    def __repr__(self) -> str:
        return f"Compose({', '.join(repr(a) for a in self.augmentations)})"


#: Names accepted by :func:`from_spec`.
NAMES = {"shift": TimeShift, "timeshift": TimeShift, "fshift": FreqShift, "freqshift": FreqShift,
         "stretch": TimeStretch, "timestretch": TimeStretch, "mask": SpecMask, "specmask": SpecMask, "mixup": Mixup,
         "cutout": Cutout, "occlusion": Occlusion, "occlude": Occlusion, "speed": Speed}


def _value(text: str):
    """``"4"`` -> 4, ``"0.2"`` -> 0.2, ``"none"`` -> None, ``"true"`` -> True, else the text."""
    lowered = text.lower()
    if lowered == "none":
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def from_spec(spec: str, n_classes: int | None = None):
    """Build an augmentation from text: ``name[:key=value[:key=value...]]`` joined by ``+``.

    Names: ``shift`` (:class:`TimeShift`), ``fshift`` (:class:`FreqShift`), ``stretch``
    (:class:`TimeStretch`), ``mask`` (:class:`SpecMask`), ``cutout`` (:class:`Cutout`),
    ``occlusion`` (:class:`Occlusion`), ``speed`` (:class:`Speed`),
    ``mixup`` (:class:`Mixup`; gets ``n_classes`` unless the spec sets it).
    Parameters not given keep their defaults.  Spaces are ignored.

    Examples
    --------
    >>> from_spec("shift:max_shift=4 + mask:freq_masks=2:max_freq_width=3")
    Compose(TimeShift(max_shift=4, ...), SpecMask(freq_masks=2, ...))
    >>> from_spec("mixup:alpha=1.0", n_classes=10)    # between-class mixing, soft labels

    Returns
    -------
    callable ``(x, y, rng) -> (x, y)``, or None for an empty spec.

    Raises
    ------
    ValueError
        For an unknown name or parameter, or a malformed item; the message names it.
    """
    if not isinstance(spec, str):
        raise ValueError(f"augmentation spec must be a string, got {spec!r}")
    items = [item for item in spec.replace(" ", "").split("+") if item]
    if not items:
        return None
    augmentations = []
    for item in items:
        name, *assignments = item.split(":")
        if name.lower() not in NAMES:
            raise ValueError(f"unknown augmentation {name!r} in {spec!r}; known: {', '.join(sorted(NAMES))}")
        kind = NAMES[name.lower()]
        known = set(kind.__dataclass_fields__)
        kwargs = {}
        for assignment in assignments:
            key, equals, text = assignment.partition("=")
            if not equals or not key:
                raise ValueError(f"augmentation parameter {assignment!r} in {spec!r} is not key=value")
            if key not in known:
                raise ValueError(f"{kind.__name__} has no parameter {key!r} (in {spec!r}); it has {', '.join(sorted(known))}")
            kwargs[key] = _value(text)
        if kind is Mixup and "n_classes" not in kwargs:
            kwargs["n_classes"] = n_classes
        augmentations.append(kind(**kwargs))
    return augmentations[0] if len(augmentations) == 1 else Compose(*augmentations)
