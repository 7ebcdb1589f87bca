"""Statistics of cross-validated runs: fold-wise means with t intervals, paired tests, seed pooling.

Pure functions over tables that are already in memory: nothing here reads or
writes a file (:mod:`esc_lib.tables` reads the metrics and writes the tables
made from these statistics).  The experiments write one row per
(configuration, method, fold) -- a *tidy* metrics table with at least the
columns

``config, batch_size, filters, decoder, batch_norm, method, fold, accuracy, n_test``

where ``method`` is ``"supervised"`` (trained from scratch) or another way of
training, e.g. ``"pretrained"`` (initialised from the CAE encoder), and
``accuracy`` is a fraction in [0, 1].  Optional columns ``labels_per_class``
and ``pool_size`` feed the label-budget and pool-size curves.  Both hold
non-negative integers; ``labels_per_class`` 0 (:data:`ALL_LABELS`) means
"every labelled clip" -- the largest budget, so it sorts after the others and
is shown as ``"all"`` (:func:`budget_order`, :func:`budget_label`).  A
``seed`` column tells runs of several seeds apart (:func:`seed_comparison`,
:func:`config_comparison`).

Everything here treats the *fold* as the unit of replication: the mean over
folds, a Student-t confidence interval over folds, and tests that pair two
methods fold by fold (both saw exactly the same test clips).  Several seeds of
a fold score the same clips, so they are averaged into one value per fold
before a test, which counts folds, not seeds x folds.  With the five official
ESC folds these intervals are wide and the Wilcoxon signed-rank test cannot go
below p = 0.0625; the docstrings say so where it matters.

Per-clip diagnostics (:func:`confusion`, :func:`per_class_accuracy`) take the
true and predicted classes of the scored clips.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

__all__ = [
    "BASELINE",
    "TREATMENT",
    "ALL_LABELS",
    "MISSING_TEXT",
    "SEED_COMPARISON_COLUMNS",
    "require_frame",
    "require_columns",
    "is_blank",
    "as_budget",
    "budget_order",
    "budget_label",
    "mean_ci",
    "format_mean_ci",
    "format_difference",
    "paired_test",
    "summarise",
    "compare_methods",
    "budget_curve",
    "comparison_row",
    "seed_pairs",
    "seed_comparison",
    "match_config",
    "CONFIG_COMPARISON_COLUMNS",
    "config_comparison",
    "as_class_names",
    "confusion",
    "per_class_accuracy",
]

#: Name of the method trained from scratch in the ``method`` column.
BASELINE = "supervised"
#: Name of the method initialised from the CAE encoder in the ``method`` column.
TREATMENT = "pretrained"
#: ``labels_per_class`` value meaning "every labelled clip" (no label budget).
ALL_LABELS = 0
#: Text shown where a table has no result (a method that was not run), as in the paper's Table 1.
MISSING_TEXT = "-"
#: Columns a table of fold accuracies needs to pool several seeds (:func:`seed_comparison`).
SEED_COMPARISON_COLUMNS = ("method", "seed", "labels_per_class", "fold", "accuracy")
_BUDGET_COLUMN = "labels_per_class"


# ----------------------------------------------------------------------------
# validation helpers


def require_frame(metrics, name: str = "metrics") -> pd.DataFrame:
    """The table itself, once it is known to be a non-empty DataFrame.

    Parameters
    ----------
    metrics : pd.DataFrame
        The table to check.
    name : str
        What the table is called in error messages.

    Returns
    -------
    metrics : pd.DataFrame
        ``metrics``, unchanged.

    Raises
    ------
    TypeError
        If ``metrics`` is not a DataFrame (e.g. a path: read it with
        :func:`esc_lib.tables.load_metrics`).
    ValueError
        If it has no rows.
    """
    if not isinstance(metrics, pd.DataFrame):
        raise TypeError(
            f"{name} must be a pandas DataFrame (use esc_lib.tables.load_metrics to read CSV files), "
            f"got {type(metrics).__name__}"
        )
    if metrics.empty:
        raise ValueError(f"{name} is empty: there is nothing to summarise")
    return metrics


def require_columns(frame: pd.DataFrame, columns: Iterable[str], name: str = "metrics") -> None:
    """Check that ``frame`` has every column of ``columns``.

    Parameters
    ----------
    frame : pd.DataFrame
    columns : iterable of str
        The columns needed.
    name : str
        What the table is called in error messages (a file name, say).

    Raises
    ------
    ValueError
        Naming the missing columns and the ones the table has.
    """
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


_BLANK_TEXTS = {"", "none", "-", "n/a", "na", "nan"}


def is_blank(value) -> bool:
    """Whether a cell is missing, or text that means "not applicable" (a supervised model has no decoder).

    Parameters
    ----------
    value : object
        One cell of a table.

    Returns
    -------
    blank : bool
        True for None, NaN, ``pd.NA``/``pd.NaT`` and the texts ``""``,
        ``"none"``, ``"-"``, ``"n/a"``, ``"na"``, ``"nan"`` (any case, any
        surrounding spaces).
    """
    return _is_missing(value) or (isinstance(value, str) and value.strip().lower() in _BLANK_TEXTS)


def as_budget(value, column: str = _BUDGET_COLUMN) -> int:
    """A budget as a non-negative int; an integral float (``8.0``) is accepted, text and NaN are not.

    Parameters
    ----------
    value : int >= 0
        A cell of a budget column (``labels_per_class``, ``pool_size``).
    column : str
        Named in the error message, with a hint about 0 for ``labels_per_class``.

    Returns
    -------
    budget : int >= 0

    Raises
    ------
    ValueError
        If ``value`` is text (e.g. ``"all"``, which older metrics files
        hold for what is now 0), a bool, missing, negative or not integral.
    """
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
    number = as_budget(budget, column)
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
    number = as_budget(budget, column)
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
    half_width = float(scipy_stats.t.ppf((1.0 + confidence) / 2.0, n - 1)) * sem
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
        return MISSING_TEXT
    scale = 100.0 if percent else 1.0
    if _is_missing(low) or _is_missing(high) or not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean * scale:.{digits}f}"
    half_width = (high - low) / 2.0 * scale
    return f"{mean * scale:.{digits}f} ± {half_width:.{digits}f}"


def _by_fold(values, value: str, name: str) -> pd.Series | np.ndarray:
    """A Series indexed by fold, or a plain array for positional pairing."""
    if isinstance(values, pd.DataFrame):
        require_columns(values, ("fold", value), name=name)
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

        Identical scores on every fold are no evidence of a difference: both
        p-values are then 1 (the exact two-sided value), and the notes say so.
        A test that is undefined gives NaN and says why in its note: (t-test)
        fewer than two pairs, or differences that are all equal and non-zero so
        the variance is zero.  The signed-rank test is exact down to one pair
        (one non-zero difference: p = 1).  The Wilcoxon note also states the
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
        result["t_pvalue"] = 1.0
        result["t_note"] = "all differences are zero (the two methods scored identically): p = 1"
    elif np.all(differences == differences[0]):
        result["t_note"] = "undefined: every fold has the same non-zero difference (zero variance)"
    else:
        test = scipy_stats.ttest_rel(y, x)
        result["t_statistic"] = float(test.statistic)
        result["t_pvalue"] = float(test.pvalue)

    nonzero = int(np.count_nonzero(differences))
    if all_zero:
        # Every difference is dropped: no sign flip changes anything, so the exact two-sided p is 1.
        result["wilcoxon_statistic"] = 0.0
        result["wilcoxon_pvalue"] = 1.0
        result["wilcoxon_note"] = "exact; all differences are zero (the two methods scored identically): p = 1"
    elif nonzero == 1:
        # One non-zero difference: its two sign flips are equally likely, so the exact two-sided p is 1.
        result["wilcoxon_statistic"] = 0.0
        result["wilcoxon_pvalue"] = 1.0
        result["wilcoxon_note"] = f"exact; {n - 1} zero difference(s) dropped, one left: p = 1"
    else:
        if nonzero <= 13:
            # Exact null distribution over all 2**nonzero sign flips (ties allowed).
            method = scipy_stats.PermutationMethod(n_resamples=2**nonzero)
            how = "exact (all sign flips)"
        else:
            method = "auto"
            how = "scipy 'auto' method"
        # Zeros are dropped *before* the test: scipy's permutation method would
        # otherwise flip the signs of all n differences, and 2**nonzero
        # resamples of 2**n flips is a random sample, not the exact distribution.
        test = scipy_stats.wilcoxon(differences[differences != 0], zero_method="wilcox", method=method)
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
    metrics = require_frame(metrics)
    by = _as_tuple(by)
    confidence = _check_confidence(confidence)
    require_columns(metrics, (*by, value))
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
        missing = metrics[column].map(is_blank).astype(bool)
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
    metrics = require_frame(metrics)
    by = _as_tuple(by)
    confidence = _check_confidence(confidence)
    require_columns(metrics, (*by, "method", "fold", value))
    _check_fraction(metrics, value)
    if config is not None:
        require_columns(metrics, ("config",))
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
# text and curves


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
        return MISSING_TEXT
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean * 100:+.1f}"
    return f"{mean * 100:+.1f} [{low * 100:+.1f}, {high * 100:+.1f}]"



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
    metrics = require_frame(metrics)
    by = _as_tuple(by)
    require_columns(metrics, (x, *by, value))
    metrics = metrics.copy()
    metrics[x] = np.array([as_budget(v, x) for v in metrics[x]], dtype=np.int64)
    # summarise sorts labels_per_class by budget_order (0 last); other columns ascend as numbers.
    curve = summarise(metrics, by=(*by, x), value=value, confidence=confidence)
    if x == _BUDGET_COLUMN:  # "all" for 0; other columns (pool_size) read as they are
        curve.insert(curve.columns.get_loc(x) + 1, "budget", [budget_label(v, x) for v in curve[x]])
    return curve



# ----------------------------------------------------------------------------
# several runs: configurations and seeds


def comparison_row(row: pd.Series, method: str) -> dict:
    """One row of a method-against-supervised table, from a row of :func:`compare_methods`' output.

    Parameters
    ----------
    row : pd.Series
        A row of ``compare_methods(..., treatment=method)`` grouped by a key
        that includes ``labels_per_class``: it needs that column, the text
        columns of :data:`BASELINE` and ``method``, ``difference`` with
        ``difference_ci_low``/``_ci_high``, ``t_pvalue``, ``wilcoxon_pvalue``
        and ``n_folds``.
    method : str
        The method put against :data:`BASELINE`.

    Returns
    -------
    row : dict
        ``labels per class`` (``"all"`` for 0), ``method``, ``supervised (%)``
        and ``method (%)`` (mean ± t half-width), ``difference (pp)``,
        ``p (paired t)``, ``p (Wilcoxon)``, ``folds``, and ``_order``: the
        budget's sort key (:func:`budget_order`), for the caller to sort the
        rows by and then drop.
    """
    return {
        "labels per class": budget_label(row["labels_per_class"]),
        "method": method,
        "supervised (%)": row[BASELINE],
        "method (%)": row[method],
        "difference (pp)": format_difference(row["difference"], row["difference_ci_low"], row["difference_ci_high"]),
        "p (paired t)": row["t_pvalue"],
        "p (Wilcoxon)": row["wilcoxon_pvalue"],
        "folds": row["n_folds"],
        "_order": budget_order(row["labels_per_class"]),
    }


def _sources(rows: pd.DataFrame) -> str:
    """`` (in run0, run1)``: the runs (``source`` column) the rows come from, for error messages."""
    return f" (in {', '.join(sorted(map(str, rows['source'].unique())))})" if "source" in rows else ""


def _mean(values) -> float:
    # The mean as compare_methods takes it (pandas' grouped mean may round 72.75 the other way).
    return mean_ci(values)[0]


def _check_runs(frame: pd.DataFrame, key: Sequence[str]) -> None:
    """Every row has a seed, and no (key) repeats: one seed's run given twice would count twice."""
    if frame["seed"].isna().any():
        raise ValueError("fold accuracies have rows without a seed: give runs published with their seeds")
    repeated = frame[frame.duplicated(list(key), keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        clash = repeated[(repeated[list(key)] == first[list(key)]).all(axis=1)]
        config = f"configuration {first['config']!r}, " if "config" in key else ""
        raise ValueError(
            f"fold accuracies repeat {config}method {first['method']!r}, {budget_label(first['labels_per_class'])} "
            f"labels per class, seed {first['seed']}, fold {first['fold']}{_sources(clash)}: give each seed's run once")


def _same_runs(rows: pd.DataFrame, other: pd.DataFrame, name: str, other_name: str, budget) -> list:
    """The seeds of two sets of rows that must hold the same (seed, fold) pairs to be paired fold by fold."""
    mine, theirs = set(zip(rows["seed"], rows["fold"])), set(zip(other["seed"], other["fold"]))
    if mine != theirs:
        only = ", ".join(f"seed {seed} fold {fold}" for seed, fold in sorted(mine ^ theirs))
        raise ValueError(f"{name} and {other_name} ran different seeds or folds at "
                         f"{budget_label(budget)} labels per class: {only} only one of them")
    return sorted(rows["seed"].unique())


def match_config(folds: pd.DataFrame, name: str) -> str:
    """The one configuration of ``folds`` called ``name``, or whose name ends with ``name``.

    Parameters
    ----------
    folds : pd.DataFrame
        Rows with a ``config`` column (a ``source`` column names the runs in
        errors).
    name : str
        A configuration's name, or how it ends (``"cosine100-ens3"`` for
        ``"bs32-c32-...-cosine100-ens3"``).

    Returns
    -------
    config : str
        The full name: ``name`` itself when a configuration is called so,
        else the only one that ends with it.

    Raises
    ------
    ValueError
        If no configuration, or more than one, ends with ``name``.
    """
    require_columns(folds, ("config",), "fold accuracies")
    configs = sorted(map(str, folds["config"].unique()))
    if name in configs:
        return name
    ending = [config for config in configs if config.endswith(name)]
    if len(ending) != 1:
        raise ValueError(f"{len(ending)} configurations end with {name!r}{_sources(folds)} "
                         f"({', '.join(ending or configs)}{'' if ending else ' are there'}); "
                         "give a name, or the end of one, that names exactly one")
    return ending[0]


def seed_pairs(folds: pd.DataFrame, methods: Sequence[str] | None = None) -> list[tuple[str, int, list, pd.Series]]:
    """Each method against supervised at each budget over one or more seeds, paired by fold: the numbers.

    What :func:`seed_comparison` formats, and what a recommendation reads
    (:mod:`esc_lib.guidance`).  A method that ran fewer seeds than supervised
    at a budget (a second seed run only where the first was not conclusive)
    is paired with supervised's runs of its own seeds; within a seed both
    must have run the same folds.

    Parameters
    ----------
    folds : pd.DataFrame
        As for :func:`seed_comparison`.
    methods : sequence of str, optional
        The methods put against :data:`BASELINE` (default: every other one
        present).

    Returns
    -------
    pairs : list of (method, labels_per_class, seeds, comparison)
        In the order the rows come (methods as chosen, budgets as they
        appear); ``comparison`` is the one row of :func:`compare_methods` on
        the fold means over those seeds (numeric ``difference``,
        ``t_pvalue``, ``<method>_mean`` ... and the text columns).

    Raises
    ------
    ValueError
        As :func:`seed_comparison`.
    """
    frame = require_frame(folds, "fold accuracies")
    require_columns(frame, SEED_COMPARISON_COLUMNS, "fold accuracies")
    for column in ("config", "scored_on"):
        if column in frame and frame[column].nunique() > 1:
            values = "; ".join(f"{value}{_sources(rows)}" for value, rows in frame.groupby(column))
            raise ValueError(f"fold accuracies mix {column} values: {values}; combine seeds of one configuration")
    _check_runs(frame, ("method", "labels_per_class", "seed", "fold"))
    present = list(dict.fromkeys(frame["method"]))
    if BASELINE not in present:
        raise ValueError(f"fold accuracies have no {BASELINE!r} rows; methods present: {sorted(present)}")
    chosen = [m for m in present if m != BASELINE] if methods is None else list(methods)
    if BASELINE in chosen:
        raise ValueError(f"methods: {BASELINE!r} is what the others are compared with; name the others")
    missing = [m for m in chosen if m not in present]
    if missing or not chosen:
        raise ValueError(f"methods {missing or chosen} have no rows; present: {sorted(present)}")
    pairs = []
    for method in chosen:
        for budget, at in frame[frame["method"].isin([BASELINE, method])].groupby("labels_per_class", sort=False):
            mine = at[at["method"] == method]
            if mine.empty:
                continue
            base = at[(at["method"] == BASELINE) & at["seed"].isin(set(mine["seed"]))]
            seeds = _same_runs(mine, base, method, BASELINE, budget)
            fold_means = pd.concat([mine, base]).groupby(["method", "labels_per_class", "fold"], as_index=False)[
                "accuracy"].agg(_mean)
            pairs.append((method, budget, seeds,
                          compare_methods(fold_means, by="labels_per_class", treatment=method).iloc[0]))
    return pairs


def seed_comparison(folds: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Each method against supervised at each budget over several seeds, paired by fold.

    Parameters
    ----------
    folds : pd.DataFrame
        Per-fold rows of one or more runs of one configuration (their
        ``fold_accuracies.csv``, e.g. a seed-0 and a seed-1 run of one
        profile), with the columns :data:`SEED_COMPARISON_COLUMNS`; ``config``
        and ``scored_on`` when present must take one value (a configuration's
        name leaves out the seed, so its seeds share it; an equal name does
        not prove equal settings: the learning rate, for one, is not in it).
        A ``source`` column (the run each row came from) names the runs in
        errors.
    methods : sequence of str, optional
        The methods put against :data:`BASELINE` (default: every other one
        present).

    Returns
    -------
    table : pd.DataFrame
        One row per budget and method (budgets ascending, every label last,
        then methods by name):
        the columns of :func:`comparison_row`, the ``seeds`` and ``per seed
        (supervised -> method)``, each seed's own means.  Each method's
        accuracy on a fold is first averaged over the seeds: the seeds of a
        fold score the same test clips (and with every label train on the
        same clips), so they are not independent pairs, and the tests count
        folds, not seeds x folds.  A method run with fewer seeds than
        supervised at a budget is put against supervised's runs of the same
        seeds (:func:`seed_pairs`).  The caption is in ``table.attrs["caption"]``.

    Raises
    ------
    ValueError
        If a column is missing, the rows mix configurations or scored folds,
        a (method, budget, seed, fold) repeats (one seed's run given twice),
        or a method ran a seed or fold supervised did not, or other folds of
        one seed, at a budget.
    """
    pairs = seed_pairs(folds, methods)
    per_seed = folds.groupby(["method", "labels_per_class", "seed"])["accuracy"].agg(_mean)
    rows = [{
        **comparison_row(compared, method),
        "seeds": ", ".join(map(str, seeds)),
        "per seed (supervised -> method)": ", ".join(
            f"{format_mean_ci(per_seed[(BASELINE, budget, seed)])} -> {format_mean_ci(per_seed[(method, budget, seed)])}"
            for seed in seeds),
    } for method, budget, seeds, compared in pairs]
    table = pd.DataFrame(rows).sort_values(["_order", "method"], kind="stable").drop(columns="_order").reset_index(drop=True)
    table.attrs["caption"] = (
        "Each method against supervised over several seeds, by labelled clips per class; each fold's accuracy averaged "
        "over the seeds, then mean ± half-width of the 95% t interval over the folds, difference = method − supervised "
        "in points, paired by fold; each seed's own means beside.")
    return table


#: Columns a table of fold accuracies needs to put one configuration against another (:func:`config_comparison`).
CONFIG_COMPARISON_COLUMNS = ("config", "method", "labels_per_class", "fold", "accuracy")


def config_comparison(folds: pd.DataFrame, base: str, other: str, *,
                      methods: Sequence[str] | None = None) -> pd.DataFrame:
    """One configuration against another, method by method and budget by budget, paired by fold (and seed).

    Notebook 04's tables put each method against supervised *within* a
    configuration; a sweep that changes the network itself (an ensemble, say)
    also needs each configuration's method against the base point's same
    method.

    Parameters
    ----------
    folds : pd.DataFrame
        Per-fold rows of one or more runs (their ``fold_accuracies.csv``)
        with the columns :data:`CONFIG_COMPARISON_COLUMNS`, and ``seed`` when
        they hold several runs (seeds); ``seconds`` adds the seconds per fold
        of both.  A ``source`` column names the runs in errors.
    base, other : str
        The two configurations, each by its name or how its name ends (see
        :func:`match_config`); the difference is ``other - base``.
    methods : sequence of str, optional
        Compare only these methods (default: every method both ran).

    Returns
    -------
    table : pd.DataFrame
        One row per method and budget that both configurations ran (by
        method, then budget with every label last): ``method``, ``labels per
        class``, ``base (%)`` and ``other (%)`` (means over the folds, 1
        decimal), ``difference (pp)`` with its 95% t interval, ``p (paired
        t)`` and ``p (Wilcoxon)`` (3 decimals), ``folds``; with several seeds
        ``seeds`` and ``per seed (base -> other)``; with ``seconds`` the mean
        ``s/fold base`` and ``s/fold other``.  With several seeds each
        configuration's accuracy on a fold is first averaged over the seeds,
        which must be the same (seed, fold) pairs for both, so the tests count
        folds.  The caption, naming both configurations, is in
        ``table.attrs["caption"]``.

    Raises
    ------
    ValueError
        If a column is missing, ``base`` or ``other`` does not name exactly
        one configuration (or both name the same), the runs lack seeds, a
        (configuration, method, budget, seed, fold) repeats, the two ran
        different seeds or folds of a method and budget, a method of
        ``methods`` is missing from either, or they share no method and budget.
    """
    frame = require_frame(folds, "fold accuracies")
    require_columns(frame, CONFIG_COMPARISON_COLUMNS, "fold accuracies")
    base, other = match_config(frame, base), match_config(frame, other)
    if base == other:
        raise ValueError(f"base and other both name configuration {base!r}; name two different ones")
    frame = frame[frame["config"].isin([base, other])]
    if "seed" not in frame:
        if "source" in frame and frame["source"].nunique() > 1:
            raise ValueError("fold accuracies of several runs have no seed column: they cannot be paired by seed")
        frame = frame.assign(seed=0)  # one run: one seed, whichever it was
    _check_runs(frame, ("config", "method", "labels_per_class", "seed", "fold"))
    a, b = frame[frame["config"] == base], frame[frame["config"] == other]
    if methods is not None:
        absent = [f"{m} (in {name})" for m in methods for name, rows in ((base, a), (other, b))
                  if not (rows["method"] == m).any()]
        if absent:
            raise ValueError(f"methods without rows: {', '.join(absent)}")
        a, b = a[a["method"].isin(methods)], b[b["method"].isin(methods)]
    several = frame["seed"].nunique() > 1
    rows = []
    for (method, budget), left in a.groupby(["method", "labels_per_class"], sort=True):
        right = b[(b["method"] == method) & (b["labels_per_class"] == budget)]
        if right.empty:
            continue
        seeds = _same_runs(right, left, f"{method} of {other}", f"{method} of {base}", budget)
        test = paired_test(left.groupby("fold")["accuracy"].agg(_mean), right.groupby("fold")["accuracy"].agg(_mean))
        row = {
            "method": method, "labels per class": budget_label(budget),
            "base (%)": round(100 * test["mean_a"], 1), "other (%)": round(100 * test["mean_b"], 1),
            "difference (pp)": format_difference(test["mean_difference"], test["ci_low"], test["ci_high"]),
            "p (paired t)": round(test["t_pvalue"], 3), "p (Wilcoxon)": round(test["wilcoxon_pvalue"], 3),
            "folds": test["n"], "_order": (method, budget_order(budget)),
        }
        if several:
            row["seeds"] = ", ".join(map(str, seeds))
            row["per seed (base -> other)"] = ", ".join(
                f"{format_mean_ci(_mean(left.loc[left['seed'] == seed, 'accuracy']))} -> "
                f"{format_mean_ci(_mean(right.loc[right['seed'] == seed, 'accuracy']))}" for seed in seeds)
        if "seconds" in frame:
            row["s/fold base"] = round(left["seconds"].mean(), 1)
            row["s/fold other"] = round(right["seconds"].mean(), 1)
        rows.append(row)
    if not rows:
        raise ValueError(f"no method and budget{_sources(frame)} was run in both {base!r} and {other!r}")
    table = pd.DataFrame(rows).sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    scored = sorted(map(str, frame["scored_on"].dropna().unique())) if "scored_on" in frame else []
    table.attrs["caption"] = (
        f"Configuration {other} (other) against {base} (base), method by method, by labelled clips per class; "
        "mean accuracy over the folds"
        + (f", each fold's accuracy first averaged over seeds {', '.join(map(str, sorted(frame['seed'].unique())))}"
           if several else "")
        + "; difference = other − base in points with its 95% t interval, paired by fold"
        + ("; seconds per fold of each on its machine" if "seconds" in frame else "")
        + (f". Scored on the {' and '.join(scored)} folds." if scored else "."))
    return table


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

