"""Notebook 04's tables and figures: one call per table or figure group.

Each function reads what a run folder holds (:class:`Results`), writes its
tables (CSV + Markdown) and figures by name, and returns what it made, so the
notebook shows it and holds no logic.  Captions come from the settings that
were run and the dataset that was loaded.

Publishing never destroys: a table that lists configurations (Table 1, the
summary, the paired tests, every fold's accuracy, the sweep comparison,
the pseudo-labels' accuracy) keeps the rows a folder already holds for the
profile's other sweep points that this run did not train
(:attr:`Results.kept`), so ``./run_all.sh --profile esc10`` after a
``--sweep`` keeps Table 1's whole grid; the run's own rows replace the old
ones.  A run with ``-p`` overrides publishes into its own folder, as before.
Publishing into ``results/<profile>/`` also writes its ``run.json``
(:mod:`esc_lib.runs`).

    results = report.Results.collect(experiment, figure_dir, table_dir)
    report.paper_tables(results)        # Table 1, Table 2, summary, paired test
    report.fold_accuracies(results)
    report.confusion_and_per_class(results)
    ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from esc_lib import config, plots, runs, stats, tables
from esc_lib.experiment import Experiment, collect_results

__all__ = [
    "Results",
    "profile_configurations",
    "publish_table",
    "paper_tables",
    "fold_accuracies",
    "sweep_comparison",
    "pseudo_label_accuracy",
    "pseudo_label_table",
    "confusion_and_per_class",
    "learning_curves",
    "embedding",
    "pool_size_curve",
    "label_budget_curve",
    "export_bundle",
    "method_comparison",
    "recommendation",
    "cost",
]


@dataclass
class Results:
    """What a run folder holds, and where this notebook publishes.

    Attributes
    ----------
    experiment : Experiment
        The profile's own configuration (its settings name the tables' rows).
    metrics, predictions : pd.DataFrame
        Every configuration's rows in the run folder.
    full : pd.DataFrame
        Rows at the reference budget (every label, ``labels_per_class == 0``,
        when it was run: :attr:`esc_lib.settings.Settings.reference_budget`)
        and the profile's own unlabeled pool: what the tables compare.
    every_pool : pd.DataFrame
        Rows at the reference budget, at any pool size.
    figure_dir, table_dir : Path
    kept : dict
        Configuration name -> settings of the profile's sweep points that this
        run did not train: their rows in tables already published in
        ``table_dir`` are kept (:func:`profile_configurations`).
    """

    experiment: Experiment
    metrics: pd.DataFrame
    predictions: pd.DataFrame
    full: pd.DataFrame
    every_pool: pd.DataFrame
    figure_dir: Path
    table_dir: Path
    kept: dict = field(default_factory=dict)

    @classmethod
    def collect(cls, experiment: Experiment, figure_dir, table_dir) -> "Results":
        """What the run folder holds; publishing into ``results/<profile>/`` also writes its ``run.json``."""
        metrics, predictions = collect_results(experiment.run_dir)
        every_pool = metrics[metrics["labels_per_class"] == experiment.settings.reference_budget]
        full = every_pool[every_pool["pool"].astype(str) == experiment.settings.pool_label]
        description, points = profile_configurations(experiment.settings)
        trained = set(metrics["config"].astype(str))
        kept = {name: settings for name, settings in points.items() if name not in trained}
        results = cls(experiment, metrics, predictions, full, every_pool, Path(figure_dir), Path(table_dir), kept)
        if results.published:
            # Run by hand on a profile whose settings changed: the folder of the old settings goes to archive/
            # first (the runner does this before stage 1).
            if runs.archive_superseded(results.table_dir, results.figure_dir, set(points) | trained) is not None:
                results.table_dir.mkdir(parents=True, exist_ok=True)
            runs.record_publication(results.table_dir, results.figure_dir, experiment.settings, experiment.run_dir,
                                    configurations=trained, kept=kept, question=description)
        return results

    @property
    def published(self) -> bool:
        """Whether the tables go to a published folder, ``results/<profile>/`` (not the run folder's ``tables``)."""
        return self.table_dir.resolve().parent == config.results_dir().resolve()

    @property
    def config_id(self) -> str:
        return self.experiment.settings.config_id

    @property
    def own_rows(self) -> pd.DataFrame:
        """Every budget's rows of the profile's own configuration and unlabeled pool (the label-budget tables')."""
        m = self.metrics
        return m[(m["config"] == self.config_id) & (m["pool"].astype(str) == self.experiment.settings.pool_label)]

    @property
    def method(self) -> str:
        """The method figures show: the pre-trained classifier when it was run, else the first method run."""
        run = [m for m in self.experiment.settings.methods if m in set(self.full["method"])]
        return "pretrained" if "pretrained" in run else run[0]

    def describe(self) -> str:
        return (f"{len(self.full)} fold results from {self.full['config'].nunique()} configuration(s) "
                f"in {self.experiment.run_dir}")


def profile_configurations(settings) -> tuple[str | None, dict]:
    """The description and the sweep points (configuration name -> settings) of the profile a run publishes for.

    The profile is found by the name the run publishes under
    (``settings.profile``: ``esc10``, or ``search-strong`` for
    ``profiles/search/strong.yaml``); each point is ``settings`` with the
    point's changes, so ``-p`` overrides apply to every point as in the
    runner.  A run published under its own name (``-p`` overrides, or a
    profile file outside ``profiles/``) has no such profile: ``(None, {})``.
    """
    from esc_lib.settings import load_profile

    names = [settings.profile] + ([settings.profile.replace("-", "/", 1)] if "-" in settings.profile else [])
    for name in names:
        try:
            profile = load_profile(name)
        except (ValueError, OSError):  # SettingsError is a ValueError: no such profile
            continue
        points = {}
        for point in profile.points():
            try:
                point_settings = settings.replace(**point)
            except ValueError:
                continue
            points[point_settings.config_id] = point_settings
        return profile.description or None, points
    return None, {}


#: The columns that name a row of each table that lists configurations (the others describe
#: the profile's own configuration and are replaced whole).
MERGED_TABLES = {
    "table1": ("b", "f", "decoder", "batch_norm", "config"),
    "summary": ("config", "method"),
    "paired_test": ("config",),
    tables.FOLD_ACCURACIES_FILE.removesuffix(".csv"): ("config", "method", "seed", "pool", "labels_per_class", "fold"),
    "sweep_comparison": ("config", "labels per class", "method"),
    "pseudo_label_accuracy": ("classifier", "run"),
}


def _kept_rows(old: pd.DataFrame, results: Results) -> pd.Series:
    """Which rows of a published table belong to the profile's configurations this run did not train."""
    kept = results.kept
    if "config" in old.columns:
        return old["config"].astype(str).isin(kept)
    if "classifier" in old.columns:
        from esc_lib.settings import METHODS

        folders = {s.classifier_id(m) for s in kept.values() for m in s.methods if m in METHODS}
        return old["classifier"].astype(str).isin(folders)
    # Table 1 names a configuration by its batch size, filters, decoder and batch norm.
    values = {"b": "batch_size", "f": "filters", "decoder": "decoder", "batch_norm": "batch_norm"}
    columns = [c for c in values if c in old.columns]
    if not columns:
        return pd.Series(False, index=old.index)
    wanted = {tuple(tables.key_text(getattr(s, values[c])) for c in columns) for s in kept.values()}
    return pd.Series([tuple(tables.key_text(v) for v in row) in wanted
                      for row in old[columns].itertuples(index=False)], index=old.index)


def publish_table(results: Results, table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Write ``table`` as ``name`` into the table folder, keeping the kept configurations' published rows.

    For the tables of :data:`MERGED_TABLES`, the rows an earlier publication
    in the same folder holds for configurations of the profile's sweep that
    this run did not train (:attr:`Results.kept`) are kept beside the run's
    own (:func:`esc_lib.tables.merge_rows`); the caption says how many.
    Other tables, and configurations outside the profile's sweep, are
    replaced.  Returns the table written.
    """
    path = results.table_dir / f"{name}.csv"
    keys = MERGED_TABLES.get(name.split("_balanced_accuracy")[0].split("_macro_f1")[0])
    if keys and results.kept and path.is_file():
        old = pd.read_csv(path)
        keep = _kept_rows(old, results).to_numpy()
        if keep.any():
            table = table.copy()
            s = results.experiment.settings
            # Table 1 leaves out a decoder or batch-norm column that does not vary in the run; the kept
            # rows may vary in it, so the run's own value is written beside its rows.
            for column, value in (("decoder", s.decoder), ("batch_norm", s.batch_norm)):
                if name == "table1" and column in old.columns and column not in table.columns:
                    after = [list(table.columns).index(c) for c in ("b", "f", "decoder") if c in table.columns]
                    table.insert(max(after, default=-1) + 1, column, value)
            caption = table.attrs.get("caption", "")
            table = tables.merge_rows(table, old, keys, keep)
            table.attrs["caption"] = (
                f"{caption} {table.attrs['kept_rows']} row(s) of the profile's other configurations, which this run "
                f"did not train, are kept from the earlier publication in this folder.").strip()
    tables.write_table(table, results.table_dir / name)
    return table


def paper_tables(results: Results) -> dict[str, pd.DataFrame]:
    """Table 1 (batch size x filters), Table 2 (published figures), the summary and the paired test."""
    s = results.experiment.settings
    full = results.full
    made = {
        "table1": tables.table1(full, results.experiment.dataset_label, architecture=s.architecture,
                                with_paper=(s.dataset == "esc50" and not s.encoder)),
    }
    if s.dataset != "own":  # the published figures are ESC-50's and ESC-10's
        # The profile's own configuration, chosen before the run (not the best on the test folds).
        made["table2"] = tables.table2(full, s.dataset, dataset_label=results.experiment.dataset_label,
                                       configs=_own_configuration(results))
    made["summary"] = stats.summarise(full)
    paired = set(full["method"]) >= {stats.BASELINE, stats.TREATMENT}
    if paired:
        made["paired_test"] = stats.compare_methods(full)
    if imbalanced(results.experiment.dataset):
        # Classes of unequal size: accuracy favours the large ones, so the balanced
        # accuracy (mean per-class recall) and the macro-F1 are reported beside it.
        for value in ("balanced_accuracy", "macro_f1"):
            if value in full.columns:
                made[f"summary_{value}"] = stats.summarise(full, value=value)
                if paired:
                    made[f"paired_test_{value}"] = stats.compare_methods(full, value=value)
    for name, table in made.items():
        made[name] = publish_table(results, table, name)
    return made


def imbalanced(dataset) -> bool:
    """Whether the classes hold different numbers of files (then balanced accuracy and macro-F1 are reported)."""
    counts = dataset.summary().drop(index="total")["total"]
    return bool(counts.max() != counts.min())


def _own_configuration(results: Results) -> dict | None:
    """Table 2's rows: the profile's own configuration for the paper's two methods (chosen before the run)."""
    paper = (stats.BASELINE, stats.TREATMENT)
    if not set(paper) <= set(results.full["method"]):
        return None
    # A sweep's variant may run a method the profile's own configuration does not (e.g. the CAE
    # only in one variant): that method's row is then the best variant, labelled as such.
    own = set(results.full.loc[results.full["config"] == results.config_id, "method"])
    return {method: results.config_id for method in paper if method in own} or None


def fold_accuracies(results: Results) -> pd.DataFrame:
    """Accuracy per fold and configuration (``04_fold_accuracies.png``), and the table ``fold_accuracies``.

    One row per configuration, method, pool, budget and fold of the run folder
    (with its seed), so runs of other seeds can be paired with it fold by fold.
    """
    columns = ["config", "method", "seed", "pool", "labels_per_class", "fold", "validation_fold", "scored_on",
               "accuracy", "validation_accuracy", "n_train", "n_test", "seconds"]
    table = results.metrics[[c for c in columns if c in results.metrics.columns]].sort_values(
        ["config", "method", "labels_per_class", "fold"]).reset_index(drop=True)
    table.attrs["caption"] = "Accuracy of every fold, method and label budget (0: all labels) of this run."
    # What compare reads back; it keeps the folds of the profile's configurations this run did not train.
    table = publish_table(results, table, Path(tables.FOLD_ACCURACIES_FILE).stem)
    figure = results.figure_dir / "04_fold_accuracies.png"
    summary = results.table_dir / "summary.csv"
    published = set(pd.read_csv(summary)["config"].astype(str)) if summary.is_file() else set()
    unseen = sorted((published & set(results.kept)) - set(table["config"].astype(str)))
    if unseen and figure.is_file():
        # Configurations published before every fold was (their summaries only): redrawn without them, the
        # figure would lose them, so the published one stays.
        print(f"{figure.name} kept as published: it shows {len(unseen)} configuration(s) this run did not train "
              f"and whose folds were not published ({', '.join(unseen[:3])}{', ...' if len(unseen) > 3 else ''})")
        return table
    shown = results.full
    if table.attrs.get("kept_rows"):
        # The figure shows what Table 1 compares (every label when run, the profile's pool), kept folds included.
        s = results.experiment.settings
        shown = table[(table["labels_per_class"].map(tables.key_text) == str(s.reference_budget))
                      & (table["pool"].map(tables.key_text) == tables.key_text(s.pool_label))]
    plots.save_figure(plots.plot_fold_accuracies(shown), "04_fold_accuracies", results.figure_dir)
    return table


def _scored_predictions(results: Results) -> pd.DataFrame:
    p = results.predictions
    return p[(p["config"] == results.config_id) & (p["method"] == results.method)
             & (p["labels_per_class"] == results.experiment.settings.reference_budget)]


def confusion_and_per_class(results: Results) -> pd.DataFrame:
    """The confusion matrix and per-class accuracy of the profile's configuration over every fold."""
    chosen = _scored_predictions(results)
    classes = results.experiment.dataset.classes
    confusion = stats.confusion(chosen["y_true"], chosen["y_pred"], classes)
    plots.save_figure(plots.plot_confusion(confusion), "04_confusion_matrix", results.figure_dir)
    per_class = stats.per_class_accuracy(chosen["y_true"], chosen["y_pred"], classes)
    tables.write_table(per_class, results.table_dir / "per_class_accuracy")
    plots.save_figure(plots.plot_per_class(per_class), "04_per_class_accuracy", results.figure_dir)
    return per_class


def learning_curves(results: Results) -> None:
    """Training / validation curves of each method of the profile's configuration (``04_learning_curves.png``)."""
    experiment = results.experiment
    full = results.full
    methods = sorted(set(full[full["config"] == results.config_id]["method"]))
    budget = experiment.settings.reference_budget
    histories = {m: [experiment.history(m, fold, budget) for fold in experiment.settings.folds] for m in methods}
    plots.save_figure(plots.plot_learning_curves(histories), "04_learning_curves", results.figure_dir)


def embedding(results: Results) -> None:
    """A 2-D embedding of the first fold's CAE encoder features of its test clips (``04_embedding.png``).

    Nothing without a pre-trained method (no CAE was trained).
    """
    from esc_lib import models

    experiment = results.experiment
    if "pretrained" not in experiment.settings.methods:
        print("no CAE in this run (methods without 'pretrained'): no embedding")
        return
    if experiment.settings.score == "validation":
        print("score='validation': the test folds are not touched, so no embedding of test clips")
        return
    fold = experiment.settings.folds[0]
    cae, _ = experiment.pretrain(fold)
    test = experiment.split(fold).test
    X_test = experiment.standardizer(fold).transform(experiment.features[test])
    encoded = models.encoder_features(cae).predict(X_test, verbose=0)
    figure = plots.plot_embedding(encoded, experiment.dataset.labels[test], experiment.dataset.classes,
                                  method=experiment.settings.embedding_method, seed=experiment.settings.seed)
    plots.save_figure(figure, "04_embedding", results.figure_dir)


def pool_size_curve(results: Results) -> pd.DataFrame | None:
    """Pre-trained accuracy against the unlabeled pool size (None with one pool size in the run folder)."""
    s = results.experiment.settings
    pool = results.every_pool
    same_model = pool[(pool["batch_size"] == s.batch_size) & (pool["filters"] == s.filters)
                      & (pool["decoder"] == s.decoder) & (pool["batch_norm"] == s.batch_norm)]
    pretrained = same_model[same_model["method"] == "pretrained"]
    if pretrained["pool_size"].nunique() < 2:
        return None
    reference = results.full[(results.full["config"] == results.config_id) & (results.full["method"] == "supervised")]
    curve = stats.budget_curve(pd.concat([pretrained, reference]), x="pool_size")
    tables.write_table(curve, results.table_dir / "pool_size")
    figure = plots.plot_budget_curves(curve, x="pool_size", xlabel="unlabeled 5 s windows in the pre-training pool")
    plots.save_figure(figure, "04_pool_size", results.figure_dir)
    return curve


def label_budget_curve(results: Results) -> pd.DataFrame | None:
    """Accuracy against labelled clips per class (None without label-budget runs)."""
    budgets = results.own_rows
    if budgets["labels_per_class"].nunique() < 2:
        return None
    curve = stats.budget_curve(budgets)
    tables.write_table(curve, results.table_dir / "label_budget")
    plots.save_figure(plots.plot_budget_curves(curve), "04_label_budget", results.figure_dir)
    return curve


def export_bundle(results: Results) -> Path:
    """A prediction bundle of the first fold's scored classifier (see :mod:`esc_lib.predict`)."""
    from esc_lib import predict

    experiment = results.experiment
    return predict.export_from_experiment(experiment, experiment.settings.folds[0], method=results.method,
                                          labels_per_class=experiment.settings.reference_budget, overwrite=True)


def method_comparison(results: Results) -> pd.DataFrame | None:
    """Every method against the supervised baseline at each label budget, paired by fold.

    Rows: budget (``all`` for every label), method, both means ± t half-width,
    the paired difference in points with its interval, the paired t and the
    Wilcoxon p-values.  None unless the profile's configuration ran
    ``supervised`` and at least one other method.  Written as ``methods_by_budget``.
    """
    from esc_lib.settings import METHODS

    m = results.own_rows
    others = [method for method in METHODS if method != stats.BASELINE and method in set(m["method"])]
    if stats.BASELINE not in set(m["method"]) or not others:
        return None
    rows = []
    for method in others:
        compared = stats.compare_methods(m, by="labels_per_class", treatment=method)
        rows += [stats.comparison_row(row, method) for _, row in compared.iterrows()]
    table = pd.DataFrame(rows).sort_values(["_order", "method"], kind="stable").drop(columns="_order").reset_index(drop=True)
    table.attrs["caption"] = (
        f"Each way of using unlabeled audio against the same network trained from scratch ({results.experiment.dataset_label}, "
        f"{results.experiment.settings.architecture}), by labelled clips per class; mean ± half-width of the 95% t interval "
        f"over folds, difference = method − supervised in points, paired by fold. Scored on the "
        f"{results.experiment.settings.score} folds.")
    tables.write_table(table, results.table_dir / "methods_by_budget")
    return table


def recommendation(results: Results) -> pd.DataFrame | None:
    """One method per label budget from this run's methods (:mod:`esc_lib.guidance`), written as ``recommendation``.

    Rows: budget, the recommended method (the largest gain over supervised
    among the methods ahead of it with paired t p < 0.05, else supervised),
    its accuracy, gain, p and seconds per fold beside supervised's, and why.
    None when :func:`method_comparison` is (no supervised baseline or no
    other method).  ``python -m esc_lib recommend`` gives the same from the
    published folder, several seeds pooled.
    """
    from esc_lib import guidance

    m = results.own_rows
    if stats.BASELINE not in set(m["method"]) or m["method"].nunique() < 2:
        return None
    advice = guidance.recommend(guidance.study(m))
    table = pd.DataFrame([{
        "labels per class": r.budget, "recommended": r.method, "accuracy (%)": round(100 * r.accuracy, 1),
        "supervised (%)": round(100 * r.supervised_accuracy, 1), "difference (pp)": round(r.difference, 1),
        "p (paired t)": r.p, "s/fold": round(r.seconds, 1), "supervised s/fold": round(r.supervised_seconds, 1),
        "why": r.reason,
    } for r in advice])
    table.attrs["caption"] = (
        f"The method to take at each label budget on this run's {results.experiment.settings.score} folds: the largest "
        f"gain over supervised among the methods ahead of it with p < {guidance.ALPHA:g} (paired t over folds, not "
        "corrected for the several methods compared), else supervised.")
    tables.write_table(table, results.table_dir / "recommendation")
    return table


def sweep_comparison(results: Results) -> pd.DataFrame | None:
    """Every configuration of the run folder (a sweep's points) against its own supervised runs, paired by fold.

    Rows: configuration, budget, method, both means ± t half-width, the
    paired difference in points with its interval, the paired t and Wilcoxon
    p-values, and the method's seconds per fold (from its histories: a
    self-trained student's include its teachers).  What a search is chosen
    on.  None unless two or more configurations ran ``supervised`` and
    another method.  Written as ``sweep_comparison``.
    """
    from esc_lib.settings import METHODS

    m = results.metrics  # a configuration's name includes its pool: a pool sweep's points are configurations too
    paired = [config for config, rows in m.groupby("config", sort=False)
              if stats.BASELINE in set(rows["method"]) and len(set(rows["method"])) > 1]
    if len(paired) < 2:
        return None
    m = m[m["config"].isin(paired)]
    seconds = m.groupby(["config", "labels_per_class", "method"])["seconds"].mean()
    rows = []
    for method in [method for method in METHODS if method != stats.BASELINE and method in set(m["method"])]:
        compared = stats.compare_methods(m[m["method"].isin([stats.BASELINE, method])],
                                         by=("config", "labels_per_class"), treatment=method)
        for _, row in compared.iterrows():
            if stats.MISSING_TEXT in (row[method], row[stats.BASELINE]):  # a budget only one of the two ran
                continue
            rows.append({"config": row["config"], **stats.comparison_row(row, method),
                         "s/fold": round(float(seconds[(row["config"], row["labels_per_class"], method)]), 1)})
    # The profile's own configuration (a sweep's base point) first, then the others by name.
    order = {config: i for i, config in enumerate(sorted(paired, key=lambda c: (c != results.config_id, c)))}
    table = (pd.DataFrame(rows).assign(_config=lambda t: t["config"].map(order))
             .sort_values(["_order", "_config", "method"], kind="stable").drop(columns=["_order", "_config"])
             .reset_index(drop=True))
    table.attrs["caption"] = (
        f"Each configuration of this run against the supervised network of the same configuration "
        f"({results.experiment.dataset_label}), by labelled clips per class; mean ± half-width of the 95% t interval "
        f"over folds, difference = method − supervised in points, paired by fold; seconds per fold of the method "
        f"on this machine. Scored on the {results.experiment.settings.score} folds.")
    return publish_table(results, table, "sweep_comparison")


def pseudo_label_table(run_dir, truth: dict[str, str]) -> pd.DataFrame:
    """How right every self-training round's pseudo-labels under ``run_dir`` were, against ``truth``.

    Parameters
    ----------
    run_dir : path
        A run folder; every ``classifiers/*/selftrain/*/pseudo_labels.csv`` is
        one round of one fold and budget.
    truth : dict
        File name -> class name of the labelled clips (their labels were
        dropped for training; this is a diagnostic of a finished run).

    Returns
    -------
    table : pd.DataFrame
        One row per round: ``classifier``, ``run`` (``fold1-lpc4``, the last
        round; ``...-round1`` the earlier ones), ``pseudo_labelled``,
        ``of_labelled_clips`` (those with a known class), ``pool_files`` (no
        label), ``right`` (share of the known ones given their true class) and
        the smallest and largest count per pseudo-labelled class.
    """
    from esc_lib.methods.selftrain import PSEUDO_LABELS_FILE

    rows = []
    for path in sorted(Path(run_dir).glob(f"classifiers/*/selftrain/*/{PSEUDO_LABELS_FILE}")):
        pseudo = pd.read_csv(path)
        known = pseudo["source"].astype(str).map(truth)
        labelled = known.notna()
        counts = pseudo["category"].value_counts()
        rows.append({
            "classifier": path.parents[2].name, "run": path.parent.name, "pseudo_labelled": len(pseudo),
            "of_labelled_clips": int(labelled.sum()), "pool_files": int((~labelled).sum()),
            "right": float((known[labelled] == pseudo["category"][labelled]).mean()) if labelled.any() else float("nan"),
            "per_class_min": int(counts.min()) if len(counts) else 0,
            "per_class_max": int(counts.max()) if len(counts) else 0,
        })
    return pd.DataFrame(rows, columns=["classifier", "run", "pseudo_labelled", "of_labelled_clips", "pool_files",
                                       "right", "per_class_min", "per_class_max"])


def pseudo_label_accuracy(results: Results) -> pd.DataFrame | None:
    """How right the run's self-training pseudo-labels were, against the labelled clips' own classes.

    The unlabeled clips of self-training are mostly labelled clips of the
    non-test folds with their labels dropped; counted afterwards, their
    labels show how good each round's pseudo-labels were (pool files have
    none and are counted apart).  None when the run folder holds no
    self-training round.  Written as ``pseudo_label_accuracy``.
    """
    dataset = results.experiment.dataset
    truth = dict(zip(dataset.meta["filename"].astype(str), (dataset.classes[label] for label in dataset.labels)))
    table = pseudo_label_table(results.experiment.run_dir, truth)
    if table.empty:
        return None
    table.attrs["caption"] = (
        "Self-training's pseudo-labels of each round (run: the fold and budget; -round<r> an earlier round), checked "
        "afterwards against the true classes of the labelled clips among them (their labels were dropped for "
        "training); pool files have no label.")
    return publish_table(results, table, "pseudo_label_accuracy")


def _pretraining_seconds(experiment: Experiment, method: str) -> float:
    """Seconds per test fold spent training the encoder ``method`` starts from (0 for none), from its histories."""
    from esc_lib import protocol, training

    folders = {"pretrained": experiment.cae_dir, "contrastive": experiment.contrastive_dir}
    method = experiment.settings.starts_from(method)
    if method is None:
        return 0.0
    folds = experiment.settings.folds
    trained = folds[:1] if protocol.shared_pretraining(experiment.settings.pretrain_on_train_folds) else folds
    seconds = [training.load_history(folders[method](fold)).get("seconds", pd.Series(dtype=float)).sum() for fold in trained]
    return float(sum(seconds)) / len(folds)


def cost(results: Results) -> pd.DataFrame:
    """Wall time of each method per test fold: pre-training its encoder, then one classifier per budget.

    ``pre-training s/fold`` sums the encoder's epochs (a shared encoder is
    spread over the folds); ``s/fold at <budget>`` is a classifier's training
    time from its histories (members and refit included, the same when it was
    loaded rather than trained);
    ``s/fold, all budgets`` adds them up, and ``min, whole study`` is that
    times the folds.  Written as ``cost``.
    """
    m = results.metrics[results.metrics["config"] == results.config_id]
    per_budget = m.groupby(["method", "labels_per_class"])["seconds"].mean().unstack("labels_per_class")
    per_budget = per_budget[sorted(per_budget.columns, key=stats.budget_order)]
    per_budget.columns = [f"s/fold at {stats.budget_label(c)}" for c in per_budget.columns]
    pretraining = pd.Series({method: _pretraining_seconds(results.experiment, method) for method in per_budget.index})
    per_budget.insert(0, "pre-training s/fold", pretraining)
    per_budget["s/fold, all budgets"] = per_budget.sum(axis=1)
    per_budget["min, whole study"] = per_budget["s/fold, all budgets"] * m["fold"].nunique() / 60
    table = per_budget.round(1).reset_index()
    table.attrs["caption"] = (
        "Wall time of each method on this machine: seconds per test fold to pre-train its encoder and to train one "
        "classifier at each label budget; minutes for every fold and budget.")
    tables.write_table(table, results.table_dir / "cost")
    return table
