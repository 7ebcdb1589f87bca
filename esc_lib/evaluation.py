"""Statistics and result tables: fold-wise means with t intervals, paired tests, Tables 1 and 2.

The experiments write one row per (configuration, method, fold) -- a *tidy*
metrics table with at least the columns

``config, batch_size, filters, decoder, batch_norm, method, fold, accuracy, n_test``

where ``method`` is ``"supervised"`` (trained from scratch) or ``"pretrained"``
(initialised from the CAE encoder) and ``accuracy`` is a fraction in [0, 1].
Optional columns ``labels_per_class`` and ``pool_size`` feed the label-budget
and pool-size curves.  Both hold non-negative integers; ``labels_per_class``
0 (:data:`ALL_LABELS`) means "every labelled clip" -- the largest budget, so
it sorts after the others and is shown as ``"all"`` (:func:`budget_order`,
:func:`budget_label`).  An optional ``encoder`` column (the encoder notation)
tells :func:`table1` whether the filter count ``f`` is part of the row key.

Everything here treats the *fold* as the unit of replication: the mean over
folds, a Student-t confidence interval over folds, and tests that pair the two
methods fold by fold (both saw exactly the same test clips).  With the five
official ESC folds these intervals are wide and the Wilcoxon signed-rank test
cannot go below p = 0.0625; the docstrings say so where it matters.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from esc_lib import atomic

__all__ = [
    "BASELINE",
    "TREATMENT",
    "ALL_LABELS",
    "PAPER_TABLE1",
    "PUBLISHED",
    "load_metrics",
    "mean_ci",
    "format_mean_ci",
    "paired_test",
    "summarise",
    "compare_methods",
    "table1",
    "table2",
    "write_table",
    "confusion",
    "per_class_accuracy",
    "budget_curve",
    "format_difference",
    "budget_order",
    "budget_label",
    "as_class_names",
]

#: Name of the method trained from scratch in the ``method`` column.
BASELINE = "supervised"
#: Name of the method initialised from the CAE encoder in the ``method`` column.
TREATMENT = "pretrained"
#: ``labels_per_class`` value meaning "every labelled clip" (no label budget).
ALL_LABELS = 0
_BUDGET_COLUMN = "labels_per_class"

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

_PAPER = "Jensen & Pethick, Table 2"
_PICZAK_2015 = "Piczak (2015), ESC: Dataset for Environmental Sound Classification, ACM MM; 5-fold CV"
_PICZAK_2015B = "Piczak (2015b), Environmental sound classification with CNNs, IEEE MLSP; 5-fold CV"
_TOKOZUME_2018 = "Tokozume, Ushiku & Harada (2018), Learning from between-class examples, ICLR; 5-fold CV"

#: Published accuracies (fractions) with their sources, one row per (dataset, network, source).
#: Where the paper's Table 2 quotes a figure differently from the original
#: publication both are kept, each labelled by where it was read.
PUBLISHED = pd.DataFrame(
    [
        ("esc50", "Baseline random forest (MFCC & ZCR)", 0.440, f"{_PAPER}, citing Piczak (2015)"),
        ("esc50", "Baseline random forest (MFCC & ZCR)", 0.443, _PICZAK_2015),
        ("esc50", "Baseline k-NN (MFCC & ZCR)", 0.322, _PICZAK_2015),
        ("esc50", "Piczak CNN", 0.655, f"{_PAPER}, citing Piczak"),
        ("esc50", "Piczak CNN", 0.645, _PICZAK_2015B),
        ("esc50", "CAE pre-trained CNN (the paper)", 0.507, f"{_PAPER}; single split"),
        ("esc50", "Human listeners", 0.813, _PICZAK_2015),
        ("esc10", "Baseline random forest (MFCC & ZCR)", 0.727, _PICZAK_2015),
        ("esc10", "Piczak CNN", 0.805, _PICZAK_2015B),
        ("esc10", "EnvNet-v2 + between-class learning", 0.914, _TOKOZUME_2018),
        ("esc10", "Human listeners", 0.957, _PICZAK_2015),
    ],
    columns=["dataset", "network", "accuracy", "source"],
)

_DATASETS = {"esc50": "ESC-50", "esc10": "ESC-10"}
_MISSING_TEXT = "-"


# ----------------------------------------------------------------------------
# validation helpers


def _require_frame(metrics, name: str = "metrics") -> pd.DataFrame:
    if not isinstance(metrics, pd.DataFrame):
        raise TypeError(
            f"{name} must be a pandas DataFrame (use esc_lib.evaluation.load_metrics to read CSV files), "
            f"got {type(metrics).__name__}"
        )
    if metrics.empty:
        raise ValueError(f"{name} is empty: there is nothing to summarise")
    return metrics


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], name: str = "metrics") -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} lacks column(s) {', '.join(repr(c) for c in missing)}; "
            f"it has {', '.join(repr(str(c)) for c in frame.columns)}"
        )


def _check_fraction(frame: pd.DataFrame, value: str, name: str = "metrics") -> None:
    """Accuracies must be fractions; a value above 1 almost always means percentages."""
    if "accuracy" not in value:
        return
    values = pd.to_numeric(frame[value], errors="coerce")
    if values.isna().any():
        bad = frame.loc[values.isna(), value].iloc[0]
        raise ValueError(f"{name}[{value!r}] holds a missing or non-numeric value ({bad!r})")
    if ((values < 0) | (values > 1)).any():
        bad = values[(values < 0) | (values > 1)].iloc[0]
        raise ValueError(
            f"{name}[{value!r}] must be a fraction in [0, 1], found {bad!r} (percentages? divide by 100)"
        )


def _check_confidence(confidence: float) -> float:
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number strictly between 0 and 1, got {confidence!r}")
    return float(confidence)


def _as_tuple(by) -> tuple[str, ...]:
    if isinstance(by, str):
        return (by,)
    by = tuple(by)
    if not by:
        raise ValueError("by must name at least one column")
    return by


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return value is pd.NA or value is pd.NaT


_BLANK_TEXT = {"", "none", "-", "n/a", "na", "nan"}


def _is_blank(value) -> bool:
    """Missing, or text that means "not applicable" (a supervised model has no decoder)."""
    return _is_missing(value) or (isinstance(value, str) and value.strip().lower() in _BLANK_TEXT)


def _budget_int(value, column: str = _BUDGET_COLUMN) -> int:
    """A budget as a non-negative int; an integral float (``8.0``) is accepted, text and NaN are not."""
    number = -1
    if isinstance(value, (bool, np.bool_)) or _is_missing(value):
        pass
    elif isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        number = int(value)
    if number < 0:
        hint = ""
        if column == _BUDGET_COLUMN:
            hint = f" ({ALL_LABELS} means every labelled clip; older tables wrote 'all')"
        raise ValueError(f"{column} must hold non-negative integers{hint}, got {value!r}")
    return number


def budget_order(budget, column: str = _BUDGET_COLUMN) -> float:
    """Sort key of a budget: ascending, with ``labels_per_class`` 0 (every labelled clip) last.

    Parameters
    ----------
    budget : int >= 0
        A value of ``column``; an integral float such as ``8.0`` (how pandas
        may hold integers after a merge) is accepted.
    column : str
        The budget column.  Only for ``"labels_per_class"`` does 0
        (:data:`ALL_LABELS`) mean "all labelled clips" and sort after every
        positive budget; elsewhere (e.g. ``"pool_size"``, where the from-scratch
        baseline has 0) 0 is simply the smallest number.

    Returns
    -------
    key : float
        ``math.inf`` for ``labels_per_class`` 0, else the budget.

    Raises
    ------
    ValueError
        If ``budget`` is not a non-negative integer (e.g. the text ``"all"``
        that older metrics files hold).
    """
    number = _budget_int(budget, column)
    return math.inf if (column == _BUDGET_COLUMN and number == ALL_LABELS) else float(number)


def budget_label(budget, column: str = _BUDGET_COLUMN) -> str:
    """Text for a budget on a plot axis or in a table: ``"all"`` for ``labels_per_class`` 0, else ``"8"``.

    Parameters
    ----------
    budget : int >= 0
        A value of ``column`` (see :func:`budget_order`).
    column : str
        The budget column; 0 reads ``"all"`` only for ``"labels_per_class"``.

    Returns
    -------
    label : str

    Raises
    ------
    ValueError
        If ``budget`` is not a non-negative integer.
    """
    number = _budget_int(budget, column)
    return "all" if (column == _BUDGET_COLUMN and number == ALL_LABELS) else str(number)


def _sort_key(value):
    """Numbers first (ascending), then text, then missing values: sorts columns of mixed types."""
    if _is_missing(value):
        return (2, 0.0, "")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _row_key(column: str, value):
    """:func:`_sort_key`, except that ``labels_per_class`` sorts by :func:`budget_order` (0 last)."""
    if column == _BUDGET_COLUMN and not _is_missing(value):
        return (0, budget_order(value), "")
    return _sort_key(value)


def _sort_rows(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Sort by ``columns`` in a way that survives mixed types (``"none"`` next to ``None``)."""
    if frame.empty:
        return frame
    keys = [tuple(_row_key(c, row[c]) for c in columns) for _, row in frame.iterrows()]
    order = sorted(range(len(frame)), key=lambda i: keys[i])
    return frame.iloc[order].reset_index(drop=True)


def _groups(frame: pd.DataFrame, by: Sequence[str]):
    """Yield ``(key_tuple, sub_frame)`` in first-seen order, keeping missing keys as a group."""
    grouped = frame.groupby(list(by), sort=False, dropna=False)
    for key, sub in grouped:
        yield (key if isinstance(key, tuple) else (key,)), sub


def _check_unique_folds(sub: pd.DataFrame, where: str) -> None:
    duplicated = sub["fold"][sub["fold"].duplicated()]
    if not duplicated.empty:
        raise ValueError(
            f"fold {duplicated.iloc[0]!r} appears more than once for {where}; "
            "each (group, method, fold) must be one row -- add the distinguishing column to `by` or filter first"
        )


def _describe_key(by: Sequence[str], key: Sequence) -> str:
    return ", ".join(f"{column}={value!r}" for column, value in zip(by, key))


# ----------------------------------------------------------------------------
# statistics


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
        _require_columns(frame, ("method", "fold", "accuracy"), name=str(file))
        if _BUDGET_COLUMN in frame.columns:
            try:
                frame[_BUDGET_COLUMN] = [_budget_int(v) for v in frame[_BUDGET_COLUMN]]
            except ValueError as error:
                raise ValueError(f"{file}: {error}") from None
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of a small sample (e.g. fold accuracies).

    Parameters
    ----------
    values : array-like [shape=(n,)]
        Finite numbers, one per fold.
    confidence : float in (0, 1)
        Coverage of the interval.

    Returns
    -------
    mean, low, high : float
        ``mean ± t_{(1+confidence)/2, n-1} · s / sqrt(n)`` with ``s`` the sample
        standard deviation (``ddof=1``).  With one value the interval is
        undefined and ``(value, nan, nan)`` is returned; with identical values
        it collapses to ``(mean, mean, mean)``.

    Raises
    ------
    ValueError
        If ``values`` is empty, not one-dimensional, or holds NaN/inf, or if
        ``confidence`` is outside (0, 1).
    """
    confidence = _check_confidence(confidence)
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError("values is empty: a mean needs at least one value")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"values must be finite numbers, got {array.tolist()}")
    mean = float(array.mean())
    n = array.size
    if n == 1:
        return mean, math.nan, math.nan
    sem = float(array.std(ddof=1)) / math.sqrt(n)
    half_width = float(stats.t.ppf((1.0 + confidence) / 2.0, n - 1)) * sem
    return mean, mean - half_width, mean + half_width


def format_mean_ci(mean: float, low: float = math.nan, high: float = math.nan, *, percent: bool = True,
                   digits: int = 1) -> str:
    """Text such as ``"72.3 ± 4.1"`` (mean ± half-width of the interval).

    Parameters
    ----------
    mean, low, high : float
        As returned by :func:`mean_ci`.  A NaN mean gives ``"-"`` (no result,
        as in the paper's Table 1); a NaN interval gives the mean alone.
    percent : bool
        Multiply by 100 (accuracies are stored as fractions).
    digits : int >= 0
        Decimals shown.
    """
    if _is_missing(mean) or not np.isfinite(mean):
        return _MISSING_TEXT
    scale = 100.0 if percent else 1.0
    if _is_missing(low) or _is_missing(high) or not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean * scale:.{digits}f}"
    half_width = (high - low) / 2.0 * scale
    return f"{mean * scale:.{digits}f} ± {half_width:.{digits}f}"


def _by_fold(values, value: str, name: str) -> pd.Series | np.ndarray:
    """A Series indexed by fold, or a plain array for positional pairing."""
    if isinstance(values, pd.DataFrame):
        _require_columns(values, ("fold", value), name=name)
        if values["fold"].duplicated().any():
            fold = values["fold"][values["fold"].duplicated()].iloc[0]
            raise ValueError(f"{name} has more than one row for fold {fold!r}; filter to one configuration first")
        return pd.Series(values[value].to_numpy(dtype=float), index=values["fold"].to_numpy(), name=value)
    if isinstance(values, pd.Series):
        if values.index.duplicated().any():
            fold = values.index[values.index.duplicated()][0]
            raise ValueError(f"{name} has more than one value for fold {fold!r}")
        return values.astype(float)
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def paired_test(a, b, confidence: float = 0.95, *, value: str = "accuracy") -> dict:
    """Compare two methods evaluated on the same folds: difference ``b - a``, t CI, t and Wilcoxon tests.

    Parameters
    ----------
    a, b : pd.Series indexed by fold, pd.DataFrame with ``fold`` and ``value`` columns, or array-like
        Per-fold scores of the two methods (``a`` the baseline, e.g.
        supervised; ``b`` the treatment, e.g. pre-trained).  Series and
        DataFrames are aligned by fold; plain arrays are paired by position.
    confidence : float in (0, 1)
        Coverage of the interval on the mean difference.
    value : str
        Score column when DataFrames are given.

    Returns
    -------
    result : dict
        ``n`` (pairs), ``folds``, ``mean_a``, ``mean_b``, ``mean_difference``
        (mean of ``b - a``), ``ci_low``/``ci_high`` (Student-t interval of the
        mean difference), ``t_statistic``/``t_pvalue`` (two-sided paired t-test,
        :func:`scipy.stats.ttest_rel`), ``t_note``, ``wilcoxon_statistic``/
        ``wilcoxon_pvalue`` (two-sided signed-rank test,
        :func:`scipy.stats.wilcoxon`; zero differences are dropped, and for up
        to 13 non-zero differences the p-value is exact over all sign flips, so
        tied differences are handled correctly), ``wilcoxon_note``.

        A test that is undefined gives NaN and says why in its note: fewer
        than two pairs, all differences zero, or (t-test) differences that are
        all equal so the variance is zero.  The Wilcoxon note also states the
        smallest p-value attainable, which is 0.0625 with five folds -- the
        signed-rank test can never reach 0.05 with the five ESC folds.

    Raises
    ------
    ValueError
        If the folds of ``a`` and ``b`` differ (the message lists them), if
        array inputs differ in length, if a fold repeats, or if a score is NaN.
    TypeError
        If one input is indexed by fold and the other is a plain array.
    """
    confidence = _check_confidence(confidence)
    series_a = _by_fold(a, value, "a")
    series_b = _by_fold(b, value, "b")
    if isinstance(series_a, pd.Series) != isinstance(series_b, pd.Series):
        raise TypeError(
            "pass a and b both indexed by fold (Series/DataFrame) or both as plain arrays paired by position"
        )
    if isinstance(series_a, pd.Series):
        folds_a, folds_b = set(series_a.index), set(series_b.index)
        if folds_a != folds_b:
            raise ValueError(
                f"a and b must cover the same folds; only in a: {sorted(folds_a - folds_b, key=str)}, "
                f"only in b: {sorted(folds_b - folds_a, key=str)}"
            )
        folds = sorted(folds_a, key=_sort_key)
        x = series_a.loc[folds].to_numpy(dtype=float)
        y = series_b.loc[folds].to_numpy(dtype=float)
    else:
        if series_a.shape != series_b.shape:
            raise ValueError(f"a and b must have the same length, got {series_a.size} and {series_b.size}")
        x, y = series_a, series_b
        folds = list(range(1, x.size + 1))
    if x.size == 0:
        raise ValueError("a and b are empty: a paired test needs at least one fold")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("a and b must hold finite scores (found NaN or inf)")

    # Rounding removes floating-point noise (0.8 - 0.75 vs 0.7 - 0.65) so equal
    # differences tie in the signed-rank test and zero differences are zero.
    differences = np.round(y - x, 12)
    n = differences.size
    mean_difference, ci_low, ci_high = mean_ci(differences, confidence)
    result = {
        "n": int(n),
        "folds": folds,
        "mean_a": float(x.mean()),
        "mean_b": float(y.mean()),
        "mean_difference": mean_difference,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "confidence": confidence,
        "t_statistic": math.nan,
        "t_pvalue": math.nan,
        "t_note": "",
        "wilcoxon_statistic": math.nan,
        "wilcoxon_pvalue": math.nan,
        "wilcoxon_note": "",
    }
    all_zero = bool(np.all(differences == 0))

    if n < 2:
        result["t_note"] = f"undefined: n = {n} < 2 pairs"
    elif all_zero:
        result["t_note"] = "undefined: all differences are zero (the two methods scored identically)"
    elif np.all(differences == differences[0]):
        result["t_note"] = "undefined: every fold has the same non-zero difference (zero variance)"
    else:
        test = stats.ttest_rel(y, x)
        result["t_statistic"] = float(test.statistic)
        result["t_pvalue"] = float(test.pvalue)

    nonzero = int(np.count_nonzero(differences))
    if n < 2:
        result["wilcoxon_note"] = f"undefined: n = {n} < 2 pairs"
    elif all_zero:
        result["wilcoxon_note"] = "undefined: all differences are zero (the two methods scored identically)"
    elif nonzero == 1:
        # One non-zero difference: its two sign flips are equally likely, so the exact two-sided p is 1.
        result["wilcoxon_statistic"] = 0.0
        result["wilcoxon_pvalue"] = 1.0
        result["wilcoxon_note"] = f"exact; {n - 1} zero difference(s) dropped, one left: p = 1"
    else:
        if nonzero <= 13:
            # Exact null distribution over all 2**nonzero sign flips (ties allowed).
            method = stats.PermutationMethod(n_resamples=2**nonzero)
            how = "exact (all sign flips)"
        else:
            method = "auto"
            how = "scipy 'auto' method"
        # Zeros are dropped *before* the test: scipy's permutation method would
        # otherwise flip the signs of all n differences, and 2**nonzero
        # resamples of 2**n flips is a random sample, not the exact distribution.
        test = stats.wilcoxon(differences[differences != 0], zero_method="wilcox", method=method)
        result["wilcoxon_statistic"] = float(test.statistic)
        result["wilcoxon_pvalue"] = float(test.pvalue)
        smallest = min(1.0, 2.0 / 2**nonzero)
        note = f"{how}; {n - nonzero} zero difference(s) dropped" if nonzero < n else how
        if smallest > 0.05:
            note += f"; smallest attainable p with {nonzero} non-zero differences is {smallest:.4g}"
        result["wilcoxon_note"] = note
    return result


def summarise(metrics: pd.DataFrame, by: str | Sequence[str] = ("config", "method"), *,
              value: str = "accuracy", confidence: float = 0.95) -> pd.DataFrame:
    """Mean, t interval, standard deviation and fold count per group.

    Parameters
    ----------
    metrics : pd.DataFrame
        Tidy per-fold metrics (see the module docstring).
    by : str or sequence of str
        Grouping columns.
    value : str
        Column to summarise; a column whose name contains ``accuracy`` must
        hold fractions in [0, 1] and is shown in percent.
    confidence : float in (0, 1)

    Returns
    -------
    summary : pd.DataFrame
        One row per group, sorted by ``by`` (``labels_per_class`` 0, every
        labelled clip, after the positive budgets), with columns ``*by``, ``mean``,
        ``ci_low``, ``ci_high``, ``std`` (``ddof=1``, NaN for one fold),
        ``n_folds`` and a text column named ``value`` such as ``"72.3 ± 4.1"``
        (mean ± half-width of the interval, in % for accuracies).

    Raises
    ------
    ValueError
        If a column is missing, an accuracy is outside [0, 1], a fold
        appears twice within a group, or ``labels_per_class`` (when in
        ``by``) holds a non-integer.
    """
    metrics = _require_frame(metrics)
    by = _as_tuple(by)
    confidence = _check_confidence(confidence)
    _require_columns(metrics, (*by, value))
    _check_fraction(metrics, value)
    rows = []
    for key, sub in _groups(metrics, by):
        if "fold" in sub.columns:
            _check_unique_folds(sub, _describe_key(by, key))
        values = pd.to_numeric(sub[value]).to_numpy(dtype=float)
        mean, low, high = mean_ci(values, confidence)
        rows.append({
            **dict(zip(by, key)),
            "mean": mean,
            "ci_low": low,
            "ci_high": high,
            "std": float(np.std(values, ddof=1)) if values.size > 1 else math.nan,
            "n_folds": int(values.size),
            value: format_mean_ci(mean, low, high, percent="accuracy" in value),
        })
    return _sort_rows(pd.DataFrame(rows), by)


def _broadcast_baseline(metrics: pd.DataFrame, by: Sequence[str], baseline: str) -> pd.DataFrame:
    """Copy baseline rows whose key is missing (e.g. no decoder) to every key the other methods use.

    A model trained from scratch has no decoder, so the experiments may leave
    ``decoder`` empty for it; it is then the baseline of every decoder variant.
    """
    for column in by:
        is_baseline = metrics["method"] == baseline
        missing = metrics[column].map(_is_blank).astype(bool)
        if not (is_baseline & missing).any() or not (~is_baseline & ~missing).any():
            continue
        values = list(dict.fromkeys(metrics.loc[~is_baseline & ~missing, column]))
        shared = metrics[is_baseline & missing]
        copies = [shared.assign(**{column: v}) for v in values]
        metrics = pd.concat([metrics[~(is_baseline & missing)], *copies], ignore_index=True)
    return metrics


def compare_methods(metrics: pd.DataFrame, config: str | None = None, *, by: str | Sequence[str] = "config",
                    value: str = "accuracy", confidence: float = 0.95, baseline: str = BASELINE,
                    treatment: str = TREATMENT) -> pd.DataFrame:
    """Supervised vs pre-trained, paired by fold, for every configuration.

    Parameters
    ----------
    metrics : pd.DataFrame
        Tidy per-fold metrics with columns ``method``, ``fold``, ``value`` and ``by``.
    config : str, optional
        Keep only this value of ``config``.
    by : str or sequence of str
        Columns that identify a configuration (e.g. ``("batch_size",
        "filters")`` or ``("labels_per_class",)``).  Baseline rows with a
        missing value in one of these columns are shared by every value.
    value : str
        Score column.
    confidence : float in (0, 1)
    baseline, treatment : str
        The two values of ``method`` compared; the difference is
        ``treatment - baseline``.

    Returns
    -------
    comparison : pd.DataFrame
        One row per configuration, sorted by ``by``: ``*by``, ``n_folds``, text
        columns ``baseline`` and ``treatment`` (``"72.3 ± 4.1"``, ``"-"`` when a
        method has no runs), ``<method>_mean``/``_ci_low``/``_ci_high`` for
        both, ``difference`` with ``difference_ci_low``/``_ci_high``,
        ``t_pvalue``, ``wilcoxon_pvalue`` and ``note`` (why a test is missing).

    Raises
    ------
    ValueError
        If a column is missing, ``config`` matches no row, a fold repeats, or
        the two methods were run on different folds of a configuration.
    """
    metrics = _require_frame(metrics)
    by = _as_tuple(by)
    confidence = _check_confidence(confidence)
    _require_columns(metrics, (*by, "method", "fold", value))
    _check_fraction(metrics, value)
    if config is not None:
        _require_columns(metrics, ("config",))
        if not (metrics["config"] == config).any():
            raise ValueError(
                f"config {config!r} not found; available: {sorted(map(str, metrics['config'].unique()))}"
            )
        metrics = metrics[metrics["config"] == config]
    methods = set(metrics["method"])
    if not methods & {baseline, treatment}:
        raise ValueError(f"metrics has no {baseline!r} or {treatment!r} rows; methods present: {sorted(methods)}")
    metrics = metrics[metrics["method"].isin([baseline, treatment])]
    metrics = _broadcast_baseline(metrics, by, baseline)

    rows = []
    for key, sub in _groups(metrics, by):
        where = _describe_key(by, key)
        row: dict = dict(zip(by, key))
        scores = {}
        for method in (baseline, treatment):
            part = sub[sub["method"] == method]
            _check_unique_folds(part, f"{where}, method={method!r}")
            if part.empty:
                scores[method] = None
                mean = low = high = math.nan
            else:
                scores[method] = pd.Series(part[value].to_numpy(dtype=float), index=part["fold"].to_numpy())
                mean, low, high = mean_ci(scores[method].to_numpy(), confidence)
            row[method] = format_mean_ci(mean, low, high, percent="accuracy" in value)
            row[f"{method}_mean"], row[f"{method}_ci_low"], row[f"{method}_ci_high"] = mean, low, high
        row.update({"difference": math.nan, "difference_ci_low": math.nan, "difference_ci_high": math.nan,
                    "t_pvalue": math.nan, "wilcoxon_pvalue": math.nan, "note": ""})
        present = [m for m in (baseline, treatment) if scores[m] is not None]
        row["n_folds"] = max(len(scores[m]) for m in present)
        if len(present) < 2:
            absent = ({baseline, treatment} - set(present)).pop()
            row["note"] = f"no {absent} runs"
        else:
            try:
                test = paired_test(scores[baseline], scores[treatment], confidence)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            row.update({
                "difference": test["mean_difference"],
                "difference_ci_low": test["ci_low"],
                "difference_ci_high": test["ci_high"],
                "t_pvalue": test["t_pvalue"],
                "wilcoxon_pvalue": test["wilcoxon_pvalue"],
                "note": "; ".join(
                    f"{name}: {note}" for name, note in (("t", test["t_note"]), ("Wilcoxon", test["wilcoxon_note"]))
                    if note.startswith("undefined")
                ),
            })
        rows.append(row)
    columns = [*by, "n_folds", baseline, treatment,
               f"{baseline}_mean", f"{baseline}_ci_low", f"{baseline}_ci_high",
               f"{treatment}_mean", f"{treatment}_ci_low", f"{treatment}_ci_high",
               "difference", "difference_ci_low", "difference_ci_high", "t_pvalue", "wilcoxon_pvalue", "note"]
    return _sort_rows(pd.DataFrame(rows, columns=columns), by)


# ----------------------------------------------------------------------------
# tables


def format_difference(mean: float, low: float, high: float) -> str:
    """A difference of fractions with its interval, ``"+1.5 [-2.0, +5.0]"`` in percentage points.

    Parameters
    ----------
    mean, low, high : float
        The difference and its interval as fractions (``0.015`` = 1.5 points).

    Returns
    -------
    text : str
        Without the interval when it is not finite; ``"-"`` when the mean is missing.
    """
    if _is_missing(mean) or not np.isfinite(mean):
        return _MISSING_TEXT
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean * 100:+.1f}"
    return f"{mean * 100:+.1f} [{low * 100:+.1f}, {high * 100:+.1f}]"


def _single_valued(metrics: pd.DataFrame, column: str, what: str) -> None:
    """One budget per table.  The pool size only matters for pre-trained rows (from scratch uses none)."""
    if column in metrics.columns:
        rows = metrics[metrics["method"] != BASELINE] if column == "pool_size" else metrics
        values = sorted({_budget_int(v, column) for v in rows[column].dropna()}, key=lambda v: budget_order(v, column))
        if len(values) > 1:
            raise ValueError(
                f"metrics holds several {column} values ({[budget_label(v, column) for v in values]}); "
                f"filter to one before building {what}"
            )


def _filter(metrics: pd.DataFrame, column: str, wanted) -> pd.DataFrame:
    if wanted is None:
        return metrics
    _require_columns(metrics, (column,))
    # The baseline's decoder may be empty (it has none); it stays.
    keep = (metrics[column] == wanted) | ((metrics["method"] == BASELINE) & metrics[column].map(_is_blank).astype(bool))
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
    if "encoder" not in metrics.columns or metrics["encoder"].map(_is_blank).astype(bool).any():
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
    metrics = _require_frame(metrics)
    _require_columns(metrics, ("batch_size", "filters", "method", "fold", "accuracy"))
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
        present = metrics.loc[~metrics[column].map(_is_blank).astype(bool), column]
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
                if (b, f) in paper.index and np.isfinite(paper.loc[(b, f), source]) else _MISSING_TEXT
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
    """The paper's Table 2: published accuracies next to this project's best cross-validated runs.

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
    metrics = _require_frame(metrics)
    _require_columns(metrics, ("config", "method", "fold", "accuracy"))
    for column in ("labels_per_class", "pool_size"):
        _single_valued(metrics, column, "Table 2")
    rows = [
        {"Network": r.network, "Accuracy": f"{r.accuracy * 100:.1f}%", "Evaluation": "published",
         "Source": r.source, "accuracy": r.accuracy, "ci_low": math.nan, "ci_high": math.nan,
         "n_folds": math.nan}
        for r in PUBLISHED[PUBLISHED["dataset"] == key].itertuples()
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


# ----------------------------------------------------------------------------
# per-clip analysis


def as_class_names(y, classes: Sequence[str], *, name: str = "y") -> np.ndarray:
    """Class names for labels given as integer indices into ``classes`` or as names.

    Parameters
    ----------
    y : array-like [shape=(n_clips,)]
        Class indices (ints, integral floats, or ints in an object array) or
        class names.
    classes : sequence of str [shape=(n_classes,)]
        Class names in index order.
    name : str
        What ``y`` is called in error messages.

    Returns
    -------
    names : np.ndarray of object [shape=(n_clips,)]

    Raises
    ------
    ValueError
        If ``y`` is not one-dimensional, an index is outside
        ``0..n_classes - 1``, or a name is not in ``classes``.
    """
    values = np.asarray(y)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {values.shape}")
    if values.dtype == object and values.size and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values
    ):
        values = values.astype(int)
    if np.issubdtype(values.dtype, np.integer) or (
        np.issubdtype(values.dtype, np.floating) and np.all(np.isfinite(values)) and np.all(values == np.round(values))
    ):
        indices = values.astype(int)
        bad = indices[(indices < 0) | (indices >= len(classes))]
        if bad.size:
            raise ValueError(f"{name} holds class index {bad[0]}, outside 0..{len(classes) - 1}")
        return np.asarray(classes, dtype=object)[indices]
    names = values.astype(str)
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise ValueError(f"{name} holds label(s) {unknown[:5]} that are not in classes")
    return names.astype(object)


def _check_prediction_inputs(y_true, y_pred, classes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    classes = [str(c) for c in classes]
    if not classes:
        raise ValueError("classes is empty")
    if len(set(classes)) != len(classes):
        raise ValueError("classes holds duplicate names")
    true = as_class_names(y_true, classes, name="y_true")
    pred = as_class_names(y_pred, classes, name="y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length ({true.size} vs {pred.size})")
    if true.size == 0:
        raise ValueError("y_true is empty")
    return true, pred, classes


def confusion(y_true, y_pred, classes: Sequence[str]) -> pd.DataFrame:
    """Confusion matrix labelled with class names (rows true, columns predicted).

    Parameters
    ----------
    y_true, y_pred : array-like [shape=(n_clips,)]
        Class indices into ``classes`` or class names.
    classes : sequence of str [shape=(n_classes,)]
        Class names in index order; every class gets a row and a column.

    Returns
    -------
    matrix : pd.DataFrame [shape=(n_classes, n_classes)]
        Counts from :func:`sklearn.metrics.confusion_matrix`; index named
        ``true``, columns named ``predicted``.

    Raises
    ------
    ValueError
        If the lengths differ, an index is out of range or a name is unknown.
    """
    from sklearn.metrics import confusion_matrix

    true, pred, classes = _check_prediction_inputs(y_true, y_pred, classes)
    counts = confusion_matrix(true, pred, labels=classes)
    return pd.DataFrame(counts, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))


def per_class_accuracy(y_true, y_pred, classes: Sequence[str]) -> pd.DataFrame:
    """Accuracy (recall) per true class, with precision and F1 for context.

    Parameters
    ----------
    y_true, y_pred : array-like [shape=(n_clips,)]
        Class indices into ``classes`` or class names.
    classes : sequence of str [shape=(n_classes,)]

    Returns
    -------
    table : pd.DataFrame [shape=(n_classes, 6)]
        Columns ``class``, ``n`` (clips of that class), ``correct``,
        ``accuracy`` (``correct / n``; NaN when ``n == 0``), ``precision``
        (NaN when the class is never predicted) and ``f1``, from
        :func:`sklearn.metrics.precision_recall_fscore_support`, in class order.
    """
    from sklearn.metrics import precision_recall_fscore_support

    true, pred, classes = _check_prediction_inputs(y_true, y_pred, classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=classes, zero_division=np.nan
    )
    correct = np.array([np.sum((true == c) & (pred == c)) for c in classes])
    return pd.DataFrame({
        "class": classes,
        "n": support.astype(int),
        "correct": correct.astype(int),
        "accuracy": np.where(support > 0, recall, np.nan),
        "precision": precision,
        "f1": f1,
    })


def budget_curve(metrics: pd.DataFrame, x: str = "labels_per_class", *, by: str | Sequence[str] = ("method",),
                 value: str = "accuracy", confidence: float = 0.95) -> pd.DataFrame:
    """Mean and t interval per (method, x) for label-budget or pool-size curves.

    Parameters
    ----------
    metrics : pd.DataFrame
        Tidy per-fold metrics with ``x``, ``by``, ``value`` (and ``fold``).
    x : str
        The swept column of non-negative integers, e.g. ``"labels_per_class"``
        (0 = every labelled clip, :data:`ALL_LABELS`) or ``"pool_size"``.
    by : str or sequence of str
        Curve identity, by default the method.
    value : str
    confidence : float in (0, 1)

    Returns
    -------
    curve : pd.DataFrame
        Columns ``*by``, ``x`` (ints, as in ``metrics``), ``budget`` (``x`` as
        text for tables: ``"8"``, and ``"all"`` for ``labels_per_class`` 0;
        see :func:`budget_label`), ``mean``, ``ci_low``, ``ci_high``, ``std``,
        ``n_folds`` and the text column ``value``.  Sorted by ``by`` then
        ``x`` ascending, with ``labels_per_class`` 0 -- the largest budget --
        last (:func:`budget_order`).  Written with :func:`write_table`, the
        CSV keeps the integer 0 and both files show ``"all"`` in ``budget``.

    Raises
    ------
    ValueError
        If a column is missing or ``x`` holds something other than
        non-negative integers (e.g. ``"all"`` from older metrics files, or a
        missing value).
    """
    metrics = _require_frame(metrics)
    by = _as_tuple(by)
    _require_columns(metrics, (x, *by, value))
    metrics = metrics.copy()
    metrics[x] = np.array([_budget_int(v, x) for v in metrics[x]], dtype=np.int64)
    # summarise sorts labels_per_class by budget_order (0 last); other columns ascend as numbers.
    curve = summarise(metrics, by=(*by, x), value=value, confidence=confidence)
    if x == _BUDGET_COLUMN:  # "all" for 0; other columns (pool_size) read as they are
        curve.insert(curve.columns.get_loc(x) + 1, "budget", [budget_label(v, x) for v in curve[x]])
    return curve
