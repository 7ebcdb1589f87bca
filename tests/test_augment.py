"""Batch augmentations: each keeps shapes, never edits its input, and repeats with the same rng."""

from __future__ import annotations

import numpy as np
import pytest

from esc_lib.augment import Compose, Cutout, FreqShift, Mixup, Occlusion, SpecMask, Speed, TimeShift, TimeStretch, from_spec


def batch(n: int = 8, n_mels: int = 6, n_frames: int = 10, channels: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    X = rng.normal(size=(n, n_mels, n_frames, channels)).astype(np.float32)
    return X, np.arange(n) % 4


AUGMENTATIONS = [
    TimeShift(max_shift=3),
    TimeShift(max_shift=3, mode="fill"),
    FreqShift(max_shift=2),
    FreqShift(max_shift=2, mode="roll"),
    TimeStretch(max_rate=1.5),
    SpecMask(freq_masks=2, max_freq_width=3, time_masks=2, max_time_width=4),
    Mixup(alpha=0.4, n_classes=4),
    Mixup(alpha=1.0, n_classes=4, between_class=False),
    Compose(TimeShift(2), SpecMask(), Mixup(n_classes=4)),
    Cutout(min_size=0.5, max_size=1.0),
    Cutout(p=0.5),
    Occlusion(max_size=0.75),
    Speed(min_rate=0.25, max_rate=1.75),
    Speed(p=0.5),
]


@pytest.mark.parametrize("augmentation", AUGMENTATIONS, ids=repr)
def test_shapes_purity_and_reproducibility(augmentation):
    X, y = batch()
    X_before, y_before = X.copy(), y.copy()
    x1, y1 = augmentation(X, y, np.random.default_rng(5))
    x2, y2 = augmentation(X, y, np.random.default_rng(5))
    x3, _ = augmentation(X, y, np.random.default_rng(6))
    assert x1.shape == X.shape and x1.dtype == X.dtype
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert not np.array_equal(x1, X)


def test_time_shift_rolls_each_example_within_range():
    X, y = batch()
    shifted, labels = TimeShift(max_shift=3)(X, y, np.random.default_rng(0))
    assert labels is y
    for original, result in zip(X, shifted):
        matches = [s for s in range(-3, 4) if np.array_equal(np.roll(original, s, axis=1), result)]
        assert matches, "each example is its own roll by at most 3 frames"


def test_time_shift_fill_blanks_the_vacated_frames():
    X, y = batch(n=30)
    shifted, _ = TimeShift(max_shift=2, mode="fill", fill_value=-100.0)(X, y, np.random.default_rng(1))
    for original, result in zip(X, shifted):
        blank = np.all(result == -100.0, axis=(0, 2))
        shift = int(blank.sum()) * (1 if blank[0] else -1) if blank.any() else 0
        np.testing.assert_array_equal(result[:, ~blank], np.roll(original, shift, axis=1)[:, ~blank])
        assert blank.sum() <= 2
    assert (shifted == -100.0).any()


def test_time_shift_zero_is_identity():
    X, y = batch()
    np.testing.assert_array_equal(TimeShift(max_shift=0)(X, y, np.random.default_rng(0))[0], X)


def test_freq_shift_moves_bands_and_repeats_the_edge_band():
    X, y = batch(n=30)
    shifted, labels = FreqShift(max_shift=2)(X, y, np.random.default_rng(3))
    assert labels is y
    seen = set()
    for original, result in zip(X, shifted):
        matches = []
        for s in range(-2, 3):
            expected = np.roll(original, s, axis=0)
            if s > 0:
                expected[:s] = original[:1]
            elif s < 0:
                expected[s:] = original[-1:]
            if np.array_equal(expected, result):
                matches.append(s)
        assert matches, "each example is its own shift by at most 2 bands, the vacated bands the edge band"
        seen.update(matches)
    assert {-2, 2} <= seen


def test_freq_shift_fill_value_and_roll():
    X, y = batch(n=20)
    filled, _ = FreqShift(max_shift=1, fill_value=-50.0)(X, y, np.random.default_rng(0))
    assert (filled == -50.0).any()
    assert np.all((filled == -50.0).all(axis=(1, 2)).sum(axis=1) <= 1), "at most one band filled per example"
    rolled, _ = FreqShift(max_shift=1, mode="roll")(X, y, np.random.default_rng(0))
    for original, result in zip(X, rolled):
        assert any(np.array_equal(np.roll(original, s, axis=0), result) for s in (-1, 0, 1))


def test_time_stretch_changes_the_rate_within_range():
    n_frames = 40
    ramp = np.broadcast_to(np.arange(n_frames, dtype=np.float32)[None, :, None], (3, n_frames, 1))
    X = np.stack([ramp] * 25)
    stretched, _ = TimeStretch(max_rate=1.5)(X, None, np.random.default_rng(4))
    steps = stretched[:, 0, 1:3, 0] - stretched[:, 0, 0:2, 0]
    np.testing.assert_allclose(steps[:, 0], steps[:, 1], atol=1e-4)  # one rate per example
    rates = 1 / steps[:, 0]
    assert np.all((rates >= 1 / 1.5 - 1e-4) & (rates <= 1.5 + 1e-4))
    assert rates.min() < 0.95 and rates.max() > 1.05, "both stretched and compressed examples"
    np.testing.assert_array_equal(stretched[:, 0], stretched[:, 2])  # every band alike


def test_time_stretch_of_rate_one_is_identity_and_keeps_constant_clips():
    X, y = batch()
    same, _ = TimeStretch(max_rate=1)(X, y, np.random.default_rng(0))
    np.testing.assert_allclose(same, X, atol=1e-6)
    flat = np.full((4, 3, 12, 1), 2.5, dtype=np.float32)
    out, _ = TimeStretch(max_rate=2.0)(flat, None, np.random.default_rng(0))
    np.testing.assert_allclose(out, flat, atol=1e-6)


def test_spec_mask_blanks_bands_and_frames_with_the_value():
    X, y = batch(n=20)
    masked, _ = SpecMask(freq_masks=1, max_freq_width=2, time_masks=1, max_time_width=3, value=-50.0)(
        X, y, np.random.default_rng(3)
    )
    changed = masked != X
    assert np.all(masked[changed] == -50.0)
    for example in masked:
        bands = np.all(example == -50.0, axis=(1, 2))
        frames = np.all(example == -50.0, axis=(0, 2))
        assert bands.sum() <= 2 and frames.sum() <= 3
        mask = bands[:, None] | frames[None, :]
        assert np.array_equal(np.all(example == -50.0, axis=2), mask)


def test_spec_mask_default_value_is_the_example_mean():
    X, y = batch(n=10)
    masked, _ = SpecMask(max_freq_width=6, time_masks=0)(X, y, np.random.default_rng(0))
    for original, result in zip(X, masked):
        changed = result != original
        if changed.any():
            np.testing.assert_allclose(result[changed], original.mean(), rtol=1e-6)


def test_mixup_between_class_mixes_two_different_classes():
    X, y = batch(n=12)
    mixed, soft = Mixup(alpha=1.0, n_classes=4)(X, y, np.random.default_rng(2))
    assert soft.shape == (12, 4) and soft.dtype == np.float32
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    for i in range(12):
        weight = soft[i, y[i]]
        others = [c for c in range(4) if c != y[i] and soft[i, c] > 0]
        assert len(others) <= 1
        if others:
            partners = np.flatnonzero(y == others[0])
            candidates = [weight * X[i] + (1 - weight) * X[j] for j in partners]
            assert any(np.allclose(mixed[i], c, atol=1e-5) for c in candidates)


def test_mixup_of_a_single_class_batch_stays_unmixed():
    X, _ = batch(n=4)
    y = np.zeros(4, dtype=int)
    mixed, soft = Mixup(alpha=1.0, n_classes=2)(X, y, np.random.default_rng(0))
    np.testing.assert_allclose(mixed, X, rtol=1e-6)
    np.testing.assert_array_equal(soft, np.eye(2)[y])


def test_mixup_accepts_one_hot_and_no_labels():
    X, y = batch(n=6)
    one_hot = np.eye(4, dtype=np.float32)[y]
    _, soft = Mixup(alpha=1.0)(X, one_hot, np.random.default_rng(0))
    assert soft.shape == (6, 4)
    mixed, none = Mixup(alpha=1.0)(X, None, np.random.default_rng(0))
    assert none is None and mixed.shape == X.shape


def test_compose_applies_in_order():
    X, y = batch()
    composed = Compose(TimeShift(max_shift=2), SpecMask(value=0.0))
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    expected = SpecMask(value=0.0)(*TimeShift(max_shift=2)(X, y, rng_b), rng_b)
    result = composed(X, y, rng_a)
    np.testing.assert_array_equal(result[0], expected[0])


@pytest.mark.parametrize(
    "make",
    [
        lambda: TimeShift(max_shift=-1),
        lambda: TimeShift(mode="wrap"),
        lambda: FreqShift(max_shift=-1),
        lambda: FreqShift(mode="wrap"),
        lambda: TimeStretch(max_rate=0.9),
        lambda: TimeStretch(max_rate="fast"),
        lambda: SpecMask(freq_masks=-1),
        lambda: SpecMask(max_time_width=1.5),
        lambda: Mixup(alpha=0),
        lambda: Mixup(n_classes=0),
        lambda: Compose(TimeShift(), "not callable"),
        lambda: Cutout(min_size=0.6, max_size=0.5),
        lambda: Cutout(max_size=1.5),
        lambda: Cutout(p=-0.1),
        lambda: Occlusion(max_size=2),
        lambda: Speed(min_rate=0),
        lambda: Speed(min_rate=1.5, max_rate=1.0),
        lambda: Speed(p=1.1),
    ],
)
def test_bad_parameters_raise(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(
    "augmentation, x, y, message",
    [
        (TimeShift(), np.zeros((4, 5)), None, "shape"),
        (Mixup(), np.zeros((4, 2, 3, 1)), np.arange(4), "n_classes"),
        (Mixup(n_classes=2), np.zeros((4, 2, 3, 1)), np.arange(4), "labels must lie"),
        (Mixup(n_classes=4), np.zeros((4, 2, 3, 1)), np.arange(3), "has 3"),
    ],
)
def test_bad_batches_raise(augmentation, x, y, message):
    with pytest.raises(ValueError, match=message):
        augmentation(x, y, np.random.default_rng(0))


def test_from_spec_builds_the_chain():
    chain = from_spec("shift:max_shift=4:mode=fill + mask:freq_masks=2:value=none + mixup:alpha=1.0", n_classes=10)
    assert isinstance(chain, Compose)
    shift, mask, mixup = chain.augmentations
    assert shift == TimeShift(max_shift=4, mode="fill")
    assert mask == SpecMask(freq_masks=2, value=None)
    assert mixup == Mixup(alpha=1.0, n_classes=10)
    assert from_spec("mixup:n_classes=3:between_class=false", n_classes=10) == Mixup(n_classes=3, between_class=False)
    assert from_spec("timeshift") == TimeShift()
    assert from_spec("fshift:max_shift=3 + stretch:max_rate=1.25").augmentations == (FreqShift(max_shift=3), TimeStretch(max_rate=1.25))
    assert from_spec("") is None and from_spec(" + ") is None


@pytest.mark.parametrize(
    "spec, message",
    [("flip", "unknown augmentation 'flip'"), ("shift:4", "not key=value"), ("mask:width=3", "no parameter 'width'"),
     ("shift:max_shift=-2", "max_shift"), (None, "must be a string")],
)
def test_from_spec_rejects_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        from_spec(spec)


def test_cutout_blanks_one_rectangle_of_the_asked_share_of_each_axis():
    X, y = batch(n=16, n_mels=20, n_frames=30, channels=1)
    out, _ = Cutout(min_size=0.5, max_size=0.5, value=9.0)(X, y, np.random.default_rng(0))
    for example in out[..., 0]:
        rows, columns = np.nonzero(example == 9.0)
        assert (rows.max() - rows.min() + 1, columns.max() - columns.min() + 1) == (10, 15)
        assert len(rows) == 150  # one full rectangle
    untouched, _ = Cutout(min_size=0.5, max_size=0.5, p=0.0)(X, y, np.random.default_rng(0))
    assert np.array_equal(untouched, X)


def test_cutout_with_probability_changes_about_that_share_of_examples():
    X = np.random.default_rng(1).normal(size=(400, 6, 10, 1)).astype(np.float32)
    out, _ = Cutout(min_size=0.5, max_size=1.0, p=0.5)(X, None, np.random.default_rng(0))
    changed = (out != X).any(axis=(1, 2, 3)).mean()
    assert 0.4 < changed < 0.6


def test_occlusion_silences_a_span_of_frames_at_the_example_minimum():
    X, y = batch(n=32, n_mels=6, n_frames=40, channels=1)
    out, _ = Occlusion(max_size=0.5)(X, y, np.random.default_rng(0))
    widths = []
    for before, after in zip(X[..., 0], out[..., 0]):
        frames = np.flatnonzero((after != before).any(axis=0))
        if len(frames):
            assert (after[:, frames] == before.min()).all()
            assert frames.max() - frames.min() + 1 == len(frames)  # one span
        widths.append(len(frames))
    assert max(widths) <= 20 and max(widths) >= 10  # up to half of the 40 frames


def test_speed_of_rate_one_is_identity_and_other_rates_pad_or_crop():
    X, y = batch(n=4, n_mels=3, n_frames=20, channels=1)
    same, _ = Speed(min_rate=1.0, max_rate=1.0)(X, y, np.random.default_rng(0))
    assert np.allclose(same, X)
    # Twice as fast: the clip takes 10 of the 20 frames, the rest is the example's minimum.
    fast, _ = Speed(min_rate=0.5, max_rate=0.5)(X, y, np.random.default_rng(0))
    for before, after in zip(X[..., 0], fast[..., 0]):
        assert (after == before.min()).all(axis=0).sum() >= 10
    # A ramp played twice as slowly: a window of 20 frames whose steps are half as large.
    ramp = np.tile(np.arange(20, dtype=np.float32), (2, 3, 1))[..., None]
    slow, _ = Speed(min_rate=2.0, max_rate=2.0)(ramp, None, np.random.default_rng(0))
    steps = np.diff(slow[0, 0, :, 0])
    assert np.allclose(steps, steps[0]) and 0.45 < steps[0] < 0.55


def test_from_spec_knows_the_sslh_views():
    weak = from_spec("occlusion:max_size=0.25:p=0.5 + speed:min_rate=0.5:max_rate=1.5:p=0.5 + cutout:min_size=0.1:max_size=0.5:p=0.5")
    assert [type(a) for a in weak.augmentations] == [Occlusion, Speed, Cutout]
    assert weak.augmentations[2] == Cutout(min_size=0.1, max_size=0.5, p=0.5)
