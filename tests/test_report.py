"""Notebook 04's tables and figures (esc_lib.report) from a run folder made on synthetic data, no audio."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from esc_lib import report, tables
from esc_lib.experiment import Experiment
from esc_lib.settings import Settings


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from conftest import SyntheticPool, synthetic_dataset

    root = tmp_path_factory.mktemp("report")
    dataset, features = synthetic_dataset()
    settings = Settings(
        encoder="(4)3c-2p", head="8fc", batch_size=8, max_epochs=2, cae_max_epochs=1, fixmatch_epochs=1, fixmatch_steps=0,
        fixmatch_ratio=1, methods=["supervised", "pretrained", "fixmatch"], label_budgets=[1, 0], folds=[1, 2, 3],
        run_dir=str(root / "run"), embedding_method="pca",
    )
    experiment = Experiment(settings, dataset=dataset, features=features, pool=SyntheticPool(), verbose=0)
    experiment.run()
    return report.Results.collect(experiment, root / "figures", root / "tables")


def test_paper_tables_name_the_dataset_and_architecture_that_ran(results):
    tables = report.paper_tables(results)
    assert set(tables) == {"table1", "table2", "summary", "paired_test"}
    caption = tables["table1"].attrs["caption"]
    assert "(4)3c-2p" in caption and "synthetic (4 classes, ESC-50 layout)" in caption
    assert "ESC-50)" not in caption
    for name in tables:
        assert (results.table_dir / f"{name}.csv").is_file() and (results.table_dir / f"{name}.md").is_file()


def test_method_comparison_pairs_every_method_with_supervised_at_every_budget(results):
    table = report.method_comparison(results)
    assert list(table["labels per class"]) == ["1", "1", "all", "all"]  # every label last
    assert set(table["method"]) == {"pretrained", "fixmatch"}
    assert (table["folds"] == 3).all()
    assert table["p (paired t)"].between(0, 1).all() or table["p (paired t)"].isna().any()
    assert (results.table_dir / "methods_by_budget.md").read_text().startswith("Each way of using unlabeled audio")


def test_recommendation_names_one_method_per_budget_with_its_reason(results):
    table = report.recommendation(results)
    assert list(table["labels per class"]) == ["1", "all"]
    assert set(table["recommended"]) <= {"supervised", "pretrained", "fixmatch"}
    for _, row in table.iterrows():  # supervised where nothing was shown to pay, else a gain with p < 0.05
        assert (row["recommended"] == "supervised") == (row["difference (pp)"] == 0)
        assert row["recommended"] == "supervised" or (row["p (paired t)"] < 0.05 and row["difference (pp)"] > 0)
        assert row["why"] and row["s/fold"] > 0
    assert (results.table_dir / "recommendation.md").read_text().startswith("The method to take at each label budget")


def test_cost_gives_seconds_per_fold_for_each_method_and_budget(results):
    table = report.cost(results).set_index("method")
    assert set(table.index) == {"supervised", "pretrained", "fixmatch"}
    assert {"pre-training s/fold", "s/fold at 1", "s/fold at all", "s/fold, all budgets", "min, whole study"} <= set(table.columns)
    assert (table["s/fold, all budgets"] > 0).all()
    assert table.loc["pretrained", "pre-training s/fold"] > 0 == table.loc["supervised", "pre-training s/fold"]


def test_cost_counts_the_encoder_a_selftrain_student_starts_from(results):
    done = results.experiment
    from_cae = Experiment(done.settings.replace(selftrain_init="pretrained"), dataset=done.dataset,
                          features=done.features, pool=done.pool, verbose=0)
    cae_seconds = report._pretraining_seconds(done, "pretrained")
    assert report._pretraining_seconds(from_cae, "selftrain") == cae_seconds > 0
    assert report._pretraining_seconds(done, "selftrain") == 0  # from scratch


def test_figures_and_curves(results):
    folds = report.fold_accuracies(results)
    assert len(folds) == 3 * 3 * 2 and set(folds["fold"]) == {1, 2, 3} and (folds["seed"] == 0).all()
    assert (results.table_dir / "fold_accuracies.csv").is_file()
    report.learning_curves(results)
    report.embedding(results)
    curve = report.label_budget_curve(results)
    assert set(curve["method"]) == {"supervised", "pretrained", "fixmatch"}
    assert report.pool_size_curve(results) is None  # one pool size
    names = {p.name for p in results.figure_dir.glob("*.png")}
    assert {"04_fold_accuracies.png", "04_learning_curves.png", "04_embedding.png", "04_label_budget.png"} <= names
    per_class = report.confusion_and_per_class(results)
    assert len(per_class) == 4 and isinstance(per_class, pd.DataFrame)


def test_classes_of_unequal_size_add_balanced_accuracy_and_macro_f1(tmp_path):
    from conftest import SyntheticPool, synthetic_dataset

    dataset, features = synthetic_dataset(per_fold=3)
    meta = dataset.meta
    drop = (meta["label"] == 0) & meta.groupby(["fold", "label"]).cumcount().gt(0)  # class 0: 1 clip per fold, others 3
    keep = (~drop).to_numpy()
    dataset, features = dataset.subset(keep), features[keep]
    assert report.imbalanced(dataset)
    settings = Settings(encoder="(4)3c-2p", head="8fc", batch_size=8, max_epochs=1, cae_max_epochs=1, folds=[1, 2, 3],
                        run_dir=str(tmp_path / "run"), embedding_method="pca")
    experiment = Experiment(settings, dataset=dataset, features=features, pool=SyntheticPool(), verbose=0)
    experiment.run()
    results = report.Results.collect(experiment, tmp_path / "figures", tmp_path / "tables")
    tables = report.paper_tables(results)
    assert {"summary_balanced_accuracy", "summary_macro_f1", "paired_test_balanced_accuracy", "paired_test_macro_f1"} <= set(tables)
    metrics = results.metrics
    assert metrics["balanced_accuracy"].between(0, 1).all() and metrics["macro_f1"].between(0, 1).all()
    assert not report.imbalanced(synthetic_dataset()[0])  # equal classes: accuracy alone


def test_table2_of_a_sweep_whose_own_configuration_skips_the_cae(results):
    # A sweep whose base configuration runs supervised alone and whose variant adds the CAE: Table 2
    # takes the base configuration's supervised row and the variant's CAE row, instead of failing.
    from types import SimpleNamespace

    full = results.full.copy()
    full.loc[full["method"] == "pretrained", "config"] = "variant"
    sweep = SimpleNamespace(full=full, config_id=results.config_id)
    own = report._own_configuration(sweep)
    assert own == {"supervised": results.config_id}
    table = tables.table2(full, "esc50", configs=own)
    ours = table[table["Evaluation"] != "published"]
    assert list(ours["Network"]) == [f"CNN trained from scratch (supervised), {results.config_id}",
                                     "CAE pre-trained CNN, variant"]
    full.loc[full["method"] == "supervised", "config"] = "variant"
    assert report._own_configuration(SimpleNamespace(full=full, config_id=results.config_id)) is None


def test_sweep_comparison_pairs_each_configuration_with_its_own_supervised_runs(tmp_path):
    """A sweep's points side by side, each paired by fold with the supervised rows of its own configuration."""
    from conftest import SyntheticPool, synthetic_dataset

    dataset, features = synthetic_dataset()
    base = Settings(encoder="(4)3c-2p", head="8fc", batch_size=8, max_epochs=1, fixmatch_epochs=1, fixmatch_steps=0, fixmatch_ratio=1,
                    methods=["supervised", "fixmatch"], folds=[1, 2, 3], run_dir=str(tmp_path / "run"))
    for settings in (base, base.replace(fixmatch_threshold=0.5)):
        Experiment(settings, dataset=dataset, features=features, pool=SyntheticPool(), verbose=0).cross_validate()
    experiment = Experiment(base, dataset=dataset, features=features, pool=SyntheticPool(), verbose=0)
    results = report.Results.collect(experiment, tmp_path / "figures", tmp_path / "tables")
    table = report.sweep_comparison(results)
    assert list(table["config"]) == [base.config_id, base.replace(fixmatch_threshold=0.5).config_id]  # its own first
    assert set(table["method"]) == {"fixmatch"} and (table["folds"] == 3).all()
    metrics = results.metrics
    for _, row in table.iterrows():
        mine = metrics[(metrics["config"] == row["config"]) & (metrics["method"] == "fixmatch")]
        assert row["s/fold"] == pytest.approx(mine["seconds"].mean(), abs=0.05)
        # The difference is paired with this configuration's own supervised folds, not another point's.
        own = metrics[(metrics["config"] == row["config"]) & (metrics["method"] == "supervised")]
        expected = 100 * (mine.set_index("fold")["accuracy"] - own.set_index("fold")["accuracy"]).mean()
        assert float(row["difference (pp)"].split()[0]) == pytest.approx(expected, abs=0.051)
    assert (tmp_path / "tables" / "sweep_comparison.md").is_file()
    # One configuration (not a sweep): nothing to set side by side.
    single = tmp_path / "single"
    Experiment(base.replace(run_dir=str(single)), dataset=dataset, features=features, pool=SyntheticPool(),
               verbose=0).cross_validate()
    one = report.Results.collect(Experiment(base.replace(run_dir=str(single)), dataset=dataset, features=features,
                                            pool=SyntheticPool(), verbose=0), tmp_path / "f1", tmp_path / "t1")
    assert report.sweep_comparison(one) is None


def test_pseudo_label_accuracy_counts_each_round_against_the_dropped_labels(tmp_path, results):
    from conftest import SyntheticPool, synthetic_dataset

    dataset, features = synthetic_dataset()
    settings = Settings(encoder="(4)3c-2p", head="8fc", batch_size=8, max_epochs=2, methods=["supervised", "selftrain"],
                        folds=[1, 2], unlabeled="none", pretrain_on_train_folds=True, selftrain_threshold=0.0,
                        selftrain_rounds=2, run_dir=str(tmp_path / "run"))
    experiment = Experiment(settings, dataset=dataset, features=features, pool=SyntheticPool(), verbose=0)
    experiment.cross_validate()
    table = report.pseudo_label_accuracy(report.Results.collect(experiment, tmp_path / "figures", tmp_path / "tables"))
    assert sorted(table["run"]) == ["fold1", "fold1-round1", "fold2", "fold2-round1"]
    truth = dict(zip(dataset.meta["filename"], dataset.meta["category"]))
    for _, row in table.iterrows():
        saved = pd.read_csv(next((tmp_path / "run").glob(f"classifiers/*/selftrain/{row['run']}/pseudo_labels.csv")))
        assert row["pseudo_labelled"] == len(saved) == row["of_labelled_clips"] > 0 and row["pool_files"] == 0
        assert row["right"] == pytest.approx((saved["source"].map(truth) == saved["category"]).mean())
    assert (tmp_path / "tables" / "pseudo_label_accuracy.md").is_file()
    assert report.pseudo_label_accuracy(results) is None  # no self-training in that run folder


def test_modulation_peaks_script_finds_a_beat_in_the_low_bands_and_names_a_missing_folder(tmp_path):
    import importlib.util

    from esc_lib import config

    spec = importlib.util.spec_from_file_location("modulation_peaks", config.PROJECT_ROOT / "scripts" / "modulation_peaks.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    sr = script.SAMPLE_RATE
    rng = np.random.default_rng(0)
    t = np.arange(5 * sr) / sr
    # Low-passed noise (a 200 Hz tone band, where the low mel bands are), beaten at 13 Hz or not.
    carrier = np.sin(2 * np.pi * 200 * t) * (1 + 0.1 * rng.normal(size=t.size))
    beaten = carrier * (1 + 0.9 * np.sin(2 * np.pi * 13 * t))
    frequency, ratio = script.modulation_peak(beaten, sr)
    steady_frequency, steady_ratio = script.modulation_peak(carrier, sr)
    assert abs(frequency - 13) < 0.5
    assert ratio > 100 * steady_ratio
    with pytest.raises(ValueError, match="at least 1 s"):
        script.modulation_peak(beaten[: sr // 2], sr)
    with pytest.raises(SystemExit, match=r"modulation_peaks: .*nowhere.*not found"):
        script.main(["--esc10-dir", str(tmp_path / "nowhere")])


def test_a_fixmatch_run_s_pseudo_labels_are_counted_again_against_the_dropped_labels(results):
    """scripts/pseudo_label_accuracy.py --method fixmatch: each finished classifier labels its unlabeled clips again."""
    import importlib.util

    import keras

    from esc_lib import config

    spec = importlib.util.spec_from_file_location("pseudo_label_accuracy", config.PROJECT_ROOT / "scripts" / "pseudo_label_accuracy.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    done = results.experiment
    table = script.consistency_table(done.run_dir, done.settings, "fixmatch", dataset=done.dataset,
                                     features=done.features, pool=done.pool)
    assert sorted(table["run"]) == ["fold1", "fold1-lpc1", "fold2", "fold2-lpc1", "fold3", "fold3-lpc1"]
    # Recounted by hand for one run: the non-test folds' clips less the labelled ones (pool files have no label).
    row = table.set_index("run").loc["fold2-lpc1"]
    split = done.split_data(2, 1)
    filenames = done.dataset.meta["filename"].astype(str).to_numpy()
    labelled = set(filenames[split.train_rows])
    sources = split.sources()
    known = np.array([s in set(filenames) and s not in labelled for s in sources])
    truth = dict(zip(filenames, done.dataset.labels))
    model = keras.saving.load_model(next(done.run_dir.glob("classifiers/*/fixmatch/fold2-lpc1")) / "model.keras", compile=False)
    p = model.predict(np.asarray(split.unlabeled()), verbose=0)
    y = np.array([truth.get(s, -1) for s in sources])
    confident = known & (p.max(1) >= done.settings.fixmatch_threshold)
    assert row["unlabeled"] == known.sum() > 0 and known.sum() < len(sources)  # the pool's files are not counted
    assert row["confident"] == pytest.approx(confident.sum() / known.sum())
    assert row["right"] == pytest.approx((p.argmax(1) == y)[known].mean())
