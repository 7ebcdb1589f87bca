"""One's own recordings: class folders and tables, folds made for you, windows scored per file (esc_lib.data.recordings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from esc_lib.data import audio, recordings
from esc_lib.data.datasets import DatasetError


def _tone(path: Path, seconds: float, sr: int = 44100, channels: int = 1, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y = (0.1 * rng.standard_normal((int(round(seconds * sr)), channels))).astype("float32")
    soundfile.write(str(path), y, sr)
    return path


def _folders(root: Path, classes=("dog", "rain", "sea waves"), per_class=6, seconds=5.0) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            _tone(root / name / f"{i + 1}-{1000 * (c + 1) + i}-A-{c}.wav", seconds, seed=10 * c + i)
    return root


def test_the_layout_is_detected_from_the_path(tmp_path):
    assert recordings.detect_layout(_folders(tmp_path / "f")) == "folders"
    (tmp_path / "t.csv").write_text("path,label\n")
    assert recordings.detect_layout(tmp_path / "t.csv") == "table"
    (tmp_path / "e" / "meta").mkdir(parents=True)
    (tmp_path / "e" / "meta" / "esc50.csv").write_text("filename,fold,target,category\n")
    assert recordings.detect_layout(tmp_path / "e") == "esc50"
    with pytest.raises(DatasetError, match="labelled data not found.*ESC_LABELLED_DIR"):
        recordings.detect_layout(tmp_path / "nowhere")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DatasetError, match="x.json: a labelled file must be a table"):
        recordings.detect_layout(tmp_path / "x.json")


def test_class_folders_become_labelled_windows_with_grouped_folds(tmp_path):
    root = _folders(tmp_path / "own")
    # A long file (12 s: 5 + 5 + 2 padded) and one whose takes A and B come from one recording.
    _tone(root / "rain" / "long field recording.wav", 12.0, seed=99)
    _tone(root / "dog" / "1-1000-B-0.wav", 5.0, seed=98)
    dataset = recordings.load_recordings(root, n_folds=3, seed=0, fold_file=tmp_path / "run" / "folds.csv")
    assert dataset.classes == ["dog", "rain", "sea waves"]
    meta = dataset.meta
    assert meta["file"].nunique() == 20 and len(meta) == 22  # the long file gives 3 windows
    long = meta[meta["filename"] == "rain/long field recording.wav"]
    assert long["window"].tolist() == [0, 1, 2] and long["fold"].nunique() == 1 and (long["category"] == "rain").all()
    takes = meta[meta["filename"].isin(["dog/1-1000-A-0.wav", "dog/1-1000-B-0.wav"])]
    assert takes["group"].nunique() == 1 and takes["fold"].nunique() == 1  # takes of one recording stay together
    assert sorted(meta["fold"].unique()) == [1, 2, 3]
    per_class_fold = meta.drop_duplicates("file").groupby(["category", "fold"]).size()
    assert per_class_fold.min() >= 1  # stratified: every class in every fold
    # Written to the run folder and reused, even with another seed.
    saved = pd.read_csv(tmp_path / "run" / "folds.csv")
    assert len(saved) == 20 and set(saved.columns) == {"filename", "category", "group", "fold"}
    again = recordings.load_recordings(root, n_folds=3, seed=7, fold_file=tmp_path / "run" / "folds.csv")
    assert again.meta["fold"].tolist() == meta["fold"].tolist()
    assert dataset.summary().loc["total", "total"] == 20  # files, not windows
    # New files with an old fold file: a clear error, not silently other folds.
    _tone(root / "dog" / "new.wav", 5.0)
    with pytest.raises(DatasetError, match="folds were made for other files.*--run-name"):
        recordings.load_recordings(root, n_folds=3, fold_file=tmp_path / "run" / "folds.csv")


def test_folds_are_seeded_stratified_and_grouped():
    labels = np.repeat(["a", "b"], 12)
    groups = [f"g{i // 2}" for i in range(24)]  # pairs of files share a recording
    folds = recordings.make_folds(labels, groups, 4, seed=1)
    assert np.array_equal(folds, recordings.make_folds(labels, groups, 4, seed=1))
    assert not np.array_equal(folds, recordings.make_folds(labels, groups, 4, seed=2))
    assert all(len(set(folds[i:i + 2])) == 1 for i in range(0, 24, 2))
    assert all(set(labels[folds == f]) == {"a", "b"} for f in range(1, 5))
    with pytest.raises(DatasetError, match="5 folds need at least 5 files .*'b' has 4"):
        recordings.make_folds(["a"] * 5 + ["b"] * 4, [str(i) for i in range(9)], 5, seed=0)
    with pytest.raises(DatasetError, match="n_folds=2"):
        recordings.make_folds(labels, groups, 2, seed=0)


def test_a_table_with_spaces_and_unicode_labels_its_own_folds_and_groups(tmp_path):
    for i in range(6):
        _tone(tmp_path / "audio" / f"a{i}.wav", 5.0, seed=i)
        _tone(tmp_path / "audio" / f"b{i}.flac", 7.5, sr=22050, channels=2, seed=20 + i)  # other rate, stereo, 2 windows
    rows = [f"audio/a{i}.wav,  Grillon chantant ,{1 + i % 3},r{i}" for i in range(6)]
    rows += [f"audio/b{i}.flac,Vogelgezwitscher (Amsel) ü,{1 + i % 3},r{i + 6}" for i in range(6)]
    table = tmp_path / "labels.csv"
    table.write_text("path,label,fold,group\n" + "\n".join(rows) + "\n", encoding="utf-8")
    dataset = recordings.load_recordings(table)
    assert dataset.classes == ["Grillon chantant", "Vogelgezwitscher (Amsel) ü"]
    assert sorted(dataset.meta["fold"].unique()) == [1, 2, 3]
    assert len(dataset.meta) == 6 + 12
    # Tab-separated works the same.
    tsv = tmp_path / "labels.tsv"
    tsv.write_text("path\tlabel\n" + "\n".join(f"audio/a{i}.wav\tx" if i < 3 else f"audio/b{i}.flac\ty" for i in range(6)) + "\n")
    assert recordings.load_recordings(tsv, n_folds=3).classes == ["x", "y"]


@pytest.mark.parametrize("lines,match", [
    (["audio/a0.wav,x", "audio/a0.wav,y"], r"listed twice \(a0.wav on lines 2, 3\)"),
    (["audio/a0.wav,x", "./audio/a0.wav,x"], "listed twice"),
    (["audio/missing.wav,x"], r"1 listed file\(s\) not found \(line 2: audio/missing.wav\)"),
    (["../outside.wav,x"], r"outside the table's folder"),
    (["audio/a0.wav,   "], r"line 2: empty class label"),
    (["audio/a0.wav,x,one"], r"column 'fold' must hold integers, found \['one'\]"),
])
def test_bad_table_rows_are_named(tmp_path, lines, match):
    _tone(tmp_path / "audio" / "a0.wav", 5.0)
    _tone(tmp_path.parent / "outside.wav", 5.0)
    header = "path,label,fold" if "one" in lines[0] else "path,label"
    (tmp_path / "t.csv").write_text(header + "\n" + "\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=match):
        recordings.read_table(tmp_path / "t.csv")


def test_bad_class_folders_are_named(tmp_path):
    root = _folders(tmp_path / "own", per_class=3)
    (root / "empty class").mkdir()
    with pytest.raises(DatasetError, match="empty class: class folder holds no audio"):
        recordings.load_recordings(root, n_folds=3)
    (root / "empty class").rmdir()
    _tone(root / "lonely" / "one.wav", 5.0)
    with pytest.raises(DatasetError, match="3 folds need at least 3 files .*'lonely' has 1"):
        recordings.load_recordings(root, n_folds=3)
    (root / "lonely" / "one.wav").unlink()
    (root / "lonely").rmdir()
    _tone(root / "stray.wav", 5.0)
    with pytest.raises(DatasetError, match="directly in the folder .*stray.wav"):
        recordings.load_recordings(root, n_folds=3)


def test_unreadable_files_are_skipped_and_counted_and_short_events_kept(tmp_path):
    root = _folders(tmp_path / "own", per_class=3)
    (root / "dog" / "noise.ogg").write_bytes(np.random.default_rng(0).bytes(4000))
    (root / "dog" / "empty.wav").write_bytes(b"")
    _tone(root / "rain" / "blip.wav", 0.4)  # a short labelled event: one padded window, as ESC pads its clips
    report = audio.SkipReport()
    dataset = recordings.load_recordings(root, n_folds=3, report=report)
    assert report.n_skipped == 2 and dataset.meta["file"].nunique() == 10
    assert dataset.meta.loc[dataset.meta["filename"] == "rain/blip.wav", "window"].tolist() == [0]
    reasons = " ".join(reason for _, reason in report.skipped)
    assert reasons.count("not a recognised audio file") == 2
    with pytest.raises(audio.AudioError, match="(noise.ogg|empty.wav): not a recognised audio file"):
        recordings.load_recordings(root, n_folds=3)


@pytest.mark.parametrize("seconds,sr", [(5.0, 44100), (12.0, 44100), (10.9, 22050), (6.02, 48000), (0.5 + 5, 16000), (1.2, 8000)])
def test_windows_counted_from_the_header_match_the_decoded_windows(tmp_path, seconds, sr):
    path = _tone(tmp_path / "x.wav", seconds, sr=sr)
    assert recordings.count_windows(path) == len(audio.load_windows(path))


def test_a_file_shorter_than_a_window_counts_as_one(tmp_path):
    assert recordings.count_windows(_tone(tmp_path / "short.wav", 0.3, sr=16000)) == 1


def test_esc_names_group_takes_of_one_source():
    assert recordings.source_groups(["dog/1-100032-A-0.wav", "x/2-100032-B-0.ogg", "a/b.wav"]) == [
        "src:100032", "src:100032", "file:a/b.wav"]


# ----------------------------------------------------------------------------
# Names that are not one line, one file under two names, files cut or too short
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, shown", [
    ("dog\n", "dog\\\\n"),                # a newline: stripped, it became the label "dog" without a word
    ("sea\nwaves", "sea\\\\nwaves"),      # a label of two lines in every table it is written to
    ("rain\tfall", "rain\\\\tfall"),
    ("bird\u200b", "bird\\\\u200b"),      # zero-width space: prints as another class's name
])
def test_a_class_folder_named_with_a_control_character_is_refused_with_its_path(tmp_path, name, shown):
    root = _folders(tmp_path / "own", classes=("bird", "rain"), per_class=3)
    _tone(root / name / "1-9000-A-9.wav", 5.0)
    with pytest.raises(DatasetError) as raised:
        recordings.load_recordings(root, n_folds=3)
    message = str(raised.value)
    assert "\n" not in message and "\t" not in message
    assert message.startswith(f"{root}/{audio.printable(name)}: class folder name")
    assert "holds a control character" in message and "rename it" in message
    import re
    assert re.search(shown, message)


def test_a_folder_name_of_undecodable_bytes_is_refused_too(tmp_path):
    import os

    root = _folders(tmp_path / "own", classes=("bird", "rain"), per_class=3)
    folder = os.path.join(os.fsencode(root), b"caf\xe9")  # Latin-1 bytes, not UTF-8
    os.mkdir(folder)
    os.rename(_tone(tmp_path / "x.wav", 5.0), os.path.join(folder, b"1-9000-A-9.wav"))  # libsndfile cannot write there
    with pytest.raises(DatasetError, match=r"class folder name 'caf\\\\udce9' holds a control character"):
        recordings.load_recordings(root, n_folds=3)


def test_a_table_label_with_a_control_character_is_refused_with_its_line(tmp_path):
    _tone(tmp_path / "a.wav", 5.0)
    _tone(tmp_path / "b.wav", 5.0, seed=1)
    (tmp_path / "t.csv").write_text('path,label\na.wav,dog\nb.wav,"sea\nwaves"\n')
    with pytest.raises(DatasetError, match=r"t.csv, line 3: class label 'sea\\\\nwaves' holds a control character"):
        recordings.read_table(tmp_path / "t.csv")


def test_one_file_in_two_class_folders_is_refused(tmp_path):
    """A hard link (or a symbolic one) makes one recording two labelled files, maybe in two folds."""
    import os

    root = _folders(tmp_path / "own", classes=("bird", "rain"), per_class=3)
    os.link(root / "bird" / "1-1000-A-0.wav", root / "rain" / "copy.wav")
    with pytest.raises(DatasetError, match=r"bird/1-1000-A-0.wav and rain/copy.wav are one file \(a hard or symbolic "
                                           r"link\) in two class folders"):
        recordings.read_class_folders(root)


def test_a_hard_link_inside_one_class_folder_counts_once(tmp_path):
    import os

    root = _folders(tmp_path / "own", classes=("bird", "rain"), per_class=3)
    os.link(root / "bird" / "1-1000-A-0.wav", root / "bird" / "same-recording.wav")
    assert len(recordings.read_class_folders(root)) == 6


def test_a_table_listing_one_file_under_two_names_is_refused(tmp_path):
    import os

    _tone(tmp_path / "a.wav", 5.0)
    os.link(tmp_path / "a.wav", tmp_path / "b.wav")
    (tmp_path / "t.csv").write_text("path,label\na.wav,dog\nb.wav,rain\n")
    with pytest.raises(DatasetError, match=r"listed twice \(a.wav on lines 2, 3\), as listed or through a hard"):
        recordings.read_table(tmp_path / "t.csv")


def test_files_cut_short_or_too_short_are_counted_skips(tmp_path):
    """A half-copied WAV was counted from its header as a shorter file; one sample became a 5 s window of zeros."""
    root = _folders(tmp_path / "own", per_class=3)
    whole = (root / "dog" / "1-1000-A-0.wav").read_bytes()
    (root / "dog" / "cut.wav").write_bytes(whole[: len(whole) // 2])
    soundfile.write(root / "rain" / "click.wav", np.array([0.5, -0.5], dtype=np.float32), 44100)
    _tone(root / "rain" / "blip.wav", 0.4)  # a short event above min_clip_seconds is kept
    report = audio.SkipReport()
    dataset = recordings.load_recordings(root, n_folds=3, report=report)
    reasons = dict((Path(path).name, reason) for path, reason in report.skipped)
    assert set(reasons) == {"cut.wav", "click.wav"} and dataset.meta["file"].nunique() == 10
    assert reasons["cut.wav"].startswith("truncated: its header declares 441000 bytes of audio")
    assert reasons["click.wav"].startswith("only 4.54e-05 s of audio, shorter than min_clip_seconds (0.1 s)")
    kept = recordings.load_recordings(root, n_folds=3, report=audio.SkipReport(), min_clip_seconds=0.0)
    assert "rain/click.wav" in set(kept.meta["filename"])


def test_the_folds_of_the_configured_data_are_read_cheaply(tmp_path, monkeypatch):
    monkeypatch.setenv("ESC_LABELLED_DIR", str(tmp_path / "own"))
    assert recordings.dataset_folds("own") is None  # not there yet
    _folders(tmp_path / "own", per_class=3)
    folds, where = recordings.dataset_folds("own", n_folds=4)
    assert folds == [1, 2, 3, 4] and "folds made for it" in where
    _tone(tmp_path / "t" / "a.wav", 5.0)
    (tmp_path / "t" / "list.csv").write_text("path,label,fold\na.wav,dog,7\na.wav,dog, 9\n")
    monkeypatch.setenv("ESC_LABELLED_DIR", str(tmp_path / "t" / "list.csv"))
    assert recordings.dataset_folds("own") == ([7, 9], str(tmp_path / "t" / "list.csv"))
