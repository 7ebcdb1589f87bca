"""Statistics on synthetic per-fold metrics and predictions (no TensorFlow, no audio, no files)."""

from __future__ import annotations

import ast
import inspect
import math

import numpy as np
import pandas as pd
import pytest
from conftest import make_budget_metrics, make_metrics
from sklearn.metrics import confusion_matrix, recall_score

from esc_lib import stats
from esc_lib.stats import (
    budget_curve,
    compare_methods,
    confusion,
    format_mean_ci,
    mean_ci,
    paired_test,
    per_class_accuracy,
    summarise,
)

# Student t quantile t_{0.975, 4}, from printed tables (not from scipy).
T_975_DF4 = 2.776445105


# ---------------------------------------------------------------------- mean_ci


def test_mean_ci_matches_hand_computed_t_interval():
    values = [0.70, 0.72, 0.68, 0.75, 0.70]
    mean = sum(values) / 5
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 4)
    half = T_975_DF4 * sd / math.sqrt(5)
    got = mean_ci(values)
    assert got == pytest.approx((mean, mean - half, mean + half), abs=1e-9)


def test_mean_ci_wider_at_higher_confidence():
    values = [0.5, 0.6, 0.55, 0.58]
    _, low95, high95 = mean_ci(values, 0.95)
    _, low99, high99 = mean_ci(values, 0.99)
    assert low99 < low95 < high95 < high99


@pytest.mark.parametrize("values, expected", [([0.7], (0.7, math.nan, math.nan)), ([0.6, 0.6, 0.6], (0.6, 0.6, 0.6))])
def test_mean_ci_degenerate_cases(values, expected):
    got = mean_ci(values)
    assert got[0] == pytest.approx(expected[0])
    for g, e in zip(got[1:], expected[1:]):
        assert (math.isnan(g) and math.isnan(e)) or g == pytest.approx(e)


@pytest.mark.parametrize("values, confidence, message", [
    ([], 0.95, "empty"),
    ([0.5, float("nan")], 0.95, "finite"),
    ([[0.5, 0.6]], 0.95, "one-dimensional"),
    ([0.5, 0.6], 1.5, "confidence"),
    ([0.5, 0.6], 0, "confidence"),
])
def test_mean_ci_rejects_bad_input(values, confidence, message):
    with pytest.raises(ValueError, match=message):
        mean_ci(values, confidence)


@pytest.mark.parametrize("mean, low, high, expected", [
    (0.723, 0.682, 0.764, "72.3 ± 4.1"),
    (0.5, math.nan, math.nan, "50.0"),
    (math.nan, math.nan, math.nan, "-"),
])
def test_format_mean_ci(mean, low, high, expected):
    assert format_mean_ci(mean, low, high) == expected


# ---------------------------------------------------------------------- paired_test


def test_paired_test_identical_scores_give_p_one_with_reason():
    """Every fold tied is no evidence of a difference: the exact two-sided p-values are 1, not NaN."""
    scores = pd.Series([0.6, 0.7, 0.65, 0.62, 0.68], index=[1, 2, 3, 4, 5])
    result = paired_test(scores, scores)
    assert result["n"] == 5
    assert result["mean_difference"] == 0
    assert result["t_pvalue"] == 1.0 and "all differences are zero" in result["t_note"]
    assert result["wilcoxon_pvalue"] == 1.0 and "all differences are zero" in result["wilcoxon_note"]


@pytest.mark.parametrize("a, b, t_pvalue, wilcoxon_pvalue", [
    ([0.7], [0.7], math.nan, 1.0),                          # one fold, tied
    ([0.7], [0.8], math.nan, 1.0),                          # one fold: its two sign flips are equally likely
    ([0.7, 0.6], [0.7, 0.6], 1.0, 1.0),                     # two folds, tied
    ([0.7, 0.6, 0.5], [0.75, 0.65, 0.55], math.nan, 0.25),  # zero variance: t undefined, signed-rank exact
    ([0.7, 0.6, 0.5], [0.7, 0.6, 0.6], 0.42265, 1.0),       # one non-zero difference among ties (t = 1, 2 df)
])
def test_paired_test_at_its_edges(a, b, t_pvalue, wilcoxon_pvalue):
    result = paired_test(np.array(a), np.array(b))
    for name, expected in (("t_pvalue", t_pvalue), ("wilcoxon_pvalue", wilcoxon_pvalue)):
        if math.isnan(expected):
            assert math.isnan(result[name]) and result[name.replace("pvalue", "note")], name
        else:
            assert result[name] == pytest.approx(expected), name


def test_paired_test_clear_shift_is_significant_by_t_and_at_the_wilcoxon_floor():
    a = np.array([0.50, 0.60, 0.55, 0.52, 0.58])
    b = a + np.array([0.10, 0.12, 0.09, 0.11, 0.10])
    result = paired_test(a, b)
    assert result["mean_difference"] == pytest.approx(0.104)
    assert result["ci_low"] > 0
    assert result["t_pvalue"] < 0.001
    # Five positive differences: exact two-sided p = 2 / 2**5.
    assert result["wilcoxon_pvalue"] == pytest.approx(0.0625)
    assert "0.0625" in result["wilcoxon_note"]


def test_paired_test_agrees_with_scipy_when_defined():
    from scipy import stats

    a = np.array([0.61, 0.55, 0.70, 0.64, 0.59, 0.66])
    b = np.array([0.65, 0.54, 0.76, 0.69, 0.58, 0.71])
    result = paired_test(a, b)
    assert result["t_pvalue"] == pytest.approx(stats.ttest_rel(b, a).pvalue)
    assert result["wilcoxon_pvalue"] == pytest.approx(stats.wilcoxon(b - a, method="exact").pvalue)


def test_paired_test_aligns_series_by_fold_not_position():
    a = pd.Series([0.5, 0.6, 0.7], index=[1, 2, 3])
    b = pd.Series([0.75, 0.55, 0.65], index=[3, 1, 2])  # b - a = +0.05 on every fold... but shuffled
    result = paired_test(a, b)
    assert result["folds"] == [1, 2, 3]
    assert result["mean_difference"] == pytest.approx(0.05)
    assert "zero variance" in result["t_note"]


def test_paired_test_accepts_dataframes():
    a = pd.DataFrame({"fold": [1, 2, 3, 4], "accuracy": [0.5, 0.6, 0.55, 0.58]})
    b = pd.DataFrame({"fold": [4, 3, 2, 1], "accuracy": [0.6, 0.57, 0.66, 0.51]})
    result = paired_test(a, b)
    assert result["mean_difference"] == pytest.approx(np.mean([0.01, 0.06, 0.02, 0.02]))


def test_paired_test_single_pair_leaves_t_undefined_and_the_exact_signed_rank_at_one():
    result = paired_test([0.5], [0.6])
    assert math.isnan(result["t_pvalue"]) and "n = 1" in result["t_note"]
    assert result["wilcoxon_pvalue"] == 1.0 and "p = 1" in result["wilcoxon_note"]


@pytest.mark.parametrize("a, b, error, message", [
    (pd.Series([0.5, 0.6], index=[1, 2]), pd.Series([0.5, 0.6], index=[1, 3]), ValueError, "only in a: \\[2\\]"),
    ([0.5, 0.6], [0.5], ValueError, "same length"),
    (pd.Series([0.5, 0.6], index=[1, 2]), [0.5, 0.6], TypeError, "both"),
    (pd.Series([0.5, 0.6], index=[1, 1]), pd.Series([0.5, 0.6], index=[1, 2]), ValueError, "more than one"),
    (pd.DataFrame({"fold": [1, 2], "acc": [0.5, 0.6]}), pd.DataFrame({"fold": [1, 2], "acc": [0.5, 0.6]}),
     ValueError, "'accuracy'"),
    ([0.5, float("nan")], [0.5, 0.6], ValueError, "finite"),
])
def test_paired_test_rejects_bad_input(a, b, error, message):
    with pytest.raises(error, match=message):
        paired_test(a, b)


def test_wilcoxon_with_a_zero_difference_is_exact_and_repeatable():
    """One tied fold: the exact two-sided p-value with the zero dropped (4 positive differences: 2/16), every call."""
    a = [0.70, 0.72, 0.75, 0.80, 0.66]
    b = [0.74, 0.77, 0.75, 0.86, 0.73]  # differences +4, +5, 0, +6, +7 points
    p_values = [paired_test(a, b)["wilcoxon_pvalue"] for _ in range(6)]
    assert len(set(p_values)) == 1 and p_values[0] == pytest.approx(0.125)
    assert "1 zero difference(s) dropped" in paired_test(a, b)["wilcoxon_note"]


def test_wilcoxon_with_one_non_zero_difference_is_one():
    result = paired_test([0.7, 0.8, 0.9], [0.7, 0.85, 0.9])
    assert result["wilcoxon_pvalue"] == 1.0 and "one left" in result["wilcoxon_note"]


# ---------------------------------------------------------------------- summarise / compare


def test_summarise_values_and_shape():
    metrics = make_metrics()
    summary = summarise(metrics)
    assert len(summary) == 8  # 4 configs x 2 methods
    assert list(summary.columns) == ["config", "method", "mean", "ci_low", "ci_high", "std", "n_folds", "accuracy"]
    row = summary[(summary["config"] == "bs16-f32-unpool-bn0") & (summary["method"] == "supervised")].iloc[0]
    folds = metrics[(metrics["config"] == "bs16-f32-unpool-bn0") & (metrics["method"] == "supervised")]["accuracy"]
    assert row["mean"] == pytest.approx(folds.mean())
    assert row["std"] == pytest.approx(folds.std(ddof=1))
    assert row["n_folds"] == 5
    half = T_975_DF4 * folds.std(ddof=1) / math.sqrt(5)
    assert row["ci_high"] - row["mean"] == pytest.approx(half)
    assert row["accuracy"] == f"{folds.mean() * 100:.1f} ± {half * 100:.1f}"


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m.drop(columns="config"), "'config'"),
    (lambda m: m.assign(accuracy=m["accuracy"] * 100), "fraction"),
    (lambda m: pd.concat([m, m.iloc[[0]]]), "more than once"),
    (lambda m: m.iloc[0:0], "empty"),
])
def test_summarise_rejects_bad_metrics(mutate, message):
    with pytest.raises(ValueError, match=message):
        summarise(mutate(make_metrics()))


def test_summarise_rejects_non_frame():
    with pytest.raises(TypeError, match="load_metrics"):
        summarise("metrics.csv")


def test_compare_methods_pairs_by_fold():
    metrics = make_metrics(shift=0.05)
    comparison = compare_methods(metrics)
    assert len(comparison) == 4
    row = comparison[comparison["config"] == "bs32-f64-unpool-bn0"].iloc[0]
    sub = metrics[metrics["config"] == "bs32-f64-unpool-bn0"]
    sup = sub[sub["method"] == "supervised"].set_index("fold")["accuracy"]
    pre = sub[sub["method"] == "pretrained"].set_index("fold")["accuracy"]
    expected = paired_test(sup, pre)
    assert row["difference"] == pytest.approx(expected["mean_difference"])
    assert row["t_pvalue"] == pytest.approx(expected["t_pvalue"])
    assert row["supervised_mean"] == pytest.approx(sup.mean())
    assert row["n_folds"] == 5
    one = compare_methods(metrics, config="bs32-f64-unpool-bn0")
    assert len(one) == 1 and one.iloc[0]["difference"] == pytest.approx(row["difference"])


def test_compare_methods_missing_method_and_errors():
    metrics = make_metrics()
    metrics = metrics[~((metrics["config"] == "bs32-f64-unpool-bn0") & (metrics["method"] == "pretrained"))]
    comparison = compare_methods(metrics)
    row = comparison[comparison["config"] == "bs32-f64-unpool-bn0"].iloc[0]
    assert row["pretrained"] == "-" and math.isnan(row["t_pvalue"]) and "no pretrained" in row["note"]
    with pytest.raises(ValueError, match="not found"):
        compare_methods(metrics, config="bs99")
    uneven = make_metrics()
    uneven = uneven[~((uneven["method"] == "pretrained") & (uneven["fold"] == 5))]
    with pytest.raises(ValueError, match="only in a: \\[5\\]"):
        compare_methods(uneven)


def test_compare_methods_shares_a_baseline_without_decoder():
    metrics = make_metrics(decoders=("unpool", "upsample"))
    # The supervised model has no decoder: keep one copy with the decoder left empty.
    supervised = metrics[(metrics["method"] == "supervised") & (metrics["decoder"] == "unpool")].assign(decoder="none")
    metrics = pd.concat([supervised, metrics[metrics["method"] == "pretrained"]], ignore_index=True)
    comparison = compare_methods(metrics, by=("batch_size", "filters", "decoder"))
    assert len(comparison) == 8
    assert set(comparison["decoder"]) == {"unpool", "upsample"}
    assert comparison["t_pvalue"].notna().all()


# ---------------------------------------------------------------------- integer budgets (0 = all) and curves


def test_budget_order_and_label_put_all_last():
    assert stats.ALL_LABELS == 0
    assert sorted([0, 16, 4, 8], key=stats.budget_order) == [4, 8, 16, 0]
    assert [stats.budget_label(v) for v in (4, np.int64(8), 16.0, 0)] == ["4", "8", "16", "all"]
    # Elsewhere 0 is just a number: the from-scratch baseline has no pool.
    assert sorted([300, 0, 100], key=lambda v: stats.budget_order(v, "pool_size")) == [0, 100, 300]
    assert stats.budget_label(0, "pool_size") == "0"


@pytest.mark.parametrize("bad", ["all", "8", 8.5, -1, math.nan, None, True])
def test_non_integer_budget_is_rejected(bad):
    with pytest.raises(ValueError, match="labels_per_class must hold non-negative integers"):
        stats.budget_order(bad)
    metrics = make_budget_metrics().astype({"labels_per_class": object})
    metrics.loc[metrics.index[-1], "labels_per_class"] = bad
    with pytest.raises(ValueError, match="labels_per_class"):
        budget_curve(metrics)


def test_summary_and_comparison_by_budget_put_all_last():
    metrics = make_budget_metrics()
    summary = summarise(metrics, by=("method", "labels_per_class"))
    assert list(summary["labels_per_class"]) == [4, 8, 16, 0] * 2
    assert list(compare_methods(metrics, by="labels_per_class")["labels_per_class"]) == [4, 8, 16, 0]


def test_budget_curve_orders_numbers_then_all():
    curve = budget_curve(make_budget_metrics())
    assert len(curve) == 8
    pretrained = curve[curve["method"] == "pretrained"]
    assert list(pretrained["labels_per_class"]) == [4, 8, 16, 0]  # 0 (all) is the largest budget: last
    assert list(pretrained["budget"]) == ["4", "8", "16", "all"]
    assert curve.columns.get_loc("budget") == curve.columns.get_loc("labels_per_class") + 1
    assert pretrained["mean"].tolist() == pytest.approx([0.48, 0.58, 0.68, 0.78])
    assert (curve["n_folds"] == 5).all()


def test_pool_size_curve_keeps_zero_as_a_number():
    metrics = make_metrics(shift=0.05)
    metrics = metrics[metrics["config"] == "bs32-f64-unpool-bn0"].copy()
    metrics["pool_size"] = np.where(metrics["method"] == "pretrained", 591, 0)
    extra = metrics[metrics["method"] == "pretrained"].assign(pool_size=100)
    curve = budget_curve(pd.concat([metrics, extra]), x="pool_size")
    assert list(zip(curve["method"], curve["pool_size"])) == [("pretrained", 100), ("pretrained", 591),
                                                              ("supervised", 0)]
    assert "budget" not in curve.columns  # the text column is for label budgets ("all"); pool sizes read as numbers


# ---------------------------------------------------------------------- per-clip analysis

CLASSES = ["dog", "rain", "sea_waves", "crying_baby"]


def _predictions(seed=0, n=60):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, n)  # "crying_baby" never occurs
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, 4, n))
    return y_true, y_pred


@pytest.mark.parametrize("as_names", [False, True])
def test_confusion_matches_sklearn(as_names):
    y_true, y_pred = _predictions()
    names = np.array(CLASSES)
    given = (names[y_true], names[y_pred]) if as_names else (y_true, y_pred)
    matrix = confusion(*given, CLASSES)
    assert list(matrix.index) == CLASSES and list(matrix.columns) == CLASSES
    assert matrix.index.name == "true" and matrix.columns.name == "predicted"
    np.testing.assert_array_equal(matrix.to_numpy(), confusion_matrix(y_true, y_pred, labels=[0, 1, 2, 3]))


def test_per_class_accuracy_matches_sklearn():
    y_true, y_pred = _predictions()
    table = per_class_accuracy(y_true, y_pred, CLASSES)
    assert list(table["class"]) == CLASSES
    expected = recall_score(y_true, y_pred, labels=[0, 1, 2], average=None)
    np.testing.assert_allclose(table["accuracy"][:3], expected)
    assert math.isnan(table["accuracy"][3]) and table["n"][3] == 0
    assert table["n"].sum() == len(y_true)
    assert (table["correct"][:3] == [np.sum((y_true == k) & (y_pred == k)) for k in range(3)]).all()


@pytest.mark.parametrize("y_true, y_pred, classes, message", [
    ([0, 1], [0], CLASSES, "differ in length"),
    ([0, 7], [0, 1], CLASSES, "index 7"),
    (["dog", "cat"], ["dog", "dog"], CLASSES, "cat"),
    ([0], [0], [], "empty"),
    ([0], [0], ["a", "a"], "duplicate"),
])
def test_per_clip_functions_reject_bad_input(y_true, y_pred, classes, message):
    with pytest.raises(ValueError, match=message):
        confusion(y_true, y_pred, classes)
    with pytest.raises(ValueError, match=message):
        per_class_accuracy(y_true, y_pred, classes)


def test_confusion_accepts_object_integer_labels():
    y = pd.Series([0, 1, 2, 1], dtype=object)
    assert confusion(y, y, CLASSES[:3]).to_numpy().trace() == 4


# ---------------------------------------------------------------------- several runs: seeds and configurations

def _seed_folds(seed: int, supervised, selftrain, budget: int = 0, config: str = "c") -> pd.DataFrame:
    rows = [{"config": config, "method": method, "seed": seed, "labels_per_class": budget, "fold": fold + 1,
             "accuracy": accuracy}
            for method, accuracies in (("supervised", supervised), ("selftrain", selftrain))
            for fold, accuracy in enumerate(accuracies)]
    return pd.DataFrame(rows)


def test_seed_comparison_averages_the_seeds_of_a_fold_then_pairs_by_fold():
    from scipy import stats as scipy_stats

    seed0 = _seed_folds(0, [0.80, 0.90, 0.85, 0.95, 0.90], [0.85, 0.90, 0.90, 0.95, 0.95])
    seed1 = _seed_folds(1, [0.75, 0.90, 0.90, 0.90, 0.95], [0.80, 0.95, 0.90, 0.90, 0.90])
    both = pd.concat([seed0.assign(source="run0"), seed1.assign(source="run1")])
    table = stats.seed_comparison(both)
    row = table.iloc[0]
    assert len(table) == 1 and row["method"] == "selftrain" and row["labels per class"] == "all"
    assert row["folds"] == 5 and row["seeds"] == "0, 1"
    # The two seeds of a fold score the same clips: the test counts 5 fold means, not 10 pairs.
    fold_means = both.groupby(["method", "fold"])["accuracy"].mean()
    supervised, selftrain = fold_means["supervised"].to_numpy(), fold_means["selftrain"].to_numpy()
    assert row["p (paired t)"] == pytest.approx(scipy_stats.ttest_rel(selftrain, supervised).pvalue)
    assert row["p (Wilcoxon)"] == pytest.approx(scipy_stats.wilcoxon(selftrain - supervised).pvalue)
    assert row["difference (pp)"].startswith(f"+{(selftrain - supervised).mean() * 100:.1f}")
    assert row["supervised (%)"].startswith(f"{supervised.mean() * 100:.1f}")
    assert row["per seed (supervised -> method)"] == "88.0 -> 91.0, 88.0 -> 89.0"
    assert "averaged over the seeds" in table.attrs["caption"]
    # One seed is the plain per-fold comparison; a budget only supervised ran is left out.
    alone = stats.seed_comparison(pd.concat([seed0, _seed_folds(0, [0.5, 0.6], [], budget=4)])).iloc[0]
    single = seed0.pivot(index="fold", columns="method", values="accuracy")
    assert alone["p (paired t)"] == pytest.approx(scipy_stats.ttest_rel(single["selftrain"], single["supervised"]).pvalue)
    assert alone["seeds"] == "0" and alone["labels per class"] == "all"


def test_seed_comparison_orders_budgets_with_every_label_last_then_methods_by_name():
    folds = pd.concat([_seed_folds(0, [0.8, 0.9, 0.85], [0.85, 0.9, 0.9]),
                       _seed_folds(0, [0.5, 0.6, 0.55], [0.6, 0.6, 0.7], budget=4),
                       _seed_folds(0, [0.8, 0.9, 0.85], [0.8, 0.95, 0.9]).query("method == 'selftrain'")
                       .assign(method="fixmatch")])
    table = stats.seed_comparison(folds, methods=["selftrain", "fixmatch"])
    assert list(zip(table["labels per class"], table["method"])) == [("4", "selftrain"), ("all", "fixmatch"),
                                                                      ("all", "selftrain")]
    assert stats.seed_comparison(folds).equals(table)  # by default every method but supervised
    assert list(stats.seed_comparison(folds, methods=["fixmatch"])["method"]) == ["fixmatch"]


def test_a_method_with_fewer_seeds_than_supervised_is_paired_with_supervised_of_its_own_seeds():
    # A second seed run only where the first was not conclusive: fixmatch has seed 0, selftrain seeds 0 and 1.
    seed0 = _seed_folds(0, [0.80, 0.90, 0.85], [0.85, 0.90, 0.90])
    seed1 = _seed_folds(1, [0.70, 0.70, 0.70], [0.75, 0.80, 0.70])
    fixmatch = seed0.query("method == 'selftrain'").assign(method="fixmatch", accuracy=[0.90, 0.95, 0.85])
    table = stats.seed_comparison(pd.concat([seed0, seed1, fixmatch])).set_index("method")
    assert table.loc["fixmatch", "seeds"] == "0"
    assert table.loc["fixmatch", "supervised (%)"] == stats.seed_comparison(pd.concat([seed0, fixmatch]),
                                                                            methods=["fixmatch"]).iloc[0]["supervised (%)"]
    assert table.loc["selftrain", "seeds"] == "0, 1"
    pairs = {method: compared for method, _, _, compared in stats.seed_pairs(pd.concat([seed0, seed1, fixmatch]))}
    assert pairs["fixmatch"]["difference"] == pytest.approx((0.10 + 0.05 + 0.0) / 3)  # seed 0 alone, a fraction


def test_seed_comparison_refuses_a_run_given_twice_mixed_configurations_and_unmatched_folds():
    seed0 = _seed_folds(0, [0.8, 0.9, 0.85], [0.85, 0.9, 0.9])
    with pytest.raises(ValueError, match=r"repeat method 'supervised', all labels per class, seed 0, fold 1 "
                                         r"\(in a, b\): give each seed's run once"):
        stats.seed_comparison(pd.concat([seed0.assign(source="a"), seed0.assign(source="b")]))
    seed1 = _seed_folds(1, [0.8, 0.9, 0.85], [0.85, 0.9, 0.9])
    with pytest.raises(ValueError, match=r"mix config values: c \(in a\); other \(in b\)"):
        stats.seed_comparison(pd.concat([seed0.assign(source="a"), seed1.assign(source="b", config="other")]))
    with pytest.raises(ValueError, match="mix scored_on values"):
        stats.seed_comparison(pd.concat([seed0.assign(scored_on="test"), seed1.assign(scored_on="validation")]))
    short = pd.concat([seed0, _seed_folds(1, [0.8, 0.9], [0.8, 0.9, 0.95])])
    with pytest.raises(ValueError, match="selftrain and supervised ran different seeds or folds at all labels per "
                                         "class: seed 1 fold 3 only one of them"):
        stats.seed_comparison(short)
    with pytest.raises(ValueError, match="no 'supervised' rows"):
        stats.seed_comparison(seed0[seed0["method"] == "selftrain"])
    with pytest.raises(ValueError, match="'supervised' is what the others are compared with"):
        stats.seed_comparison(seed0, methods=["supervised"])
    with pytest.raises(ValueError, match=r"methods \['fixmatch'\] have no rows"):
        stats.seed_comparison(seed0, methods=["fixmatch"])
    with pytest.raises(ValueError, match="rows without a seed"):
        stats.seed_comparison(seed0.assign(seed=float("nan")))
    with pytest.raises(ValueError, match="lacks column.*'seed'"):
        stats.seed_comparison(seed0.drop(columns="seed"))


def _config_folds(seed: int, base, other, *, method: str = "supervised", budget: int = 0) -> pd.DataFrame:
    return pd.DataFrame([{"config": config, "method": method, "seed": seed, "labels_per_class": budget,
                          "fold": fold, "accuracy": accuracy, "seconds": seconds}
                         for config, accuracies, seconds in (("net", base, 10.0), ("net-ens3", other, 30.0))
                         for fold, accuracy in enumerate(accuracies, start=1)])


def test_config_comparison_pairs_the_same_method_of_two_configurations_by_fold():
    folds = _config_folds(0, [0.8, 0.9, 0.7], [0.85, 0.9, 0.8])
    table = stats.config_comparison(folds, "net", "ens3")
    row = table.iloc[0]
    expected = paired_test([0.8, 0.9, 0.7], [0.85, 0.9, 0.8])
    assert (row["method"], row["labels per class"], row["folds"]) == ("supervised", "all", 3)
    assert (row["base (%)"], row["other (%)"]) == (80.0, 85.0)
    assert row["p (paired t)"] == round(expected["t_pvalue"], 3)
    assert row["difference (pp)"] == stats.format_difference(expected["mean_difference"], expected["ci_low"],
                                                             expected["ci_high"])
    assert (row["s/fold base"], row["s/fold other"]) == (10.0, 30.0)
    assert "seeds" not in table.columns  # one run: nothing to pool
    caption = table.attrs["caption"]
    assert "net-ens3 (other) against net (base)" in caption and "averaged" not in caption
    # Without seconds the columns are left out; a method only one of the two ran is left out.
    extra = _config_folds(0, [0.5, 0.6, 0.7], [0.5, 0.6, 0.7], method="fixmatch").query("config == 'net'")
    lean = stats.config_comparison(pd.concat([folds, extra]).drop(columns="seconds"), "net", "net-ens3")
    assert list(lean["method"]) == ["supervised"] and "s/fold base" not in lean.columns


def test_config_comparison_averages_the_seeds_of_a_fold_before_pairing():
    seed0 = _config_folds(0, [0.80, 0.90, 0.70, 0.76], [0.85, 0.90, 0.80, 0.81])
    seed1 = _config_folds(1, [0.70, 0.90, 0.80, 0.84], [0.75, 0.95, 0.80, 0.90])
    table = stats.config_comparison(pd.concat([seed0.assign(source="run0"), seed1.assign(source="run1")]),
                                    "net", "ens3")
    row = table.iloc[0]
    base = np.mean([[0.80, 0.90, 0.70, 0.76], [0.70, 0.90, 0.80, 0.84]], axis=0)
    other = np.mean([[0.85, 0.90, 0.80, 0.81], [0.75, 0.95, 0.80, 0.90]], axis=0)
    expected = paired_test(base, other)
    assert row["folds"] == 4 and row["seeds"] == "0, 1"  # 4 fold means, not 8 pairs
    assert row["p (paired t)"] == round(expected["t_pvalue"], 3)
    assert row["per seed (base -> other)"] == "79.0 -> 84.0, 81.0 -> 85.0"
    assert "averaged over seeds 0, 1" in table.attrs["caption"]


def test_config_comparison_puts_every_label_last_and_keeps_the_methods_asked_for():
    folds = pd.concat([_config_folds(0, [0.8, 0.9, 0.7], [0.85, 0.9, 0.8]),
                       _config_folds(0, [0.5, 0.6, 0.4], [0.55, 0.6, 0.5], budget=4),
                       _config_folds(0, [0.5, 0.6, 0.4], [0.6, 0.6, 0.5], method="selftrain", budget=4)])
    table = stats.config_comparison(folds, "net", "ens3")
    assert list(zip(table["method"], table["labels per class"])) == [("selftrain", "4"), ("supervised", "4"),
                                                                      ("supervised", "all")]
    assert list(stats.config_comparison(folds, "net", "ens3", methods=["selftrain"])["method"]) == ["selftrain"]


def test_config_comparison_refuses_what_cannot_be_paired():
    folds = _config_folds(0, [0.8, 0.9, 0.7], [0.85, 0.9, 0.8])
    with pytest.raises(ValueError, match=r"2 configurations end with ''.*\(net, net-ens3\)"):
        stats.config_comparison(folds, "", "ens3")
    with pytest.raises(ValueError, match=r"0 configurations end with 'wide'"):
        stats.config_comparison(folds, "net", "wide")
    with pytest.raises(ValueError, match="both name configuration 'net'"):
        stats.config_comparison(folds, "net", "net")
    with pytest.raises(ValueError, match=r"methods without rows: selftrain \(in net\), selftrain \(in net-ens3\)"):
        stats.config_comparison(folds, "net", "ens3", methods=["selftrain"])
    uneven = folds[~((folds["config"] == "net-ens3") & (folds["fold"] == 3))]
    with pytest.raises(ValueError, match="supervised of net-ens3 and supervised of net ran different seeds or folds "
                                         "at all labels per class: seed 0 fold 3 only one of them"):
        stats.config_comparison(uneven, "net", "ens3")
    twice = pd.concat([folds.assign(source="a"), folds.assign(source="b")])
    with pytest.raises(ValueError, match=r"repeat configuration 'net', method 'supervised'.*\(in a, b\)"):
        stats.config_comparison(twice, "net", "ens3")
    with pytest.raises(ValueError, match="several runs have no seed column"):
        stats.config_comparison(twice.drop(columns="seed"), "net", "ens3")
    apart = pd.concat([folds[folds["config"] == "net"], _config_folds(0, [0.5] * 3, [0.5] * 3, budget=4)
                       .query("config == 'net-ens3'")])
    with pytest.raises(ValueError, match="no method and budget was run in both 'net' and 'net-ens3'"):
        stats.config_comparison(apart, "net", "ens3")


def test_match_config_prefers_the_exact_name_then_a_unique_ending():
    folds = pd.DataFrame({"config": ["net", "bignet", "bignet-ens3"]})
    assert stats.match_config(folds, "net") == "net"  # exact, although "bignet" ends with it too
    assert stats.match_config(folds, "ens3") == "bignet-ens3"
    with pytest.raises(ValueError, match="0 configurations end with 'wide'.*bignet, bignet-ens3, net are there"):
        stats.match_config(folds, "wide")


def test_comparison_row_turns_a_compare_methods_row_into_a_table_row():
    compared = compare_methods(make_budget_metrics(), by="labels_per_class").iloc[-1]  # every label: last
    row = stats.comparison_row(compared, "pretrained")
    assert row["labels per class"] == "all" and row["_order"] == math.inf
    assert row["supervised (%)"] == compared["supervised"] and row["method (%)"] == compared["pretrained"]
    assert row["difference (pp)"].startswith("+5.0") and row["folds"] == 5


# ---------------------------------------------------------------------- the module


def test_public_api_is_documented():
    for name in stats.__all__:
        item = getattr(stats, name)
        if callable(item):
            assert item.__doc__ and "Parameters" in item.__doc__, name


def test_stats_reads_and_writes_no_file_and_imports_nothing_of_esc_lib():
    """Statistics are pure: the files are esc_lib.tables' job, so stats can be used (and tested) without any."""
    tree = ast.parse(inspect.getsource(stats))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not [name for name in imported if name.split(".")[0] in {"esc_lib", "os", "io", "pathlib", "shutil"}]
    io_names = {"open", "read_csv", "to_csv", "read_text", "write_text", "read_bytes", "write_bytes", "Path",
                "to_markdown", "savefig", "mkdir", "unlink"}
    called = {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
              for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert not called & io_names, sorted(called & io_names)
