"""Labelled datasets in ESC-50 layout, folders of audio and unlabeled pools.

Generated folders check every rule exactly; the real ESC-10 and unlabeled
folders (marker ``realdata``) check that the loader works on the real files.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _http_server import SMALL_ESC50_ROWS, build_esc50_tree, write_clip
from esc_lib.data import audio, datasets
from esc_lib.data.datasets import DatasetError

ESC10_CLASSES = [
    "dog", "rooster", "rain", "sea_waves", "crackling_fire",
    "crying_baby", "sneezing", "clock_tick", "helicopter", "chainsaw",
]
ESC10_TARGETS = [0, 1, 10, 11, 12, 20, 21, 38, 40, 41]


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    """Six 1 s WAV clips, 3 classes (targets 0, 1, 10; rooster not in ESC-10), folds 1-2."""
    root = tmp_path_factory.mktemp("esc50")
    build_esc50_tree(root, seconds=1.0)
    return root


def _rewrite_csv(root: Path, edit) -> None:
    path = root / "meta" / "esc50.csv"
    frame = pd.read_csv(path)
    frame = edit(frame)
    frame.to_csv(path, index=False)


# ----------------------------------------------------------------------------
# load_labelled
# ----------------------------------------------------------------------------


def test_load_labelled_maps_targets_in_id_order(small_root):
    dataset = datasets.load_labelled(small_root)
    assert len(dataset) == 6 and dataset.n_classes == 3
    assert dataset.classes == ["dog", "rooster", "rain"]
    assert dataset.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert dataset.folds.tolist() == [1, 1, 1, 2, 2, 2]
    assert all(p.is_absolute() and p.is_file() for p in dataset.paths)
    assert [dataset.classes[l] for l in dataset.labels] == dataset.meta["category"].tolist()
    assert {"filename", "fold", "target", "category", "esc10", "src_file", "take", "path", "label"} <= set(
        dataset.meta.columns
    )
    assert "clips=6" in repr(dataset)


@pytest.mark.parametrize("subset, classes, n", [
    ("esc10", ["dog", "rain"], 4),
    ("ESC10", ["dog", "rain"], 4),
    (["rain"], ["rain"], 2),
    (["rain", "rooster"], ["rooster", "rain"], 4),
])
def test_load_labelled_subsets_remap_to_0_k(small_root, subset, classes, n):
    dataset = datasets.load_labelled(small_root, subset=subset)
    assert dataset.classes == classes and len(dataset) == n
    assert sorted(set(dataset.labels.tolist())) == list(range(len(classes)))


@pytest.mark.parametrize("subset, message", [
    (["cat"], "unknown categories \\['cat'\\]"),
    ("esc50", "not understood"),
    ([], "selects no clip"),
])
def test_load_labelled_rejects_bad_subsets(small_root, subset, message):
    with pytest.raises(DatasetError, match=message):
        datasets.load_labelled(small_root, subset=subset)


def test_load_esc10_defaults_to_the_configured_folder(small_root, monkeypatch):
    monkeypatch.setenv("ESC10_DIR", str(small_root))
    dataset = datasets.load_esc10()
    assert dataset.classes == ["dog", "rain"] and dataset.root == small_root.resolve()


def test_load_labelled_lists_missing_clips_before_any_work(tmp_path):
    rows = [(1 + i % 2, 300000 + i, "A", 0, "dog", True) for i in range(8)]
    build_esc50_tree(tmp_path, rows=rows, seconds=0.2)
    for path in sorted((tmp_path / "audio").iterdir())[:7]:
        path.unlink()
    with pytest.raises(DatasetError) as error:
        datasets.load_labelled(tmp_path)
    message = str(error.value)
    assert "7 listed clip(s) not found" in message and "and 2 more" in message
    assert str(tmp_path / "audio") in message
    unverified = datasets.load_labelled(tmp_path, verify=False)
    assert len(unverified) == 8 and sum(p.is_file() for p in unverified.paths) == 1


@pytest.mark.parametrize("files, listed", [(".ogg", ".wav"), (".wav", ".ogg"), (".ogg", ".ogg"), (".flac", ".wav")])
def test_load_labelled_accepts_wav_or_ogg_whatever_the_csv_says(tmp_path, files, listed):
    rows = SMALL_ESC50_ROWS[:2]
    build_esc50_tree(tmp_path, rows=rows, extension=".wav" if files == ".flac" else files,
                     listed_extension=listed, seconds=0.3)
    if files == ".flac":
        for path in (tmp_path / "audio").glob("*.wav"):
            write_clip(path.with_suffix(".flac"), seconds=0.3)
            path.unlink()
    dataset = datasets.load_labelled(tmp_path)
    assert [p.suffix for p in dataset.paths] == [files, files]
    assert all(p.is_file() for p in dataset.paths)
    assert audio.load_clip(dataset.paths[0]).shape == (220500,)


def test_load_labelled_prefers_the_listed_file(tmp_path):
    build_esc50_tree(tmp_path, rows=SMALL_ESC50_ROWS[:1], extension=".ogg", listed_extension=".ogg", seconds=0.2)
    write_clip(tmp_path / "audio" / "1-100001-A-0.wav", seconds=0.2)
    assert datasets.load_labelled(tmp_path).paths[0].suffix == ".ogg"


def test_resolve_clips_finds_another_extension_and_names_the_missing(tmp_path):
    """What load_labelled and download.verify_esc50 share: listed names to paths, missing clips an error."""
    for name in ("a.ogg", "b.wav", "b.flac"):
        (tmp_path / name).write_bytes(b"")  # only the names are looked at
    assert datasets.resolve_clips(tmp_path, ["a.wav", "b.ogg"]) == [tmp_path / "a.ogg", tmp_path / "b.wav"]
    with pytest.raises(DatasetError, match=r"1 listed clip\(s\) not found \(neither as listed nor with another "
                                           r"audio extension\): c\.wav;"):
        datasets.resolve_clips(tmp_path, ["a.wav", "c.wav"])
    assert datasets.resolve_clips(tmp_path, ["a.wav", "c.wav"], verify=False) == [tmp_path / "a.ogg", tmp_path / "c.wav"]
    with pytest.raises(DatasetError, match="nowhere: 1 listed clip"):
        datasets.resolve_clips(tmp_path / "nowhere", ["a.wav"])


def _drop_column(frame):
    return frame.drop(columns=["target"])


def _bad_fold(frame):
    frame["fold"] = frame["fold"].astype(str)
    frame.loc[0, "fold"] = "one"
    return frame


def _duplicate(frame):
    return pd.concat([frame, frame.iloc[[0]]])


def _two_names_for_one_target(frame):
    frame.loc[0, "category"] = "puppy"
    return frame


def _bad_esc10(frame):
    frame["esc10"] = frame["esc10"].astype(str)
    frame.loc[0, "esc10"] = "maybe"
    return frame


@pytest.mark.parametrize("edit, message", [
    (_drop_column, "column\\(s\\) \\['target'\\] missing"),
    (_bad_fold, "'fold' must hold integers"),
    (_duplicate, "listed twice"),
    (_two_names_for_one_target, "match one to one"),
    (_bad_esc10, "'esc10' must be True/False"),
])
def test_load_labelled_rejects_inconsistent_metadata(tmp_path, edit, message):
    build_esc50_tree(tmp_path, seconds=0.1)
    _rewrite_csv(tmp_path, edit)
    with pytest.raises(DatasetError, match=message) as error:
        datasets.load_labelled(tmp_path)
    assert "esc50.csv" in str(error.value)


def test_load_labelled_missing_folder_or_metadata(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found.*ESC50_DIR"):
        datasets.load_labelled(tmp_path / "nowhere")
    (tmp_path / "audio").mkdir()
    with pytest.raises(DatasetError, match="meta/esc50.csv"):
        datasets.load_labelled(tmp_path)


def test_esc10_column_read_from_text(tmp_path):
    build_esc50_tree(tmp_path, seconds=0.1)
    _rewrite_csv(tmp_path, lambda f: f.assign(esc10=f["esc10"].map({True: "TRUE", False: "false"})))
    assert datasets.load_labelled(tmp_path, subset="esc10").classes == ["dog", "rain"]


# ----------------------------------------------------------------------------
# LabelledDataset
# ----------------------------------------------------------------------------


def test_subset_keeps_the_class_mapping(small_root):
    dataset = datasets.load_labelled(small_root)
    by_mask = dataset.subset(dataset.labels == 2)
    by_index = dataset.subset([2, 5])
    for part in (by_mask, by_index):
        assert part.classes == dataset.classes and part.n_classes == 3
        assert part.labels.tolist() == [2, 2] and part.meta.index.tolist() == [0, 1]
    assert len(dataset.subset([])) == 0
    assert dataset.subset(np.array([5, 0])).meta["filename"].tolist() == ["2-100006-A-10.wav", "1-100001-A-0.wav"]


@pytest.mark.parametrize("rows, message", [
    ([True, False], "one entry per clip"),
    ([0, 6], "positions must lie in 0..5"),
    ([0.5], "boolean mask or integer positions"),
])
def test_subset_rejects_bad_rows(small_root, rows, message):
    with pytest.raises(ValueError, match=message):
        datasets.load_labelled(small_root).subset(rows)


def test_select_folds(small_root):
    dataset = datasets.load_labelled(small_root)
    assert set(dataset.select_folds(2).folds) == {2} and len(dataset.select_folds(2)) == 3
    assert len(dataset.select_folds([1, 2])) == 6
    with pytest.raises(ValueError, match="folds \\[3\\] do not occur"):
        dataset.select_folds([1, 3])


def test_summary_counts_clips_per_class_and_fold(small_root):
    dataset = datasets.load_labelled(small_root)
    table = dataset.summary()
    assert table.index.tolist() == ["dog", "rooster", "rain", "total"]
    assert table.columns.tolist() == [1, 2, "total"]
    assert table.loc["rain", 1] == 1 and table.loc["total", "total"] == 6
    part = dataset.subset(dataset.labels == 0).summary()
    assert part.loc["rooster", "total"] == 0 and part.loc["dog", "total"] == 2  # every class kept


# ----------------------------------------------------------------------------
# Folders of audio, Freesound ids
# ----------------------------------------------------------------------------


def test_find_audio_files_recursive_sorted_and_filtered(tmp_path):
    for name in ["b/z.WAV", "a/y.ogg", "a/deeper/x.flac", "c.mp3", "notes.txt", "data.csv",
                 ".hidden.wav", "._resource.wav", ".cache/w.wav", "big.wav.part"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in datasets.find_audio_files(tmp_path)]
    assert found == ["a/deeper/x.flac", "a/y.ogg", "b/z.WAV", "c.mp3"]
    only = datasets.find_audio_files(tmp_path, extensions=["wav", ".FLAC"])
    assert [p.name for p in only] == ["x.flac", "z.WAV"]


def test_find_audio_files_bad_arguments(tmp_path):
    with pytest.raises(DatasetError, match="folder of audio not found"):
        datasets.find_audio_files(tmp_path / "missing")
    with pytest.raises(ValueError, match="extensions"):
        datasets.find_audio_files(tmp_path, extensions=[])


@pytest.mark.parametrize("name, expected", [
    ("000123-45678-10-15.ogg", 45678),
    ("ESC-US/01/9-1234-0-5.ogg", 1234),
    ("1-100032-A-0.wav", 100032),
    (Path("5-9032-A-0.ogg"), 9032),
    ("unl-0001.ogg", None),
    ("recording.wav", None),
    ("12-ab-1-2.ogg", None),
    ("", None),
])
def test_freesound_id(name, expected):
    assert datasets.freesound_id(name) == expected


def test_source_ids_from_frame_dataset_and_path(small_root):
    expected = {100001, 100002, 100003, 100004, 100005, 100006}
    assert datasets.source_ids(small_root) == expected
    assert datasets.source_ids(small_root / "meta" / "esc50.csv") == expected
    assert datasets.source_ids(datasets.load_labelled(small_root, subset="esc10")) == {100001, 100003, 100004, 100006}
    assert datasets.source_ids(pd.DataFrame({"filename": ["1-77-A-0.wav", "odd.wav"]})) == {77}
    with pytest.raises(TypeError):
        datasets.source_ids(42)


# ----------------------------------------------------------------------------
# Unlabeled pools
# ----------------------------------------------------------------------------


@pytest.fixture
def bad_folder(tmp_path) -> Path:
    """Files that a real pool can hold: some good, some broken, odd formats and lengths."""
    folder = tmp_path / "pool"
    (folder / "sub").mkdir(parents=True)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "not_audio.ogg").write_text("this is a text file, not Ogg Vorbis\n")
    (folder / "readme.txt").write_text("not picked up at all")
    write_clip(folder / "stereo_48k.wav", seconds=5.0, sr=48000, channels=2)
    write_clip(folder / "sub" / "one_second.wav", seconds=1.0)
    write_clip(folder / "twelve_seconds.flac", seconds=12.0)
    write_clip(folder / "silent.wav", seconds=5.0, amplitude=0.0)
    return folder


def test_pool_over_bad_files_pads_skips_and_counts(bad_folder):
    pool = datasets.unlabeled_pool(bad_folder)
    names = [p.name for p in pool.files]
    assert names == ["empty.wav", "not_audio.ogg", "silent.wav", "stereo_48k.wav",
                     "one_second.wav", "twelve_seconds.flac"]
    windows, origin, report = pool.load_all()
    # silent 1 + stereo 48 kHz 1 + 1 s padded 1 + 12 s = 5 + 5 + 2 padded 3
    assert windows.shape == (6, 220500) and windows.dtype == np.float32
    assert origin.tolist() == [2, 3, 4, 5, 5, 5]
    assert report.n_used == 4 and report.n_skipped == 2
    assert sorted(Path(p).name for p, _ in report.skipped) == ["empty.wav", "not_audio.ogg"]
    assert all(reason for _, reason in report.skipped)
    assert np.isfinite(windows).all()
    assert not windows[0].any()  # silent stays zeros, no division by zero
    peaks = np.abs(windows[1:]).max(axis=1)
    np.testing.assert_allclose(peaks, 1.0, rtol=1e-5)  # peak-normalised window by window
    one_second = windows[2]
    assert one_second[:44100].any() and not one_second[44100:].any()  # 1 s of sound, then padding
    last_of_twelve = windows[5]
    assert last_of_twelve[: 2 * 44100 - 10].any() and not last_of_twelve[2 * 44100 :].any()


def test_pool_dropping_partial_windows(bad_folder):
    windows, origin, report = datasets.unlabeled_pool(bad_folder).load_all(last="drop")
    assert windows.shape == (4, 220500)  # silent 1, stereo 1, twelve 2; the 1 s file gives none
    assert origin.tolist() == [2, 3, 5, 5]
    assert report.n_used == 3 and report.n_skipped == 3
    assert "one_second.wav" in report.summary()


def test_pool_min_last_seconds_and_rate(bad_folder):
    windows, origin, report = datasets.unlabeled_pool(bad_folder).load_all(sr=22050, min_last_seconds=2.5)
    assert windows.shape == (4, 110250)  # 1 s file and the 2 s tail of the 12 s file are too short
    assert report.n_skipped == 3
    with pytest.raises(ValueError, match="last"):
        datasets.unlabeled_pool(bad_folder).load_all(last="keep")


def test_pool_exclusion_and_sampling(tmp_path):
    for i, name in enumerate(["1-111-0-5.wav", "2-222-0-5.wav", "3-333-0-5.wav", "free.wav"]):
        write_clip(tmp_path / name, seconds=0.1, frequency=100 + 50 * i)
    pool = datasets.unlabeled_pool(tmp_path, exclude_freesound_ids=[222, 999])
    assert [p.name for p in pool.files] == ["1-111-0-5.wav", "3-333-0-5.wav", "free.wav"]
    assert pool.n_excluded_leakage == 1 and pool.n_found == 4 and len(pool) == 3
    sample = datasets.unlabeled_pool(tmp_path, max_files=2, seed=3)
    again = datasets.unlabeled_pool(tmp_path, max_files=2, seed=3)
    assert sample.files == again.files and len(sample.files) == 2
    assert sample.files == sorted(sample.files)
    assert "2 left out by sampling" in sample.summary()
    with pytest.raises(ValueError, match="max_files"):
        datasets.unlabeled_pool(tmp_path, max_files=0)


def test_pool_errors_and_default_folder(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no audio file found"):
        datasets.unlabeled_pool(tmp_path / "empty")
    write_clip(tmp_path / "pool" / "a.wav", seconds=0.1)
    monkeypatch.setenv("ESC_UNLABELED_DIR", str(tmp_path / "pool"))
    assert [p.name for p in datasets.unlabeled_pool().files] == ["a.wav"]


def test_pool_of_only_bad_files_returns_empty_arrays(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"RIFF....")
    windows, origin, report = datasets.unlabeled_pool(tmp_path).load_all()
    assert windows.shape == (0, 220500) and origin.shape == (0,) and report.n_skipped == 1


@pytest.fixture
def escus_folder(tmp_path) -> Path:
    folder = tmp_path / "ESC-US"
    for i, source in enumerate([100001, 100003, 555555, 666666]):
        write_clip(folder / "01" / f"{i:06d}-{source}-0-5.ogg", seconds=0.1, format="OGG", subtype="VORBIS")
    return folder


def test_escus_pool_leakage_filter(escus_folder, small_root):
    pool = datasets.escus_pool(escus_folder, esc50_meta=small_root)
    assert [datasets.freesound_id(p) for p in pool.files] == [555555, 666666]
    assert pool.n_excluded_leakage == 2
    assert "2 excluded by the leakage filter" in pool.summary()
    unfiltered = datasets.escus_pool(escus_folder, leakage_filter=False)
    assert len(unfiltered.files) == 4 and unfiltered.n_excluded_leakage == 0
    assert len(datasets.escus_pool(escus_folder, esc50_meta=small_root, max_clips=1).files) == 1


def test_escus_pool_default_metadata(escus_folder, small_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ESC50_DIR", str(tmp_path / "no-esc50"))
    monkeypatch.setenv("ESC10_DIR", str(tmp_path / "no-esc10"))
    with pytest.raises(DatasetError, match="leakage filter needs ESC-50's metadata"):
        datasets.escus_pool(escus_folder)
    monkeypatch.setenv("ESC10_DIR", str(small_root))  # falls back to ESC-10's metadata
    assert datasets.escus_pool(escus_folder).n_excluded_leakage == 2
    monkeypatch.setenv("ESCUS_DIR", str(escus_folder))
    monkeypatch.setenv("ESC50_DIR", str(small_root))
    assert datasets.escus_pool().n_excluded_leakage == 2


# ----------------------------------------------------------------------------
# Real data (../shared/data or ESC_DATA_ROOT)
# ----------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_esc10(esc10_root):
    dataset = datasets.load_esc10(esc10_root)
    assert len(dataset) == 400 and dataset.n_classes == 10
    assert dataset.classes == ESC10_CLASSES
    assert np.bincount(dataset.folds).tolist() == [0, 80, 80, 80, 80, 80]
    assert np.bincount(dataset.labels).tolist() == [40] * 10
    targets = dataset.meta.groupby("label")["target"].first().tolist()
    assert targets == ESC10_TARGETS  # 0..9 in the order of the ESC-50 ids
    assert all(p.suffix == ".ogg" for p in dataset.paths)
    table = dataset.summary()
    assert (table.loc[ESC10_CLASSES, [1, 2, 3, 4, 5]] == 8).all().all()
    # The same folder read as a generic labelled dataset gives the same mapping.
    assert datasets.load_labelled(esc10_root).classes == ESC10_CLASSES
    clip = audio.load_clip(dataset.paths[0])
    assert clip.shape == (220500,) and np.isclose(np.abs(clip).max(), 1.0)


@pytest.mark.realdata
def test_real_unlabeled_pool(unlabeled_root, esc10_root):
    pool = datasets.unlabeled_pool(unlabeled_root)
    assert len(pool.files) == 591 and pool.n_excluded_leakage == 0
    assert pool.files[0].name == "unl-0000.ogg"
    few = datasets.unlabeled_pool(unlabeled_root, max_files=4, seed=1)
    windows, origin, report = few.load_all()
    assert windows.shape == (4, 220500) and origin.tolist() == [0, 1, 2, 3]
    assert report.n_used == 4 and report.n_skipped == 0
    np.testing.assert_allclose(np.abs(windows).max(axis=1), 1.0, rtol=1e-5)
    # Its names carry no Freesound id, so the leakage filter (against ESC-10) removes nothing.
    assert datasets.escus_pool(unlabeled_root, esc50_meta=esc10_root).n_excluded_leakage == 0


def test_the_synthetic_stand_in_loads_as_the_real_esc10_does(synthetic_esc10):
    """The pipeline tests' synthetic ESC-10 (conftest) meets load_esc10 as the real folder does: classes, folds, Ogg."""
    dataset = datasets.load_esc10(synthetic_esc10.esc10)
    assert dataset.classes == ESC10_CLASSES and datasets.load_labelled(synthetic_esc10.esc10).classes == ESC10_CLASSES
    assert dataset.meta.groupby("label")["target"].first().tolist() == ESC10_TARGETS
    assert (dataset.summary().loc[ESC10_CLASSES, [1, 2, 3, 4, 5]] == 2).all().all()
    assert all(p.suffix == ".ogg" for p in dataset.paths) and dataset.meta["src_file"].is_unique
    clip = audio.load_clip(dataset.paths[0])
    assert clip.shape == (220500,) and np.isclose(np.abs(clip).max(), 1.0)
    pool = datasets.unlabeled_pool(synthetic_esc10.unlabeled)
    assert len(pool.files) == 24 and pool.files[0].name == "unl-0000.ogg"
    assert datasets.escus_pool(synthetic_esc10.unlabeled, esc50_meta=synthetic_esc10.esc10).n_excluded_leakage == 0


def test_non_finite_samples_are_a_counted_skip(tmp_path):
    """A float WAV with NaN would poison the CAE loss: it is skipped like an undecodable file."""
    import numpy as np
    import soundfile

    from esc_lib.data import audio

    samples = np.zeros(44100, dtype=np.float32)
    samples[100] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(path, samples, 44100, subtype="FLOAT")
    with pytest.raises(audio.AudioError, match="nan.wav: holds non-finite samples"):
        audio.read_audio(path)


def test_a_symlink_loop_lists_each_file_once(tmp_path):
    """``sub/loop -> ..`` made every file count once per loop level (41 times); now once."""
    from esc_lib.data.datasets import find_audio_files

    (tmp_path / "sub").mkdir()
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "sub" / "b.wav").write_bytes(b"")
    (tmp_path / "sub" / "loop").symlink_to("..")
    (tmp_path / "alias.wav").symlink_to(tmp_path / "a.wav")  # one real file, two names
    files = find_audio_files(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in files) == ["a.wav", "sub/b.wav"]


def test_an_unreadable_subfolder_is_counted_not_silently_missing(tmp_path, monkeypatch):
    import os

    root = tmp_path / "pool"
    for name in ("a.wav", "locked/b.wav", "locked/c.wav"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    locked = str(root / "locked")
    real_scandir = os.scandir

    def scandir(path="."):  # what a folder without read permission does (root ignores chmod, so it is simulated)
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    unreadable = []
    assert datasets.find_audio_files(root, unreadable=unreadable) == [root / "a.wav"]
    assert unreadable == [(locked, "folder not readable (Permission denied); its files are left out")]
    pool = datasets.unlabeled_pool(root)
    assert pool.files == [root / "a.wav"] and pool.unreadable == unreadable
    assert "1 folder(s) could not be read (e.g. " + locked + ")" in pool.summary()


# ----------------------------------------------------------------------------
# One file is one file (hard links), files cut short, files too short to use
# ----------------------------------------------------------------------------


def test_a_hard_link_is_the_file_it_links_listed_once(tmp_path):
    """``a.wav``, ``b.wav``, a symbolic and a hard link to ``a.wav``: 2 files, not 3 (the hard link counted twice)."""
    import os

    write_clip(tmp_path / "a.wav", seconds=1.0)
    write_clip(tmp_path / "b.wav", seconds=1.0, frequency=880.0)
    (tmp_path / "symbolic.wav").symlink_to(tmp_path / "a.wav")
    (tmp_path / "sub").mkdir()
    os.link(tmp_path / "a.wav", tmp_path / "sub" / "hard.wav")
    files = datasets.find_audio_files(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in files) == ["a.wav", "b.wav"]
    assert datasets.file_identity(tmp_path / "sub" / "hard.wav") == datasets.file_identity(tmp_path / "a.wav")
    pool = datasets.unlabeled_pool(tmp_path)
    assert len(pool) == 2 and pool.n_found == 2


def test_labelled_rows_that_are_one_file_are_refused(tmp_path):
    """Two metadata rows naming one file through a hard link would count one clip twice, here in two folds."""
    import os

    build_esc50_tree(tmp_path)
    audio_dir = tmp_path / "audio"
    first, second = "1-100001-A-0.wav", "2-100004-A-0.wav"
    (audio_dir / second).unlink()
    os.link(audio_dir / first, audio_dir / second)
    with pytest.raises(DatasetError, match=rf"esc50.csv: 1 pair\(s\) of rows are one file .*{first} and {second}"):
        datasets.load_labelled(tmp_path)


def _noise_ogg(path: Path, seconds: float = 5.0, sr: int = 44100, subtype: str = "VORBIS") -> bytes:
    import soundfile

    rng = np.random.default_rng(0)
    soundfile.write(path, (0.3 * rng.standard_normal(int(seconds * sr))).astype(np.float32), sr,
                    format="OGG", subtype=subtype)
    return path.read_bytes()


@pytest.mark.parametrize("cut", ["mid-page", "page-boundary"])
@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_a_truncated_ogg_is_refused_not_read_as_a_short_clip(tmp_path, cut, subtype):
    """Half an Ogg file decoded to its first 2 s without a word; now it is an AudioError naming the file."""
    import soundfile

    whole = _noise_ogg(tmp_path / "whole.ogg", sr=48000 if subtype == "OPUS" else 44100, subtype=subtype)
    assert len(audio.read_audio(tmp_path / "whole.ogg")) == 220500
    half = len(whole) // 2
    if cut == "page-boundary":  # complete pages, none marked end-of-stream
        half = whole.rfind(b"OggS", 0, half)
    path = tmp_path / "half.ogg"
    path.write_bytes(whole[:half])
    # libsndfile alone takes it for a shorter clip.
    assert soundfile.info(str(path)).frames < soundfile.info(str(tmp_path / "whole.ogg")).frames
    with pytest.raises(audio.AudioError, match=r"half.ogg: truncated: .*download or copy it again"):
        audio.read_audio(path)
    with pytest.raises(audio.AudioError, match="truncated"):
        audio.check_complete(path)


@pytest.mark.parametrize("fmt, subtype, suffix, message", [
    ("WAV", "PCM_16", ".wav", r"its header declares 441000 bytes of audio, the file holds"),
    ("AIFF", "PCM_16", ".aiff", r"its header declares \d+ bytes of audio, the file holds"),
    ("MP3", "MPEG_LAYER_III", ".mp3", r"decodes to \d\.\d\d s of the 5\.00 s its header declares"),
])
def test_the_siblings_of_a_truncated_ogg_are_refused_too(tmp_path, fmt, subtype, suffix, message):
    """WAV and AIFF declare their data size, MP3 (a Xing header) its length: a cut file says so."""
    import soundfile

    rng = np.random.default_rng(1)
    whole = tmp_path / f"whole{suffix}"
    soundfile.write(whole, (0.3 * rng.standard_normal(5 * 44100)).astype(np.float32), 44100, format=fmt, subtype=subtype)
    assert len(audio.read_audio(whole)) == 220500
    data = whole.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(audio.AudioError, match=rf"cut{suffix}: truncated: {message}"):
        audio.read_audio(cut)


def test_a_truncated_file_in_a_pool_is_a_counted_skip(tmp_path):
    (tmp_path / "pool").mkdir()
    whole = _noise_ogg(tmp_path / "pool" / "a-whole.ogg")
    (tmp_path / "pool" / "b-half.ogg").write_bytes(whole[: len(whole) // 2])
    windows, origin, report = datasets.unlabeled_pool(tmp_path / "pool").load_all()
    assert windows.shape == (1, 220500) and report.n_used == 1
    assert [(Path(p).name, r.split(":")[0]) for p, r in report.skipped] == [("b-half.ogg", "truncated")]


def test_a_file_shorter_than_min_clip_seconds_is_a_counted_skip_in_a_pool(tmp_path):
    """With partial windows kept down to 0 s, one sample would still become a 5 s window of padding."""
    import soundfile

    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    soundfile.write(pool_dir / "one-sample.wav", np.array([0.5], dtype=np.float32), 44100)
    write_clip(pool_dir / "quarter-second.wav", seconds=0.25)
    pool = datasets.unlabeled_pool(pool_dir)
    windows, origin, report = pool.load_all(min_last_seconds=0.0)
    assert windows.shape == (1, 220500) and report.n_used == 1
    assert report.skipped == [(str(pool_dir / "one-sample.wav"),
                               "only 2.27e-05 s of audio, shorter than min_clip_seconds (0.1 s); too short to be of use "
                               "(lower min_clip_seconds to keep it)")]
    assert len(audio.load_windows(pool_dir / "one-sample.wav", min_last_seconds=0.0, min_clip_seconds=0.0)) == 1


def test_a_category_with_a_control_character_is_refused(tmp_path):
    build_esc50_tree(tmp_path)
    _rewrite_csv(tmp_path, lambda frame: frame.assign(category=frame["category"].replace({"rain": "ra\tin"})))
    with pytest.raises(DatasetError, match=r"esc50.csv: category name\(s\) with a control character .*'ra\\\\tin'"):
        datasets.load_labelled(tmp_path)


def test_a_skip_report_names_a_file_with_a_newline_on_one_line():
    report = audio.SkipReport()
    report.skip("pool/two\nlines.wav", "cannot decode")
    assert report.summary().splitlines() == ["0 file(s) used, 1 skipped", "  skipped pool/two\\nlines.wav: cannot decode"]


def test_the_folds_parameter_is_checked_against_the_metadata_naming_it(tmp_path):
    build_esc50_tree(tmp_path)
    meta = tmp_path / "meta" / "esc50.csv"
    assert datasets.metadata_folds(meta) == [1, 2] and datasets.metadata_folds(tmp_path / "none.csv") is None
    datasets.check_folds([1, 2], [1, 2], meta)
    with pytest.raises(DatasetError, match=r"^parameter folds: fold\(s\) \[6\] not among the dataset's folds \[1, 2\]"):
        datasets.check_folds([1, 6], datasets.metadata_folds(meta), meta)


def test_the_minimum_clip_length_is_one_setting():
    """audio.MIN_CLIP_SECONDS is the default of the min_clip_seconds setting (settings stays free of audio imports)."""
    from esc_lib.settings import Settings

    assert Settings.model_fields["min_clip_seconds"].default == audio.MIN_CLIP_SECONDS == 0.1
    assert Settings().key("cae") == Settings(min_clip_seconds=0.1).key("cae") != Settings(min_clip_seconds=0.5).key("cae")
