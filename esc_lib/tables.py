"""Result tables and their files: the paper's Tables 1 and 2, metrics in, CSV + Markdown out.

The statistics come from :mod:`esc_lib.stats`; this module reads what the runs
wrote (:func:`load_metrics`, :func:`load_fold_accuracies`), the published
figures the paper's Table 2 quotes (:func:`literature`, from the data file
``literature.csv`` shipped inside the package), builds the tables, and writes
any table as CSV and Markdown, each atomically (:func:`write_table`).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from esc_lib import atomic
from esc_lib.stats import (
    BASELINE,
    MISSING_TEXT,
    TREATMENT,
    as_budget,
    budget_label,
    budget_order,
    compare_methods,
    format_difference,
    format_mean_ci,
    is_blank,
    require_columns,
    require_frame,
    summarise,
)

__all__ = [
    "PAPER_TABLE1",
    "LITERATURE_FILE",
    "FOLD_ACCURACIES_FILE",
    "literature",
    "load_metrics",
    "load_fold_accuracies",
    "table1",
    "table2",
    "write_table",
    "merge_rows",
    "key_text",
]

_BUDGET_COLUMN = "labels_per_class"

#: The published accuracies quoted in Table 2, a CSV file inside the package
#: (columns ``dataset``, ``network``, ``accuracy`` as a fraction, ``source``).
LITERATURE_FILE = "literature.csv"
_LITERATURE_COLUMNS = ("dataset", "network", "accuracy", "source")

#: The table of every fold, method and budget of a run that notebook 04 writes
#: (:func:`esc_lib.report.fold_accuracies`), read back by :func:`load_fold_accuracies`.
FOLD_ACCURACIES_FILE = "fold_accuracies.csv"

#: The paper's Table 1 (ESC-50, one train/test split, accuracy as a fraction).
#: Architecture (f)5c-2p-(f)3c-2p-(f)3c-2p; ``pretrained`` is NaN where the
#: paper has no entry ("-").
PAPER_TABLE1 = pd.DataFrame(
    {
        "batch_size": [16, 32, 64],
        "filters": [64, 64, 64],
        "supervised": [0.414, 0.492, 0.474],
        "pretrained": [0.502, 0.507, np.nan],
    }
)
PAPER_TABLE1.attrs["caption"] = (
    "Jensen & Pethick, Table 1: ESC-50, a single train/test split; "
    "accuracy for (f)5c-2p-(f)3c-2p-(f)3c-2p with batch size b and f filters."
)

_DATASETS = {"esc50": "ESC-50", "esc10": "ESC-10"}


@functools.lru_cache(maxsize=1)
def _read_literature() -> pd.DataFrame:
    source = resources.files("esc_lib").joinpath(LITERATURE_FILE)
    try:
        with source.open("r", encoding="utf-8") as handle:
            frame = pd.read_csv(handle, dtype={"dataset": str, "network": str, "accuracy": float, "source": str})
    except ValueError as error:  # a cell of accuracy that is not a number
        raise ValueError(f"esc_lib/{LITERATURE_FILE}: {error}") from None
    if list(frame.columns) != list(_LITERATURE_COLUMNS):
        raise ValueError(f"esc_lib/{LITERATURE_FILE}: columns must be {', '.join(_LITERATURE_COLUMNS)}, "
                         f"found {', '.join(map(str, frame.columns))}")
    blank = frame[list(_LITERATURE_COLUMNS)].isna().any(axis=1)
    if blank.any():
        raise ValueError(f"esc_lib/{LITERATURE_FILE}: row {int(np.flatnonzero(blank)[0]) + 2} has an empty cell")
    unknown = sorted(set(frame["dataset"]) - set(_DATASETS))
    if unknown:
        raise ValueError(f"esc_lib/{LITERATURE_FILE}: dataset must be one of {sorted(_DATASETS)}, found {unknown}")
    outside = ~frame["accuracy"].between(0, 1)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise ValueError(f"esc_lib/{LITERATURE_FILE}: accuracy must be a fraction in [0, 1], found "
                         f"{float(frame['accuracy'].iloc[row])!r} (row {row + 2})")
    return frame


def literature() -> pd.DataFrame:
    """Published accuracies with their sources, one row per (dataset, network, source): Table 2's cited rows.

    Read from ``esc_lib/literature.csv`` (:data:`LITERATURE_FILE`), which is
    installed with the package.  Where the paper's Table 2 quotes a figure
    differently from the original publication both are kept, each labelled
    by where it was read.

    Returns
    -------
    published : pd.DataFrame
        Columns ``dataset`` (``"esc50"`` or ``"esc10"``), ``network``,
        ``accuracy`` (a fraction in [0, 1]) and ``source``, in the file's
        order.  A fresh copy on every call.

    Raises
    ------
    ValueError
        If the file's columns are not those four, or it has an empty cell, a
        dataset other than ``esc50``/``esc10``, or an accuracy that is not a
        fraction in [0, 1] (the message names the row).
    """
    return _read_literature().copy()


def load_metrics(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Read one or several per-fold metrics CSV files into one table.

    Parameters
    ----------
    paths : path or iterable of paths
        CSV files written by the experiments (one row per configuration,
        method and fold).  A folder is searched recursively for
        ``metrics*.csv``.

    Returns
    -------
    metrics : pd.DataFrame
        The rows of all files; ``labels_per_class`` (if a file has it) holds
        ints, 0 meaning every labelled clip.  Files without the column leave
        it missing (NaN) in their rows.

    Raises
    ------
    FileNotFoundError
        If a path does not exist or a folder holds no ``metrics*.csv``.
    ValueError
        If a file lacks the ``method``, ``fold`` or ``accuracy`` column, or
        its ``labels_per_class`` holds something other than non-negative
        integers (e.g. ``"all"``, written by older versions for what is now 0).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.rglob("metrics*.csv"))
            if not found:
                raise FileNotFoundError(f"{path}: folder holds no metrics*.csv file")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such metrics file")
    if not files:
        raise ValueError("paths is empty: give at least one metrics CSV file")
    frames = []
    for file in files:
        frame = pd.read_csv(file)
        require_columns(frame, ("method", "fold", "accuracy"), name=str(file))
        if _BUDGET_COLUMN in frame.columns:
            try:
                frame[_BUDGET_COLUMN] = [as_budget(v) for v in frame[_BUDGET_COLUMN]]
            except ValueError as error:
                raise ValueError(f"{file}: {error}") from None
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def load_fold_accuracies(runs: Sequence[str | os.PathLike],
                         columns: Iterable[str] = ("method", "labels_per_class", "fold", "accuracy"),
                         budgets: Iterable[int] | None = None) -> pd.DataFrame:
    """Read the fold accuracies of one or several runs into one table, each row tagged with its run.

    Parameters
    ----------
    runs : sequence of path
        Published results folders that notebook 04 wrote
        :data:`FOLD_ACCURACIES_FILE` into (runs published since it exists),
        or such CSV files themselves.
    columns : iterable of str
        Columns every file must have (e.g.
        :data:`esc_lib.stats.SEED_COMPARISON_COLUMNS` to pool seeds).
    budgets : iterable of int >= 0, optional
        Keep only these labels per class (0: every label); default every budget.

    Returns
    -------
    folds : pd.DataFrame
        The rows of every file, with a ``source`` column: the run as given.

    Raises
    ------
    ValueError
        If ``runs`` is empty, a file is not a readable CSV, lacks one of
        ``columns``, or no row has one of ``budgets``.
    FileNotFoundError
        If a run folder holds no :data:`FOLD_ACCURACIES_FILE` (the message
        names the path).
    """
    runs = list(runs)
    if not runs:
        raise ValueError("runs is empty: give at least one results folder")
    columns = tuple(columns)
    frames = []
    for run in map(Path, runs):
        path = run / FOLD_ACCURACIES_FILE if run.is_dir() else run
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: give results folders that notebook 04 wrote "
                                    f"{FOLD_ACCURACIES_FILE} into (runs published since it exists), "
                                    "or the CSV files themselves")
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not a readable CSV ({error})") from None
        lacking = [column for column in columns if column not in frame]
        if lacking:
            raise ValueError(f"{path} has no column(s) {', '.join(lacking)}: it is not a "
                             f"{FOLD_ACCURACIES_FILE} of a run published with them")
        frames.append(frame.assign(source=str(run)))
    folds = pd.concat(frames, ignore_index=True)
    if budgets is not None:
        budgets = [as_budget(budget) for budget in budgets]
        folds = folds[folds[_BUDGET_COLUMN].isin(budgets)]
        if folds.empty:
            raise ValueError(f"no rows at labels_per_class {budgets} (0: all labels)")
    return folds



def _single_valued(metrics: pd.DataFrame, column: str, what: str) -> None:
    """One budget per table.  The pool size only matters for pre-trained rows (from scratch uses none)."""
    if column in metrics.columns:
        rows = metrics[metrics["method"] != BASELINE] if column == "pool_size" else metrics
        values = sorted({as_budget(v, column) for v in rows[column].dropna()}, key=lambda v: budget_order(v, column))
        if len(values) > 1:
            raise ValueError(
                f"metrics holds several {column} values ({[budget_label(v, column) for v in values]}); "
                f"filter to one before building {what}"
            )


def _filter(metrics: pd.DataFrame, column: str, wanted) -> pd.DataFrame:
    if wanted is None:
        return metrics
    require_columns(metrics, (column,))
    # The baseline's decoder may be empty (it has none); it stays.
    keep = (metrics[column] == wanted) | ((metrics["method"] == BASELINE) & metrics[column].map(is_blank).astype(bool))
    if not (metrics[column] == wanted).any():
        raise ValueError(
            f"{column}={wanted!r} not found; available: {sorted(map(str, metrics[column].dropna().unique()))}"
        )
    return metrics[keep]


def _require_text(value, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be text, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must be non-empty text")
    return value.strip()


def _single_encoder(metrics: pd.DataFrame) -> str | None:
    """The encoder notation when every row names the same one, else None (paper grid, or a mix)."""
    if "encoder" not in metrics.columns or metrics["encoder"].map(is_blank).astype(bool).any():
        return None
    encoders = set(metrics["encoder"].astype(str).str.strip())
    return encoders.pop() if len(encoders) == 1 else None


def table1(metrics: pd.DataFrame, dataset_label: str, *, architecture: str, decoder: str | None = None,
           batch_norm=None, with_paper: bool = False, confidence: float = 0.95) -> pd.DataFrame:
    """The paper's Table 1 from cross-validated runs: batch size × filters, supervised vs pre-trained.

    Parameters
    ----------
    metrics : pd.DataFrame
        Tidy per-fold metrics with ``batch_size``, ``filters``, ``method``,
        ``fold``, ``accuracy`` (and ``decoder``/``batch_norm`` if varied, and
        optionally ``encoder``, the encoder notation of each run).
    dataset_label : str
        Shown in the caption (``df.attrs["caption"]``, written by
        :func:`write_table` above the Markdown table), e.g. ``"ESC-10"``.
    architecture : str
        The encoder that was run, as the caption should name it, e.g.
        ``"(f)5c-2p-(f)3c-2p-(f)3c-2p with f filters"`` for the paper's grid
        or ``"(32)3c-2p-(64)3c-2p-(128)3c-2p-(256)3c-2p"`` for a custom
        encoder.  Required: the caption states what was run, not a constant.
    decoder, batch_norm : optional
        Keep only this decoder / batch-norm variant.  Left ``None``, a column
        with several values becomes part of the row key.
    with_paper : bool
        Add the paper's single-split ESC-50 figures (:data:`PAPER_TABLE1`)
        as two extra columns for the matching (b, f).  Only meaningful for
        the paper's architecture, so it needs the ``f`` column.
    confidence : float in (0, 1)

    Returns
    -------
    table : pd.DataFrame
        Columns ``b``, ``f`` (and ``decoder``, ``batch_norm`` when they vary;
        ``config`` when configurations share these keys but differ otherwise,
        e.g. in encoder or refit), ``Supervised`` and ``Pre-training with CAE``
        as ``"mean ± half-width"`` in % (fold-wise mean and t interval),
        ``Difference (pp)`` as ``"+d [low, high]"``, ``p (paired t)``,
        ``p (Wilcoxon)`` and ``folds``.  When an ``encoder`` column names the
        same non-empty encoder on every row, the encoder fixes the filters and
        there is no ``f`` column.

    Raises
    ------
    ValueError
        If a column is missing, ``architecture`` is empty, a filter value is
        absent, ``labels_per_class`` or ``pool_size`` has several values (or a
        non-integer one), the folds of a pair differ, or ``with_paper`` is
        asked for a table without ``f`` (a custom encoder).
    TypeError
        If ``architecture`` is not text.
    """
    architecture = _require_text(architecture, "architecture")
    metrics = require_frame(metrics)
    require_columns(metrics, ("batch_size", "filters", "method", "fold", "accuracy"))
    for column in ("labels_per_class", "pool_size"):
        _single_valued(metrics, column, "Table 1")
    metrics = _filter(metrics, "decoder", decoder)
    metrics = _filter(metrics, "batch_norm", batch_norm)
    encoder = _single_encoder(metrics)
    if encoder is not None and with_paper:
        raise ValueError(
            f"with_paper compares with the paper's (f)5c-2p-(f)3c-2p-(f)3c-2p grid, but every row uses "
            f"encoder {encoder!r}; leave with_paper False"
        )
    # A custom encoder fixes its own filters: the f column would pretend to matter.
    keys = ["batch_size"] if encoder is not None else ["batch_size", "filters"]
    for column in ("decoder", "batch_norm"):
        if column not in metrics.columns:
            continue
        present = metrics.loc[~metrics[column].map(is_blank).astype(bool), column]
        if present.nunique() > 1:
            keys.append(column)
    if "config" in metrics.columns and metrics.duplicated([*keys, "method", "fold"]).any():
        # Configurations that differ in something else (an encoder, augmentation, a
        # refit) get a row each, named by their config.
        keys.append("config")
    comparison = compare_methods(metrics, by=keys, confidence=confidence)
    table = comparison[keys].rename(columns={"batch_size": "b", "filters": "f"})
    table["Supervised"] = comparison[BASELINE]
    table["Pre-training with CAE"] = comparison[TREATMENT]
    table["Difference (pp)"] = [
        format_difference(*values)
        for values in comparison[["difference", "difference_ci_low", "difference_ci_high"]].to_numpy()
    ]
    table["p (paired t)"] = comparison["t_pvalue"]
    table["p (Wilcoxon)"] = comparison["wilcoxon_pvalue"]
    table["folds"] = comparison["n_folds"]
    if with_paper:
        paper = PAPER_TABLE1.set_index(["batch_size", "filters"])
        for source, column in (("supervised", "Paper supervised (ESC-50, 1 split)"),
                               ("pretrained", "Paper pre-trained (ESC-50, 1 split)")):
            table[column] = [
                f"{paper.loc[(b, f), source] * 100:.1f}"
                if (b, f) in paper.index and np.isfinite(paper.loc[(b, f), source]) else MISSING_TEXT
                for b, f in zip(table["b"], table["f"])
            ]
    n_folds = sorted(set(comparison["n_folds"]))
    columns = "b is the batch size" + (", f the number of filters" if "f" in table.columns else "")
    table.attrs["caption"] = (
        f"Table 1 ({dataset_label}): accuracy (%) of {architecture}; {columns}. Mean ± half-width of the "
        f"{confidence:.0%} t interval over {'/'.join(map(str, n_folds))} cross-validation folds; difference = "
        "pre-trained − supervised in percentage points; p-values from the paired t-test and Wilcoxon "
        "signed-rank test over folds."
    )
    return table


def _dataset_key(dataset: str) -> str:
    key = str(dataset).lower().replace("-", "").replace("_", "").strip()
    if key not in _DATASETS:
        raise ValueError(f"dataset must be one of {sorted(_DATASETS)} (or 'ESC-50'/'ESC-10'), got {dataset!r}")
    return key


def table2(metrics: pd.DataFrame, dataset: str, *, dataset_label: str | None = None,
           configs: Mapping[str, str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """The paper's Table 2: published accuracies (:func:`literature`) next to this project's best cross-validated runs.

    Parameters
    ----------
    metrics : pd.DataFrame
        Tidy per-fold metrics with ``config``, ``method``, ``fold``, ``accuracy``.
    dataset : {"esc50", "esc10"}
        Which published rows to show (``"ESC-50"``/``"ESC-10"`` accepted).
    dataset_label : str, optional
        Names the data in the caption (``df.attrs["caption"]``), e.g.
        ``"ESC-10, 5 folds"``; default ``"ESC-50"``/``"ESC-10"`` from ``dataset``.
    configs : mapping method -> config, optional
        The configuration to report per method.  By default the one with the
        highest mean accuracy among those run on the most folds -- chosen on
        the test folds, hence optimistic, which the ``Source`` column says.
    confidence : float in (0, 1)

    Returns
    -------
    table : pd.DataFrame
        Columns ``Network``, ``Accuracy`` (text: ``"44.3%"`` or ``"72.3 ± 4.1%"``),
        ``Evaluation`` (``"published"`` or ``"this project (k-fold CV)"``),
        ``Source``, and numeric ``accuracy``, ``ci_low``, ``ci_high``,
        ``n_folds`` (NaN for published rows).  Published rows come first.

    Raises
    ------
    ValueError
        For an unknown dataset, an empty ``dataset_label``, a missing column,
        an unknown configuration, or when ``labels_per_class``/``pool_size``
        has several values (or a non-integer one).
    """
    key = _dataset_key(dataset)
    dataset_label = _DATASETS[key] if dataset_label is None else _require_text(dataset_label, "dataset_label")
    metrics = require_frame(metrics)
    require_columns(metrics, ("config", "method", "fold", "accuracy"))
    for column in ("labels_per_class", "pool_size"):
        _single_valued(metrics, column, "Table 2")
    published = literature()
    rows = [
        {"Network": r.network, "Accuracy": f"{r.accuracy * 100:.1f}%", "Evaluation": "published",
         "Source": r.source, "accuracy": r.accuracy, "ci_low": math.nan, "ci_high": math.nan,
         "n_folds": math.nan}
        for r in published[published["dataset"] == key].itertuples()
    ]
    summary = summarise(metrics, by=("config", "method"), confidence=confidence)
    names = {BASELINE: "CNN trained from scratch (supervised)", TREATMENT: "CAE pre-trained CNN"}
    configs = dict(configs or {})
    unknown = set(configs) - set(names)
    if unknown:
        raise ValueError(f"configs keys must be {sorted(names)}, got {sorted(unknown)}")
    for method, name in names.items():
        candidates = summary[summary["method"] == method]
        if candidates.empty:
            continue
        if method in configs:
            chosen = candidates[candidates["config"] == configs[method]]
            if chosen.empty:
                raise ValueError(
                    f"config {configs[method]!r} has no {method} runs; available: "
                    f"{sorted(map(str, candidates['config']))}"
                )
            best = chosen.iloc[0]
            selection = "configuration chosen in advance"
        else:
            complete = candidates[candidates["n_folds"] == candidates["n_folds"].max()]
            best = complete.loc[complete["mean"].idxmax()]
            selection = (
                f"best of {len(complete)} configuration(s) by mean test-fold accuracy (optimistic selection)"
                if len(complete) > 1 else "the only configuration run"
            )
        rows.append({
            "Network": f"{name}, {best['config']}",
            "Accuracy": format_mean_ci(best["mean"], best["ci_low"], best["ci_high"]) + "%",
            "Evaluation": f"this project ({best['n_folds']}-fold CV)",
            "Source": f"{selection}; ± is the half-width of the {confidence:.0%} t interval over folds",
            "accuracy": best["mean"], "ci_low": best["ci_low"], "ci_high": best["ci_high"],
            "n_folds": best["n_folds"],
        })
    table = pd.DataFrame(rows)
    table.attrs["caption"] = (
        f"Table 2 ({dataset_label}): published accuracies, cited as published, and this project's "
        "cross-validated results. Published figures come from different protocols (see Source)."
    )
    return table


def key_text(value) -> str:
    """A key cell as text that survives a CSV round trip.

    Parameters
    ----------
    value : object
        One cell of a column that names rows (a batch size, a configuration, ...).

    Returns
    -------
    text : str
        ``"16"`` for ``16``, ``16.0`` and ``"16"`` alike; ``"True"``/``"False"``
        for booleans; ``""`` for a blank cell (:func:`esc_lib.stats.is_blank`).
    """
    if is_blank(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def merge_rows(new: pd.DataFrame, old: pd.DataFrame, keys: Sequence[str], keep=None) -> pd.DataFrame:
    """``new``'s rows, plus the rows of ``old`` that ``keep`` selects and no row of ``new`` replaces.

    How a published table is regenerated without losing what the run did not
    make again (e.g. Table 1's other grid points when only the profile's own
    point was trained).

    Parameters
    ----------
    new : pd.DataFrame
        The table just made.
    old : pd.DataFrame
        The table published before (e.g. read back from its CSV).
    keys : sequence of str
        Columns that name a row (a configuration, a method, a fold ...).
        Those present in both tables are compared, as text (so ``16`` read
        back from a CSV equals ``16``); a row of ``old`` with the key of a row
        of ``new`` is replaced by it.
    keep : array-like of bool [shape=(len(old),)], optional
        Which rows of ``old`` may survive (default: all).

    Returns
    -------
    merged : pd.DataFrame
        In ``old``'s order, each replaced row where the old one stood and
        ``new``'s other rows after; the columns of ``new``, then those only
        ``old`` has.  ``new``'s caption (``attrs``) is kept, and
        ``attrs["kept_rows"]`` counts the rows kept from ``old``.

    Raises
    ------
    ValueError
        If no key column is in both tables, or ``keep`` has not one value per
        row of ``old``.
    """
    new, old = require_frame(new), require_frame(old)
    common = [key for key in keys if key in new.columns and key in old.columns]
    if not common:
        raise ValueError(f"no key column {list(keys)} is in both tables (new: {list(new.columns)}, "
                         f"old: {list(old.columns)})")
    keep = np.ones(len(old), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    if keep.shape != (len(old),):
        raise ValueError(f"keep must hold one value per row of old ({len(old)}), got shape {keep.shape}")

    def key_of(frame: pd.DataFrame) -> list[tuple]:
        return [tuple(key_text(v) for v in row) for row in frame[common].itertuples(index=False)]

    new_keys, old_keys = key_of(new), key_of(old)
    position = {key: i for i, key in enumerate(new_keys)}
    pieces, placed, kept = [], set(), 0
    for i, key in enumerate(old_keys):
        if key in position:
            if position[key] not in placed:
                pieces.append(new.iloc[[position[key]]])
                placed.add(position[key])
        elif keep[i]:
            pieces.append(old.iloc[[i]])
            kept += 1
    pieces += [new.iloc[[i]] for i in range(len(new)) if i not in placed]
    columns = list(new.columns) + [c for c in old.columns if c not in new.columns]
    merged = pd.concat(pieces, ignore_index=True)[columns] if pieces else new.copy()
    merged.attrs = {**new.attrs, "kept_rows": kept}
    return merged


def write_table(df: pd.DataFrame, path_stem: str | os.PathLike) -> tuple[Path, Path]:
    """Write a table as CSV and Markdown, each atomically.

    Parameters
    ----------
    df : pd.DataFrame
        The table.  A non-default index is written as columns; a caption in
        ``df.attrs["caption"]`` is written above the Markdown table.
    path_stem : str or Path
        Path without extension; ``.csv`` and ``.md`` are appended.  A bare
        name (no folder) goes into :func:`esc_lib.config.results_dir`.
        Missing parent folders are created.

    Returns
    -------
    csv_path, markdown_path : Path

    Raises
    ------
    ValueError
        If ``path_stem`` is empty or already ends in ``.csv``/``.md``.

    Notes
    -----
    Both texts are rendered before anything is written, and each file is
    written to a temporary name in the same folder and renamed into place, so
    a failure never leaves a half-written table (an existing one is kept).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    stem = Path(path_stem)
    if not stem.name:
        raise ValueError(f"path_stem must name a file, got {str(path_stem)!r}")
    if stem.suffix.lower() in {".csv", ".md"}:
        raise ValueError(f"path_stem must not have an extension (.csv and .md are added), got {str(path_stem)!r}")
    if stem.parent == Path("."):
        from esc_lib import config

        stem = config.results_dir() / stem
    index = not isinstance(df.index, pd.RangeIndex)
    csv_text = df.to_csv(index=index)
    markdown = df.to_markdown(index=index, floatfmt=".3g")
    caption = df.attrs.get("caption")
    if caption:
        markdown = f"{caption}\n\n{markdown}"
    markdown += "\n"
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path = stem.with_name(stem.name + ".csv")
    markdown_path = stem.with_name(stem.name + ".md")
    atomic.write_text(csv_path, csv_text)
    atomic.write_text(markdown_path, markdown)
    return csv_path, markdown_path

