"""Statistics and tables on synthetic per-fold metrics (no TensorFlow, no audio)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, recall_score

from esc_lib import evaluation
from esc_lib.evaluation import (
    PAPER_TABLE1,
    PUBLISHED,
    budget_curve,
    compare_methods,
    confusion,
    format_mean_ci,
    load_metrics,
    mean_ci,
    paired_test,
    per_class_accuracy,
    summarise,
    table1,
    table2,
    write_table,
)

# Student t quantile t_{0.975, 4}, from printed tables (not from scipy).
T_975_DF4 = 2.776445105
# What the caller (notebook 04) passes for the paper's grid.
PAPER_ARCHITECTURE = "(f)5c-2p-(f)3c-2p-(f)3c-2p with f filters"
CUSTOM_ENCODER = "(32)3c-2p-(64)3c-2p-(128)3c-2p-(256)3c-2p"


def make_metrics(shift: float = 0.04, seed: int = 0, decoders=("unpool",)) -> pd.DataFrame:
    """A tidy grid: b in {16, 32}, f in {32, 64}, both methods, 5 folds."""
    rng = np.random.default_rng(seed)
    rows = []
    for decoder in decoders:
        for b in (16, 32):
            for f in (32, 64):
                base = 0.6 + 0.01 * (f // 32) + 0.005 * (b // 16)
                fold_effect = rng.normal(0, 0.03, 5)
                for method, delta in (("supervised", 0.0), ("pretrained", shift)):
                    for fold in range(1, 6):
                        noise = rng.normal(0, 0.01)
                        rows.append({
                            "config": f"bs{b}-f{f}-{decoder}-bn0", "batch_size": b, "filters": f,
                            "decoder": decoder, "batch_norm": False, "method": method, "fold": fold,
                            "accuracy": float(np.clip(base + fold_effect[fold - 1] + delta + noise, 0, 1)),
                            "n_test": 80,
                        })
    return pd.DataFrame(rows)


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


def test_paired_test_identical_scores_give_nan_with_reason():
    scores = pd.Series([0.6, 0.7, 0.65, 0.62, 0.68], index=[1, 2, 3, 4, 5])
    result = paired_test(scores, scores)
    assert result["n"] == 5
    assert result["mean_difference"] == 0
    assert math.isnan(result["t_pvalue"]) and "all differences are zero" in result["t_note"]
    assert math.isnan(result["wilcoxon_pvalue"]) and "all differences are zero" in result["wilcoxon_note"]


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


def test_paired_test_single_pair_is_undefined():
    result = paired_test([0.5], [0.6])
    assert math.isnan(result["t_pvalue"]) and "n = 1" in result["t_note"]
    assert math.isnan(result["wilcoxon_pvalue"])


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


# ---------------------------------------------------------------------- tables


def test_table1_shape_and_values():
    metrics = make_metrics(shift=0.05)
    table = table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE)
    assert list(table.columns) == ["b", "f", "Supervised", "Pre-training with CAE", "Difference (pp)",
                                   "p (paired t)", "p (Wilcoxon)", "folds"]
    assert list(zip(table["b"], table["f"])) == [(16, 32), (16, 64), (32, 32), (32, 64)]
    comparison = compare_methods(metrics, by=("batch_size", "filters"))
    assert list(table["Supervised"]) == list(comparison["supervised"])
    assert np.allclose(table["p (paired t)"], comparison["t_pvalue"])
    assert (table["folds"] == 5).all()
    assert "ESC-10" in table.attrs["caption"]
    assert PAPER_ARCHITECTURE in table.attrs["caption"] and "f the number of filters" in table.attrs["caption"]


def test_table1_decoder_becomes_a_key_or_a_filter():
    metrics = make_metrics(decoders=("unpool", "upsample"))
    both = table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE)
    assert "decoder" in both.columns and len(both) == 8
    one = table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE, decoder="upsample")
    assert "decoder" not in one.columns and len(one) == 4
    with pytest.raises(ValueError, match="decoder='transpose' not found"):
        table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE, decoder="transpose")


def test_table1_with_paper_columns():
    metrics = make_metrics()
    metrics.loc[metrics["batch_size"] == 16, "batch_size"] = 64
    table = table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE, with_paper=True)
    row = table[(table["b"] == 64) & (table["f"] == 64)].iloc[0]
    assert row["Paper supervised (ESC-50, 1 split)"] == "47.4"
    assert row["Paper pre-trained (ESC-50, 1 split)"] == "-"


def test_table1_rejects_several_label_budgets():
    metrics = make_metrics().assign(labels_per_class=lambda m: [8 if f % 2 else 0 for f in m["fold"]])
    with pytest.raises(ValueError, match="labels_per_class"):
        table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE)


def test_paper_table1_is_the_published_one():
    assert PAPER_TABLE1[["batch_size", "filters"]].values.tolist() == [[16, 64], [32, 64], [64, 64]]
    assert PAPER_TABLE1["supervised"].tolist() == [0.414, 0.492, 0.474]
    assert PAPER_TABLE1["pretrained"].tolist()[:2] == [0.502, 0.507] and math.isnan(PAPER_TABLE1["pretrained"][2])


@pytest.mark.parametrize("dataset, published", [
    ("esc10", {"Baseline random forest (MFCC & ZCR)": 0.727, "Piczak CNN": 0.805,
               "EnvNet-v2 + between-class learning": 0.914, "Human listeners": 0.957}),
    ("ESC-50", {"Baseline random forest (MFCC & ZCR)": 0.440, "Piczak CNN": 0.645,
                "CAE pre-trained CNN (the paper)": 0.507, "Baseline k-NN (MFCC & ZCR)": 0.322}),
])
def test_table2_published_rows_and_ours(dataset, published):
    metrics = make_metrics(shift=0.05)
    table = table2(metrics, dataset)
    cited = table[table["Evaluation"] == "published"]
    for network, accuracy in published.items():
        assert accuracy in cited.loc[cited["Network"] == network, "accuracy"].tolist(), network
    assert cited["Source"].str.len().gt(0).all()
    ours = table[table["Evaluation"] == "this project (5-fold CV)"]
    assert len(ours) == 2
    summary = summarise(metrics)
    for method, prefix in (("supervised", "CNN trained from scratch"), ("pretrained", "CAE pre-trained CNN,")):
        best = summary[summary["method"] == method].sort_values("mean").iloc[-1]
        row = ours[ours["Network"].str.startswith(prefix)].iloc[0]
        assert row["accuracy"] == pytest.approx(best["mean"])
        assert best["config"] in row["Network"]
        assert row["Accuracy"] == best["accuracy"] + "%"
        assert "optimistic" in row["Source"]
    assert table.index[table["Evaluation"] == "published"].max() < ours.index.min()


def test_table2_esc50_keeps_both_sources_of_disputed_figures():
    cited = PUBLISHED[PUBLISHED["dataset"] == "esc50"]
    assert sorted(cited.loc[cited["network"] == "Piczak CNN", "accuracy"]) == [0.645, 0.655]
    assert sorted(cited.loc[cited["network"].str.startswith("Baseline random forest"), "accuracy"]) == [0.440, 0.443]


def test_table2_chosen_config_and_errors():
    metrics = make_metrics()
    table = table2(metrics, "esc10", configs={"supervised": "bs16-f32-unpool-bn0"})
    row = table[table["Network"].str.contains("from scratch")].iloc[0]
    assert "bs16-f32-unpool-bn0" in row["Network"] and "chosen in advance" in row["Source"]
    with pytest.raises(ValueError, match="dataset"):
        table2(metrics, "urbansound8k")
    with pytest.raises(ValueError, match="has no supervised runs"):
        table2(metrics, "esc10", configs={"supervised": "nope"})


# ---------------------------------------------------------------------- write_table


def test_write_table_writes_csv_and_markdown_atomically(tmp_path):
    table = table1(make_metrics(), "ESC-10", architecture=PAPER_ARCHITECTURE)
    csv_path, md_path = write_table(table, tmp_path / "deep" / "table1")
    assert csv_path.name == "table1.csv" and md_path.name == "table1.md"
    back = pd.read_csv(csv_path)
    assert list(back.columns) == list(table.columns) and len(back) == len(table)
    text = md_path.read_text(encoding="utf-8")
    assert text.startswith("Table 1 (ESC-10)") and "| Supervised" in text and "±" in text
    assert sorted(p.name for p in csv_path.parent.iterdir()) == ["table1.csv", "table1.md"]


def test_write_table_bare_name_goes_to_results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ESC_RESULTS_DIR", str(tmp_path / "results"))
    csv_path, _ = write_table(pd.DataFrame({"a": [1]}), "tiny")
    assert csv_path == (tmp_path / "results" / "tiny.csv").resolve()


def test_write_table_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "table"
    write_table(pd.DataFrame({"a": [1]}), target)
    original = (tmp_path / "table.csv").read_text()

    def failing_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(evaluation.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_table(pd.DataFrame({"a": [2, 3]}), target)
    assert (tmp_path / "table.csv").read_text() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv", "table.md"]


def test_write_table_render_failure_writes_nothing(tmp_path, monkeypatch):
    def failing_markdown(self, *args, **kwargs):
        raise RuntimeError("tabulate broke")

    monkeypatch.setattr(pd.DataFrame, "to_markdown", failing_markdown)
    with pytest.raises(RuntimeError):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "table")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stem, message", [("table.csv", "extension"), ("", "name")])
def test_write_table_rejects_bad_stem(tmp_path, stem, message):
    with pytest.raises(ValueError, match=message):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / stem if stem else stem)


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


# ---------------------------------------------------------------------- budget curves and loading


def make_budget_metrics() -> pd.DataFrame:
    rows = []
    for budget, level in ((4, 0.4), (8, 0.5), (16, 0.6), (0, 0.7)):  # 0: every labelled clip
        for method, delta in (("supervised", 0.0), ("pretrained", 0.05)):
            for fold in range(1, 6):
                rows.append({"config": "bs32-f64-unpool-bn0", "method": method, "fold": fold,
                             "labels_per_class": budget, "accuracy": level + delta + 0.01 * fold})
    return pd.DataFrame(rows)


def test_budget_curve_orders_numbers_then_all():
    curve = budget_curve(make_budget_metrics())
    assert len(curve) == 8
    pretrained = curve[curve["method"] == "pretrained"]
    assert list(pretrained["labels_per_class"]) == [4, 8, 16, 0]  # 0 (all) is the largest budget: last
    assert list(pretrained["budget"]) == ["4", "8", "16", "all"]
    assert curve.columns.get_loc("budget") == curve.columns.get_loc("labels_per_class") + 1
    assert pretrained["mean"].tolist() == pytest.approx([0.48, 0.58, 0.68, 0.78])
    assert (curve["n_folds"] == 5).all()


def test_load_metrics_round_trip_restores_budgets(tmp_path):
    metrics = make_budget_metrics()
    metrics.iloc[:20].to_csv(tmp_path / "metrics_a.csv", index=False)
    (tmp_path / "sub").mkdir()
    metrics.iloc[20:].to_csv(tmp_path / "sub" / "metrics_b.csv", index=False)
    loaded = load_metrics(tmp_path)
    assert len(loaded) == len(metrics)
    assert set(loaded["labels_per_class"]) == {4, 8, 16, 0}
    assert pd.api.types.is_integer_dtype(loaded["labels_per_class"])
    pd.testing.assert_frame_equal(budget_curve(loaded), budget_curve(metrics))
    with pytest.raises(FileNotFoundError, match="no such"):
        load_metrics(tmp_path / "missing.csv")
    pd.DataFrame({"fold": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="'method'"):
        load_metrics(tmp_path / "bad.csv")


def test_public_api_is_documented():
    for name in evaluation.__all__:
        item = getattr(evaluation, name)
        if callable(item):
            assert item.__doc__ and "Parameters" in item.__doc__, name


def test_table1_filters_decoder_keeping_a_shared_baseline():
    metrics = make_metrics(decoders=("unpool", "upsample"))
    supervised = metrics[(metrics["method"] == "supervised") & (metrics["decoder"] == "unpool")].assign(decoder=None)
    metrics = pd.concat([supervised, metrics[metrics["method"] == "pretrained"]], ignore_index=True)
    table = table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE, decoder="upsample")
    assert len(table) == 4 and (table["Supervised"] != "-").all() and table["p (paired t)"].notna().all()


def test_confusion_accepts_object_integer_labels():
    y = pd.Series([0, 1, 2, 1], dtype=object)
    assert confusion(y, y, CLASSES[:3]).to_numpy().trace() == 4


def test_tables_accept_rows_shaped_like_the_experiment_writes():
    """Supervised rows carry pool_size 0 and labels_per_class 0 (all clips), as esc_lib.experiment writes them."""
    metrics = make_metrics().assign(labels_per_class=0, validation_fold=1, n_train=240, epochs=12, seconds=3.0)
    metrics["pool_size"] = np.where(metrics["method"] == "pretrained", 591, 0)
    assert len(table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE)) == 4
    assert len(table2(metrics, "esc10")) == 6
    metrics.loc[(metrics["method"] == "pretrained") & (metrics["fold"] == 1), "pool_size"] = 100
    with pytest.raises(ValueError, match="several pool_size"):
        table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE)


def test_table1_gives_configs_that_differ_elsewhere_a_row_each():
    """Two configurations with the same b and f (e.g. with and without a refit) are not merged."""
    rows = []
    for config, shift in (("bs32-f64-unpool-bn0", 0.0), ("bs32-f64-unpool-bn0-refit", 0.05)):
        for method, base in (("supervised", 0.6), ("pretrained", 0.7)):
            for fold in range(1, 6):
                rows.append({"config": config, "batch_size": 32, "filters": 64, "decoder": "unpool",
                             "batch_norm": False, "method": method, "fold": fold,
                             "accuracy": base + shift + 0.01 * fold})
    table = evaluation.table1(pd.DataFrame(rows), "ESC-10", architecture=PAPER_ARCHITECTURE)
    assert len(table) == 2
    assert set(table["config"]) == {"bs32-f64-unpool-bn0", "bs32-f64-unpool-bn0-refit"}


# ---------------------------------------------------------------------- integer budgets (0 = all)


def test_budget_order_and_label_put_all_last():
    assert evaluation.ALL_LABELS == 0
    assert sorted([0, 16, 4, 8], key=evaluation.budget_order) == [4, 8, 16, 0]
    assert [evaluation.budget_label(v) for v in (4, np.int64(8), 16.0, 0)] == ["4", "8", "16", "all"]
    # Elsewhere 0 is just a number: the from-scratch baseline has no pool.
    assert sorted([300, 0, 100], key=lambda v: evaluation.budget_order(v, "pool_size")) == [0, 100, 300]
    assert evaluation.budget_label(0, "pool_size") == "0"


@pytest.mark.parametrize("bad", ["all", "8", 8.5, -1, math.nan, None, True])
def test_non_integer_budget_is_rejected(bad):
    with pytest.raises(ValueError, match="labels_per_class must hold non-negative integers"):
        evaluation.budget_order(bad)
    metrics = make_budget_metrics().astype({"labels_per_class": object})
    metrics.loc[metrics.index[-1], "labels_per_class"] = bad
    with pytest.raises(ValueError, match="labels_per_class"):
        budget_curve(metrics)


def test_tables_reject_a_non_integer_budget():
    metrics = make_metrics().assign(labels_per_class="all")
    with pytest.raises(ValueError, match="0 means every labelled clip"):
        table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE)
    with pytest.raises(ValueError, match="0 means every labelled clip"):
        table2(metrics, "esc10")


def test_load_metrics_rejects_old_all_budgets(tmp_path):
    make_budget_metrics().astype({"labels_per_class": object}).replace({"labels_per_class": {0: "all"}}).to_csv(
        tmp_path / "metrics_old.csv", index=False)
    with pytest.raises(ValueError, match="metrics_old.csv: labels_per_class must hold non-negative integers"):
        load_metrics(tmp_path / "metrics_old.csv")


def test_summary_and_comparison_by_budget_put_all_last():
    metrics = make_budget_metrics()
    summary = summarise(metrics, by=("method", "labels_per_class"))
    assert list(summary["labels_per_class"]) == [4, 8, 16, 0] * 2
    assert list(compare_methods(metrics, by="labels_per_class")["labels_per_class"]) == [4, 8, 16, 0]


def test_budget_curve_table_keeps_0_in_csv_and_shows_all(tmp_path):
    csv_path, md_path = write_table(budget_curve(make_budget_metrics()), tmp_path / "label_budget")
    back = pd.read_csv(csv_path)
    assert pd.api.types.is_integer_dtype(back["labels_per_class"])
    assert list(back["labels_per_class"])[-1] == 0 and list(back["budget"])[-1] == "all"
    assert "all" in md_path.read_text(encoding="utf-8")


def test_pool_size_curve_keeps_zero_as_a_number():
    metrics = make_metrics(shift=0.05)
    metrics = metrics[metrics["config"] == "bs32-f64-unpool-bn0"].copy()
    metrics["pool_size"] = np.where(metrics["method"] == "pretrained", 591, 0)
    extra = metrics[metrics["method"] == "pretrained"].assign(pool_size=100)
    curve = budget_curve(pd.concat([metrics, extra]), x="pool_size")
    assert list(zip(curve["method"], curve["pool_size"])) == [("pretrained", 100), ("pretrained", 591),
                                                              ("supervised", 0)]
    assert "budget" not in curve.columns  # the text column is for label budgets ("all"); pool sizes read as numbers


# ---------------------------------------------------------------------- captions from what was run


def test_table1_caption_names_the_architecture_passed():
    table = table1(make_metrics(), "ESC-50", architecture=CUSTOM_ENCODER)
    caption = table.attrs["caption"]
    assert caption.startswith("Table 1 (ESC-50)") and CUSTOM_ENCODER in caption
    assert "(f)5c-2p" not in caption


def test_table1_requires_an_architecture():
    with pytest.raises(TypeError):
        table1(make_metrics(), "ESC-10")  # architecture is a required keyword
    with pytest.raises(ValueError, match="architecture"):
        table1(make_metrics(), "ESC-10", architecture="  ")


def test_table1_custom_encoder_drops_f():
    metrics = make_metrics(shift=0.05)
    metrics = metrics[metrics["filters"] == 64].assign(encoder=CUSTOM_ENCODER)
    table = table1(metrics, "ESC-10", architecture=CUSTOM_ENCODER)
    assert "f" not in table.columns and "b" in table.columns
    assert list(table["b"]) == [16, 32]
    assert list(table.columns[:2]) == ["b", "Supervised"]
    assert "f the number of filters" not in table.attrs["caption"]
    comparison = compare_methods(metrics, by="batch_size")
    assert list(table["Supervised"]) == list(comparison["supervised"])
    with pytest.raises(ValueError, match="with_paper"):
        table1(metrics, "ESC-10", architecture=CUSTOM_ENCODER, with_paper=True)


def test_table1_keeps_f_for_the_paper_grid_or_mixed_encoders():
    paper = make_metrics().assign(encoder="")
    assert "f" in table1(paper, "ESC-10", architecture=PAPER_ARCHITECTURE).columns
    custom = make_metrics().assign(encoder=CUSTOM_ENCODER)
    custom = custom[custom["filters"] == 64].assign(config=lambda m: m["config"] + "-enc")
    mixed = table1(pd.concat([paper, custom], ignore_index=True), "ESC-10", architecture="several encoders")
    assert "f" in mixed.columns and "config" in mixed.columns
    assert len(mixed) == 6  # 4 paper grid points and 2 custom ones, each its own row


def test_table2_caption_takes_the_dataset_label():
    metrics = make_metrics()
    assert table2(metrics, "esc10").attrs["caption"].startswith("Table 2 (ESC-10)")
    table = table2(metrics, "esc10", dataset_label="ESC-10, 5-fold CV at 22.05 kHz")
    assert table.attrs["caption"].startswith("Table 2 (ESC-10, 5-fold CV at 22.05 kHz)")
    with pytest.raises(ValueError, match="dataset_label"):
        table2(metrics, "esc10", dataset_label="")


def test_wilcoxon_with_a_zero_difference_is_exact_and_repeatable():
    """One tied fold: the exact two-sided p-value with the zero dropped (4 positive differences: 2/16), every call."""
    from esc_lib.evaluation import paired_test

    a = [0.70, 0.72, 0.75, 0.80, 0.66]
    b = [0.74, 0.77, 0.75, 0.86, 0.73]  # differences +4, +5, 0, +6, +7 points
    p_values = [paired_test(a, b)["wilcoxon_pvalue"] for _ in range(6)]
    assert len(set(p_values)) == 1 and p_values[0] == pytest.approx(0.125)
    assert "1 zero difference(s) dropped" in paired_test(a, b)["wilcoxon_note"]


def test_wilcoxon_with_one_non_zero_difference_is_one():
    from esc_lib.evaluation import paired_test

    result = paired_test([0.7, 0.8, 0.9], [0.7, 0.85, 0.9])
    assert result["wilcoxon_pvalue"] == 1.0 and "one left" in result["wilcoxon_note"]
