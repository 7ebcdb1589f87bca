"""Log-mel features, the feature cache and the Standardizer."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from esc_lib import atomic, features
from esc_lib.data import audio
from esc_lib.features import PAPER, FeatureParams, Standardizer

# Small settings for synthetic files, so cache tests take milliseconds.
SMALL = FeatureParams(sr=8000, duration=1.0, n_mels=16, n_fft=512, hop_length=256)


def seed_pipeline(y: np.ndarray, params: FeatureParams) -> np.ndarray:
    """librosa as the paper's seed code called it, with the same parameters."""
    import librosa

    S = librosa.feature.melspectrogram(
        y=y, sr=params.sr, n_mels=params.n_mels, n_fft=params.n_fft, hop_length=params.hop_length,
        fmin=params.fmin, fmax=params.fmax, center=params.center, pad_mode=params.pad_mode,
        window=params.window, htk=params.htk, norm=params.mel_norm,
    )
    ref = np.max if params.ref == "max" else params.ref
    return librosa.power_to_db(S, ref=ref, amin=params.amin, top_db=params.top_db)


def write_tone(path: Path, seconds: float, sr: int = 8000, frequency: float = 440.0, channels: int = 1) -> Path:
    t = np.arange(int(round(seconds * sr))) / sr
    y = 0.5 * np.sin(2 * np.pi * frequency * t) + 0.05 * np.random.default_rng(int(frequency)).standard_normal(len(t))
    data = np.stack([y] * channels, axis=1) if channels > 1 else y
    soundfile.write(path, data.astype(np.float32), sr)
    return path


@pytest.fixture()
def clips(tmp_path) -> list[Path]:
    folder = tmp_path / "audio"
    folder.mkdir()
    return [write_tone(folder / f"clip{i}.wav", 1.0, frequency=200.0 + 150 * i) for i in range(4)]


@pytest.fixture()
def counted(monkeypatch) -> list[Path]:
    """Every clip or pool file that is actually computed (not read from the cache)."""
    calls: list[Path] = []
    clip, window = features._clip_features, features.window_features

    def counting_clip(path, params):
        calls.append(Path(path))
        return clip(path, params)

    def counting_window(path, params, last, min_last_seconds):
        calls.append(Path(path))
        return window(path, params, last, min_last_seconds)

    monkeypatch.setattr(features, "_clip_features", counting_clip)
    monkeypatch.setattr(features, "window_features", counting_window)
    return calls


def entries(root: Path, suffixes=(".npy", ".npz")) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes and not p.name.startswith(".")]


# ---------------------------------------------------------------------------
# FeatureParams


def test_paper_parameters_give_28_by_36():
    assert PAPER.shape == (28, 36, 1)
    assert (PAPER.sr, PAPER.n_fft, PAPER.hop_length, PAPER.n_mels) == (44100, 12288, 6144, 28)
    assert FeatureParams(deltas=True).shape == (28, 36, 2)
    assert FeatureParams(n_mels=128, n_fft=2048, hop_length=512).shape == (128, 431, 1)


def test_params_round_trip_and_key_is_stable():
    params = FeatureParams(n_mels=40, fmax=16000.0, deltas=True)
    assert FeatureParams.from_dict(params.to_dict()) == params
    assert FeatureParams.from_dict(params.to_dict()).key() == params.key()
    assert PAPER.key() == FeatureParams().key()
    assert len(PAPER.key()) == 16


CHANGES = {
    "sr": 22050, "duration": 4.0, "n_mels": 40, "n_fft": 4096, "hop_length": 2048, "fmin": 50.0,
    "fmax": 16000.0, "deltas": True, "normalise": False, "window": "hamming", "center": False,
    "pad_mode": "reflect", "htk": True, "mel_norm": None, "ref": 1.0, "amin": 1e-8, "top_db": None,
}


def test_every_field_is_covered_by_the_change_list():
    assert set(CHANGES) | {"delta_width"} == {f.name for f in dataclasses.fields(FeatureParams)}


@pytest.mark.parametrize("field, value", sorted(CHANGES.items()))
def test_every_field_changes_the_key(field, value):
    assert dataclasses.replace(PAPER, **{field: value}).key() != PAPER.key()


def test_delta_width_changes_the_key():
    with_deltas = FeatureParams(deltas=True)
    assert dataclasses.replace(with_deltas, delta_width=5).key() != with_deltas.key()


def test_feature_version_is_part_of_the_key(monkeypatch):
    before = PAPER.key()
    monkeypatch.setattr(features, "FEATURE_VERSION", features.FEATURE_VERSION + 1)
    assert PAPER.key() != before


@pytest.mark.parametrize(
    "bad",
    [
        {"sr": 0}, {"n_mels": -1}, {"n_fft": 1.5}, {"hop_length": 0}, {"duration": 0}, {"fmin": -1.0},
        {"fmax": 30000.0}, {"fmin": 5000.0, "fmax": 4000.0}, {"window": "kaiser"}, {"pad_mode": "wrap"},
        {"mel_norm": "l2"}, {"ref": "mean"}, {"ref": -1.0}, {"amin": 0.0}, {"top_db": -5.0},
        {"deltas": True, "delta_width": 4}, {"deltas": True, "n_fft": 441000, "center": False},
        {"duration": 0.1, "deltas": True},
    ],
)
def test_bad_parameters_raise(bad):
    with pytest.raises(ValueError):
        FeatureParams(**bad)


def test_equal_values_of_other_types_give_the_same_key():
    same = FeatureParams(sr=np.int64(44100), duration=5, fmin=0, n_mels=np.int32(28), top_db=80)
    assert same == PAPER and same.key() == PAPER.key()
    assert type(same.duration) is float and type(same.sr) is int


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="n_bands"):
        FeatureParams.from_dict({"n_bands": 28})


# ---------------------------------------------------------------------------
# logmel


def mel_centres(params: FeatureParams) -> np.ndarray:
    import librosa

    fmax = params.sr / 2 if params.fmax is None else params.fmax
    return librosa.mel_frequencies(params.n_mels + 2, fmin=params.fmin, fmax=fmax, htk=params.htk)


@pytest.mark.parametrize("band", [3, 10, 17, 25])
def test_a_pure_tone_lands_in_its_mel_band(band):
    """A sine at the centre frequency of mel band k peaks in band k, at 0 dB (ref=max)."""
    centres = mel_centres(PAPER)
    frequency = centres[band + 1]  # centres[0] is the lower edge of band 0
    t = np.arange(PAPER.n_samples) / PAPER.sr
    y = np.sin(2 * np.pi * frequency * t).astype(np.float32)
    X = features.logmel(y, PAPER)
    assert X.shape == (28, 36, 1) and X.dtype == np.float32
    inner = X[:, 2:-2, 0]  # frames away from the zero padding at both ends
    assert np.all(inner.argmax(axis=0) == band)
    assert X.max() == pytest.approx(0.0, abs=1e-4)
    assert X.min() >= -80.0 - 1e-3  # top_db floors the image at max - 80 dB


def test_a_pure_tone_has_the_hand_computed_level():
    """With ref=1, band k holds w_k * (A/2)^2 * N * sum(hann^2), in dB.

    A sine of amplitude A puts (A/2)^2 * N * sum(w^2) of energy into the
    positive-frequency bins of one Hann-windowed frame (Parseval), all of it
    within two bins of the tone; the Slaney filter k weighs the bins at its
    centre by 2 / (f[k+2] - f[k]).  Over the main lobe the triangle falls by
    at most ~3% here, hence the 0.25 dB tolerance.
    """
    params = dataclasses.replace(PAPER, ref=1.0, top_db=None)
    band, amplitude = 12, 0.5
    f = mel_centres(params)
    t = np.arange(params.n_samples) / params.sr
    y = (amplitude * np.sin(2 * np.pi * f[band + 1] * t)).astype(np.float32)
    X = features.logmel(y, params)[:, 2:-2, 0]
    hann = np.hanning(params.n_fft + 1)[:-1]
    energy = (amplitude / 2) ** 2 * params.n_fft * np.sum(hann**2)
    expected = 10 * np.log10(2 / (f[band + 2] - f[band]) * energy)
    np.testing.assert_allclose(X[band], expected, atol=0.25)


@pytest.mark.parametrize(
    "params",
    [
        PAPER,
        FeatureParams(deltas=True),
        FeatureParams(pad_mode="reflect"),
        FeatureParams(center=False),
        FeatureParams(n_mels=64, n_fft=2048, hop_length=512, fmin=50.0, fmax=16000.0),
        FeatureParams(sr=16000, n_mels=40, n_fft=400, hop_length=160, htk=True, mel_norm=None, window="hamming"),
        FeatureParams(ref=1.0, top_db=None, amin=1e-6),
    ],
    ids=["paper", "deltas", "reflect", "no-center", "large", "speech-like", "ref1"],
)
def test_logmel_equals_librosa(params):
    import librosa

    y = np.random.default_rng(0).standard_normal(params.n_samples).astype(np.float32)
    y /= np.abs(y).max()
    X = features.logmel(y, params)
    reference = seed_pipeline(y, params)
    assert X.shape == params.shape
    np.testing.assert_allclose(X[..., 0], reference, atol=2e-3)
    if params.deltas:
        np.testing.assert_allclose(X[..., 1], librosa.feature.delta(reference, width=params.delta_width), atol=2e-3)


def test_logmel_of_silence_is_finite():
    X = features.logmel(np.zeros(PAPER.n_samples, dtype=np.float32))
    assert np.all(np.isfinite(X)) and np.all(X == 0.0)


@pytest.mark.parametrize("shape", [(100,), (PAPER.n_samples, 2), (PAPER.n_samples + 1,)])
def test_logmel_rejects_the_wrong_number_of_samples(shape):
    with pytest.raises(ValueError, match="220500 samples"):
        features.logmel(np.zeros(shape, dtype=np.float32))


@pytest.mark.realdata
def test_paper_features_equal_the_seed_code_on_real_clips(esc10_root, isolated_cache):
    paths = sorted((esc10_root / "audio").glob("*.ogg"))[:3]
    X = features.extract_clips(paths, cache=False, progress=False)
    assert X.shape == (3, 28, 36, 1)
    for clip, path in zip(X, paths):
        np.testing.assert_allclose(clip[..., 0], features.seed_logmel(path), atol=1e-3)


# ---------------------------------------------------------------------------
# extract_clips and the cache


def test_extract_clips_equals_logmel_of_load_clip(clips, isolated_cache):
    X = features.extract_clips(clips, SMALL, progress=False)
    assert X.shape == (4, *SMALL.shape) and X.dtype == np.float32
    for row, path in zip(X, clips):
        expected = features.logmel(audio.load_clip(path, SMALL.sr, SMALL.duration), SMALL)
        np.testing.assert_array_equal(row, expected)


def test_second_run_is_served_from_the_cache(clips, isolated_cache, counted):
    first = features.extract_clips(clips, SMALL, progress=False)
    assert len(counted) == 4
    second = features.extract_clips(clips, SMALL, progress=False)
    assert len(counted) == 4
    np.testing.assert_array_equal(first, second)
    assert all(p.is_relative_to(isolated_cache) for p in entries(isolated_cache))
    # Without the per-call bundle the per-clip entries still serve every clip.
    for bundle in isolated_cache.rglob("bundles/*"):
        bundle.unlink()
    np.testing.assert_array_equal(features.extract_clips(clips, SMALL, progress=False), first)
    assert len(counted) == 4


def test_a_subset_and_a_new_order_reuse_the_clip_entries(clips, isolated_cache, counted):
    full = features.extract_clips(clips, SMALL, progress=False)
    again = features.extract_clips([clips[2], clips[0]], SMALL, progress=False)
    assert len(counted) == 4
    np.testing.assert_array_equal(again, full[[2, 0]])


@pytest.mark.parametrize("field, value", sorted({**CHANGES, "sr": 16000, "duration": 0.5, "n_fft": 256,
                                                 "hop_length": 128, "fmax": 3000.0, "fmin": 100.0,
                                                 "center": False}.items()))
def test_every_parameter_change_misses_the_cache(clips, isolated_cache, counted, field, value):
    base = features.extract_clips(clips, SMALL, progress=False)
    changed = dataclasses.replace(SMALL, **{field: value})
    X = features.extract_clips(clips, changed, progress=False)
    assert len(counted) == 8, f"changing {field} must recompute every clip"
    assert X.shape == (4, *changed.shape)
    if X.shape == base.shape and field not in ("amin", "top_db"):  # floors these tones never reach
        assert not np.array_equal(X, base)
    features.extract_clips(clips, changed, progress=False)
    assert len(counted) == 8, "and the new parameter set is cached in turn"


def test_changing_a_file_misses_only_that_file(clips, isolated_cache, counted):
    before = features.extract_clips(clips, SMALL, progress=False)
    write_tone(clips[1], 1.0, frequency=3000.0)
    stat = clips[1].stat()
    os.utime(clips[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = features.extract_clips(clips, SMALL, progress=False)
    assert counted[4:] == [clips[1]]
    np.testing.assert_array_equal(after[[0, 2, 3]], before[[0, 2, 3]])
    assert not np.array_equal(after[1], before[1])


def test_an_interrupted_write_leaves_no_entry(clips, isolated_cache, counted, monkeypatch):
    def crash(source, destination):
        raise KeyboardInterrupt("killed between the temporary write and the rename")

    with monkeypatch.context() as patch:
        patch.setattr(atomic.os, "replace", crash)
        with pytest.raises(KeyboardInterrupt):
            features.extract_clips(clips, SMALL, n_jobs=1, progress=False)
    assert entries(isolated_cache) == []
    assert list(isolated_cache.rglob("*.tmp")) == []
    features.extract_clips(clips, SMALL, progress=False)
    assert len(entries(isolated_cache)) == 5  # 4 clips + 1 bundle


def test_a_write_that_fails_halfway_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "entry.npy"

    def write_half(handle, array, **kwargs):
        handle.write(b"\x93NUMPY half an arr")
        raise OSError("disk full")

    monkeypatch.setattr(features.np, "save", write_half)
    with pytest.raises(OSError, match="disk full"):
        features._save_array(target, np.zeros((2, 3), dtype=np.float32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", [b"", b"not a numpy file", None])
def test_a_corrupt_entry_is_recomputed(clips, isolated_cache, counted, damage):
    good = features.extract_clips(clips, SMALL, progress=False)
    for bundle in isolated_cache.rglob("bundles/*"):
        bundle.write_bytes(b"garbage")
    identity = features._identity(clips[3])
    entry = features._entry(isolated_cache / "features" / SMALL.key() / "clips", identity)
    if damage is None:  # a valid file of the wrong shape
        np.save(entry, np.zeros((3, 3), dtype=np.float32))
    else:
        entry.write_bytes(damage)
    again = features.extract_clips(clips, SMALL, progress=False)
    assert counted[4:] == [clips[3]]
    np.testing.assert_array_equal(again, good)


def test_no_cache_touches_no_disk(clips, isolated_cache, counted):
    features.extract_clips(clips, SMALL, cache=False, progress=False)
    features.extract_clips(clips, SMALL, cache=False, progress=False)
    assert len(counted) == 8
    assert not isolated_cache.exists()


def test_clear_cache_one_parameter_set_or_all(clips, isolated_cache):
    other = dataclasses.replace(SMALL, n_mels=8)
    features.extract_clips(clips, SMALL, progress=False)
    features.extract_clips(clips[:2], other, progress=False)
    assert features.clear_cache(other) == 3  # 2 clips + 1 bundle
    assert features.clear_cache(other) == 0
    assert len(entries(isolated_cache)) == 5
    assert features.clear_cache() == 5
    assert entries(isolated_cache) == []
    assert features.clear_cache() == 0


@pytest.mark.parametrize("n_jobs", [1, 2, 3, None, -1])
def test_thread_counts_give_identical_features(clips, isolated_cache, n_jobs):
    reference = features.extract_clips(clips, SMALL, cache=False, n_jobs=1, progress=False)
    np.testing.assert_array_equal(features.extract_clips(clips, SMALL, n_jobs=n_jobs, progress=False), reference)


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True])
def test_bad_thread_counts_raise(clips, n_jobs):
    with pytest.raises(ValueError, match="n_jobs"):
        features.extract_clips(clips, SMALL, n_jobs=n_jobs, progress=False)


@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("problem", ["missing", "not audio"])
def test_a_bad_clip_raises_naming_the_file(clips, isolated_cache, cache, problem):
    bad = clips[0].parent / "bad.wav"
    if problem == "not audio":
        bad.write_text("this is not a wav file")
    with pytest.raises(audio.AudioError, match="bad.wav"):
        features.extract_clips([*clips, bad], SMALL, cache=cache, n_jobs=2, progress=False)


def test_empty_list_gives_an_empty_array(isolated_cache):
    assert features.extract_clips([], SMALL, progress=False).shape == (0, *SMALL.shape)


def test_progress_bar_counts_computed_clips(clips, isolated_cache, capsys):
    features.extract_clips(clips, SMALL, progress=True)
    assert "4/4" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# extract_pool


@pytest.fixture()
def pool(tmp_path) -> list[Path]:
    folder = tmp_path / "pool"
    folder.mkdir()
    bad = folder / "broken.wav"
    bad.write_bytes(b"RIFF but not really")
    return [
        write_tone(folder / "long.wav", 2.5),  # 1 s windows: 1 + 1 + 0.5 padded -> 3
        write_tone(folder / "short.wav", 0.2),  # shorter than min_last_seconds -> skipped
        bad,  # undecodable -> skipped
        write_tone(folder / "stereo22k.wav", 1.0, sr=22050, channels=2),  # mixed down and resampled -> 1
        folder / "missing.wav",  # absent -> skipped
    ]


def test_pool_windows_skips_and_report(pool, isolated_cache):
    result = features.extract_pool(pool, SMALL, progress=False, min_last_seconds=0.4)
    assert result.X.shape == (4, *SMALL.shape)
    assert result.files == [pool[0], pool[3]]
    np.testing.assert_array_equal(result.file_index, [0, 0, 0, 1])
    assert result.report.n_used == 2 and result.report.n_skipped == 3
    skipped = dict(result.report.skipped)
    assert set(skipped) == {str(pool[1]), str(pool[2]), str(pool[4])}
    assert "no such file" in skipped[str(pool[4])]
    # Each reason once, without the path the report already lists ("X: X: cannot decode ..." before).
    assert not any(path in reason for path, reason in skipped.items())
    windows = audio.load_windows(pool[0], SMALL.sr, SMALL.duration, "pad", 0.4)
    for row, window in zip(result.X[:3], windows):
        np.testing.assert_array_equal(row, features.logmel(window, SMALL))


def test_pool_warm_run_reproduces_everything_without_decoding(pool, isolated_cache, counted):
    first = features.extract_pool(pool, SMALL, progress=False, min_last_seconds=0.4)
    n_computed = len(counted)
    second = features.extract_pool(pool, SMALL, progress=False, min_last_seconds=0.4)
    assert len(counted) == n_computed
    np.testing.assert_array_equal(second.X, first.X)
    np.testing.assert_array_equal(second.file_index, first.file_index)
    assert second.files == first.files and second.report.skipped == first.report.skipped


def test_pool_window_settings_are_part_of_the_key(pool, isolated_cache, counted):
    padded = features.extract_pool(pool, SMALL, progress=False, min_last_seconds=0.4)
    dropped = features.extract_pool(pool, SMALL, progress=False, last="drop")
    assert len(padded) == 4 and len(dropped) == 3
    assert counted.count(pool[0]) == 2


def test_pool_without_cache_and_serial(pool, isolated_cache):
    cached = features.extract_pool(pool, SMALL, progress=False, min_last_seconds=0.4)
    plain = features.extract_pool(pool, SMALL, cache=False, n_jobs=1, progress=False, min_last_seconds=0.4)
    np.testing.assert_array_equal(plain.X, cached.X)


def test_pool_of_only_bad_files_is_empty_not_fatal(pool, isolated_cache):
    result = features.extract_pool(pool[1:3], SMALL, progress=False)
    assert result.X.shape == (0, *SMALL.shape) and result.files == [] and result.report.n_skipped == 2


@pytest.mark.parametrize("bad", [{"last": "keep"}, {"min_last_seconds": -1.0}])
def test_pool_bad_window_settings_raise(pool, bad):
    with pytest.raises(ValueError):
        features.extract_pool(pool, SMALL, progress=False, **bad)


# ---------------------------------------------------------------------------
# Standardizer


def test_standardizer_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(-40, 10, size=(30, 4, 6, 2)).astype(np.float32)
    test = rng.normal(-20, 5, size=(10, 4, 6, 2)).astype(np.float32)
    scaler = Standardizer().fit(train)
    np.testing.assert_allclose(scaler.mean_, train.mean(axis=(0, 2)), rtol=1e-6)
    np.testing.assert_allclose(scaler.std_, train.std(axis=(0, 2)), rtol=1e-5)
    z_train, z_test = scaler.transform(train), scaler.transform(test)
    np.testing.assert_allclose(z_train.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(z_train.std(axis=(0, 2)), 1, atol=1e-5)
    # Test data keeps its shift relative to training: it was not used to fit.
    assert np.all(z_test.mean(axis=(0, 2)) > 1.0)
    np.testing.assert_allclose(z_test, (test - scaler.mean_[:, None, :]) / scaler.std_[:, None, :], rtol=1e-5, atol=1e-5)
    assert z_test.dtype == np.float32
    np.testing.assert_array_equal(Standardizer().fit_transform(train), z_train)


def test_standardizer_per_band_and_channel():
    X = np.zeros((5, 3, 4, 2), dtype=np.float32)
    X[:, 1, :, 0] = np.arange(5)[:, None]
    X[:, 2, :, 1] = 7.0  # constant band: std replaced by 1, no division by zero
    scaler = Standardizer().fit(X)
    assert scaler.mean_.shape == (3, 2)
    assert scaler.mean_[1, 0] == pytest.approx(2.0) and scaler.std_[1, 0] == pytest.approx(np.sqrt(2.0))
    assert scaler.std_[2, 1] == 1.0
    assert np.all(np.isfinite(scaler.transform(X)))
    assert scaler.transform(X[0]).shape == (3, 4, 2)  # a single example works too


def test_standardizer_round_trip():
    X = np.random.default_rng(1).normal(size=(8, 3, 5, 1)).astype(np.float32)
    scaler = Standardizer().fit(X)
    again = Standardizer.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))


def test_standardizer_errors():
    scaler = Standardizer()
    with pytest.raises(features.NotFittedError, match="fit"):
        scaler.transform(np.zeros((1, 3, 4, 1)))
    with pytest.raises(features.NotFittedError):
        scaler.to_dict()
    with pytest.raises(ValueError, match="shape"):
        scaler.fit(np.zeros((3, 4, 1)))
    scaler.fit(np.zeros((2, 3, 4, 1)))
    with pytest.raises(ValueError, match="3 mel bands"):
        scaler.transform(np.zeros((2, 5, 4, 1)))
    with pytest.raises(ValueError):
        Standardizer.from_dict({"mean": [[0.0]]})
    with pytest.raises(ValueError):
        Standardizer(eps=0)
