"""How strongly each class's low bands are amplitude-modulated at 8-40 Hz, and where.

A helicopter's blades beat its low frequencies at 10-25 Hz; rain and sea waves are noise
without such a beat.  A log-mel frame rate of ``sr / hop`` shows modulations only up to
half of it (the strong preset's 46 ms hop: 10.8 Hz), so this measures, per clip, the
envelope of the lowest mel bands at a fine hop (6 ms) and the strongest peak of its
spectrum between 8 and 40 Hz, as a ratio to the median power between 1 and 40 Hz::

    .venv/bin/python scripts/modulation_peaks.py --esc10-dir ../shared/data/esc10 \\
        --out results/search-strong-resolution/modulation

prints one row per class (median peak frequency, median peak-to-median ratio, share of
clips above 20) and with ``--out STEM`` saves ``STEM.csv`` and ``STEM.md``.  The figures
motivated ``profiles/search/strong-resolution.yaml``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from esc_lib import tables
from esc_lib.data import audio, datasets  # noqa: E402

SAMPLE_RATE = 22050  # the low bands and an envelope up to 40 Hz need no more
N_FFT = 1024
HOP = 128            # 5.8 ms: the envelope is sampled at 172 Hz
N_MELS = 32
LOW_BANDS = 8        # the lowest 8 of 32 mel bands: up to about 500 Hz
PEAK_BAND = (8.0, 40.0)
REFERENCE_BAND = (1.0, 40.0)


def modulation_peak(y: np.ndarray, sr: int = SAMPLE_RATE) -> tuple[float, float]:
    """Strongest 8-40 Hz modulation of the low mel bands' envelope.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
        A mono clip at ``sr``, at least a second long.
    sr : int > 0

    Returns
    -------
    frequency : float
        Where the peak is, in Hz.
    ratio : float
        Its power over the median power of the envelope's spectrum between 1 and 40 Hz.
    """
    import librosa

    y = np.asarray(y, dtype="float32")
    if y.ndim != 1 or len(y) < sr:
        raise ValueError(f"modulation_peak needs a mono clip of at least 1 s, got shape {y.shape} at {sr} Hz")
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    envelope = np.log(mel[:LOW_BANDS].sum(axis=0) + 1e-8)
    envelope = (envelope - envelope.mean()) * np.hanning(len(envelope))
    power = np.abs(np.fft.rfft(envelope)) ** 2
    frequencies = np.fft.rfftfreq(len(envelope), HOP / sr)
    peak_band = (frequencies >= PEAK_BAND[0]) & (frequencies <= PEAK_BAND[1])
    reference = (frequencies >= REFERENCE_BAND[0]) & (frequencies <= REFERENCE_BAND[1])
    peak = np.flatnonzero(peak_band)[np.argmax(power[peak_band])]
    return float(frequencies[peak]), float(power[peak] / max(np.median(power[reference]), 1e-30))


def per_class(dataset) -> pd.DataFrame:
    rows = []
    for path, label in zip(dataset.meta["path"], dataset.meta["label"]):
        frequency, ratio = modulation_peak(audio.load_clip(path, sr=SAMPLE_RATE))
        rows.append({"class": dataset.classes[int(label)], "frequency": frequency, "ratio": ratio})
    clips = pd.DataFrame(rows)
    table = clips.groupby("class", sort=False).agg(
        clips=("ratio", "size"),
        peak_hz_median=("frequency", "median"),
        peak_to_median_median=("ratio", "median"),
        share_above_20=("ratio", lambda ratio: float((ratio > 20).mean())),
    )
    return table.round(2).sort_values("peak_to_median_median", ascending=False).reset_index()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--esc10-dir", type=Path, help="ESC-10 in ESC-50 layout (default: ESC10_DIR / ESC_DATA_ROOT)")
    parser.add_argument("--out", type=Path, help="save STEM.csv and STEM.md")
    args = parser.parse_args(argv)
    try:
        dataset = datasets.load_esc10(args.esc10_dir)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"modulation_peaks: {error}") from None
    table = per_class(dataset)
    print(table.to_markdown(index=False))
    if args.out:
        tables.write_table(table, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
