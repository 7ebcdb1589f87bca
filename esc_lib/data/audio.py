"""Audio loading as in the paper: mono, 44.1 kHz, exactly 5 s, peak-normalised.

Decoding uses :mod:`soundfile` (WAV, FLAC, Ogg Vorbis, MP3 and whatever else
libsndfile reads); resampling uses :mod:`soxr`, the resampler librosa itself
uses by default.

A file cut short (an interrupted download or copy) is refused, not read as a
shorter clip: libsndfile decodes half an Ogg file as its first seconds, and half
a WAV file as the samples that remain, without a word.  :func:`check_complete`
looks at what the container declares (a WAV's or AIFF's data size, the
end-of-stream mark of an Ogg stream's last page) and :func:`read_audio`
compares the decoded length with the header's (MP3, FLAC).  A file shorter than
:data:`MIN_CLIP_SECONDS` (the ``min_clip_seconds`` setting) is mostly padding
once cut into 5 s windows: pools and labelled folders skip it (counted), and
:mod:`esc_lib.predict` classifies it with a note and a warning.
"""

from __future__ import annotations

from pathlib import Path

import csv
import os
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import soundfile
import soxr

from esc_lib import atomic

__all__ = [
    "SAMPLE_RATE",
    "CLIP_SECONDS",
    "MIN_CLIP_SECONDS",
    "AudioError",
    "read_audio",
    "check_complete",
    "check_length",
    "decode_failure",
    "printable",
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
#: Default of the ``min_clip_seconds`` setting: a file shorter than this is too short to be of use.
MIN_CLIP_SECONDS = 0.1


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
        If the file is missing, empty, not audio, holds no samples, or is cut
        short (:func:`check_complete`; or it decodes to less than its header
        declares).
    """
    path = Path(path)
    if sr <= 0:
        raise ValueError(f"sr must be a positive sampling rate in Hz, got {sr!r}")
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        with soundfile.SoundFile(str(path)) as handle:
            declared, file_rate, container = handle.frames, handle.samplerate, handle.format
            data = handle.read(dtype="float32", always_2d=True)
        check_complete(path, container)
        shortfall = declared - data.shape[0]
        if 0 < declared < 2**62 and shortfall > max(0.01 * declared, 0.05 * file_rate):
            raise AudioError(f"{path}: truncated: decodes to {data.shape[0] / file_rate:.2f} s of the "
                             f"{declared / file_rate:.2f} s its header declares; {_AGAIN}")
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


#: What to do about a file cut short.
_AGAIN = "an interrupted download or copy? download or copy it again"
#: Ogg pages are at most 27 + 255 + 255 * 255 bytes long, so the last one starts within this many bytes of the end.
_OGG_MAX_PAGE = 27 + 255 + 255 * 255


def check_complete(path: str | Path, container: str | None = None) -> None:
    """Refuse a file whose container says it was cut short; reads a few bytes, decodes nothing.

    WAV (RIFF/RIFX) and AIFF declare the size of their audio data: a file that
    holds less was cut.  An Ogg stream (Vorbis, Opus, FLAC in Ogg) ends with a
    page marked end-of-stream: a file whose last page is cut, or unmarked, was
    cut.  Other containers declare nothing that is read here (MP3 and FLAC are
    checked by :func:`read_audio` against the decoded length).

    Parameters
    ----------
    path : str or Path
    container : str, optional
        libsndfile's major format (``"WAV"``, ``"OGG"``, ...); default: from the file's first bytes.

    Raises
    ------
    AudioError
        The file is cut short; the message names it and says what to do.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(12)
            if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
                why = _chunk_shortfall(handle, size, b"data", big_endian=head[:4] == b"RIFX")
            elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                why = _chunk_shortfall(handle, size, b"SSND", big_endian=True)
            elif head[:4] == b"OggS" or container == "OGG":
                why = _ogg_unfinished(handle, size)
            else:
                why = None
    except OSError as error:
        raise AudioError(f"{path}: cannot be read ({error.strerror or error})") from error
    if why:
        raise AudioError(f"{path}: truncated: {why}; {_AGAIN}")


def _chunk_shortfall(handle, size: int, wanted: bytes, big_endian: bool) -> str | None:
    """Whether the audio chunk of a RIFF or IFF file declares more bytes than the file holds."""
    position = 12
    for _ in range(256):  # chunks before the audio: fmt, LIST, bext, ...; a few in practice
        if position + 8 > size:
            return None
        handle.seek(position)
        header = handle.read(8)
        length = int.from_bytes(header[4:8], "big" if big_endian else "little")
        if header[:4] == wanted:
            if length in (0, 0xFFFFFFFF):  # written as a stream: the length was never filled in
                return None
            held = size - position - 8
            if held < length:
                return f"its header declares {length} bytes of audio, the file holds {held}"
            return None
        position += 8 + length + (length & 1)
    return None


def _ogg_unfinished(handle, size: int) -> str | None:
    """Whether an Ogg file's last page is cut, or is not marked end-of-stream."""
    for tail in (8192, _OGG_MAX_PAGE + 8192):
        start = max(0, size - tail)
        handle.seek(start)
        data = handle.read()
        found = data.rfind(b"OggS\x00")
        while found >= 0 and (found + 27 > len(data) or data[found + 5] > 7):
            found = data.rfind(b"OggS\x00", 0, found)  # "OggS" inside a page's payload, or a header cut
        if found >= 0:
            break
        if start == 0:
            return "no complete Ogg page in the file"
    else:
        return "no Ogg page within the last 64 kB of the file"
    segments = data[found + 26]
    table = data[found + 27 : found + 27 + segments]
    end = found + 27 + segments + sum(table)
    if len(table) < segments or end > len(data):
        return "the file ends inside its last Ogg page"
    if not data[found + 5] & 0x04:
        return "its last Ogg page is not marked end-of-stream"
    return None


def check_length(path: str | Path, n_samples: int, sr: int, min_clip_seconds: float = MIN_CLIP_SECONDS) -> None:
    """Refuse a clip shorter than ``min_clip_seconds``: padded to a 5 s window it would be mostly zeros.

    Raises
    ------
    AudioError
        Naming the file, its length and the setting.
    """
    if n_samples < min_clip_seconds * sr:
        raise AudioError(f"{path}: only {n_samples / sr:.3g} s of audio, shorter than min_clip_seconds "
                         f"({min_clip_seconds:g} s); too short to be of use (lower min_clip_seconds to keep it)")


def printable(text: str | Path) -> str:
    r"""``text`` with control and format characters (newline, tab, NUL, zero-width, undecodable bytes) escaped.

    So a message that names a file with such a name stays one line, and shows what is there.

    >>> printable("dog\nbark/a.wav"), printable("café.wav")
    ('dog\\nbark/a.wav', 'café.wav')
    """
    text = str(text)
    if not any(_unprintable(c) for c in text):
        return text
    return "".join(repr(c)[1:-1] if _unprintable(c) else c for c in text)


def _unprintable(character: str) -> bool:
    # Control (Cc), format (Cf: zero-width, direction marks), surrogates (Cs: bytes that were no UTF-8), line and
    # paragraph separators; not unassigned code points, which a newer emoji may be to this Python.
    return unicodedata.category(character) in ("Cc", "Cf", "Cs", "Zl", "Zp")


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
    min_clip_seconds: float = MIN_CLIP_SECONDS,
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
        If the file cannot be decoded, is cut short, is shorter than
        ``min_clip_seconds`` (:func:`check_length`), or is shorter than
        ``min_last_seconds`` so that it gives no window at all.
    """
    samples = read_audio(path, sr)
    check_length(path, len(samples), sr, min_clip_seconds)
    windows = split_windows(samples, sr, duration, last, min_last_seconds, normalise)
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
        lines += [f"  skipped {printable(path)}: {reason}" for path, reason in self.skipped[:limit]]
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
