"""Datasets: labelled clips in ESC-50 layout, ESC-US and any folder of audio.

Labelled data
    A folder in ESC-50's release layout, ``meta/esc50.csv``
    (``filename,fold,target,category,esc10,src_file,take``) beside ``audio/``,
    is loaded by :func:`load_labelled` into a :class:`LabelledDataset`.  The
    classes are whatever the metadata lists: the original ``target`` ids are
    remapped to ``0..K-1`` in ascending order of the original id, and
    :attr:`LabelledDataset.classes` keeps the names.  ESC-10 is the same
    layout cut to the ``esc10`` rows (:func:`load_esc10`); :func:`esc10_split` tells
    those rows from the other 40 classes' (the pool :func:`esc_lib.data.download.download_esc10` makes).

WAV or Ogg
    The file named in the ``filename`` column is used when it exists.  When it
    does not, a file in ``audio/`` with the same stem and another audio
    extension is accepted (``.wav`` first, then ``.ogg``, ``.flac``, ...), so
    the current metadata (which names ``.wav`` files) works with the original
    Ogg release of the clips, and a metadata file that names ``.ogg`` works
    with the WAV release.  A row for which neither exists is *missing*; with
    ``verify=True`` (the default) every listed clip is checked before
    anything is returned, and the error lists the missing files.

Unlabeled pools
    :func:`unlabeled_pool` takes any folder of audio (recursively, any format
    :mod:`soundfile` decodes, any length, rate or channel count);
    :func:`escus_pool` takes the extracted ESC-US clips and, by default, drops
    every clip whose Freesound id is the source of an ESC-50 clip (the
    *leakage filter*).  Files are read as 5 s windows by
    :func:`esc_lib.data.audio.load_windows` (the last partial window is padded when
    it is at least ``min_last_seconds`` long, dropped otherwise); a file that
    cannot be decoded is skipped and listed in a :class:`~esc_lib.data.audio.SkipReport`,
    never fatal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from esc_lib import config
from esc_lib.data import audio

__all__ = [
    "DatasetError",
    "AUDIO_EXTENSIONS",
    "META_COLUMNS",
    "LabelledDataset",
    "load_labelled",
    "load_esc10",
    "esc10_split",
    "read_metadata",
    "metadata_folds",
    "check_folds",
    "resolve_clips",
    "file_identity",
    "find_audio_files",
    "freesound_id",
    "source_ids",
    "UnlabeledPool",
    "unlabeled_pool",
    "escus_pool",
]

#: File extensions (lower case) taken as audio.  These are the formats
#: libsndfile (behind :mod:`soundfile`) decodes, MP3 and Opus included.
AUDIO_EXTENSIONS = (
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3",
    ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64",
)

#: Columns every ESC-50-layout metadata file must have (``esc10``,
#: ``src_file`` and ``take`` are used when present).
META_COLUMNS = ("filename", "fold", "target", "category")

#: Preference when the listed file is absent and several files share its stem.
_EXTENSION_PREFERENCE = {ext: i for i, ext in enumerate((".wav", ".ogg", ".flac") + AUDIO_EXTENSIONS)}

# ESC-US names clips 'ID-FreesoundID-start-end.ogg'; ESC-50 names them
# 'fold-FreesoundID-take-target.wav'.  Both start with two numeric fields.
_FREESOUND_PATTERN = re.compile(r"^(\d+)-(\d+)(?:-|\.|$)")


class DatasetError(ValueError):
    """A dataset folder or file is missing or inconsistent.

    The message names the file or folder and says what to do about it.
    """


# ----------------------------------------------------------------------------
# Labelled datasets
# ----------------------------------------------------------------------------


@dataclass(eq=False)
class LabelledDataset:
    """Labelled clips in ESC-50 layout.

    Attributes
    ----------
    root : Path
        The dataset folder (holds ``meta/esc50.csv`` and ``audio/``).
    meta : pd.DataFrame [shape=(n_clips, n_columns)]
        The metadata's columns plus ``path`` (absolute path, str) and
        ``label`` (int in ``0..K-1``), one row per clip, index ``0..n_clips-1``.
    classes : list of str [length=K]
        ``classes[label]`` is the category name; ordered by the original
        ESC-50 ``target`` id.
    """

    root: Path
    meta: pd.DataFrame
    classes: list[str]

    def __len__(self) -> int:
        return len(self.meta)

    def __repr__(self) -> str:
        folds = sorted(int(f) for f in self.meta["fold"].unique()) if len(self) else []
        return (
            f"LabelledDataset(root={str(self.root)!r}, clips={len(self)}, "
            f"classes={self.n_classes}, folds={folds})"
        )

    @property
    def paths(self) -> list[Path]:
        """Absolute path of every clip, in row order."""
        return [Path(p) for p in self.meta["path"]]

    @property
    def labels(self) -> np.ndarray:
        """Labels in ``0..K-1`` [shape=(n_clips,), dtype=int64]."""
        return self.meta["label"].to_numpy(dtype=np.int64)

    @property
    def folds(self) -> np.ndarray:
        """Official cross-validation fold of every clip [shape=(n_clips,), dtype=int64]."""
        return self.meta["fold"].to_numpy(dtype=np.int64)

    @property
    def n_classes(self) -> int:
        """Number of classes K (of the mapping, even if a subset lacks some)."""
        return len(self.classes)

    def subset(self, rows) -> "LabelledDataset":
        """The clips selected by a boolean mask or by positional indices.

        The class mapping stays the same, so labels of a subset still index
        :attr:`classes` (use :func:`load_labelled` with ``subset=`` to get a
        mapping of fewer classes).

        Parameters
        ----------
        rows : array-like of bool [shape=(n_clips,)] or array-like of int
            A mask over all clips, or positions ``0..n_clips-1``.
        """
        selected = np.asarray(rows)
        if selected.dtype == bool:
            if selected.shape != (len(self),):
                raise ValueError(
                    f"rows: a boolean mask must have one entry per clip ({len(self)}), "
                    f"got shape {selected.shape}"
                )
            positions = np.flatnonzero(selected)
        elif selected.size == 0:
            positions = np.zeros(0, dtype=np.int64)
        elif np.issubdtype(selected.dtype, np.integer):
            positions = selected.reshape(-1).astype(np.int64)
            bad = positions[(positions < -len(self)) | (positions >= len(self))]
            if len(bad):
                raise ValueError(
                    f"rows: positions must lie in 0..{len(self) - 1}, got {bad[:5].tolist()}"
                )
        else:
            raise ValueError(f"rows must be a boolean mask or integer positions, got dtype {selected.dtype}")
        meta = self.meta.iloc[positions].reset_index(drop=True)
        return LabelledDataset(self.root, meta, list(self.classes))

    def select_folds(self, folds: int | Iterable[int]) -> "LabelledDataset":
        """The clips of the given official fold(s).

        Raises
        ------
        ValueError
            If a requested fold does not occur in the data.
        """
        wanted = [int(folds)] if isinstance(folds, (int, np.integer)) else [int(f) for f in folds]
        present = set(int(f) for f in self.meta["fold"].unique())
        unknown = sorted(set(wanted) - present)
        if unknown:
            raise ValueError(f"folds {unknown} do not occur in {self.root}; folds present: {sorted(present)}")
        return self.subset(self.meta["fold"].isin(wanted).to_numpy())

    def summary(self) -> pd.DataFrame:
        """Clips (files, for recordings cut into windows) per class and fold, with totals.

        Returns
        -------
        table : pd.DataFrame [shape=(K + 1, n_folds + 1)]
            One row per class (in label order) and a ``total`` row; one column
            per fold and a ``total`` column.
        """
        # One's own recordings: count files, not their 5 s windows.
        meta = self.meta.drop_duplicates("file") if "file" in self.meta.columns else self.meta
        category = pd.Categorical(
            [self.classes[label] for label in meta["label"].to_numpy(dtype=np.int64)], categories=self.classes
        )
        table = pd.crosstab(category, meta["fold"].to_numpy(), dropna=False)
        table = table.reindex(index=self.classes, fill_value=0)
        table.index.name = "category"
        table.columns = [int(c) for c in table.columns]
        table.columns.name = "fold"
        table["total"] = table.sum(axis=1)
        table.loc["total"] = table.sum(axis=0)
        return table.astype(np.int64)


def read_metadata(meta_path: str | Path) -> pd.DataFrame:
    """Read and check an ESC-50 metadata file.

    Returns
    -------
    meta : pd.DataFrame
        With integer ``fold`` and ``target`` columns.

    Raises
    ------
    DatasetError
        If the file is missing, unreadable, lacks a required column, has
        non-integer folds/targets, repeats a file name, or names a category
        with a control character (a newline, a tab, ...).
    """
    meta_path = Path(meta_path)
    if not meta_path.is_file():
        raise DatasetError(
            f"{meta_path}: metadata file not found; a folder in ESC-50 layout holds "
            f"meta/esc50.csv and audio/ (see esc_lib.data.download.download_esc50)"
        )
    try:
        meta = pd.read_csv(meta_path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DatasetError(f"{meta_path}: cannot be read as CSV ({error})") from error
    missing = [c for c in META_COLUMNS if c not in meta.columns]
    if missing:
        raise DatasetError(
            f"{meta_path}: column(s) {missing} missing; expected at least {list(META_COLUMNS)}, "
            f"found {list(meta.columns)}"
        )
    for column in ("fold", "target"):
        values = pd.to_numeric(meta[column], errors="coerce")
        if values.isna().any() or (values != values.round()).any():
            bad = meta.loc[values.isna() | (values != values.round()), column].head(3).tolist()
            raise DatasetError(f"{meta_path}: column {column!r} must hold integers, found {bad}")
        meta[column] = values.astype(np.int64)
    meta["filename"] = meta["filename"].astype(str)
    duplicated = meta["filename"][meta["filename"].duplicated()]
    if len(duplicated):
        raise DatasetError(f"{meta_path}: file name(s) listed twice: {duplicated.head(5).tolist()}")
    if "esc10" in meta.columns:
        meta["esc10"] = _as_bool(meta["esc10"], meta_path)
    named = meta["category"].astype(str)
    odd = named[named.map(lambda name: audio.printable(name) != name)]
    if len(odd):
        raise DatasetError(f"{meta_path}: category name(s) with a control character (newline, tab, ...): "
                           f"{[audio.printable(name) for name in odd.unique()[:3]]} in row(s) {[i + 1 for i in odd.index[:3]]}; "
                           "a class name is one line of printable text")
    return meta


def metadata_folds(meta_path: str | Path, subset: str | None = None) -> list[int] | None:
    """The folds an ESC-50 metadata file lists (its ``fold`` column only; no clip is looked at).

    ``subset="esc10"`` counts the ``esc10`` rows only.  ``None`` when the file is
    absent (a dataset downloaded later) or its folds are not integers (the loader
    says so with the file's name).
    """
    meta_path = Path(meta_path)
    if not meta_path.is_file():
        return None
    try:
        meta = pd.read_csv(meta_path, usecols=lambda column: column in ("fold", "esc10"))
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError):
        return None
    if "fold" not in meta.columns:
        return None
    if subset == "esc10" and "esc10" in meta.columns:
        meta = meta[meta["esc10"].astype(str).str.strip().str.lower().isin(["true", "1", "yes"])]
    folds = pd.to_numeric(meta["fold"], errors="coerce")
    if folds.isna().any() or (folds != folds.round()).any():
        return None
    return sorted({int(f) for f in folds})


def check_folds(requested: Iterable[int], available: Iterable[int], where: str | Path) -> None:
    """The test folds asked for (the ``folds`` parameter) must be among the dataset's.

    Raises
    ------
    DatasetError
        Naming the parameter, the missing folds, the dataset and its folds.
    """
    available = sorted({int(f) for f in available})
    missing = sorted({int(f) for f in requested} - set(available))
    if missing:
        raise DatasetError(f"parameter folds: fold(s) {missing} not among the dataset's folds {available} ({where}); "
                           f"choose test folds among them (e.g. -p folds '{available[:2]}')")


def _as_bool(column: pd.Series, meta_path: Path) -> pd.Series:
    if column.dtype == bool:
        return column
    text = column.astype(str).str.strip().str.lower()
    mapping = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    values = text.map(mapping)
    if values.isna().any():
        bad = column[values.isna()].head(3).tolist()
        raise DatasetError(f"{meta_path}: column 'esc10' must be True/False, found {bad}")
    return values.astype(bool)


def _audio_index(audio_dir: Path) -> tuple[set[str], dict[str, list[str]]]:
    """Names in ``audio_dir`` and, per stem, the audio files with that stem."""
    names: set[str] = set()
    by_stem: dict[str, list[str]] = {}
    with os.scandir(audio_dir) as entries:
        for entry in entries:
            if not entry.is_file():
                continue
            names.add(entry.name)
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() in AUDIO_EXTENSIONS:
                by_stem.setdefault(stem, []).append(entry.name)
    for stem in by_stem:
        by_stem[stem].sort(key=lambda n: (_EXTENSION_PREFERENCE.get(os.path.splitext(n)[1].lower(), 99), n))
    return names, by_stem


def _resolve_paths(audio_dir: Path, filenames: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Path of every listed clip (same stem, other extension accepted) and the missing names."""
    if not audio_dir.is_dir():
        return [audio_dir / name for name in filenames], list(filenames)
    names, by_stem = _audio_index(audio_dir)
    paths, missing = [], []
    for name in filenames:
        if name in names or ("/" in name and (audio_dir / name).is_file()):
            paths.append(audio_dir / name)
            continue
        alternatives = by_stem.get(os.path.splitext(name)[0], []) if "/" not in name else []
        if alternatives:
            paths.append(audio_dir / alternatives[0])
        else:
            paths.append(audio_dir / name)
            missing.append(name)
    return paths, missing


def _missing_message(where: Path, missing: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(missing[:limit])
    more = f" and {len(missing) - limit} more" if len(missing) > limit else ""
    return (
        f"{where}: {len(missing)} listed clip(s) not found (neither as listed nor with another "
        f"audio extension): {shown}{more}; restore them (e.g. download the dataset again) or "
        f"remove their rows from the metadata"
    )


def resolve_clips(audio_dir: Path, filenames: Sequence[str], *, verify: bool = True) -> list[Path]:
    """The path of every clip a metadata file lists, found in ``audio_dir``.

    A clip listed as ``1-100032-A-0.wav`` is also found as ``1-100032-A-0.ogg``
    (or another audio extension; ``.wav``, ``.ogg``, ``.flac`` preferred in
    that order), so a dataset converted to another format still loads.

    Parameters
    ----------
    audio_dir : Path
        The folder of the clips (``<root>/audio`` in the ESC-50 layout).
    filenames : sequence of str
        The ``filename`` column of the metadata; a name with a ``/`` is a
        path below ``audio_dir`` and must exist as listed.
    verify : bool
        Raise when a clip is missing.  False gives the listed path of a
        missing clip instead.

    Returns
    -------
    paths : list of Path [length=len(filenames)]
        In the order of ``filenames``.

    Raises
    ------
    DatasetError
        With ``verify``, if clips are missing (neither as listed nor with
        another audio extension): the message names ``audio_dir``, how many
        and the first few.
    """
    paths, missing = _resolve_paths(Path(audio_dir), filenames)
    if verify and missing:
        raise DatasetError(_missing_message(Path(audio_dir), missing))
    return paths


def load_labelled(
    root: str | Path | None = None,
    subset: str | Sequence[str] | None = None,
    verify: bool = True,
) -> LabelledDataset:
    """Load a labelled dataset in ESC-50 layout.

    Parameters
    ----------
    root : str or Path, optional
        Folder holding ``meta/esc50.csv`` and ``audio/``; default
        :func:`esc_lib.config.esc50_dir` (``ESC50_DIR``).
    subset : None, 'esc10' or sequence of str
        ``None`` keeps every row, ``'esc10'`` the rows flagged in the
        ``esc10`` column, a list of category names those categories.
    verify : bool
        Check that every listed clip exists (as listed, or with the same
        stem and another audio extension) before returning.

    Returns
    -------
    dataset : LabelledDataset
        Labels ``0..K-1`` with K the number of categories left after
        ``subset``, in ascending order of the original ``target`` id.

    Raises
    ------
    DatasetError
        If the folder or metadata is missing or inconsistent, ``subset``
        names unknown categories or selects nothing, or (``verify=True``)
        listed clips are missing (the message lists the first few and the
        count) or two rows name one file (a hard or symbolic link).
    """
    root = Path(root).expanduser().resolve() if root is not None else config.esc50_dir()
    if not root.is_dir():
        raise DatasetError(
            f"{root}: dataset folder not found; point ESC50_DIR / ESC10_DIR (or ESC_DATA_ROOT) "
            f"at a folder in ESC-50 layout, or download ESC-50 with esc_lib.data.download.download_esc50()"
        )
    meta_path = root / "meta" / "esc50.csv"
    meta = read_metadata(meta_path)

    if subset is None:
        pass
    elif isinstance(subset, str):
        if subset.lower() != "esc10":
            raise DatasetError(
                f"subset={subset!r} is not understood: use None, 'esc10' or a list of category names"
            )
        if "esc10" not in meta.columns:
            raise DatasetError(f"{meta_path}: subset='esc10' needs an 'esc10' column, found {list(meta.columns)}")
        meta = meta[meta["esc10"]]
    else:
        wanted = [str(name) for name in subset]
        available = sorted(set(meta["category"]))
        unknown = [name for name in wanted if name not in set(available)]
        if unknown:
            raise DatasetError(f"{meta_path}: unknown categories {unknown}; available: {available}")
        meta = meta[meta["category"].isin(wanted)]
    meta = meta.reset_index(drop=True)
    if len(meta) == 0:
        raise DatasetError(f"{meta_path}: subset={subset!r} selects no clip")

    pairs = meta[["target", "category"]].drop_duplicates()
    ambiguous = pairs[pairs["target"].duplicated(keep=False) | pairs["category"].duplicated(keep=False)]
    if len(ambiguous):
        raise DatasetError(
            f"{meta_path}: target ids and category names must match one to one; conflicting rows: "
            f"{ambiguous.head(6).to_dict('records')}"
        )
    pairs = pairs.sort_values("target")
    classes = [str(c) for c in pairs["category"]]
    label_of_target = {int(t): i for i, t in enumerate(pairs["target"])}

    paths = resolve_clips(root / "audio", list(meta["filename"]), verify=verify)
    if verify:
        _check_distinct(paths, meta_path)
    meta["path"] = [str(p) for p in paths]
    meta["label"] = meta["target"].map(label_of_target).astype(np.int64)
    return LabelledDataset(root=root, meta=meta, classes=classes)


def esc10_split(meta: pd.DataFrame, where: str | Path = "metadata") -> tuple[np.ndarray, np.ndarray]:
    """Which rows of ESC-50's metadata are ESC-10 and which belong to ESC-50's other classes.

    ESC-10 is the labelled set; the other 40 classes make an unlabeled pool in
    which no clip of an ESC-10 class may appear.  A class is its ``target`` id:
    it is ESC-10 when its rows carry ``esc10=True``, and every row of a class
    must say the same (and name one category), or the split is refused.

    Parameters
    ----------
    meta : pd.DataFrame [shape=(n_rows, n_columns)]
        ESC-50 metadata (:func:`read_metadata`), with the ``esc10`` column.
    where : str or Path
        Named in the error messages (the metadata file).

    Returns
    -------
    labelled : np.ndarray [shape=(n_rows,), dtype=bool]
        The ESC-10 rows.
    pool : np.ndarray [shape=(n_rows,), dtype=bool]
        The rows of every other class: ``~labelled``, no ESC-10 target or category among them.

    Raises
    ------
    DatasetError
        If the ``esc10`` column is missing, a class is flagged both ways or
        named two ways (or a name is used by two classes), or either side is empty.
    """
    missing = [c for c in ("target", "category", "esc10") if c not in meta.columns]
    if missing:
        raise DatasetError(f"{where}: column(s) {missing} missing; ESC-10 is taken from the 'esc10' column of ESC-50's metadata")
    flags = _as_bool(meta["esc10"], Path(str(where))).to_numpy(dtype=bool)
    targets = meta["target"].to_numpy()
    categories = meta["category"].astype(str).to_numpy()
    frame = pd.DataFrame({"target": targets, "category": categories, "esc10": flags})
    for column, other in (("target", "esc10"), ("target", "category"), ("category", "target")):
        ambiguous = frame.groupby(column)[other].nunique()
        ambiguous = ambiguous[ambiguous > 1]
        if len(ambiguous):
            value = ambiguous.index[0]
            shown = value.item() if isinstance(value, np.generic) else value
            raise DatasetError(f"{where}: {column} {shown!r} has more than one {other} "
                               f"({sorted(frame.loc[frame[column] == value, other].astype(str).unique())}); "
                               "every row of a class must agree, or ESC-10 cannot be told from the other classes")
    labelled = flags.copy()
    pool = ~labelled & ~np.isin(targets, targets[labelled]) & ~np.isin(categories, categories[labelled])
    if not labelled.any() or not pool.any():
        raise DatasetError(f"{where}: {int(labelled.sum())} ESC-10 row(s) and {int(pool.sum())} row(s) of other classes; "
                           "ESC-50's metadata has both")
    return labelled, pool


def load_esc10(root: str | Path | None = None, verify: bool = True) -> LabelledDataset:
    """Load ESC-10: the ``esc10`` rows of a folder in ESC-50 layout.

    ``root`` defaults to :func:`esc_lib.config.esc10_dir` (``ESC10_DIR``),
    which may hold the full ESC-50 or only the ESC-10 rows; either way the
    result has the 10 ESC-10 classes, labelled ``0..9`` in ascending order of
    their ESC-50 target id (dog, rooster, rain, sea_waves, crackling_fire,
    crying_baby, sneezing, clock_tick, helicopter, chainsaw).
    """
    return load_labelled(root if root is not None else config.esc10_dir(), subset="esc10", verify=verify)


def _check_distinct(paths: Sequence[Path], meta_path: Path) -> None:
    """Rows whose files are one file (a hard or symbolic link) would count one clip twice, maybe in two folds."""
    first: dict = {}
    repeated = []
    for path in paths:
        identity = file_identity(path)
        if identity in first:
            repeated.append(f"{first[identity].name} and {path.name}")
        else:
            first[identity] = path
    if repeated:
        raise DatasetError(f"{meta_path}: {len(repeated)} pair(s) of rows are one file (a hard or symbolic link), "
                           f"e.g. {repeated[0]}; one clip would count twice: keep one row per recording")


# ----------------------------------------------------------------------------
# Folders of audio and unlabeled pools
# ----------------------------------------------------------------------------


def file_identity(path: str | Path) -> tuple[int, int] | str:
    """What makes two names one file: its device and inode (links followed), so a hard link is the file it links.

    A path that cannot be looked at stands for itself (its absolute path), so it is
    never taken for another file.
    """
    try:
        status = os.stat(path)
    except OSError:
        return os.path.abspath(path)
    return (status.st_dev, status.st_ino)


def find_audio_files(folder: str | Path, extensions: Iterable[str] | None = None, *,
                     unreadable: list | None = None) -> list[Path]:
    """Every audio file under ``folder``, recursively, sorted by relative path.

    Hidden files and folders (name starting with ``.``, e.g. macOS ``._x.wav``
    resource forks or partial downloads) are ignored.  Symbolic links are
    followed, but a real folder is walked once and a file listed once (by
    :func:`file_identity`, so a hard link too is the file it links, listed under
    the first of its names), so a link loop (``sub/loop -> ..``) cannot count
    files twice.

    Parameters
    ----------
    folder : str or Path
    extensions : iterable of str, optional
        Suffixes to accept, case-insensitive, with or without the dot;
        default :data:`AUDIO_EXTENSIONS`.
    unreadable : list, optional
        Receives ``(folder, reason)`` for every folder that could not be listed
        (no permission, vanished while walked): left out, but counted by the
        caller instead of silently missing.

    Returns
    -------
    files : list of Path

    Raises
    ------
    DatasetError
        If ``folder`` is not a directory.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder of audio not found; check the path (or ESC_UNLABELED_DIR / ESCUS_DIR)")
    if extensions is None:
        accepted = set(AUDIO_EXTENSIONS)
    else:
        accepted = {("." + e.lower().lstrip(".")) for e in extensions}
        if not accepted:
            raise ValueError("extensions must name at least one suffix, e.g. ['.wav', '.ogg']")
    found, seen_files = [], set()
    # Links are followed, but each real folder is walked once and each real file listed
    # once: a link back up the tree (sub/loop -> ..) would otherwise list every file again
    # at every level of the loop.
    seen_folders = {file_identity(folder)}
    def not_listed(error: OSError) -> None:
        if unreadable is not None:
            unreadable.append((str(error.filename), f"folder not readable ({error.strerror or error}); its files are left out"))

    for directory, subdirectories, files in os.walk(folder, followlinks=True, onerror=not_listed):
        kept = []
        for name in sorted(subdirectories):
            identity = file_identity(os.path.join(directory, name))
            if not name.startswith(".") and identity not in seen_folders:
                seen_folders.add(identity)
                kept.append(name)
        subdirectories[:] = kept
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in accepted:
                identity = file_identity(os.path.join(directory, name))
                if identity not in seen_files:
                    seen_files.add(identity)
                    found.append(Path(directory) / name)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def freesound_id(filename: str | Path) -> int | None:
    """The Freesound id in an ESC-US or ESC-50 clip name, or ``None``.

    ESC-US names clips ``ID-FreesoundID-start-end.ogg`` and ESC-50
    ``fold-FreesoundID-take-target.wav``; both give the second field.

    >>> freesound_id("000123-45678-10-15.ogg"), freesound_id("1-100032-A-0.wav"), freesound_id("unl-0001.ogg")
    (45678, 100032, None)
    """
    match = _FREESOUND_PATTERN.match(Path(filename).name)
    return int(match.group(2)) if match else None


def source_ids(meta: "pd.DataFrame | LabelledDataset | str | Path") -> set[int]:
    """Freesound ids of the source recordings of labelled clips.

    Taken from the ``src_file`` column where it is numeric, else from the
    clip name (:func:`freesound_id`).

    Parameters
    ----------
    meta : DataFrame, LabelledDataset, or path of a CSV / an ESC-50-layout folder
    """
    if isinstance(meta, LabelledDataset):
        frame = meta.meta
    elif isinstance(meta, (str, Path)):
        path = Path(meta)
        frame = read_metadata(path / "meta" / "esc50.csv" if path.is_dir() else path)
    elif isinstance(meta, pd.DataFrame):
        frame = meta
    else:
        raise TypeError(f"meta must be a DataFrame, a LabelledDataset or a path, got {type(meta).__name__}")
    ids: set[int] = set()
    if "src_file" in frame.columns:
        numeric = pd.to_numeric(frame["src_file"], errors="coerce")
        ids |= {int(v) for v in numeric.dropna()}
        unresolved = frame.loc[numeric.isna(), "filename"] if "filename" in frame.columns else []
    elif "filename" in frame.columns:
        unresolved = frame["filename"]
    else:
        raise DatasetError("metadata has neither a 'src_file' nor a 'filename' column to take source ids from")
    ids |= {i for i in (freesound_id(name) for name in unresolved) if i is not None}
    return ids


@dataclass(eq=False)
class UnlabeledPool:
    """A set of audio files used without labels.

    Attributes
    ----------
    root : Path
        The folder searched.
    files : list of Path
        Files of the pool, sorted by relative path.
    n_excluded_leakage : int
        Files dropped because their Freesound id is the source of a labelled clip.
    n_found : int
        Audio files found before exclusion and sampling.
    unreadable : list of (str, str)
        Folders that could not be listed, with the reason (their files are missing from the pool).
    """

    root: Path
    files: list[Path]
    n_excluded_leakage: int = 0
    n_found: int = 0
    description: str = field(default="")
    unreadable: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)

    def summary(self) -> str:
        """One line: how many files, from where, how many were excluded or sampled away."""
        parts = [f"{len(self.files)} audio file(s) under {self.root}"]
        if self.n_excluded_leakage:
            parts.append(
                f"{self.n_excluded_leakage} excluded by the leakage filter (source of a labelled clip)"
            )
        left_out = self.n_found - self.n_excluded_leakage - len(self.files)
        if left_out > 0:
            parts.append(f"{left_out} left out by sampling")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} folder(s) could not be read (e.g. {self.unreadable[0][0]})")
        if self.description:
            parts.append(self.description)
        return "; ".join(parts)

    def load_all(
        self,
        sr: int = audio.SAMPLE_RATE,
        duration: float = audio.CLIP_SECONDS,
        last: str = "pad",
        min_last_seconds: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray, audio.SkipReport]:
        """Read every file as peak-normalised windows, sequentially and uncached.

        Each file is read by :func:`esc_lib.data.audio.load_windows`: mixed to
        mono, resampled to ``sr``, cut into windows of ``duration``; the last
        partial window is zero-padded when ``last='pad'`` and it lasts at
        least ``min_last_seconds``, dropped otherwise.  A file that cannot be
        decoded, or gives no window, is skipped and listed in the report.
        (The cached, parallel version is ``esc_lib.features.extract_pool``.)

        Returns
        -------
        windows : np.ndarray [shape=(n_windows, round(sr * duration)), dtype=float32]
        origin : np.ndarray [shape=(n_windows,), dtype=int64]
            Index into :attr:`files` of the file each window comes from.
        report : esc_lib.data.audio.SkipReport
            ``n_used`` files that gave windows, and the skipped ones with reasons.
        """
        if last not in ("pad", "drop"):
            raise ValueError(f"last must be 'pad' or 'drop', got {last!r}")
        n_samples = int(round(sr * duration))
        report = audio.SkipReport()
        chunks, origins = [], []
        for index, path in enumerate(self.files):
            try:
                windows = audio.load_windows(path, sr, duration, last, min_last_seconds)
            except audio.AudioError as error:
                # audio.read_audio turns every decode failure into AudioError, so this
                # is the one place a pool's odd file becomes a counted skip.
                report.skip(path, str(error))
                continue
            report.n_used += 1
            chunks.append(windows)
            origins.append(np.full(len(windows), index, dtype=np.int64))
        if not chunks:
            return np.zeros((0, n_samples), dtype=np.float32), np.zeros(0, dtype=np.int64), report
        return np.concatenate(chunks), np.concatenate(origins), report


def _sample(files: list[Path], max_files: int | None, seed: int) -> list[Path]:
    if max_files is None or max_files >= len(files):
        return files
    if int(max_files) < 1:
        raise ValueError(f"max_files must be a positive number of files or None, got {max_files!r}")
    chosen = np.random.default_rng(seed).choice(len(files), size=int(max_files), replace=False)
    return [files[i] for i in sorted(chosen)]


def unlabeled_pool(
    folder: str | Path | None = None,
    exclude_freesound_ids: Iterable[int] | None = None,
    max_files: int | None = None,
    seed: int = 0,
) -> UnlabeledPool:
    """Any folder of audio as an unlabeled pool.

    Parameters
    ----------
    folder : str or Path, optional
        Searched recursively (:func:`find_audio_files`); default
        :func:`esc_lib.config.unlabeled_dir` (``ESC_UNLABELED_DIR``).
    exclude_freesound_ids : iterable of int, optional
        Drop files whose name carries one of these Freesound ids
        (:func:`freesound_id`); the count is kept in ``n_excluded_leakage``.
    max_files : int > 0, optional
        Keep a random sample of this many files (after exclusion).
    seed : int
        Seed of that sample; the kept files stay in sorted order.

    Raises
    ------
    DatasetError
        If the folder is missing or holds no audio file.
    """
    root = Path(folder).expanduser().resolve() if folder is not None else config.unlabeled_dir()
    unreadable: list = []
    files = find_audio_files(root, unreadable=unreadable)
    if not files:
        why = f"; {len(unreadable)} folder(s) could not be read, e.g. {unreadable[0][0]}: {unreadable[0][1]}" if unreadable else ""
        raise DatasetError(
            f"{root}: no audio file found (looked recursively for {', '.join(AUDIO_EXTENSIONS)}){why}"
        )
    n_found = len(files)
    excluded = 0
    if exclude_freesound_ids is not None:
        banned = {int(i) for i in exclude_freesound_ids}
        kept = [p for p in files if freesound_id(p) not in banned]
        excluded = len(files) - len(kept)
        files = kept
    files = _sample(files, max_files, seed)
    return UnlabeledPool(root=root, files=files, n_excluded_leakage=excluded, n_found=n_found, unreadable=unreadable)


def _default_leakage_meta() -> Path:
    for folder in (config.esc50_dir(), config.esc10_dir()):
        if (folder / "meta" / "esc50.csv").is_file():
            return folder / "meta" / "esc50.csv"
    raise DatasetError(
        f"the leakage filter needs ESC-50's metadata, but neither {config.esc50_dir()} nor "
        f"{config.esc10_dir()} holds meta/esc50.csv; pass esc50_meta=<folder, CSV or DataFrame> "
        f"or leakage_filter=False"
    )


def escus_pool(
    root: str | Path | None = None,
    esc50_meta: "pd.DataFrame | LabelledDataset | str | Path | None" = None,
    leakage_filter: bool = True,
    max_clips: int | None = None,
    seed: int = 0,
) -> UnlabeledPool:
    """The extracted ESC-US clips as an unlabeled pool, without ESC-50's sources.

    Parameters
    ----------
    root : str or Path, optional
        Folder the ESC-US parts were extracted into (searched recursively);
        default :func:`esc_lib.config.escus_dir` (``ESCUS_DIR``).
    esc50_meta : DataFrame, LabelledDataset or path, optional
        Labelled metadata whose ``src_file`` ids are excluded.  Default: the
        metadata of :func:`esc_lib.config.esc50_dir`, or of
        :func:`esc_lib.config.esc10_dir` when ESC-50 is absent.
    leakage_filter : bool
        Drop every clip whose Freesound id is the source of a labelled clip,
        so pre-training never hears the recording a test clip was cut from.
        The count is in ``n_excluded_leakage`` and :meth:`UnlabeledPool.summary`.
    max_clips : int > 0, optional
        Keep a random sample of this many clips (the paper used 50 000).
    seed : int
        Seed of that sample.
    """
    root = Path(root).expanduser().resolve() if root is not None else config.escus_dir()
    banned = None
    description = "leakage filter off"
    if leakage_filter:
        source = esc50_meta if esc50_meta is not None else _default_leakage_meta()
        banned = source_ids(source)
        description = f"leakage filter against {len(banned)} source recording(s)"
    pool = unlabeled_pool(root, exclude_freesound_ids=banned, max_files=max_clips, seed=seed)
    pool.description = description
    return pool
