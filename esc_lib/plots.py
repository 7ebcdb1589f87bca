"""Figures for the notebooks: log-mels, CAE reconstructions (the paper's Figure 1), curves and tables.

Every function builds a new :class:`matplotlib.figure.Figure` with seaborn
styling and returns it; nothing is shown (notebooks display the returned
figure) and no global style is changed.  :func:`save_figure` writes a PNG into
:func:`esc_lib.config.figures_dir` atomically.  The module works with any
backend, including the headless ``Agg`` backend used by papermill and tests.

Accuracies are expected as fractions in [0, 1] and drawn in percent.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from esc_lib import atomic
from esc_lib.stats import as_class_names, budget_label, budget_order, mean_ci

__all__ = [
    "save_figure",
    "plot_waveforms_and_logmels",
    "plot_reconstructions",
    "plot_loss_curves",
    "plot_fold_accuracies",
    "plot_confusion",
    "plot_per_class",
    "plot_learning_curves",
    "plot_embedding",
    "plot_budget_curves",
]

_STYLE = "whitegrid"
_IMAGE_SUFFIXES = {".png", ".pdf", ".svg", ".jpg", ".jpeg"}


# ----------------------------------------------------------------------------
# helpers


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} lacks column(s) {', '.join(repr(c) for c in missing)}; "
            f"it has {', '.join(repr(str(c)) for c in frame.columns)}"
        )
    if frame.empty:
        raise ValueError(f"{name} is empty: nothing to plot")


def _as_spectrograms(array, name: str) -> np.ndarray:
    """``[n, n_mels, n_frames]`` from ``[n, n_mels, n_frames]`` or ``[n, n_mels, n_frames, 1]``."""
    spectrograms = np.asarray(array, dtype=float)
    if spectrograms.ndim == 4 and spectrograms.shape[-1] == 1:
        spectrograms = spectrograms[..., 0]
    if spectrograms.ndim != 3:
        raise ValueError(
            f"{name} must have shape [n, n_mels, n_frames] or [n, n_mels, n_frames, 1], got {spectrograms.shape}"
        )
    if spectrograms.shape[0] == 0:
        raise ValueError(f"{name} holds no spectrograms")
    return spectrograms


def _as_spectrogram(array, name: str) -> np.ndarray:
    spectrogram = np.asarray(array, dtype=float)
    if spectrogram.ndim == 3 and spectrogram.shape[-1] == 1:
        spectrogram = spectrogram[..., 0]
    if spectrogram.ndim != 2:
        raise ValueError(f"{name} must have shape [n_mels, n_frames] (or [..., 1]), got {spectrogram.shape}")
    return spectrogram


def _titles(titles, n: int, default: str) -> list[str]:
    if titles is None:
        return [f"{default} {i + 1}" for i in range(n)]
    titles = [str(t) for t in titles]
    if len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries for {n} columns")
    return titles


def _new_figure(nrows: int = 1, ncols: int = 1, figsize=None, **kwargs):
    with sns.axes_style(_STYLE):
        return plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **kwargs)


def _method_palette(levels) -> dict:
    """The same colour for a method in every figure: supervised first colour, pretrained second."""
    known = ["supervised", "pretrained"]
    ordered = [m for m in known if m in levels] + [m for m in levels if m not in known]
    colours = sns.color_palette(n_colors=len(known) + len(ordered))
    palette, spare = {}, len(known)
    for level in ordered:
        if level in known:
            palette[level] = colours[known.index(level)]
        else:
            palette[level] = colours[spare]
            spare += 1
    return palette


def _is_accuracy(name: str) -> bool:
    return "acc" in str(name)


def _categories(values, column: str) -> tuple[list, list[str]]:
    """Distinct values in display order, with their tick labels.

    ``labels_per_class`` follows :func:`esc_lib.stats.budget_order` (0,
    every labelled clip, last and shown as ``"all"``); other columns put
    numbers first (ascending), then text, then missing values.
    """
    distinct = list(dict.fromkeys(values))
    if column == "labels_per_class":
        ordered = sorted(distinct, key=lambda v: budget_order(v, column))
        return ordered, [budget_label(v, column) for v in ordered]

    def key(value):
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return (2, 0.0, "")
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            return (0, float(value), "")
        return (1, 0.0, str(value))

    ordered = sorted(distinct, key=key)
    return ordered, [str(v) for v in ordered]


# ----------------------------------------------------------------------------
# saving


def save_figure(fig: Figure, name: str, folder: str | os.PathLike | None = None, *, dpi: int = 150) -> Path:
    """Save a figure as ``<folder>/<name>.png``, atomically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    name : str
        File name without extension and without folders, e.g.
        ``"fig1_reconstructions"``.
    folder : path, optional
        Target folder; default :func:`esc_lib.config.figures_dir`
        (``ESC_FIGURES_DIR``).  Created if missing.
    dpi : int > 0

    Returns
    -------
    path : Path
        The PNG written.  It is first written to a temporary name in the same
        folder and renamed, so a reader never sees half a file.

    Raises
    ------
    ValueError
        If ``name`` is empty, holds a folder, or ends in an image extension.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    name = str(name)
    if not name or name in {".", ".."} or "/" in name or "\\" in name:
        raise ValueError(f"name must be a plain file name without folders, got {name!r}")
    if Path(name).suffix.lower() in _IMAGE_SUFFIXES:
        raise ValueError(f"name must not have an extension (.png is added), got {name!r}")
    if dpi <= 0:
        raise ValueError(f"dpi must be positive, got {dpi!r}")
    if folder is None:
        from esc_lib import config

        folder = config.figures_dir()
    path = Path(folder) / f"{name}.png"
    with atomic.atomic_path(path, suffix=".png") as temporary:
        fig.savefig(temporary, format="png", dpi=dpi, bbox_inches="tight")
    return path


# ----------------------------------------------------------------------------
# data and the CAE


def plot_waveforms_and_logmels(waveforms, logmels, titles: Sequence[str], sr: int, *,
                               hop_length: int | None = None) -> Figure:
    """Example clips: waveform above, log-mel spectrogram below, one column per clip.

    Parameters
    ----------
    waveforms : sequence of np.ndarray [shape=(n_samples,)]
        One waveform per clip (lengths may differ).
    logmels : sequence of np.ndarray [shape=(n_mels, n_frames) or (n_mels, n_frames, 1)]
        The matching log-mel spectrograms.
    titles : sequence of str
        One title per clip (e.g. the class name).
    sr : int > 0
        Sampling rate of the waveforms, in Hz.
    hop_length : int > 0, optional
        Hop in samples; given, the spectrogram time axis is in seconds,
        otherwise in frames.

    Returns
    -------
    fig : Figure
        ``2 × n`` panels plus one colour bar per spectrogram.
    """
    if sr <= 0:
        raise ValueError(f"sr must be a positive sampling rate in Hz, got {sr!r}")
    if hop_length is not None and hop_length <= 0:
        raise ValueError(f"hop_length must be positive, got {hop_length!r}")
    waveforms = [np.asarray(w, dtype=float) for w in waveforms]
    logmels = [_as_spectrogram(m, f"logmels[{i}]") for i, m in enumerate(logmels)]
    n = len(waveforms)
    if n == 0:
        raise ValueError("waveforms is empty: give at least one clip")
    if len(logmels) != n:
        raise ValueError(f"waveforms has {n} clips but logmels has {len(logmels)}")
    titles = _titles(titles, n, "clip")
    for i, waveform in enumerate(waveforms):
        if waveform.ndim != 1:
            raise ValueError(f"waveforms[{i}] must be one-dimensional (mono), got shape {waveform.shape}")

    fig, axes = _new_figure(2, n, figsize=(3.4 * n, 5.0), layout="constrained")
    for i, (waveform, logmel, title) in enumerate(zip(waveforms, logmels, titles)):
        time = np.arange(waveform.size) / sr
        axes[0, i].plot(time, waveform, linewidth=0.5, color=sns.color_palette()[0])
        axes[0, i].set(title=title, xlabel="time (s)", xlim=(0, max(time[-1], 1 / sr) if time.size else 1))
        if i == 0:
            axes[0, i].set_ylabel("amplitude")
        n_frames = logmel.shape[1]
        extent_x = n_frames * hop_length / sr if hop_length else n_frames
        image = axes[1, i].imshow(logmel, origin="lower", aspect="auto", cmap="magma",
                                  extent=(0, extent_x, 0, logmel.shape[0]))
        axes[1, i].grid(False)
        axes[1, i].set(xlabel="time (s)" if hop_length else "frame")
        if i == 0:
            axes[1, i].set_ylabel("mel band")
        fig.colorbar(image, ax=axes[1, i], label="log-mel" if i == n - 1 else None)
    return fig


def plot_reconstructions(ground_truth, unpool, upsample, titles: Sequence[str] | None = None) -> Figure:
    """The paper's Figure 1: held-out log-mels and their CAE reconstructions.

    Parameters
    ----------
    ground_truth : np.ndarray [shape=(n, n_mels, n_frames) or (n, n_mels, n_frames, 1)]
        Held-out inputs (never seen in pre-training).
    unpool, upsample : np.ndarray of the same shape, or None
        Reconstructions by the unpooling and the upsampling CAE; ``None``
        leaves that row out.
    titles : sequence of str, optional
        One per column (clip); default ``"clip 1"``, ...

    Returns
    -------
    fig : Figure
        Rows *ground truth*, *unpooling*, *upsampling*; columns the clips.
        Each column shares one colour scale (so a reconstruction is compared
        with its input at equal contrast) with its own colour bar; every
        reconstruction panel states its mean squared error.
    """
    truth = _as_spectrograms(ground_truth, "ground_truth")
    rows = [("ground truth", truth)]
    for label, array, name in (("unpooling", unpool, "unpool"), ("upsampling", upsample, "upsample")):
        if array is None:
            continue
        array = _as_spectrograms(array, name)
        if array.shape != truth.shape:
            raise ValueError(f"{name} has shape {array.shape} but ground_truth has {truth.shape}")
        rows.append((label, array))
    n = truth.shape[0]
    titles = _titles(titles, n, "clip")
    fig, axes = _new_figure(len(rows), n, figsize=(2.8 * n + 1.0, 2.2 * len(rows) + 0.5), layout="constrained")
    for column in range(n):
        stack = np.stack([array[column] for _, array in rows])
        vmin, vmax = float(stack.min()), float(stack.max())
        image = None
        for row, (label, array) in enumerate(rows):
            ax = axes[row, column]
            image = ax.imshow(array[column], origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax)
            ax.grid(False)
            if row == 0:
                ax.set_title(titles[column])
            else:
                mse = float(np.mean((array[column] - truth[column]) ** 2))
                ax.set_title(f"MSE {mse:.3g}", fontsize="small")
            if column == 0:
                ax.set_ylabel(f"{label}\nmel band")
            if row == len(rows) - 1:
                ax.set_xlabel("frame")
        fig.colorbar(image, ax=list(axes[:, column]), shrink=0.8)
    return fig


def plot_loss_curves(histories: Mapping[str, pd.DataFrame], metric: str = "loss", *,
                     log_scale: bool = False) -> Figure:
    """Training and validation curves of several runs on one axes.

    Parameters
    ----------
    histories : mapping name -> pd.DataFrame
        Keras history tables with columns ``epoch`` (optional; else 1, 2, ...),
        ``metric`` and optionally ``val_<metric>``.
    metric : str
        ``"loss"``, ``"accuracy"``, ...
    log_scale : bool
        Logarithmic y axis (useful for reconstruction losses).

    Returns
    -------
    fig : Figure
        One axes; per run a solid training line and, if present, a dashed
        validation line in the same colour.
    """
    if not histories:
        raise ValueError("histories is empty: give at least one run")
    palette = sns.color_palette(n_colors=max(len(histories), 1))
    fig, axes = _new_figure(figsize=(6.5, 4.0), layout="constrained")
    ax = axes[0, 0]
    scale = 100.0 if _is_accuracy(metric) else 1.0
    for colour, (name, history) in zip(palette, histories.items()):
        _require_columns(history, (metric,), f"histories[{name!r}]")
        epochs = history["epoch"].to_numpy() if "epoch" in history.columns else np.arange(1, len(history) + 1)
        ax.plot(epochs, history[metric].to_numpy(dtype=float) * scale, color=colour, label=f"{name} (train)")
        if f"val_{metric}" in history.columns:
            ax.plot(epochs, history[f"val_{metric}"].to_numpy(dtype=float) * scale, color=colour,
                    linestyle="--", label=f"{name} (validation)")
    if log_scale:
        ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel=f"{metric} (%)" if scale == 100 else metric)
    ax.legend(fontsize="small")
    return fig


# ----------------------------------------------------------------------------
# results


def plot_fold_accuracies(metrics: pd.DataFrame, *, x: str = "config", hue: str = "method",
                         value: str = "accuracy", confidence: float = 0.95) -> Figure:
    """Per-fold accuracies as points, with the mean and t interval per (config, method).

    Parameters
    ----------
    metrics : pd.DataFrame
        Tidy per-fold metrics with columns ``x``, ``hue`` and ``value``.
    x, hue : str
        Category on the x axis and the grouping drawn side by side.  With
        ``x="labels_per_class"`` the budgets ascend and 0 (every labelled
        clip) comes last, labelled ``"all"``.
    value : str
        Score column (fractions, drawn in %).
    confidence : float in (0, 1)

    Returns
    -------
    fig : Figure
        One axes: a scatter of every fold and, per ``hue`` level, one error
        bar container (mean ± interval at each ``x``).
    """
    _require_columns(metrics, (x, hue, value), "metrics")
    categories, tick_labels = _categories(metrics[x], x)
    palette = _method_palette(list(dict.fromkeys(metrics[hue])))
    levels = list(palette)
    width = 0.8 / len(levels)
    offsets = {level: (j - (len(levels) - 1) / 2) * width for j, level in enumerate(levels)}
    position = {c: i for i, c in enumerate(categories)}
    scale = 100.0 if _is_accuracy(value) else 1.0
    rng = np.random.default_rng(0)
    points = pd.DataFrame({
        "position": [position[c] + offsets[h] for c, h in zip(metrics[x], metrics[hue])]
        + rng.uniform(-width / 6, width / 6, len(metrics)),
        "score": metrics[value].to_numpy(dtype=float) * scale,
        hue: metrics[hue].to_numpy(),
    })
    fig, axes = _new_figure(figsize=(max(5.0, 1.1 * len(categories) + 2.5), 4.2), layout="constrained")
    ax = axes[0, 0]
    sns.scatterplot(data=points, x="position", y="score", hue=hue, hue_order=levels, palette=palette,
                    alpha=0.45, s=22, ax=ax, legend=False)
    for level in levels:
        means, lows, highs, xs = [], [], [], []
        for category in categories:
            scores = metrics.loc[(metrics[x] == category) & (metrics[hue] == level), value].to_numpy(dtype=float)
            if scores.size == 0:
                continue
            mean, low, high = mean_ci(scores, confidence)
            xs.append(position[category] + offsets[level])
            means.append(mean * scale)
            lows.append((mean - low) * scale if np.isfinite(low) else 0.0)
            highs.append((high - mean) * scale if np.isfinite(high) else 0.0)
        ax.errorbar(xs, means, yerr=[lows, highs], fmt="D", color=palette[level], capsize=4, markersize=6,
                    label=f"{level} (mean ± {confidence:.0%} CI)")
    ax.set_xticks(range(len(categories)), tick_labels,
                  rotation=30 if len(categories) > 3 else 0, ha="right" if len(categories) > 3 else "center")
    ax.set(xlabel=x, ylabel=f"{value} (%)" if scale == 100 else value)
    ax.legend(fontsize="small")
    return fig


def plot_confusion(confusion_df: pd.DataFrame, normalise: bool = True) -> Figure:
    """Heat map of a confusion matrix (rows true, columns predicted).

    Parameters
    ----------
    confusion_df : pd.DataFrame [shape=(n_classes, n_classes)]
        As returned by :func:`esc_lib.stats.confusion`.
    normalise : bool
        Divide each row by its total, so the diagonal is the per-class
        accuracy (a class with no clips stays at 0).

    Returns
    -------
    fig : Figure
        The heat map axes and its colour bar; cells are annotated when there
        are at most 20 classes.
    """
    if not isinstance(confusion_df, pd.DataFrame):
        raise TypeError(f"confusion_df must be a pandas DataFrame, got {type(confusion_df).__name__}")
    if confusion_df.empty or confusion_df.shape[0] != confusion_df.shape[1]:
        raise ValueError(f"confusion_df must be a non-empty square table, got shape {confusion_df.shape}")
    counts = confusion_df.astype(float)
    if normalise:
        totals = counts.sum(axis=1).replace(0, np.nan)
        counts = counts.div(totals, axis=0).fillna(0.0)
    n = counts.shape[0]
    size = max(4.5, 0.45 * n + 2.5)
    fig, axes = _new_figure(figsize=(size + 1.0, size), layout="constrained")
    ax = axes[0, 0]
    sns.heatmap(counts, ax=ax, cmap="Blues", annot=n <= 20, fmt=".2f" if normalise else ".0f",
                vmin=0, vmax=1 if normalise else None, square=True, linewidths=0.3,
                cbar_kws={"label": "fraction of true class" if normalise else "clips"},
                annot_kws={"fontsize": "x-small"})
    ax.set(xlabel="predicted", ylabel="true")
    return fig


def plot_per_class(per_class_df: pd.DataFrame, *, value: str = "accuracy", sort: bool = True) -> Figure:
    """Horizontal bars of per-class accuracy (one colour per method if a ``method`` column exists).

    Parameters
    ----------
    per_class_df : pd.DataFrame
        As returned by :func:`esc_lib.stats.per_class_accuracy`
        (columns ``class`` and ``value``), optionally several concatenated
        with a ``method`` column.
    value : str
        Column to draw (fractions, drawn in %).
    sort : bool
        Order classes by their mean score, best first.

    Returns
    -------
    fig : Figure
        One axes with one bar per (class, method).
    """
    _require_columns(per_class_df, ("class", value), "per_class_df")
    frame = per_class_df.copy()
    scale = 100.0 if _is_accuracy(value) else 1.0
    frame["score"] = frame[value].astype(float) * scale
    order = list(dict.fromkeys(frame["class"]))
    if sort:
        order = list(frame.groupby("class", sort=False)["score"].mean().sort_values(ascending=False).index)
    hue = "method" if "method" in frame.columns else None
    palette = _method_palette(list(dict.fromkeys(frame["method"]))) if hue else None
    fig, axes = _new_figure(figsize=(6.5, max(3.0, 0.32 * len(order) * (1 if hue is None else 1.4) + 1.0)),
                            layout="constrained")
    ax = axes[0, 0]
    sns.barplot(data=frame, y="class", x="score", hue=hue, order=order, ax=ax, orient="h", errorbar=None,
                hue_order=list(palette) if hue else None, palette=palette,
                color=None if hue else sns.color_palette()[0])
    ax.set(xlabel=f"{value} (%)" if scale == 100 else value, ylabel="")
    if scale == 100:
        ax.set_xlim(0, 100)
    return fig


def plot_learning_curves(histories_by_method: Mapping[str, Sequence[pd.DataFrame]], *,
                         metric: str | None = None) -> Figure:
    """Validation accuracy against epoch: mean across folds with a ± 1 SD band, per method.

    Parameters
    ----------
    histories_by_method : mapping method -> list of pd.DataFrame
        One Keras history table per fold (columns ``epoch`` -- else 1, 2, ... --
        and ``metric``).
    metric : str, optional
        Column to draw; accuracies in %.  Default ``val_accuracy``, or the
        training ``accuracy`` when some history has no validation columns
        (runs that trained on the validation fold too).

    Returns
    -------
    fig : Figure
        One line and one band per method.  With early stopping, folds end at
        different epochs; the mean at an epoch is over the folds still
        training, which the legend's fold count does not capture -- read the
        tail with care.
    """
    if not histories_by_method:
        raise ValueError("histories_by_method is empty: give at least one method")
    if metric is None:
        every = [h for histories in histories_by_method.values() for h in histories]
        metric = "val_accuracy" if all("val_accuracy" in h.columns for h in every) else "accuracy"
    frames = []
    for method, histories in histories_by_method.items():
        if not histories:
            raise ValueError(f"histories_by_method[{method!r}] holds no history")
        for fold, history in enumerate(histories, start=1):
            _require_columns(history, (metric,), f"histories_by_method[{method!r}][{fold - 1}]")
            epochs = history["epoch"].to_numpy() if "epoch" in history.columns else np.arange(1, len(history) + 1)
            frames.append(pd.DataFrame({"method": method, "fold": fold, "epoch": epochs,
                                        "score": history[metric].to_numpy(dtype=float)}))
    data = pd.concat(frames, ignore_index=True)
    scale = 100.0 if _is_accuracy(metric) else 1.0
    data["score"] *= scale
    fig, axes = _new_figure(figsize=(6.5, 4.0), layout="constrained")
    ax = axes[0, 0]
    counts = {m: len(h) for m, h in histories_by_method.items()}
    palette = {f"{m} ({counts[m]} folds)": colour for m, colour in _method_palette(list(counts)).items()}
    data["method"] = data["method"].map(lambda m: f"{m} ({counts[m]} folds)")
    sns.lineplot(data=data, x="epoch", y="score", hue="method", hue_order=list(palette), palette=palette,
                 errorbar="sd", ax=ax)
    label = "training accuracy (augmented batches)" if metric == "accuracy" else metric
    ax.set(xlabel="epoch", ylabel=f"{label} (%)" if scale == 100 else label)
    return fig


def plot_embedding(features, labels, classes: Sequence[str], method: str = "tsne", seed: int = 0, *,
                   perplexity: float | None = None) -> Figure:
    """2-D embedding of encoder features, coloured by class.

    Parameters
    ----------
    features : np.ndarray [shape=(n_clips, ...)]
        One feature vector (or tensor, flattened) per clip, e.g. the CAE
        encoder output.
    labels : array-like [shape=(n_clips,)]
        Class indices into ``classes`` or class names.
    classes : sequence of str
    method : {"tsne", "pca"}
        :class:`sklearn.manifold.TSNE` (after standardising and a PCA to at
        most 50 dimensions) or :class:`sklearn.decomposition.PCA`.
    seed : int
        Random state of t-SNE.
    perplexity : float, optional
        t-SNE perplexity; default ``min(30, (n_clips - 1) / 3)``.

    Returns
    -------
    fig : Figure
        One axes with one scatter of all clips.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    method = str(method).lower()
    if method not in {"tsne", "pca"}:
        raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}")
    array = np.asarray(features, dtype=float)
    if array.ndim < 2:
        raise ValueError(f"features must have shape [n_clips, ...], got {array.shape}")
    array = array.reshape(array.shape[0], -1)
    n = array.shape[0]
    if n < 3:
        raise ValueError(f"an embedding needs at least 3 clips, got {n}")
    if not np.all(np.isfinite(array)):
        raise ValueError("features hold NaN or inf")
    classes = [str(c) for c in classes]
    names = as_class_names(labels, classes, name="labels")
    if names.size != n:
        raise ValueError(f"labels has {names.size} entries for {n} feature rows")

    scaled = StandardScaler().fit_transform(array)
    if method == "pca":
        coordinates = PCA(n_components=2, random_state=seed).fit_transform(scaled)
        axis_name = "PC"
    else:
        components = min(50, scaled.shape[1], n)
        if components < scaled.shape[1]:
            scaled = PCA(n_components=components, random_state=seed).fit_transform(scaled)
        if perplexity is None:
            perplexity = min(30.0, max(1.0, (n - 1) / 3))
        if not 0 < perplexity < n:
            raise ValueError(f"perplexity must be in (0, {n}) for {n} clips, got {perplexity!r}")
        coordinates = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(scaled)
        axis_name = "t-SNE"
    present = [c for c in classes if c in set(names)]
    palette = sns.color_palette("tab10" if len(present) <= 10 else "husl", n_colors=len(present))
    fig, axes = _new_figure(figsize=(7.5, 5.5), layout="constrained")
    ax = axes[0, 0]
    sns.scatterplot(x=coordinates[:, 0], y=coordinates[:, 1], hue=names, hue_order=present, palette=palette,
                    s=22, alpha=0.8, linewidth=0, ax=ax)
    ax.set(xlabel=f"{axis_name} 1", ylabel=f"{axis_name} 2", xticks=[], yticks=[])
    ax.legend(fontsize="x-small", ncol=1 if len(present) <= 20 else 2, bbox_to_anchor=(1.02, 1), loc="upper left",
              frameon=False)
    return fig


def plot_budget_curves(curve_df: pd.DataFrame, x: str = "labels_per_class", xlabel: str | None = None, *,
                       by: str = "method", all_position: float | None = None) -> Figure:
    """Accuracy against a budget (labels per class, pool size): mean line and interval band per method.

    Parameters
    ----------
    curve_df : pd.DataFrame
        As returned by :func:`esc_lib.stats.budget_curve`: columns
        ``by``, ``x``, ``mean``, ``ci_low``, ``ci_high`` (fractions).
    x : str
        The budget column, non-negative integers.  For ``labels_per_class``,
        0 means every labelled clip: it is drawn right of the largest budget
        and labelled ``"all"``.  For other columns (``pool_size``) 0 is a
        plain 0.
    xlabel : str, optional
        Axis label; default ``"labelled clips per class"`` for
        ``labels_per_class``, else ``x``.
    by : str
        Column naming the curves.
    all_position : float, optional
        Where ``labels_per_class`` 0 ("all") sits on the x axis (e.g. the real
        number of training clips per class); default twice the largest
        budget.  It must lie right of the largest budget.

    Returns
    -------
    fig : Figure
        One line (with markers) and one band per method; the x axis is
        log2 when all positions are positive and span a factor of 4 or more.

    Raises
    ------
    ValueError
        If a column is missing, ``x`` holds a non-integer (e.g. ``"all"`` of
        older tables), ``labels_per_class`` holds only 0 and no
        ``all_position`` is given, or ``all_position`` is not beyond the
        largest budget.
    """
    _require_columns(curve_df, (by, x, "mean", "ci_low", "ci_high"), "curve_df")
    frame = curve_df.copy()
    orders = np.array([budget_order(v, x) for v in frame[x]], dtype=float)
    every = ~np.isfinite(orders)  # labels_per_class 0: every labelled clip
    numbers = orders[~every]
    if every.any():
        if all_position is None:
            if numbers.size == 0:
                raise ValueError(f"{x} holds only 0 (every labelled clip); give all_position or positive budgets")
            place = 2.0 * float(numbers.max())
        else:
            place = float(all_position)
            if numbers.size and place <= numbers.max():
                raise ValueError(
                    f"all_position ({all_position!r}) must lie right of the largest budget ({numbers.max():g})"
                )
        orders[every] = place
    frame["position"] = orders
    tick_labels = dict(zip(frame["position"], (budget_label(v, x) for v in frame[x])))
    positions = frame["position"]
    log2 = bool((positions > 0).all() and positions.max() / positions.min() >= 4)
    scale = 100.0
    fig, axes = _new_figure(figsize=(6.0, 4.0), layout="constrained")
    ax = axes[0, 0]
    for level, colour in _method_palette(list(dict.fromkeys(frame[by]))).items():
        part = frame[frame[by] == level].sort_values("position")
        ax.plot(part["position"], part["mean"] * scale, marker="o", color=colour, label=str(level))
        ax.fill_between(part["position"], part["ci_low"].astype(float) * scale,
                        part["ci_high"].astype(float) * scale, color=colour, alpha=0.2, linewidth=0)
    if log2:
        ax.set_xscale("log", base=2)
    ticks = sorted(tick_labels)
    ax.set_xticks(ticks, [tick_labels[t] for t in ticks])
    ax.minorticks_off()
    if xlabel is None:
        xlabel = "labelled clips per class" if x == "labels_per_class" else x
    ax.set(xlabel=xlabel, ylabel="accuracy (%)")
    ax.legend(title=by)
    return fig
