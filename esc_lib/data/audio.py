"""Audio loading as in the paper: mono, 44.1 kHz, exactly 5 s, peak-normalised.

Decoding uses :mod:`soundfile` (WAV, FLAC, Ogg Vorbis, MP3 and whatever else
libsndfile reads); resampling uses :mod:`soxr`, the resampler librosa itself
uses by default.
"""

from __future__ import annotations

from pathlib import Path

import csv
from dataclasses import dataclass, field

import numpy as np
import soundfile
import soxr

from esc_lib import atomic

__all__ = [
    "SAMPLE_RATE",
    "CLIP_SECONDS",
    "AudioError",
    "read_audio",
    "decode_failure",
    "fix_length",
    "peak_normalise",
    "load_clip",
    "split_windows",
    "load_windows",
    "SkipReport",
]

#: Sampling rate of ESC-50 and ESC-US, in Hz.
SAMPLE_RATE = 44100
#: Length of every ESC clip, in seconds.
CLIP_SECONDS = 5.0


class AudioError(ValueError):
    """A file could not be read as audio; the message names the file."""


def read_audio(path: str | Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a file, mix it down to mono and resample it.

    Parameters
    ----------
    path : str or Path
        Any file libsndfile decodes.
    sr : int > 0
        Target sampling rate in Hz.

    Returns
    -------
    y : np.ndarray [shape=(n_samples,), dtype=float32]

    Raises
    ------
    AudioError
        If the file is missing, empty, not audio, or holds no samples.
    """
    path = Path(path)
    if sr <= 0:
        raise ValueError(f"sr must be a positive sampling rate in Hz, got {sr!r}")
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        if data.shape[0] == 0:
            raise AudioError(f"{path}: the file holds no audio samples")
        y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        if file_rate != sr:
            y = soxr.resample(y, file_rate, sr, quality="HQ")
    except AudioError:
        raise
    except MemoryError as error:
        raise AudioError(f"{path}: too large to decode in memory") from error
    except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError, OSError) as error:
        raise AudioError(f"{path}: {decode_failure(path, error)}") from error
    if not np.isfinite(y).all():
        raise AudioError(f"{path}: holds non-finite samples (NaN or infinity)")
    return np.ascontiguousarray(y, dtype=np.float32)


def decode_failure(path: Path, error: Exception) -> str:
    """Why a file that exists could not be decoded, in words a person can act on.

    libsndfile answers a file whose bytes are no audio format it knows (random
    bytes named ``.ogg``, a text file named ``.wav``) with "File does not exist or
    is not a regular file" or "Format not recognised", which misleads when the file
    is right there.
    """
    text = " ".join(str(error).split())
    if "not a regular file" in text or "Format not recognised" in text or "unknown format" in text.lower():
        return (f"not a recognised audio file: its bytes are in no format libsndfile decodes (WAV, FLAC, Ogg, MP3, ...) "
                f"whatever its name ({path.suffix or 'no extension'}) says; damaged, or another kind of file")
    return f"cannot decode as audio ({text})"


def fix_length(y: np.ndarray, n_samples: int) -> np.ndarray:
    """Pad with zeros at the end, or crop, to exactly ``n_samples``."""
    if len(y) >= n_samples:
        return y[:n_samples]
    return np.pad(y, (0, n_samples - len(y)))


def peak_normalise(y: np.ndarray) -> np.ndarray:
    """Scale so that the largest absolute sample is 1; silence stays zeros."""
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak == 0.0:
        return y
    return (y / peak).astype(np.float32, copy=False)


def load_clip(
    path: str | Path,
    sr: int = SAMPLE_RATE,
    duration: float = CLIP_SECONDS,
    normalise: bool = True,
) -> np.ndarray:
    """Load one clip the way the paper does.

    Mono, resampled to ``sr``, padded with zeros or cropped to exactly
    ``duration`` seconds, then peak-normalised (a silent clip stays zeros).

    Returns
    -------
    y : np.ndarray [shape=(round(sr * duration),), dtype=float32]
    """
    y = fix_length(read_audio(path, sr), int(round(sr * duration)))
    return peak_normalise(y) if normalise else y


def split_windows(
    y: np.ndarray,
    sr: int = SAMPLE_RATE,
    duration: float = CLIP_SECONDS,
    last: str = "pad",
    min_last_seconds: float = 1.0,
    normalise: bool = True,
) -> np.ndarray:
    """Cut a recording of any length into consecutive windows of ``duration``.

    The last, partial window is padded with zeros when ``last="pad"`` and it
    is at least ``min_last_seconds`` long; otherwise (or with
    ``last="drop"``) it is dropped.  So a 12 s file gives 3 windows with the
    defaults (5 + 5 + 2 padded), a 1 s file gives 1, a 0.5 s file gives none.
    Each window is peak-normalised on its own, like a clip.

    Returns
    -------
    windows : np.ndarray [shape=(n_windows, round(sr * duration)), dtype=float32]
    """
    if last not in ("pad", "drop"):
        raise ValueError(f"last must be 'pad' or 'drop', got {last!r}")
    n = int(round(sr * duration))
    n_full, remainder = divmod(len(y), n)
    windows = [y[i * n : (i + 1) * n] for i in range(n_full)]
    if remainder and last == "pad" and remainder >= min_last_seconds * sr:
        windows.append(fix_length(y[n_full * n :], n))
    if not windows:
        return np.zeros((0, n), dtype=np.float32)
    stacked = np.stack(windows).astype(np.float32, copy=False)
    if normalise:
        stacked = np.stack([peak_normalise(w) for w in stacked])
    return stacked


def load_windows(
    path: str | Path,
    sr: int = SAMPLE_RATE,
    duration: float = CLIP_SECONDS,
    last: str = "pad",
    min_last_seconds: float = 1.0,
    normalise: bool = True,
) -> np.ndarray:
    """Load a recording of any length, rate and channel count as 5 s windows.

    This is how a file of an unlabeled pool is read: :func:`read_audio`, then
    :func:`split_windows` (see there for how the last window is treated).

    Returns
    -------
    windows : np.ndarray [shape=(n_windows, round(sr * duration)), dtype=float32]

    Raises
    ------
    AudioError
        If the file cannot be decoded, or is shorter than ``min_last_seconds``
        so that it gives no window at all.
    """
    windows = split_windows(read_audio(path, sr), sr, duration, last, min_last_seconds, normalise)
    if len(windows) == 0:
        raise AudioError(f"{path}: shorter than {min_last_seconds} s, gives no {duration} s window")
    return windows


@dataclass
class SkipReport:
    """Files of a pool that were skipped, with the reason, and how many were used.

    A bad clip in a large unlabeled pool is never fatal: it is counted here
    and listed, and the report can be printed or written as CSV.
    """

    n_used: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: str | Path, reason: str) -> None:
        """Count ``path`` as skipped; a reason that starts with the path (an error's message) is listed without it."""
        path = str(path)
        reason = " ".join(str(reason).split())  # one line, whatever the error printed
        if reason.startswith(f"{path}: "):
            reason = reason[len(path) + 2:]
        self.skipped.append((path, reason))

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def summary(self, limit: int = 10) -> str:
        """One line of counts, then up to ``limit`` skipped files with reasons."""
        lines = [f"{self.n_used} file(s) used, {self.n_skipped} skipped"]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped[:limit]]
        if self.n_skipped > limit:
            lines.append(f"  ... and {self.n_skipped - limit} more")
        return "\n".join(lines)

    def to_csv(self, path: str | Path) -> Path:
        """Write ``file,reason`` rows atomically (temporary name, then rename)."""
        path = Path(path)
        with atomic.atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "reason"])
            writer.writerows(self.skipped)
        return path
