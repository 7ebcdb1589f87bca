"""Log-mel features as in the paper, a feature cache, and normalisation.

The paper's seed code computed, per 5 s clip at 44.1 kHz::

    S = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=28, n_fft=12288, hop_length=6144)
    librosa.power_to_db(S, ref=np.max)

which gives a 28 x 36 image.  :data:`PAPER` holds exactly those settings, and
:func:`logmel` reproduces librosa's numbers (up to float32 rounding) while
being several times faster: the window and the mel filter bank are built once
per parameter set, the FFT is :mod:`scipy.fft` in single precision, the
filter bank is applied band by band over the bins where each triangle is
non-zero, and scratch arrays are reused per thread.

Extraction of many files (:func:`extract_clips`, :func:`extract_pool`) runs
on a pool of threads: decoding (libsndfile) and the FFT release the GIL, so
threads scale over the cores without starting processes or copying arrays
between them, and they are safe in a process that has already imported
TensorFlow.

The cache
---------
Every result is stored under ``config.cache_dir() / "features"``, in one
folder per parameter set (named by :meth:`FeatureParams.key`, which hashes
every field and :data:`FEATURE_VERSION`), so changing any parameter can never
return stale features.  Inside it:

* ``clips/<id>.npy``: one clip, keyed by the file's identity;
* ``pools/<window key>/<id>.npy``: the windows of one file of a pool;
* ``bundles/<hash>.npy`` / ``.npz``: a whole call (the list of identities),
  so that a warm run reads one file instead of thousands.

A file's identity is its resolved path, size and modification time (in ns).
That costs one ``stat`` per file; hashing the content would read every byte
of the audio on each warm run, which for ESC-US (tens of GB) is as slow as
decoding.  A file edited in place changes its mtime and size, so it misses;
a moved or copied dataset misses too, which only costs a recomputation.
Entries are written to a temporary name in the same folder and renamed with
:func:`os.replace`, so an interrupted run leaves no entry; an entry that
cannot be read or has the wrong shape is recomputed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from esc_lib import atomic, config
from esc_lib.data import audio

__all__ = [
    "seed_logmel",
    "FEATURE_VERSION",
    "FeatureParams",
    "PAPER",
    "logmel",
    "extract_clips",
    "PoolFeatures",
    "extract_pool",
    "cache_root",
    "clear_cache",
    "window_features",
    "resolve_jobs",
    "progress_bar",
    "run_parallel",
    "NotFittedError",
    "Standardizer",
]

#: Bumped whenever the computation changes in a way the parameters do not
#: show; it is part of every cache key, so old entries are never reused.
FEATURE_VERSION = 1

_WINDOWS = ("hann", "hamming", "blackman", "boxcar", "triang", "bartlett")
_PAD_MODES = ("constant", "reflect", "edge")


@dataclass(frozen=True)
class FeatureParams:
    """Everything that changes a log-mel feature.

    The defaults are the paper's (and librosa 0.10+'s defaults for the rest),
    so ``FeatureParams()`` reproduces the seed code.  Larger inputs are one
    parameter away, e.g. ``FeatureParams(n_mels=128, n_fft=2048, hop_length=512)``.

    Parameters
    ----------
    sr : int > 0
        Sampling rate in Hz the audio is resampled to.
    duration : float > 0
        Clip length in seconds (audio is padded with zeros or cropped).
    n_mels : int > 0
        Number of mel bands.
    n_fft : int > 0
        FFT window length in samples.
    hop_length : int > 0
        Samples between successive frames.
    fmin, fmax : float >= 0, float or None
        Frequency range of the filter bank in Hz; ``fmax=None`` means ``sr / 2``.
    deltas : bool
        Add a second channel with the first-order delta of the log-mel.
    delta_width : odd int >= 3
        Frames used by the delta filter (:func:`librosa.feature.delta`).
    normalise : bool
        Peak-normalise each clip (window) before the transform, as the paper does.
    window : str
        FFT window name (:func:`scipy.signal.get_window`).
    center : bool
        Centre frames on their time (pad ``n_fft // 2`` on both sides).
    pad_mode : {"constant", "reflect", "edge"}
        Padding when ``center``.  librosa >= 0.10 uses ``"constant"``; the
        paper's 2017 code ran a librosa whose default was ``"reflect"``.
    htk : bool
        HTK mel scale instead of Slaney's.
    mel_norm : {"slaney", None}
        Normalisation of the mel filters.
    ref : "max" or float > 0
        Reference power for 0 dB; ``"max"`` is librosa's ``ref=np.max``.
    amin : float > 0
        Smallest power before the logarithm.
    top_db : float > 0 or None
        Floor the result at ``max - top_db`` dB (librosa's default 80).
    """

    sr: int = audio.SAMPLE_RATE
    duration: float = audio.CLIP_SECONDS
    n_mels: int = 28
    n_fft: int = 12288
    hop_length: int = 6144
    fmin: float = 0.0
    fmax: float | None = None
    deltas: bool = False
    delta_width: int = 9
    normalise: bool = True
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    htk: bool = False
    mel_norm: str | None = "slaney"
    ref: str | float = "max"
    amin: float = 1e-10
    top_db: float | None = 80.0

    def __post_init__(self) -> None:
        # Plain Python types, so that 5 and 5.0 (or np.int64(28) and 28) give the same key.
        for name in ("duration", "fmin", "fmax", "amin", "top_db", "ref"):
            value = getattr(self, name)
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))
        for name in ("sr", "n_mels", "n_fft", "hop_length", "delta_width"):
            value = getattr(self, name)
            if isinstance(value, np.integer):
                object.__setattr__(self, name, int(value))
        for name in ("sr", "n_mels", "n_fft", "hop_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"FeatureParams.{name} must be a positive integer, got {value!r}")
        if not self.duration > 0:
            raise ValueError(f"FeatureParams.duration must be > 0 seconds, got {self.duration!r}")
        nyquist = self.sr / 2
        fmax = nyquist if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax <= nyquist:
            raise ValueError(
                f"FeatureParams needs 0 <= fmin < fmax <= sr / 2 = {nyquist}, "
                f"got fmin={self.fmin!r}, fmax={self.fmax!r}"
            )
        if self.window not in _WINDOWS:
            raise ValueError(f"FeatureParams.window must be one of {_WINDOWS}, got {self.window!r}")
        if self.pad_mode not in _PAD_MODES:
            raise ValueError(f"FeatureParams.pad_mode must be one of {_PAD_MODES}, got {self.pad_mode!r}")
        if self.mel_norm not in ("slaney", None):
            raise ValueError(f"FeatureParams.mel_norm must be 'slaney' or None, got {self.mel_norm!r}")
        if not (self.ref == "max" or (isinstance(self.ref, (int, float)) and self.ref > 0)):
            raise ValueError(f"FeatureParams.ref must be 'max' or a positive number, got {self.ref!r}")
        if not self.amin > 0:
            raise ValueError(f"FeatureParams.amin must be > 0, got {self.amin!r}")
        if self.top_db is not None and not self.top_db > 0:
            raise ValueError(f"FeatureParams.top_db must be > 0 or None, got {self.top_db!r}")
        if not self.center and self.n_fft > self.n_samples:
            raise ValueError(
                f"FeatureParams.n_fft={self.n_fft} is longer than the clip "
                f"({self.n_samples} samples) and center=False"
            )
        if self.deltas:
            if self.delta_width < 3 or self.delta_width % 2 == 0:
                raise ValueError(f"FeatureParams.delta_width must be an odd integer >= 3, got {self.delta_width!r}")
            if self.n_frames < self.delta_width:
                raise ValueError(
                    f"deltas need at least delta_width={self.delta_width} frames, "
                    f"but these parameters give {self.n_frames}"
                )

    @property
    def n_samples(self) -> int:
        """Samples per clip: ``round(sr * duration)``."""
        return int(round(self.sr * self.duration))

    @property
    def n_frames(self) -> int:
        """Frames per clip (36 for the paper)."""
        padded = self.n_samples + (2 * (self.n_fft // 2) if self.center else 0)
        return 1 + (padded - self.n_fft) // self.hop_length

    @property
    def n_channels(self) -> int:
        """1, or 2 with deltas."""
        return 2 if self.deltas else 1

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_mels, n_frames, n_channels)`` of one clip's features."""
        return (self.n_mels, self.n_frames, self.n_channels)

    def to_dict(self) -> dict:
        """Every field as plain JSON-able values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "FeatureParams":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown FeatureParams field(s): {', '.join(unknown)}")
        return cls(**values)

    def key(self) -> str:
        """A stable hash of every field and :data:`FEATURE_VERSION` (16 hex digits)."""
        payload = json.dumps({"version": FEATURE_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


#: The paper's features: 28 mel bands, window 12288, hop 6144 at 44.1 kHz -> 28 x 36.
PAPER = FeatureParams()


# ---------------------------------------------------------------------------
# The transform


@functools.lru_cache(maxsize=16)
def _kernels(params: FeatureParams):
    """The FFT window and the mel filter bank, as one slice per band, for one parameter set.

    Each triangular filter is non-zero over a short run of FFT bins, so the
    filter bank is kept as ``(first_bin, stop_bin, weights)`` per band: 28
    short dot products instead of a dense (28 x 6145) matrix product.
    """
    import librosa.filters
    import scipy.signal

    window = scipy.signal.get_window(params.window, params.n_fft, fftbins=True).astype(np.float32)
    basis = librosa.filters.mel(
        sr=params.sr,
        n_fft=params.n_fft,
        n_mels=params.n_mels,
        fmin=params.fmin,
        fmax=params.fmax,
        htk=params.htk,
        norm=params.mel_norm,
        dtype=np.float32,
    )
    bands = []
    for row in basis:
        nonzero = np.flatnonzero(row)
        start, stop = (int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else (0, 0)
        bands.append((start, stop, np.ascontiguousarray(row[start:stop])))
    return window, tuple(bands)


_workspaces = threading.local()
_FFT_CHUNK_BYTES = 256 * 1024


def _workspace(params: FeatureParams):
    """Per-thread scratch arrays for :func:`logmel`.

    Allocating ~5 MB of temporaries per clip made the kernel page-fault
    bound (2.7 ms instead of 1.05 ms per paper clip, measured); reusing them
    per thread avoids that.  The padded buffer's margins stay zero.
    """
    cached = getattr(_workspaces, "arrays", None)
    if cached is None or cached[0] != params:
        half = params.n_fft // 2 if params.center else 0
        padded = np.zeros(params.n_samples + 2 * half, dtype=np.float32)
        windowed = np.empty((params.n_frames, params.n_fft), dtype=np.float32)
        power = np.empty((params.n_frames, params.n_fft // 2 + 1), dtype=np.float32)
        cached = (params, half, padded, windowed, power)
        _workspaces.arrays = cached
    return cached[1:]


def _power_to_db(mel: np.ndarray, params: FeatureParams) -> np.ndarray:
    """:func:`librosa.power_to_db` with the parameters' ``ref``, ``amin``, ``top_db``."""
    # In float32 throughout, as librosa does for float32 input, so silence gives exactly 0 dB.
    amin = np.float32(params.amin)
    ref = mel.max() if params.ref == "max" else np.float32(params.ref)
    db = np.float32(10.0) * np.log10(np.maximum(amin, mel))
    db -= np.float32(10.0) * np.log10(np.maximum(amin, ref))
    if params.top_db is not None:
        db = np.maximum(db, db.max() - np.float32(params.top_db))
    return db


def logmel(y: np.ndarray, params: FeatureParams = PAPER) -> np.ndarray:
    """Log-mel spectrogram of one clip's samples.

    Same numbers as ``librosa.power_to_db(librosa.feature.melspectrogram(...))``
    with the corresponding arguments (up to float32 rounding, well under
    0.01 dB), plus an optional delta channel.

    Parameters
    ----------
    y : np.ndarray [shape=(params.n_samples,)]
        Mono samples at ``params.sr``, already padded/cropped (and, for the
        paper, peak-normalised): what :func:`esc_lib.data.audio.load_clip` returns.
    params : FeatureParams

    Returns
    -------
    features : np.ndarray [shape=params.shape = (n_mels, n_frames, n_channels), dtype=float32]
        dB relative to ``params.ref``; channel 1 (if ``params.deltas``) is the delta.

    Raises
    ------
    ValueError
        If ``y`` is not one-dimensional with ``params.n_samples`` samples.
    """
    import scipy.fft

    y = np.asarray(y)
    if y.ndim != 1 or len(y) != params.n_samples:
        raise ValueError(
            f"logmel expects a mono clip of {params.n_samples} samples "
            f"({params.duration} s at {params.sr} Hz), got shape {y.shape}"
        )
    window, bands = _kernels(params)
    half, padded, windowed, power = _workspace(params)
    if params.center and params.pad_mode != "constant":
        padded = np.pad(y.astype(np.float32, copy=False), half, mode=params.pad_mode)
    else:
        padded[half : half + len(y)] = y
    frames = np.lib.stride_tricks.sliding_window_view(padded, params.n_fft)[:: params.hop_length]
    np.multiply(frames, window, out=windowed)
    # The FFT runs over a few frames at a time: one large complex result per
    # clip, freed next to the decoder's buffers, made glibc return memory to
    # the OS and page-fault it back for every clip (835 faults, +2.5 ms per
    # paper clip, measured); chunks of <= 256 kB are recycled instead.
    step = max(1, _FFT_CHUNK_BYTES // (8 * power.shape[1]))
    for first in range(0, len(windowed), step):
        spectrum = scipy.fft.rfft(windowed[first : first + step], axis=-1)
        # |X|^2 = re^2 + im^2, squared in place on the float32 view of the complex result.
        parts = spectrum.view(np.float32)
        parts *= parts
        np.add(parts[:, 0::2], parts[:, 1::2], out=power[first : first + step])
    mel = np.empty((params.n_mels, params.n_frames), dtype=np.float32)
    for band, (start, stop, weights) in enumerate(bands):
        mel[band] = power[:, start:stop] @ weights
    db = _power_to_db(mel, params)
    if not params.deltas:
        return db[:, :, np.newaxis]
    import librosa.feature

    delta = librosa.feature.delta(db, width=params.delta_width, order=1, axis=-1)
    return np.stack([db, delta.astype(np.float32)], axis=-1)


def _clip_features(path: Path, params: FeatureParams) -> np.ndarray:
    """Load one clip with :func:`esc_lib.data.audio.load_clip` and transform it."""
    y = audio.load_clip(path, sr=params.sr, duration=params.duration, normalise=params.normalise)
    return logmel(y, params)


def window_features(path: Path, params: FeatureParams, last: str, min_last_seconds: float) -> np.ndarray:
    """The log-mels of every window of one audio file, uncached: what a pool or a feature store holds per file.

    Parameters
    ----------
    path : Path
        An audio file of any length, sampling rate and channel count.
    params : FeatureParams
        The front end; windows are ``params.duration`` seconds at ``params.sr``.
    last, min_last_seconds
        What happens to a last, shorter window, as in
        :func:`esc_lib.data.audio.load_windows`.

    Returns
    -------
    windows : np.ndarray [shape=(n_windows, *params.shape), dtype=float32]

    Raises
    ------
    esc_lib.data.audio.AudioError
        If the file cannot be decoded or gives no window.
    """
    windows = audio.load_windows(path, params.sr, params.duration, last, min_last_seconds, params.normalise)
    out = np.empty((len(windows), *params.shape), dtype=np.float32)
    for i, window in enumerate(windows):
        out[i] = logmel(window, params)
    return out


def seed_logmel(path: str | Path) -> np.ndarray:
    """The paper's original feature code, per clip, as it ran (with today's librosa).

    ``librosa.load`` at 44.1 kHz, pad/crop to 220500 samples, peak-normalise,
    ``melspectrogram`` (28 bands, window 12288, hop 6144), ``power_to_db``
    relative to the maximum.  Kept as the reference that :func:`logmel` is
    tested against and the baseline ``benchmarks/bench_features.py`` times;
    use :func:`extract_clips` for real work.

    Returns
    -------
    S_db : np.ndarray [shape=(28, 36)]
    """
    import librosa

    y, sr = librosa.load(path, sr=44100)
    y = librosa.util.fix_length(y, size=220500)
    peak = np.max(np.abs(y))
    if peak > 0:
        y = y / peak
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=28, n_fft=12288, hop_length=6144)
    return librosa.power_to_db(S, ref=np.max)


# ---------------------------------------------------------------------------
# The cache


def cache_root() -> Path:
    """``config.cache_dir() / "features"``: everything this module stores."""
    return config.cache_dir() / "features"


def _params_dir(params: FeatureParams) -> Path:
    folder = cache_root() / params.key()
    description = folder / "params.json"
    if not description.is_file():
        # A human-readable record of what the hashed folder name stands for.
        atomic.write_text(description, json.dumps(
            {"feature_version": FEATURE_VERSION, **params.to_dict()}, indent=2, sort_keys=True
        ), fsync=False)
    return folder


def _identity(path: Path) -> str:
    """Resolved path, size and mtime of a file, hashed (32 hex digits).

    Raises
    ------
    AudioError
        If the file does not exist.
    """
    try:
        resolved = path.resolve()
        stat = resolved.stat()
    except OSError as error:
        raise audio.AudioError(f"{path}: no such file") from error
    text = f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _hash_list(items: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


def _save_array(path: Path, array: np.ndarray) -> None:
    # Cache entries skip the fsync: an entry lost in a power cut is only recomputed.
    with atomic.atomic_path(path, fsync=False) as temporary, open(temporary, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def _load_array(path: Path, shape: tuple) -> np.ndarray | None:
    """A cached float32 array, or None if absent, unreadable or of the wrong shape.

    ``shape`` may start with ``None`` for "any number of rows (at least one)".
    """
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if array.dtype != np.float32 or array.ndim != len(shape):
        return None
    if shape[0] is None:
        if len(array) == 0 or array.shape[1:] != tuple(shape[1:]):
            return None
    elif array.shape != tuple(shape):
        return None
    return array


def _entry(folder: Path, identity: str) -> Path:
    # Two-level fan-out keeps folders small for pools of 250 000 files.
    return folder / identity[:2] / f"{identity}.npy"


def clear_cache(params: FeatureParams | None = None) -> int:
    """Delete cached features: all of them, or those of one parameter set.

    Parameters
    ----------
    params : FeatureParams or None
        ``None`` removes everything under :func:`cache_root`.

    Returns
    -------
    removed : int
        Number of cache entries (clip, pool-file and bundle files) removed.
    """
    folder = cache_root() if params is None else cache_root() / params.key()
    if not folder.exists():
        return 0
    removed = sum(
        1 for path in folder.rglob("*") if path.is_file() and path.suffix in (".npy", ".npz")
        and not path.name.startswith(".")
    )
    shutil.rmtree(folder)
    return removed


# ---------------------------------------------------------------------------
# Parallel extraction


def resolve_jobs(n_jobs: int | None) -> int:
    """The number of threads (or workers) an ``n_jobs`` argument asks for.

    Parameters
    ----------
    n_jobs : int > 0, -1 or None
        None or -1: every core this process may run on
        (:func:`os.sched_getaffinity`, else :func:`os.cpu_count`).

    Returns
    -------
    jobs : int > 0

    Raises
    ------
    ValueError
        For anything else (0, -2, a bool, a float, text).
    """
    if n_jobs is None or n_jobs == -1:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be None, -1 or a positive integer, got {n_jobs!r}")
    return int(n_jobs)


def progress_bar(total: int, description: str, enabled: bool):
    """A text progress bar counting files (tqdm), silent when disabled or when there is nothing to do.

    Parameters
    ----------
    total : int >= 0
        Files to count.
    description : str
        Shown before the bar.
    enabled : bool
        False gives a bar that prints nothing (still a context manager with ``update``).

    Returns
    -------
    bar : tqdm.tqdm
        Use it as a context manager and pass it to :func:`run_parallel`.
    """
    from tqdm import tqdm

    # In a Jupyter kernel standard error is drawn as an error (a pink box, and a second, empty one for the
    # newline the bar ends with); on standard output JupyterLab redraws the bar in place on one line.
    in_kernel = type(sys.stderr).__module__.startswith("ipykernel")
    return tqdm(total=total, desc=description, unit="file", disable=not enabled or total == 0,
                file=sys.stdout if in_kernel else None)


def run_parallel(tasks: Sequence, work: Callable, n_jobs: int, bar, on_error: Callable | None = None):
    """Yield ``(task, result)`` for each task as it completes, on ``n_jobs`` threads.

    Decoding and the FFT release the GIL, so threads scale over the cores
    (see the module docstring).

    Parameters
    ----------
    tasks : sequence
        What ``work`` is called with, one call each (e.g. indices of files).
    work : callable
        ``work(task) -> result``.
    n_jobs : int > 0
        Threads (see :func:`resolve_jobs`); with 1, or a single task, the
        tasks run in this thread, in order.
    bar : tqdm.tqdm
        Updated once per finished task (see :func:`progress_bar`).
    on_error : callable, optional
        With None the first exception cancels the rest and is raised;
        otherwise ``on_error(task, exception)`` handles it and the run
        continues (only for :class:`esc_lib.data.audio.AudioError`; any other
        exception is raised).

    Yields
    ------
    task, result
        In the order the tasks finish; a task whose error was handled yields nothing.
    """
    def settle(task, compute):
        try:
            result = compute()
        except audio.AudioError as error:
            if on_error is None:
                raise
            on_error(task, error)
            result = None
        bar.update(1)
        return result

    if n_jobs == 1 or len(tasks) <= 1:
        for task in tasks:
            result = settle(task, lambda: work(task))
            if result is not None:
                yield task, result
        return
    executor = ThreadPoolExecutor(max_workers=min(n_jobs, len(tasks)), thread_name_prefix="esc-features")
    try:
        futures = {executor.submit(work, task): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            result = settle(task, future.result)
            if result is not None:
                yield task, result
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def extract_clips(
    paths: Sequence[str | Path],
    params: FeatureParams = PAPER,
    cache: bool = True,
    n_jobs: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Log-mel features of a list of clips, in parallel, through the cache.

    Each file is loaded with :func:`esc_lib.data.audio.load_clip` (mono, resampled,
    padded/cropped to ``params.duration``, peak-normalised) and transformed by
    :func:`logmel`.  Clips found in the cache are read back; the others are
    computed on ``n_jobs`` threads with a progress bar and stored.  A whole
    call is also stored as one bundle, so a repeated call reads one file.

    Parameters
    ----------
    paths : sequence of str or Path
        Audio files, any format libsndfile reads.
    params : FeatureParams
    cache : bool
        Read and write the cache under :func:`cache_root`.
    n_jobs : int > 0, -1 or None
        Threads; ``None`` or ``-1`` uses every core available to the process.
    progress : bool
        Show a tqdm progress bar for the clips that are computed.

    Returns
    -------
    X : np.ndarray [shape=(len(paths), n_mels, n_frames, n_channels), dtype=float32]
        In the order of ``paths``.

    Raises
    ------
    AudioError
        If a file is missing or cannot be decoded (the message names it).
    """
    paths = [Path(p) for p in paths]
    jobs = resolve_jobs(n_jobs)
    X = np.empty((len(paths), *params.shape), dtype=np.float32)
    if not paths:
        return X
    if not cache:
        with progress_bar(len(paths), "log-mel", progress) as bar:
            for index, features in run_parallel(range(len(paths)), lambda i: _clip_features(paths[i], params), jobs, bar):
                X[index] = features
        return X

    identities = [_identity(path) for path in paths]
    folder = _params_dir(params)
    bundle = folder / "bundles" / f"{_hash_list(identities)}.npy"
    cached = _load_array(bundle, (len(paths), *params.shape))
    if cached is not None:
        return cached

    clips = folder / "clips"
    missing = []
    for index, identity in enumerate(identities):
        features = _load_array(_entry(clips, identity), params.shape)
        if features is None:
            missing.append(index)
        else:
            X[index] = features

    def work(index: int) -> np.ndarray:
        features = _clip_features(paths[index], params)
        _save_array(_entry(clips, identities[index]), features)
        return features

    with progress_bar(len(missing), "log-mel", progress) as bar:
        for index, features in run_parallel(missing, work, jobs, bar):
            X[index] = features
    _save_array(bundle, X)
    return X


@dataclass
class PoolFeatures:
    """Features of an unlabeled pool, one row per 5 s window.

    Attributes
    ----------
    X : np.ndarray [shape=(n_windows, n_mels, n_frames, n_channels), dtype=float32]
    file_index : np.ndarray [shape=(n_windows,), dtype=int64]
        Row ``i`` comes from ``files[file_index[i]]``.
    files : list of Path
        The files that gave at least one window, in input order.
    report : esc_lib.data.audio.SkipReport
        How many files were used, and which were skipped and why.
    """

    X: np.ndarray
    file_index: np.ndarray
    files: list[Path]
    report: audio.SkipReport

    def __len__(self) -> int:
        return len(self.X)


def extract_pool(
    files: Sequence[str | Path],
    params: FeatureParams = PAPER,
    cache: bool = True,
    n_jobs: int | None = None,
    progress: bool = True,
    last: str = "pad",
    min_last_seconds: float = 1.0,
) -> PoolFeatures:
    """Features of every window of every file of an unlabeled pool.

    Files of any length, rate and channel count are cut into windows of
    ``params.duration`` with :func:`esc_lib.data.audio.load_windows` (``last`` and
    ``min_last_seconds`` decide the partial last window).  A file that cannot
    be decoded, or is too short to give a window, is skipped and listed in the
    report; it is never fatal.

    Parameters
    ----------
    files : sequence of str or Path
    params, cache, n_jobs, progress
        As in :func:`extract_clips`.
    last : {"pad", "drop"}
    min_last_seconds : float >= 0

    Returns
    -------
    PoolFeatures
    """
    if last not in ("pad", "drop"):
        raise ValueError(f"last must be 'pad' or 'drop', got {last!r}")
    if not min_last_seconds >= 0:
        raise ValueError(f"min_last_seconds must be >= 0, got {min_last_seconds!r}")
    files = [Path(f) for f in files]
    jobs = resolve_jobs(n_jobs)
    results: dict[int, np.ndarray] = {}
    failures: dict[int, str] = {}
    todo = list(range(len(files)))
    entries = bundle = None
    identities: list[str] = []

    if cache:
        for path in files:
            try:
                identities.append(_identity(path))
            except audio.AudioError:
                # Still part of the bundle key, so the file's later arrival is noticed.
                identities.append(f"missing:{path}")
        folder = _params_dir(params)
        window_key = _hash_list([f"last={last}", f"min_last_seconds={float(min_last_seconds)!r}"])[:16]
        entries = folder / "pools" / window_key
        bundle = folder / "bundles" / f"pool-{_hash_list([window_key, *identities])}.npz"
        loaded = _load_pool_bundle(bundle, files, params)
        if loaded is not None:
            return loaded
        todo = []
        for index, identity in enumerate(identities):
            features = None
            if not identity.startswith("missing:"):
                features = _load_array(_entry(entries, identity), (None, *params.shape))
            if features is None:
                todo.append(index)
            else:
                results[index] = features

    def compute(index: int) -> np.ndarray:
        features = window_features(files[index], params, last, min_last_seconds)
        if entries is not None:
            _save_array(_entry(entries, identities[index]), features)
        return features

    def fail(index: int, error: Exception) -> None:
        failures[index] = str(error)

    with progress_bar(len(todo), "log-mel pool", progress) as bar:
        for index, features in run_parallel(todo, compute, jobs, bar, on_error=fail):
            results[index] = features

    used = sorted(results)
    report = audio.SkipReport(n_used=len(used))
    for index in sorted(failures):
        report.skip(files[index], failures[index])
    pool = _assemble_pool(files, used, results, params, report)
    if bundle is not None:
        _save_pool_bundle(bundle, pool, used, failures)
    return pool


def _assemble_pool(files, used, results, params, report) -> PoolFeatures:
    counts = [len(results[index]) for index in used]
    X = np.empty((sum(counts), *params.shape), dtype=np.float32)
    file_index = np.repeat(np.arange(len(used), dtype=np.int64), counts)
    row = 0
    for index, count in zip(used, counts):
        X[row : row + count] = results[index]
        row += count
    return PoolFeatures(X=X, file_index=file_index, files=[files[i] for i in used], report=report)


def _save_pool_bundle(bundle: Path, pool: PoolFeatures, used, failures) -> None:
    skipped = sorted(failures)
    arrays = {
        "X": pool.X,
        "file_index": pool.file_index,
        "used": np.asarray(used, dtype=np.int64),
        "skipped": np.asarray(skipped, dtype=np.int64),
        "reasons": np.asarray([failures[i] for i in skipped], dtype=str),
    }
    with atomic.atomic_path(bundle, fsync=False) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **arrays)


def _load_pool_bundle(bundle: Path, files: list[Path], params: FeatureParams) -> PoolFeatures | None:
    try:
        with np.load(bundle, allow_pickle=False) as data:
            X, file_index = data["X"], data["file_index"]
            used, skipped, reasons = data["used"], data["skipped"], data["reasons"]
    except (OSError, ValueError, EOFError, KeyError):
        return None
    if X.dtype != np.float32 or X.shape[1:] != params.shape or len(file_index) != len(X):
        return None
    if (len(used) and used.max() >= len(files)) or (len(skipped) and skipped.max() >= len(files)):
        return None
    report = audio.SkipReport(n_used=len(used))
    for i, reason in zip(skipped, reasons):
        report.skip(files[i], str(reason))  # listed as a fresh run lists it
    return PoolFeatures(X=X, file_index=file_index, files=[files[i] for i in used], report=report)


# ---------------------------------------------------------------------------
# Normalisation


class NotFittedError(ValueError):
    """A :class:`Standardizer` was used before :meth:`Standardizer.fit`."""


class Standardizer:
    """Zero mean, unit variance per mel band (and channel), from training data only.

    The statistics are taken over clips and frames, so each band keeps its
    own scale and the time axis stays free for shifts.  Fit it on the
    training folds, then transform training, validation and test data.

    Parameters
    ----------
    eps : float > 0
        Standard deviations below ``eps`` are replaced by 1, so a constant
        band maps to zeros instead of blowing up.

    Attributes
    ----------
    mean_, std_ : np.ndarray [shape=(n_mels, n_channels), dtype=float64]
    """

    def __init__(self, eps: float = 1e-6):
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.eps = float(eps)
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self.mean_ is not None

    def fit(self, X: np.ndarray) -> "Standardizer":
        """Learn the statistics from ``X`` [shape=(n, n_mels, n_frames, n_channels)]."""
        X = np.asarray(X)
        if X.ndim != 4 or X.shape[0] == 0:
            raise ValueError(f"Standardizer.fit expects X of shape (n > 0, n_mels, n_frames, n_channels), got {X.shape}")
        mean = X.mean(axis=(0, 2), dtype=np.float64)
        std = X.std(axis=(0, 2), dtype=np.float64)
        self.mean_ = mean
        self.std_ = np.where(std < self.eps, 1.0, std)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise ``X`` [shape=(..., n_mels, n_frames, n_channels)]; returns float32."""
        if not self.fitted:
            raise NotFittedError("this Standardizer is not fitted yet; call fit(X_train) first")
        X = np.asarray(X)
        n_mels, n_channels = self.mean_.shape
        if X.ndim < 3 or X.shape[-3] != n_mels or X.shape[-1] != n_channels:
            raise ValueError(
                f"Standardizer was fitted on {n_mels} mel bands x {n_channels} channel(s); "
                f"got X of shape {X.shape}"
            )
        mean = self.mean_[:, np.newaxis, :].astype(np.float32)
        std = self.std_[:, np.newaxis, :].astype(np.float32)
        return ((X - mean) / std).astype(np.float32, copy=False)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

    def to_dict(self) -> dict:
        """JSON-able statistics (for saving beside a model)."""
        if not self.fitted:
            raise NotFittedError("this Standardizer is not fitted yet; nothing to save")
        return {"eps": self.eps, "mean": self.mean_.tolist(), "std": self.std_.tolist()}

    @classmethod
    def from_dict(cls, values: dict) -> "Standardizer":
        try:
            standardizer = cls(eps=values.get("eps", 1e-6))
            mean = np.asarray(values["mean"], dtype=np.float64)
            std = np.asarray(values["std"], dtype=np.float64)
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a Standardizer dict (needs 'mean' and 'std'): {error}") from error
        if mean.ndim != 2 or mean.shape != std.shape or not np.all(std > 0):
            raise ValueError("Standardizer dict needs mean and std of the same shape (n_mels, n_channels), std > 0")
        standardizer.mean_, standardizer.std_ = mean, std
        return standardizer

    def __repr__(self) -> str:
        state = f"{self.mean_.shape[0]} bands x {self.mean_.shape[1]} channels" if self.fitted else "not fitted"
        return f"Standardizer({state})"
