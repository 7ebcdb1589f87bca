"""Your own labelled recordings: a folder per class or a CSV/TSV, folds made for you.

Three layouts of labelled data reach the same :class:`esc_lib.data.datasets.LabelledDataset`:

ESC-50 (``meta/esc50.csv`` beside ``audio/``)
    As :func:`esc_lib.data.datasets.load_labelled` reads it, folds as listed.
A folder per class (``root/<class name>/**/*.wav|ogg|flac|...``)
    The class is the name of the top-level folder a file lies under (at any
    depth); files directly in ``root`` are an error, hidden files are ignored.
A table (``.csv``, or ``.tsv`` / ``.tab`` with tabs) of ``path,label[,fold][,group]``
    Paths relative to the table's folder (absolute ones are refused when they
    lie outside it); ``fold`` (integers) is used when present, else folds are
    made; ``group`` names recordings that must stay in one fold.

Files may have any length (from ``min_clip_seconds``, 0.1 s, up; shorter ones and
files cut short are counted skips), sample rate and channel count: each becomes its
5 s windows (:func:`esc_lib.data.audio.split_windows`: the last partial window is
padded when at least 1 s long), every window carries the file's label and
fold, and a classifier is scored per *file* (window probabilities averaged,
as :mod:`esc_lib.predict` does).  So the dataset's rows are windows; the
columns ``file`` (0-based file id), ``window`` (index in the file) and
``group`` say where each comes from.

Folds made for you
    :func:`make_folds`: scikit-learn's ``StratifiedGroupKFold`` (shuffled,
    seeded) over *files*, groups from the ``group`` column, else from a file
    name following ESC's ``FOLD-SOURCE-TAKE-TARGET`` pattern (the takes of one
    source recording together), else the file itself; so windows of one file
    and takes of one recording never straddle folds.  The assignment is
    written to the run folder (``folds.csv``) and reused by later runs.
"""

from __future__ import annotations

import csv
import os
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from esc_lib.data import audio, datasets
from esc_lib.data.datasets import DatasetError

__all__ = [
    "LAYOUTS",
    "TABLE_SUFFIXES",
    "detect_layout",
    "read_class_folders",
    "read_table",
    "source_groups",
    "make_folds",
    "count_windows",
    "load_recordings",
    "dataset_folds",
    "FOLDS_FILE",
]

#: The labelled layouts; ``auto`` detects one of the others from the path.
LAYOUTS = ("auto", "esc50", "folders", "table")

#: Suffixes of table files and their separators.
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}

#: The fold assignment's file in the run folder.
FOLDS_FILE = "folds.csv"

# ESC-50's clip names: FOLD-SOURCE-TAKE-TARGET.ext (e.g. 1-100032-A-0.wav).
_ESC_NAME = re.compile(r"^(\d+)-(\d+)-([A-Za-z]+)-(\d+)$")


def detect_layout(path: str | Path) -> str:
    """``esc50``, ``folders`` or ``table`` for a labelled path (see the module docstring).

    Raises
    ------
    DatasetError
        The path does not exist, or is a file that is not a table.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() in TABLE_SUFFIXES:
            return "table"
        raise DatasetError(
            f"{path}: a labelled file must be a table ({', '.join(TABLE_SUFFIXES)}) of path,label[,fold][,group]; "
            "or point at a folder with a subfolder per class")
    if not path.is_dir():
        raise DatasetError(
            f"{path}: labelled data not found; point ESC_LABELLED_DIR (run_all.sh --labelled-dir) at a folder "
            "with a subfolder per class, a CSV/TSV of path,label, or a folder in ESC-50 layout")
    if (path / "meta" / "esc50.csv").is_file():
        return "esc50"
    return "folders"


def _clean_label(value, where: str, what: str = "class label") -> str:
    """A class name: Unicode-normalised (NFC), surrounding spaces removed; empty, or a control character, is an error.

    A newline, tab or other control character (or an invisible format character,
    or bytes that are no UTF-8) would make a label that prints as another, or
    splits a line of every table it is written to.
    """
    text = str(value)
    if audio.printable(text) != text:
        raise DatasetError(f"{audio.printable(where)}: {what} {audio.printable(text)!r} holds a control character "
                           "(newline, tab, ...); rename it to one line of printable text")
    label = unicodedata.normalize("NFC", text).strip()
    if not label or label.lower() == "nan":
        raise DatasetError(f"{where}: empty class label; give every file a label")
    return label


def read_class_folders(root: str | Path) -> pd.DataFrame:
    """Files of a folder-per-class layout.

    Returns
    -------
    pd.DataFrame
        ``path`` (absolute, str), ``filename`` (relative to ``root``),
        ``category`` (the class folder's name); sorted by class, then path.

    Raises
    ------
    DatasetError
        No class folder, audio directly in ``root``, a class folder with no audio
        or whose name holds a control character, or one file (a hard or symbolic
        link) in two class folders.
    """
    root = Path(root).expanduser().resolve()
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    loose = [entry.name for entry in os.scandir(root)
             if entry.is_file() and os.path.splitext(entry.name)[1].lower() in datasets.AUDIO_EXTENSIONS]
    if loose:
        raise DatasetError(
            f"{root}: {len(loose)} audio file(s) directly in the folder (e.g. {loose[0]}); "
            "a folder-per-class layout keeps every file under its class folder, root/<class>/...")
    if not classes:
        raise DatasetError(f"{root}: no class folders; put each class's recordings in root/<class name>/")
    rows, owner = [], {}
    for name in classes:
        label = _clean_label(name, str(root / name), "class folder name")
        files = datasets.find_audio_files(root / name)
        if not files:
            raise DatasetError(
                f"{root / name}: class folder holds no audio file ({', '.join(datasets.AUDIO_EXTENSIONS[:4])}, ...); "
                "add recordings or remove the folder")
        for f in files:
            # One file under two classes (a link) would be one recording with two labels, maybe in two folds.
            identity = datasets.file_identity(f)
            if identity in owner:
                raise DatasetError(
                    f"{root}: {owner[identity]} and {f.relative_to(root).as_posix()} are one file (a hard or symbolic "
                    "link) in two class folders; keep it under one class")
            owner[identity] = f.relative_to(root).as_posix()
        rows += [{"path": str(f), "filename": f.relative_to(root).as_posix(), "category": label} for f in files]
    return pd.DataFrame(rows)


def read_table(table: str | Path) -> pd.DataFrame:
    """Rows of a ``path,label[,fold][,group]`` table (CSV, or TSV with tabs).

    Returns
    -------
    pd.DataFrame
        ``path`` (absolute, str), ``filename`` (relative to the table's folder), ``category``, and
        ``fold`` (int) / ``group`` (str) when the table has them.

    Raises
    ------
    DatasetError
        Unreadable table, missing column, a path outside the table's folder or
        not found, a file listed twice (with the same or another label), an
        empty label, or non-integer folds.  Each names the table and the rows.
    """
    table = Path(table).expanduser().resolve()
    separator = TABLE_SUFFIXES.get(table.suffix.lower(), ",")
    try:
        frame = pd.read_csv(table, sep=separator, dtype=str, keep_default_na=False, encoding="utf-8", quoting=csv.QUOTE_MINIMAL)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetError(f"{table}: cannot be read as a {'TSV' if separator == chr(9) else 'CSV'} table ({error})") from error
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in ("path", "label") if c not in frame.columns]
    if missing:
        raise DatasetError(f"{table}: column(s) {missing} missing; expected path,label[,fold][,group], found {list(frame.columns)}")
    if len(frame) == 0:
        raise DatasetError(f"{table}: lists no file")
    base = table.parent
    rows, outside, absent = [], [], []
    for number, row in enumerate(frame.itertuples(index=False), start=2):  # line 1 is the header
        listed = str(row.path).strip()
        where = f"{table}, line {number}"
        if not listed:
            raise DatasetError(f"{where}: empty path")
        # Lexically under the table's folder (a link in it may point elsewhere, as links do).
        resolved = Path(os.path.normpath(base / listed))
        if os.path.commonpath([str(resolved), str(base)]) != str(base):
            outside.append(f"line {number}: {listed}")
            continue
        if not resolved.is_file():
            absent.append(f"line {number}: {listed}")
            continue
        entry = {"path": str(resolved), "filename": resolved.relative_to(base).as_posix(),
                 "category": _clean_label(row.label, where), "line": number, "real": str(datasets.file_identity(resolved))}
        if "fold" in frame.columns:
            entry["fold"] = str(row.fold).strip()
        if "group" in frame.columns:
            entry["group"] = str(row.group).strip()
        rows.append(entry)
    if outside:
        raise DatasetError(f"{table}: {len(outside)} path(s) outside the table's folder {base} ({'; '.join(outside[:3])}); "
                           "list files under the folder that holds the table")
    if absent:
        raise DatasetError(f"{table}: {len(absent)} listed file(s) not found ({'; '.join(absent[:3])}); "
                           "fix the paths (relative to the table's folder) or remove the rows")
    out = pd.DataFrame(rows)
    repeated = out[out["real"].duplicated(keep=False)]
    if len(repeated):
        # One file is one device and inode: listed twice as such, or under two names through a link.
        groups = repeated.groupby("real", sort=False)
        named = [f"{Path(rows['filename'].iloc[0]).name} on lines {', '.join(map(str, rows['line']))}"
                 for _, rows in list(groups)[:3]]
        raise DatasetError(f"{table}: file(s) listed twice ({'; '.join(named)}), "
                           "as listed or through a hard or symbolic link; list each file once")
    if "fold" in out.columns:
        folds = pd.to_numeric(out["fold"], errors="coerce")
        bad = out.loc[folds.isna() | (folds != folds.round()), ["line", "fold"]]
        if len(bad):
            raise DatasetError(f"{table}: column 'fold' must hold integers, found {bad['fold'].head(3).tolist()} "
                               f"(lines {bad['line'].head(3).tolist()}); fill every fold or drop the column")
        out["fold"] = folds.astype(np.int64)
    if "group" in out.columns and (out["group"] == "").any():
        lines = out.loc[out["group"] == "", "line"].head(3).tolist()
        raise DatasetError(f"{table}: empty group on line(s) {lines}; fill every group or drop the column")
    return out.drop(columns=["line", "real"])


def source_groups(filenames: Sequence[str]) -> list[str]:
    """A group per file: ``src:<SOURCE>`` where the name follows ESC's ``FOLD-SOURCE-TAKE-TARGET``, else the file itself.

    >>> source_groups(["dog/1-100032-A-0.wav", "dog/1-100032-B-0.wav", "rain/field.wav"])
    ['src:100032', 'src:100032', 'file:rain/field.wav']
    """
    groups = []
    for name in filenames:
        match = _ESC_NAME.match(Path(name).stem)
        groups.append(f"src:{match.group(2)}" if match else f"file:{name}")
    return groups


def make_folds(labels: Sequence, groups: Sequence, k: int, seed: int) -> np.ndarray:
    """Stratified, grouped K-fold over files: a fold number in ``1..k`` per file.

    scikit-learn's ``StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)``:
    files of one group share a fold, each fold's class mix is as close to the
    whole as the groups allow.

    Raises
    ------
    DatasetError
        ``k`` < 3 (a test, a validation and a training fold are needed), or a
        class with fewer than ``k`` groups (files), named with its count.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 3:
        raise DatasetError(f"parameter n_folds={k!r}: need an integer >= 3 (a test, a validation and a training fold)")
    labels, groups = np.asarray(labels, dtype=object), np.asarray(groups, dtype=object)
    per_class = pd.DataFrame({"label": labels, "group": groups}).groupby("label")["group"].nunique()
    short = per_class[per_class < k]
    if len(short):
        named = ", ".join(f"{label!r} has {count}" for label, count in short.items())
        raise DatasetError(
            f"{k} folds need at least {k} files (recordings) per class: {named}; add recordings, "
            "lower n_folds, or drop the class")
    splitter = StratifiedGroupKFold(n_splits=int(k), shuffle=True, random_state=int(seed))
    folds = np.zeros(len(labels), dtype=np.int64)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups), start=1):
        folds[test] = fold
    return folds


def count_windows(path: str | Path, sr: int = audio.SAMPLE_RATE, duration: float = audio.CLIP_SECONDS,
                  min_last_seconds: float = 1.0, min_clip_seconds: float = audio.MIN_CLIP_SECONDS) -> int:
    """How many 5 s windows a labelled file gives, from its header (not decoded).

    As :func:`esc_lib.data.audio.split_windows` cuts it (a last partial window of at
    least ``min_last_seconds`` is padded), except that a file shorter than one
    window gives one padded window, as ESC clips are padded to 5 s: a short
    labelled event is kept.  The length after resampling to ``sr`` is soxr's,
    ``floor(frames * sr / rate + 0.5)``.

    Raises
    ------
    esc_lib.data.audio.AudioError
        The file cannot be opened as audio, holds no samples, is cut short
        (:func:`esc_lib.data.audio.check_complete`), or is shorter than
        ``min_clip_seconds`` (:func:`esc_lib.data.audio.check_length`).
    """
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise audio.AudioError(f"{path}: {audio.decode_failure(Path(path), error)}") from error
    audio.check_complete(path, info.format)
    if info.frames <= 0 or info.samplerate <= 0:
        raise audio.AudioError(f"{path}: the file holds no audio samples")
    samples = info.frames if info.samplerate == sr else int(np.floor(info.frames * sr / info.samplerate + 0.5))
    audio.check_length(path, samples, sr, min_clip_seconds)
    window = int(round(sr * duration))
    full, remainder = divmod(samples, window)
    return max(1, full + (1 if remainder and remainder >= min_last_seconds * sr else 0))


def _read_fold_file(path: Path, files: pd.DataFrame) -> np.ndarray | None:
    """The folds of an earlier run's ``folds.csv``, if it lists exactly these files (else an error)."""
    if not path.is_file():
        return None
    saved = pd.read_csv(path, dtype={"filename": str})
    if sorted(saved["filename"]) != sorted(files["filename"]):
        raise DatasetError(
            f"{path}: this run folder's folds were made for other files ({len(saved)} listed, {len(files)} now); "
            "use another run folder for new data (run_all.sh --run-name, or the run_dir parameter), or delete the file to make new folds")
    return saved.set_index("filename").loc[files["filename"], "fold"].to_numpy(dtype=np.int64)


def load_recordings(path: str | Path, layout: str = "auto", *, n_folds: int = 5, seed: int = 0, sr: int = audio.SAMPLE_RATE,
                    fold_file: str | Path | None = None, report: audio.SkipReport | None = None,
                    min_clip_seconds: float = audio.MIN_CLIP_SECONDS):
    """Load labelled recordings in any of :data:`LAYOUTS` as a :class:`~esc_lib.data.datasets.LabelledDataset` of windows.

    Parameters
    ----------
    path : str or Path
        A folder with a subfolder per class, a table, or an ESC-50-layout folder.
    layout : {"auto", "esc50", "folders", "table"}
    n_folds, seed : int
        Folds made for you when the layout gives none (:func:`make_folds`).
    sr : int
        The sample rate features are computed at (windows are counted at it).
    fold_file : str or Path, optional
        Where the made folds are written (atomically) and, on later runs, read from.
    report : esc_lib.data.audio.SkipReport, optional
        Receives the files that cannot be read as audio, hold no samples, are
        cut short or are shorter than ``min_clip_seconds`` (skipped and
        counted); without one such a file is an error.
    min_clip_seconds : float >= 0
        The ``min_clip_seconds`` setting (:func:`esc_lib.data.audio.check_length`).

    Returns
    -------
    esc_lib.data.datasets.LabelledDataset
        One row per 5 s window, with ``file``, ``window`` and ``group``; classes in
        sorted order of their names (ESC-50 layout: by target id).
    """
    path = Path(path).expanduser().resolve()
    if layout not in LAYOUTS:
        raise DatasetError(f"parameter labelled_layout={layout!r}: use one of {list(LAYOUTS)}")
    layout = detect_layout(path) if layout == "auto" else layout
    if layout == "esc50":
        dataset = datasets.load_labelled(path)
        meta = dataset.meta.copy()
        meta["file"], meta["window"] = np.arange(len(meta)), 0
        meta["group"] = meta["src_file"].astype(str) if "src_file" in meta.columns else source_groups(meta["filename"])
        return datasets.LabelledDataset(root=dataset.root, meta=meta, classes=dataset.classes)
    if layout == "folders":
        if not path.is_dir():
            raise DatasetError(f"{path}: labelled_layout 'folders' needs a folder with a subfolder per class")
        files, root = read_class_folders(path), path
    else:
        if not path.is_file():
            raise DatasetError(f"{path}: labelled_layout 'table' needs a CSV/TSV file of path,label[,fold][,group]")
        files, root = read_table(path), path.parent

    # Files that are not audio are skipped and counted (or an error without a report).
    windows = []
    for file_path in files["path"]:
        try:
            windows.append(count_windows(file_path, sr, min_clip_seconds=min_clip_seconds))
        except audio.AudioError as error:
            if report is None:
                raise
            report.skip(file_path, str(error).removeprefix(f"{file_path}: "))
            windows.append(0)
    listed_classes = set(files["category"])
    files = files.assign(windows=windows)
    files = files[files["windows"] > 0].reset_index(drop=True)
    if len(files) == 0:
        raise DatasetError(f"{path}: no readable audio file")
    lost = sorted(listed_classes - set(files["category"]))
    if lost:
        raise DatasetError(f"{path}: class(es) {lost} have no readable audio file; add recordings or remove them")

    if "group" not in files.columns:
        files["group"] = source_groups(files["filename"])
    classes = sorted(files["category"].unique())
    label_of = {name: i for i, name in enumerate(classes)}
    files["label"] = files["category"].map(label_of).astype(np.int64)
    if "fold" not in files.columns:
        folds = _read_fold_file(Path(fold_file), files) if fold_file else None
        if folds is None:
            folds = make_folds(files["category"], files["group"], n_folds, seed)
            if fold_file:
                from esc_lib.atomic import atomic_path

                with atomic_path(fold_file) as temporary:
                    files.assign(fold=folds)[["filename", "category", "group", "fold"]].to_csv(temporary, index=False)
        files["fold"] = folds
    files["file"] = np.arange(len(files))
    files["target"] = files["label"]
    meta = files.loc[files.index.repeat(files["windows"])].reset_index(drop=True)
    meta["window"] = meta.groupby("file").cumcount().astype(np.int64)
    meta = meta.drop(columns="windows")
    return datasets.LabelledDataset(root=root, meta=meta, classes=classes)


def dataset_folds(dataset: str, labelled_layout: str = "auto", n_folds: int = 5) -> tuple[list[int], str] | None:
    """The folds of the labelled data a run's settings name, read cheaply (metadata only, no audio), and where from.

    So a run can check its ``folds`` parameter before any run folder or notebook
    (:func:`esc_lib.data.datasets.check_folds`).  ESC-10 / ESC-50: the ``fold``
    column of ``meta/esc50.csv``; one's own data (``ESC_LABELLED_DIR``): the same
    for ESC-50 layout, a table's ``fold`` column, else the folds made for it
    (``1..n_folds``).

    Returns
    -------
    (folds, where) : (list of int, str), or None
        ``None`` when the data is not there yet (a download to come) or its
        folds cannot be read cheaply; the loader checks them then.
    """
    from esc_lib import config

    if dataset in ("esc10", "esc50"):
        root = config.esc10_dir() if dataset == "esc10" else config.esc50_dir()
        meta = root / "meta" / "esc50.csv"
        folds = datasets.metadata_folds(meta, subset="esc10" if dataset == "esc10" else None)
        return (folds, str(meta)) if folds else None
    path = config.labelled_dir()
    try:
        layout = detect_layout(path) if labelled_layout == "auto" else labelled_layout
    except DatasetError:
        return None
    if layout == "esc50":
        folds = datasets.metadata_folds(path / "meta" / "esc50.csv")
        return (folds, str(path / "meta" / "esc50.csv")) if folds else None
    if layout == "table" and path.is_file():
        separator = TABLE_SUFFIXES.get(path.suffix.lower(), ",")
        try:
            column = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, encoding="utf-8",
                                 usecols=lambda name: str(name).strip().lower() == "fold")
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError):
            return None
        if len(column.columns):
            folds = pd.to_numeric(column.iloc[:, 0].str.strip(), errors="coerce")
            if folds.isna().any() or (folds != folds.round()).any() or not len(folds):
                return None
            return sorted({int(f) for f in folds}), str(path)
    if layout in ("folders", "table") and path.exists():
        return list(range(1, int(n_folds) + 1)), f"{path} (folds made for it, n_folds={n_folds})"
    return None
