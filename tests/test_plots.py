"""Figures on synthetic data: each function returns a Figure with the expected artists."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless, as under papermill

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from esc_lib import plots, stats  # noqa: E402

CLASSES = ["dog", "rain", "sea_waves"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture()
def figures_dir(tmp_path, monkeypatch):
    folder = tmp_path / "figures"
    monkeypatch.setenv("ESC_FIGURES_DIR", str(folder))
    return folder


def _metrics(n_configs=3, methods=("supervised", "pretrained")):
    rng = np.random.default_rng(0)
    return pd.DataFrame([
        {"config": f"bs{16 * 2 ** c}-f64", "method": m, "fold": fold, "accuracy": rng.uniform(0.5, 0.8)}
        for c in range(n_configs) for m in methods for fold in range(1, 6)
    ])


def _history(epochs=6, seed=0):
    rng = np.random.default_rng(seed)
    loss = np.linspace(2.0, 0.5, epochs) + rng.normal(0, 0.05, epochs)
    return pd.DataFrame({
        "epoch": np.arange(1, epochs + 1), "loss": loss, "val_loss": loss + 0.2,
        "accuracy": np.linspace(0.3, 0.9, epochs), "val_accuracy": np.linspace(0.25, 0.7, epochs),
    })


def _nonempty_png(path):
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------- save_figure


def test_save_figure_writes_png_into_figures_dir(figures_dir):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = plots.save_figure(fig, "diagonal")
    assert path == figures_dir.resolve() / "diagonal.png"
    assert _nonempty_png(path)
    assert [p.name for p in figures_dir.iterdir()] == ["diagonal.png"]  # no temporary left


def test_save_figure_explicit_folder_and_failure_leaves_nothing(tmp_path, monkeypatch):
    fig, _ = plt.subplots()
    assert _nonempty_png(plots.save_figure(fig, "blank", tmp_path / "out"))

    def failing_savefig(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", failing_savefig)
    with pytest.raises(OSError, match="disk full"):
        plots.save_figure(fig, "broken", tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["blank.png"]


@pytest.mark.parametrize("name, message", [("fig.png", "extension"), ("a/b", "folders"), ("", "folders")])
def test_save_figure_rejects_bad_names(tmp_path, name, message):
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match=message):
        plots.save_figure(fig, name, tmp_path)


def test_save_figure_rejects_non_figure(tmp_path):
    with pytest.raises(TypeError, match="Figure"):
        plots.save_figure("not a figure", "x", tmp_path)


# ---------------------------------------------------------------------- data and CAE


@pytest.mark.parametrize("hop_length", [None, 512])
def test_waveforms_and_logmels(hop_length, figures_dir):
    rng = np.random.default_rng(0)
    waveforms = [rng.normal(size=2205), rng.normal(size=4410)]
    logmels = [rng.normal(size=(28, 36)), rng.normal(size=(28, 36, 1))]
    fig = plots.plot_waveforms_and_logmels(waveforms, logmels, ["dog", "rain"], sr=22050, hop_length=hop_length)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * 2 + 2  # waveform + log-mel per clip, a colour bar per log-mel
    assert len(fig.axes[0].lines) == 1 and len(fig.axes[2].images) == 1  # axes are listed row by row
    assert _nonempty_png(plots.save_figure(fig, "examples"))


@pytest.mark.parametrize("kwargs, message", [
    ({"titles": ["only one"]}, "titles"),
    ({"sr": 0}, "sr"),
    ({"logmels": [np.zeros((28, 36))]}, "logmels"),
])
def test_waveforms_and_logmels_rejects_bad_input(kwargs, message):
    arguments = {"waveforms": [np.zeros(100), np.zeros(100)], "logmels": [np.zeros((28, 36))] * 2,
                 "titles": ["a", "b"], "sr": 100}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        plots.plot_waveforms_and_logmels(**arguments)


def test_reconstructions_is_figure_1_with_shared_column_scale(figures_dir):
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(4, 28, 36, 1))
    unpool = truth + rng.normal(0, 0.1, truth.shape)
    upsample = truth + rng.normal(0, 0.5, truth.shape)
    fig = plots.plot_reconstructions(truth, unpool, upsample, titles=["a", "b", "c", "d"])
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 3 * 4 and len(fig.axes) == 3 * 4 + 4  # plus a colour bar per column
    first_column = [ax for ax in images if ax.get_subplotspec().colspan.start == 0]
    assert len({ax.images[0].get_clim() for ax in first_column}) == 1
    assert first_column[1].get_title().startswith("MSE")
    assert _nonempty_png(plots.save_figure(fig, "fig1_reconstructions"))


def test_reconstructions_without_one_decoder_and_bad_shapes():
    truth = np.zeros((2, 28, 36))
    fig = plots.plot_reconstructions(truth, truth, None)
    assert sum(1 for ax in fig.axes if ax.images) == 2 * 2
    with pytest.raises(ValueError, match="upsample has shape"):
        plots.plot_reconstructions(truth, truth, np.zeros((2, 28, 35)))
    with pytest.raises(ValueError, match="ground_truth must have shape"):
        plots.plot_reconstructions(np.zeros((28, 36)), None, None)


def test_loss_curves_train_and_validation_per_run():
    fig = plots.plot_loss_curves({"unpool": _history(), "upsample": _history(seed=1)}, log_scale=True)
    (ax,) = fig.axes
    assert len(ax.lines) == 4
    assert {line.get_linestyle() for line in ax.lines} == {"-", "--"}
    fig = plots.plot_loss_curves({"only train": _history().drop(columns="val_accuracy")}, metric="accuracy")
    assert len(fig.axes[0].lines) == 1
    assert fig.axes[0].lines[0].get_ydata().max() == pytest.approx(90.0)
    with pytest.raises(ValueError, match="'mse'"):
        plots.plot_loss_curves({"run": _history()}, metric="mse")
    with pytest.raises(ValueError, match="empty"):
        plots.plot_loss_curves({})


# ---------------------------------------------------------------------- results


def test_fold_accuracies_points_and_intervals(figures_dir):
    metrics = _metrics()
    fig = plots.plot_fold_accuracies(metrics)
    (ax,) = fig.axes
    assert len(ax.collections[0].get_offsets()) == len(metrics)  # every fold drawn
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(containers) == 2  # one per method
    mean, low, high = stats.mean_ci(
        metrics.loc[(metrics["config"] == "bs16-f64") & (metrics["method"] == "supervised"), "accuracy"])
    assert containers[0].lines[0].get_ydata()[0] == pytest.approx(mean * 100)
    assert len(ax.get_xticklabels()) == 3
    assert _nonempty_png(plots.save_figure(fig, "fold_accuracies"))
    with pytest.raises(ValueError, match="'method'"):
        plots.plot_fold_accuracies(metrics.drop(columns="method"))


@pytest.mark.parametrize("normalise", [True, False])
def test_confusion_heatmap(normalise):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 50)
    y_pred = np.where(rng.random(50) < 0.7, y_true, rng.integers(0, 3, 50))
    matrix = stats.confusion(y_true, y_pred, CLASSES)
    fig = plots.plot_confusion(matrix, normalise=normalise)
    assert len(fig.axes) == 2  # heat map and colour bar
    mesh = fig.axes[0].collections[0]
    values = np.asarray(mesh.get_array()).reshape(3, 3)
    expected = matrix.to_numpy() / matrix.to_numpy().sum(axis=1, keepdims=True) if normalise else matrix.to_numpy()
    np.testing.assert_allclose(values, expected)
    assert len(fig.axes[0].texts) == 9  # annotated cells
    with pytest.raises(ValueError, match="square"):
        plots.plot_confusion(matrix.iloc[:, :2])


def test_per_class_bars_single_and_by_method():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 60)
    table = stats.per_class_accuracy(y_true, np.where(rng.random(60) < 0.6, y_true, 0), CLASSES)
    fig = plots.plot_per_class(table)
    bars = fig.axes[0].patches
    assert len(bars) == 3
    assert sorted(b.get_width() for b in bars) == pytest.approx(sorted(table["accuracy"] * 100))
    both = pd.concat([table.assign(method="supervised"), table.assign(method="pretrained")])
    fig = plots.plot_per_class(both)
    assert len([p for p in fig.axes[0].patches if p.get_height() > 0 and p.get_width() > 0]) == 6
    with pytest.raises(ValueError, match="'class'"):
        plots.plot_per_class(table.drop(columns="class"))


def test_learning_curves_mean_and_band_per_method():
    histories = {
        "supervised": [_history(6, seed) for seed in range(3)],
        "pretrained": [_history(4 + seed, seed) for seed in range(3)],  # early stopping: uneven lengths
    }
    fig = plots.plot_learning_curves(histories)
    (ax,) = fig.axes
    drawn = [line for line in ax.lines if len(line.get_xdata())]  # seaborn adds empty legend proxies
    assert len(drawn) == 2
    assert list(drawn[1].get_xdata()) == [1, 2, 3, 4, 5, 6]  # up to the longest fold
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2
    assert drawn[0].get_ydata()[0] == pytest.approx(25.0)
    with pytest.raises(ValueError, match="holds no history"):
        plots.plot_learning_curves({"supervised": []})


def test_learning_curves_fall_back_to_training_accuracy_without_a_validation_fold():
    """Runs that trained on the validation fold too (cosine + refit) have no val_ columns."""
    histories = {"supervised": [_history(5, seed).drop(columns=["val_loss", "val_accuracy"]).assign(accuracy=0.5) for seed in range(2)]}
    fig = plots.plot_learning_curves(histories)
    (ax,) = fig.axes
    assert "training accuracy" in ax.get_ylabel()
    drawn = [line for line in ax.lines if len(line.get_xdata())]
    assert drawn[0].get_ydata()[0] == pytest.approx(50.0)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_one_point_per_clip(method, figures_dir):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    features = rng.normal(size=(30, 4, 3, 2)) + labels[:, None, None, None]
    fig = plots.plot_embedding(features, labels, CLASSES, method=method, seed=0)
    (ax,) = fig.axes
    offsets = ax.collections[0].get_offsets()
    assert offsets.shape == (30, 2)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == CLASSES
    assert _nonempty_png(plots.save_figure(fig, f"embedding_{method}"))


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "umap"}, "method"),
    ({"labels": np.zeros(5, dtype=int)}, "labels has 5"),
    ({"features": np.zeros((2, 4))}, "at least 3"),
])
def test_embedding_rejects_bad_input(kwargs, message):
    arguments = {"features": np.zeros((6, 4)), "labels": np.zeros(6, dtype=int), "classes": CLASSES}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        plots.plot_embedding(**arguments)


def test_budget_curves_with_all_on_log2_axis(figures_dir):
    rows = [
        {"method": m, "fold": f, "labels_per_class": b, "accuracy": 0.3 + 0.1 * i + (0.05 if m == "pretrained" else 0)
         + 0.01 * f}
        for i, b in enumerate((4, 8, 16, 0)) for m in ("supervised", "pretrained") for f in range(1, 6)
    ]
    curve = stats.budget_curve(pd.DataFrame(rows))
    fig = plots.plot_budget_curves(curve)
    (ax,) = fig.axes
    assert len(ax.lines) == 2
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "8", "16", "all"]
    assert list(ax.lines[0].get_xdata()) == [4, 8, 16, 32]  # 0 (all) sits right of the largest budget
    assert _nonempty_png(plots.save_figure(fig, "label_budget"))


def test_budget_curves_pool_size_linear_axis_and_errors():
    curve = pd.DataFrame({"method": ["pretrained"] * 3, "pool_size": [100, 200, 300],
                          "mean": [0.6, 0.62, 0.63], "ci_low": [0.55, 0.57, 0.6], "ci_high": [0.65, 0.67, 0.66]})
    fig = plots.plot_budget_curves(curve, x="pool_size", xlabel="unlabeled clips")
    assert fig.axes[0].get_xscale() == "linear" and fig.axes[0].get_xlabel() == "unlabeled clips"
    with pytest.raises(ValueError, match="'mean'"):
        plots.plot_budget_curves(curve.drop(columns="mean"), x="pool_size")


def _budget_curve_df(budgets):
    n = len(budgets)
    return pd.DataFrame({"method": ["pretrained"] * n, "labels_per_class": budgets, "mean": [0.6] * n,
                         "ci_low": [0.55] * n, "ci_high": [0.65] * n})


def test_budget_curves_place_all_last_in_any_row_order():
    fig = plots.plot_budget_curves(_budget_curve_df([0, 16, 4]), all_position=40)
    (ax,) = fig.axes
    assert list(ax.lines[0].get_xdata()) == [4, 16, 40]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "16", "all"]
    with pytest.raises(ValueError, match="all_position"):
        plots.plot_budget_curves(_budget_curve_df([0, 16, 4]), all_position=16)
    with pytest.raises(ValueError, match="only 0"):
        plots.plot_budget_curves(_budget_curve_df([0]))
    only_all = plots.plot_budget_curves(_budget_curve_df([0]), all_position=30)
    assert [t.get_text() for t in only_all.axes[0].get_xticklabels()] == ["all"]


@pytest.mark.parametrize("bad", ["all", 8.5, -4])
def test_budget_curves_reject_non_integer_budgets(bad):
    curve = _budget_curve_df([4, 8, 16]).astype({"labels_per_class": object})
    curve.loc[2, "labels_per_class"] = bad
    with pytest.raises(ValueError, match="labels_per_class must hold non-negative integers"):
        plots.plot_budget_curves(curve)


def test_budget_curves_pool_size_zero_is_a_plain_zero():
    curve = pd.DataFrame({"method": ["supervised", "pretrained", "pretrained"], "pool_size": [0, 100, 591],
                          "mean": [0.5, 0.6, 0.62], "ci_low": [0.45, 0.55, 0.57], "ci_high": [0.55, 0.65, 0.67]})
    (ax,) = plots.plot_budget_curves(curve, x="pool_size").axes
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "100", "591"]


def test_fold_accuracies_by_budget_show_all_last():
    rows = [{"method": m, "fold": f, "labels_per_class": b, "accuracy": 0.5}
            for b in (0, 8, 4) for m in ("supervised", "pretrained") for f in range(1, 4)]
    (ax,) = plots.plot_fold_accuracies(pd.DataFrame(rows), x="labels_per_class").axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "8", "all"]


def test_each_method_keeps_its_colour_across_figures():
    metrics = _metrics(n_configs=1, methods=("pretrained", "supervised"))  # pretrained listed first
    folds = plots.plot_fold_accuracies(metrics)
    containers = {c.get_label().split(" ")[0]: c for c in folds.axes[0].containers}
    curve = pd.DataFrame({"method": ["supervised", "pretrained"], "labels_per_class": [8, 8],
                          "mean": [0.5, 0.6], "ci_low": [0.4, 0.5], "ci_high": [0.6, 0.7]})
    budget = plots.plot_budget_curves(curve)
    lines = {line.get_label(): line for line in budget.axes[0].lines}
    for method in ("supervised", "pretrained"):
        assert containers[method].lines[0].get_color() == lines[method].get_color()
    assert containers["supervised"].lines[0].get_color() != containers["pretrained"].lines[0].get_color()
