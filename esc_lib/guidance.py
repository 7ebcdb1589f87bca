"""Which way of using unlabeled audio to take at a label budget: a published budgets study read as advice.

A budgets study (``profiles/budgets.yaml``; one results folder per seed) puts every method against
the same network trained from scratch (``supervised``) at 4, 8, 16 and every labelled clip per
class, on the same folds.  This module reads its fold accuracies (``fold_accuracies.csv``, which
notebook 04 publishes) and gives

- :func:`study`: every method at every budget, paired with supervised by fold (and seed, each
  fold's accuracy averaged over the seeds first: :func:`esc_lib.stats.seed_pairs`), with the
  seconds each took per fold;
- :func:`recommend`: one method per budget - the largest gain over supervised among the methods
  ahead of it with a paired t p-value below ``alpha``; where none is, supervised (the unlabeled
  audio did not pay at that budget, and supervised is the cheapest);
- :func:`headline`: the README's table of both, and :func:`replace_block`, which writes it
  between two marker lines (``python -m esc_lib recommend RUN --readme README.md``).

With five folds a paired t test needs a gain that is large next to its spread across folds; a
recommendation of supervised therefore says "no method was shown to pay here", not "every method
hurts".  The p-values are not corrected for the several methods compared at a budget: the
recommendation is the best of several, so a p just below ``alpha`` is weaker evidence than it reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from esc_lib import stats

__all__ = ["ALPHA", "BEGIN", "END", "Recommendation", "study", "recommend", "for_budget", "headline",
           "replace_block"]

#: Significance level a method's gain over supervised must reach to be recommended (paired t over folds).
ALPHA = 0.05
#: The lines that enclose the generated block in a Markdown file (the README).
BEGIN = "<!-- study-table: begin (written by python -m esc_lib recommend --readme; edits inside are overwritten) -->"
END = "<!-- study-table: end -->"


@dataclass(frozen=True)
class Recommendation:
    """The method recommended at one budget and why.

    Attributes
    ----------
    labels_per_class : int
        The budget (0: every labelled clip).
    method : str
        The recommended method (:data:`esc_lib.stats.BASELINE` where none paid).
    accuracy, supervised_accuracy : float
        Mean accuracies over the folds (fractions), the method's and supervised's.
    difference : float
        Method minus supervised in points (0 for supervised itself).
    p : float
        Paired t p-value of the difference (nan for supervised itself).
    seconds, supervised_seconds : float
        Mean seconds per fold of the method and of supervised (nan when the runs did not record them).
    reason : str
        One sentence: why this method, naming the best method where none paid.
    """

    labels_per_class: int
    method: str
    accuracy: float
    supervised_accuracy: float
    difference: float
    p: float
    seconds: float
    supervised_seconds: float
    reason: str

    @property
    def budget(self) -> str:
        """The budget as tables show it (``"all"`` for every labelled clip)."""
        return stats.budget_label(self.labels_per_class)


def _seconds(folds: pd.DataFrame, method: str, budget: int, seeds) -> float:
    if "seconds" not in folds:
        return math.nan
    rows = folds[(folds["method"] == method) & (folds["labels_per_class"] == budget) & folds["seed"].isin(seeds)]
    values = pd.to_numeric(rows["seconds"], errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def study(folds: pd.DataFrame) -> pd.DataFrame:
    """Every method against supervised at every budget, in numbers.

    Parameters
    ----------
    folds : pd.DataFrame
        Fold accuracies of one configuration, one or more seeds (as
        :func:`esc_lib.tables.load_fold_accuracies` reads them), with the
        columns :data:`esc_lib.stats.SEED_COMPARISON_COLUMNS` and, where the
        runs recorded it, ``seconds``.

    Returns
    -------
    table : pd.DataFrame
        One row per budget and method (budgets ascending, every label last):
        ``labels_per_class``, ``method``, ``seeds``, ``n_folds``,
        ``supervised`` and ``accuracy`` (mean fractions), ``difference``
        with ``difference_ci_low``/``_ci_high`` (points), ``t_pvalue``,
        ``wilcoxon_pvalue``, ``seconds`` and ``supervised_seconds`` (per
        fold).  ``table.attrs["scored_on"]``: the folds scored (``"test"``
        or ``"validation"``), None where the runs do not say.

    Raises
    ------
    ValueError
        As :func:`esc_lib.stats.seed_pairs` (a missing column, mixed
        configurations, a run given twice, unmatched folds).
    """
    rows = []
    for method, budget, seeds, compared in stats.seed_pairs(folds):
        rows.append({
            "labels_per_class": budget, "method": method, "seeds": ", ".join(map(str, seeds)),
            "n_folds": int(compared["n_folds"]),
            "supervised": compared[f"{stats.BASELINE}_mean"], "accuracy": compared[f"{method}_mean"],
            "difference": 100 * compared["difference"], "difference_ci_low": 100 * compared["difference_ci_low"],
            "difference_ci_high": 100 * compared["difference_ci_high"],
            "t_pvalue": compared["t_pvalue"], "wilcoxon_pvalue": compared["wilcoxon_pvalue"],
            "seconds": _seconds(folds, method, budget, seeds),
            "supervised_seconds": _seconds(folds, stats.BASELINE, budget, seeds),
        })
    table = pd.DataFrame(rows)
    order = [stats.budget_order(b) for b in table["labels_per_class"]]
    table = table.assign(_order=order).sort_values(["_order", "method"], kind="stable").drop(columns="_order") \
        .reset_index(drop=True)
    scored = set(folds["scored_on"].dropna().astype(str)) if "scored_on" in folds else set()
    table.attrs["scored_on"] = scored.pop() if len(scored) == 1 else None
    return table


def _check_alpha(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    return float(alpha)


def recommend(table: pd.DataFrame, alpha: float = ALPHA) -> list[Recommendation]:
    """One method per budget of :func:`study`'s table.

    Parameters
    ----------
    table : pd.DataFrame
        :func:`study`'s output.
    alpha : float in (0, 1)
        A method is a candidate at a budget when it is ahead of supervised
        with a paired t p-value below this.

    Returns
    -------
    recommendations : list of Recommendation
        One per budget, budgets ascending (every label last): the candidate
        with the largest gain (ties: the cheaper); where there is none,
        supervised, the reason naming the method with the largest gain.

    Raises
    ------
    ValueError
        If ``alpha`` is not in (0, 1) or ``table`` is empty.
    """
    alpha = _check_alpha(alpha)
    if table.empty:
        raise ValueError("the study table is empty: give fold accuracies of supervised and at least one other method")
    recommendations = []
    for budget, rows in table.groupby("labels_per_class", sort=False):
        rows = rows.assign(_cost=rows["seconds"].fillna(math.inf))
        paid = rows[(rows["difference"] > 0) & (rows["t_pvalue"] < alpha)]
        base_accuracy = float(rows["supervised"].iloc[0])
        base_seconds = float(rows["supervised_seconds"].iloc[0])
        if len(paid):
            best = paid.sort_values(["difference", "_cost"], ascending=[False, True], kind="stable").iloc[0]
            others = [m for m in paid["method"] if m != best["method"]]
            reason = (f"{best['method']} gains {best['difference']:+.1f} points over supervised "
                      f"(p {best['t_pvalue']:.2g}, paired by fold)"
                      + (f"; also ahead with p < {alpha:g}: {', '.join(others)}" if others else ""))
            recommendations.append(Recommendation(
                int(budget), str(best["method"]), float(best["accuracy"]), base_accuracy, float(best["difference"]),
                float(best["t_pvalue"]), float(best["seconds"]), base_seconds, reason))
        else:
            best = rows.sort_values(["difference", "_cost"], ascending=[False, True], kind="stable").iloc[0]
            reason = (f"no method was ahead of supervised with p < {alpha:g}; the largest gain: {best['method']} "
                      f"{best['difference']:+.1f} points (p {best['t_pvalue']:.2g})")
            recommendations.append(Recommendation(
                int(budget), stats.BASELINE, base_accuracy, base_accuracy, 0.0, math.nan, base_seconds, base_seconds,
                reason))
    return sorted(recommendations, key=lambda r: stats.budget_order(r.labels_per_class))


def for_budget(recommendations: Sequence[Recommendation], labels_per_class: int) -> tuple[Recommendation, str]:
    """The recommendation that holds for a user's budget, and a sentence saying which budget it was read at.

    Parameters
    ----------
    recommendations : sequence of Recommendation
        :func:`recommend`'s output.
    labels_per_class : int >= 0
        The user's labelled clips per class (0: as many as the study's
        "every label").

    Returns
    -------
    recommendation, note : Recommendation, str
        The study's largest budget not above the user's (its smallest where
        the user has fewer), and how it was chosen.

    Raises
    ------
    ValueError
        If ``labels_per_class`` is negative or ``recommendations`` is empty.
    """
    if labels_per_class < 0:
        raise ValueError(f"labels_per_class must be >= 0 (0: every label), got {labels_per_class!r}")
    if not recommendations:
        raise ValueError("recommendations is empty")
    measured = sorted(recommendations, key=lambda r: stats.budget_order(r.labels_per_class))
    wanted = stats.budget_order(labels_per_class)
    exact = [r for r in measured if r.labels_per_class == labels_per_class]
    if exact:
        return exact[0], f"measured at {exact[0].budget} labelled clips per class"
    below = [r for r in measured if stats.budget_order(r.labels_per_class) <= wanted]
    budgets = ", ".join(r.budget for r in measured)
    if not below:
        return measured[0], (f"the study measured {budgets} labelled clips per class; {labels_per_class} is fewer "
                             f"than any, so this is read at {measured[0].budget} (with fewer labels the gains of "
                             "unlabeled audio are usually larger, the risks too)")
    chosen = below[-1]
    yours = labels_per_class if labels_per_class else "every label"
    return chosen, (f"the study measured {budgets} labelled clips per class; read at {chosen.budget}, "
                    f"the largest not above {yours}")


def _number(value: float, digits: int = 1) -> str:
    return stats.MISSING_TEXT if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def headline(table: pd.DataFrame, recommendations: Sequence[Recommendation], *, sources: Sequence[str] = (),
             alpha: float = ALPHA) -> str:
    """The README's block: every method at every budget, the recommendation per budget, the cost.

    Parameters
    ----------
    table : pd.DataFrame
        :func:`study`'s output.
    recommendations : sequence of Recommendation
        :func:`recommend`'s output for the same table.
    sources : sequence of str
        The results folders the numbers come from, named under the table.
    alpha : float
        The level the recommendations used (said in the text).

    Returns
    -------
    text : str
        Markdown: a table of methods by budget (mean accuracy %, and for each
        method the difference to supervised in points with its paired t p;
        the recommended cell in bold), the recommended method per budget, and
        a table of seconds per fold.
    """
    budgets = list(dict.fromkeys(table["labels_per_class"]))
    labels = [stats.budget_label(b) for b in budgets]
    chosen = {r.labels_per_class: r.method for r in recommendations}
    methods = list(dict.fromkeys(table.sort_values("method")["method"]))
    pooled = {stats.budget_label(b): sorted({s.strip() for t in rows["seeds"] for s in str(t).split(",")})
              for b, rows in table.groupby("labels_per_class", sort=False)}
    several = any(len(seeds) > 1 for seeds in pooled.values())

    def cell(text: str, bold: bool) -> str:
        return f"**{text}**" if bold else text

    lines = ["| method | " + " | ".join(labels) + " |", "|---|" + "---|" * len(budgets)]
    base = table.drop_duplicates("labels_per_class").set_index("labels_per_class")
    lines.append(f"| {stats.BASELINE} | " + " | ".join(
        cell(f"{100 * base.loc[b, 'supervised']:.1f}", chosen.get(b) == stats.BASELINE) for b in budgets) + " |")
    indexed = table.set_index(["method", "labels_per_class"])
    for method in methods:
        cells = []
        for b in budgets:
            if (method, b) not in indexed.index:
                cells.append(stats.MISSING_TEXT)
                continue
            row = indexed.loc[(method, b)]
            cells.append(cell(f"{100 * row['accuracy']:.1f} ({row['difference']:+.1f}, p {row['t_pvalue']:.2g})",
                              chosen.get(b) == method))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append("| **recommended** | " + " | ".join(chosen.get(b, stats.MISSING_TEXT) for b in budgets) + " |")
    folds = int(table["n_folds"].max())
    scored = table.attrs.get("scored_on")
    seeds = ", ".join(
        f"seed{'s' if len(s) > 1 else ''} {' and '.join(s)} at {budget if budget == 'all' else budget + ' labels per class'}"
        for budget, s in pooled.items())
    seeds = f" ({seeds})" if several else ""
    out = [
        f"Mean accuracy (%) over {folds} {scored + ' ' if scored else ''}folds{seeds}; beside each method its "
        f"difference to supervised in points and the paired t p-value (paired by fold"
        f"{', each fold averaged over the seeds' if several else ''}). Recommended (bold): the largest gain "
        f"among the methods ahead of supervised with p < {alpha:g}, else supervised.",
        "",
        *lines,
        "",
    ]
    for r in recommendations:
        out.append(f"- **{r.budget} labelled clips per class: {r.method}** - {r.reason}.")
    cost_methods = [stats.BASELINE, *methods]
    cost = ["", "Seconds per fold (training only; the CAE's and the contrastive encoder's pre-training are in each "
                "folder's `cost.csv`):", "", "| method | " + " | ".join(labels) + " |", "|---|" + "---|" * len(budgets)]
    for method in cost_methods:
        values = []
        for b in budgets:
            if method == stats.BASELINE:
                values.append(_number(base.loc[b, "supervised_seconds"], 0))
            elif (method, b) in indexed.index:
                values.append(_number(indexed.loc[(method, b), "seconds"], 0))
            else:
                values.append(stats.MISSING_TEXT)
        cost.append(f"| {method} | " + " | ".join(values) + " |")
    out += cost
    if sources:
        out += ["", "From " + ", ".join(f"`{s}`" for s in sources) + "."]
    return "\n".join(out) + "\n"


def replace_block(text: str, block: str, *, name: str = "the file") -> str:
    """``text`` with everything between :data:`BEGIN` and :data:`END` replaced by ``block``.

    Parameters
    ----------
    text : str
        A Markdown file's text holding each marker line once, BEGIN first.
    block : str
        What goes between them.
    name : str
        The file's name, for the error.

    Returns
    -------
    text : str

    Raises
    ------
    ValueError
        If a marker is missing, repeated or out of order (the message says
        which lines to add).
    """
    begins, ends = text.count(BEGIN), text.count(END)
    if begins != 1 or ends != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{name} must hold the line {BEGIN!r} once and, after it, {END!r} once "
                         f"(found {begins} and {ends}): add them where the study's table belongs")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{block.rstrip()}\n{END}{tail}"

