"""Tables and their files on synthetic per-fold metrics, the literature data file, and ``esc-lib compare``."""

from __future__ import annotations

import math
import sys
import tomllib

import numpy as np
import pandas as pd
import pytest
from conftest import make_budget_metrics, make_metrics

from esc_lib import config, stats, tables
from esc_lib.__main__ import main
from esc_lib.stats import budget_curve, compare_methods, summarise
from esc_lib.tables import PAPER_TABLE1, load_metrics, table1, table2, write_table

# What the caller (notebook 04) passes for the paper's grid.
PAPER_ARCHITECTURE = "(f)5c-2p-(f)3c-2p-(f)3c-2p with f filters"
CUSTOM_ENCODER = "(32)3c-2p-(64)3c-2p-(128)3c-2p-(256)3c-2p"


# ---------------------------------------------------------------------- Table 1


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


def test_table1_filters_decoder_keeping_a_shared_baseline():
    metrics = make_metrics(decoders=("unpool", "upsample"))
    supervised = metrics[(metrics["method"] == "supervised") & (metrics["decoder"] == "unpool")].assign(decoder=None)
    metrics = pd.concat([supervised, metrics[metrics["method"] == "pretrained"]], ignore_index=True)
    table = table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE, decoder="upsample")
    assert len(table) == 4 and (table["Supervised"] != "-").all() and table["p (paired t)"].notna().all()


def test_table1_gives_configs_that_differ_elsewhere_a_row_each():
    """Two configurations with the same b and f (e.g. with and without a refit) are not merged."""
    rows = []
    for config, shift in (("bs32-f64-unpool-bn0", 0.0), ("bs32-f64-unpool-bn0-refit", 0.05)):
        for method, base in (("supervised", 0.6), ("pretrained", 0.7)):
            for fold in range(1, 6):
                rows.append({"config": config, "batch_size": 32, "filters": 64, "decoder": "unpool",
                             "batch_norm": False, "method": method, "fold": fold,
                             "accuracy": base + shift + 0.01 * fold})
    table = table1(pd.DataFrame(rows), "ESC-10", architecture=PAPER_ARCHITECTURE)
    assert len(table) == 2
    assert set(table["config"]) == {"bs32-f64-unpool-bn0", "bs32-f64-unpool-bn0-refit"}


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


# ---------------------------------------------------------------------- Table 2 and the literature file


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
    published = tables.literature()
    cited = published[published["dataset"] == "esc50"]
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


def test_table2_caption_takes_the_dataset_label():
    metrics = make_metrics()
    assert table2(metrics, "esc10").attrs["caption"].startswith("Table 2 (ESC-10)")
    table = table2(metrics, "esc10", dataset_label="ESC-10, 5-fold CV at 22.05 kHz")
    assert table.attrs["caption"].startswith("Table 2 (ESC-10, 5-fold CV at 22.05 kHz)")
    with pytest.raises(ValueError, match="dataset_label"):
        table2(metrics, "esc10", dataset_label="")


def test_tables_accept_rows_shaped_like_the_experiment_writes():
    """Supervised rows carry pool_size 0 and labels_per_class 0 (all clips), as esc_lib.experiment writes them."""
    metrics = make_metrics().assign(labels_per_class=0, validation_fold=1, n_train=240, epochs=12, seconds=3.0)
    metrics["pool_size"] = np.where(metrics["method"] == "pretrained", 591, 0)
    assert len(table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE)) == 4
    assert len(table2(metrics, "esc10")) == 6
    metrics.loc[(metrics["method"] == "pretrained") & (metrics["fold"] == 1), "pool_size"] = 100
    with pytest.raises(ValueError, match="several pool_size"):
        table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE)


def test_tables_reject_a_non_integer_budget():
    metrics = make_metrics().assign(labels_per_class="all")
    with pytest.raises(ValueError, match="0 means every labelled clip"):
        table1(metrics, "ESC-10", architecture=PAPER_ARCHITECTURE)
    with pytest.raises(ValueError, match="0 means every labelled clip"):
        table2(metrics, "esc10")


@pytest.fixture()
def literature_file(tmp_path, monkeypatch):
    """Point tables.literature at a literature.csv in tmp_path (the cached copy is dropped before and after)."""
    monkeypatch.setattr(tables.resources, "files", lambda package: tmp_path)
    tables._read_literature.cache_clear()
    yield tmp_path / tables.LITERATURE_FILE
    tables._read_literature.cache_clear()


def test_literature_holds_the_figures_table2_cites():
    published = tables.literature()
    assert list(published.columns) == ["dataset", "network", "accuracy", "source"]
    assert published.groupby("dataset").size().to_dict() == {"esc10": 4, "esc50": 7}
    assert published["accuracy"].tolist() == [0.440, 0.443, 0.322, 0.655, 0.645, 0.507, 0.813,
                                              0.727, 0.805, 0.914, 0.957]
    assert published.loc[0, "source"] == "Jensen & Pethick, Table 2, citing Piczak (2015)"
    published.loc[0, "accuracy"] = 0.0  # a copy: the next caller gets the file's figures
    assert tables.literature().loc[0, "accuracy"] == 0.440


def test_literature_is_package_data_that_an_installed_package_ships():
    pyproject = tomllib.loads((config.PROJECT_ROOT / "pyproject.toml").read_text())
    assert tables.LITERATURE_FILE in pyproject["tool"]["setuptools"]["package-data"]["esc_lib"]
    from importlib import resources

    assert resources.files("esc_lib").joinpath(tables.LITERATURE_FILE).is_file()


@pytest.mark.parametrize("text, message", [
    ("dataset,network,accuracy\nesc10,x,0.5\n", "columns must be dataset, network, accuracy, source"),
    ("dataset,network,accuracy,source\nesc10,x,,y\n", "row 2 has an empty cell"),
    ("dataset,network,accuracy,source\nesc10,x,0.5,y\nesc10,z,72.7,y\n", r"fraction in \[0, 1\], found 72.7 \(row 3\)"),
    ("dataset,network,accuracy,source\nurbansound,x,0.5,y\n", "dataset must be one of"),
    ("dataset,network,accuracy,source\nesc10,x,high,y\n", "literature.csv"),
])
def test_a_damaged_literature_file_is_named(literature_file, text, message):
    literature_file.write_text(text)
    with pytest.raises(ValueError, match=message):
        tables.literature()
    with pytest.raises(ValueError, match=message):
        table2(make_metrics(), "esc10")


def test_table2_shows_what_the_literature_file_holds(literature_file):
    literature_file.write_text("dataset,network,accuracy,source\nesc10,A new network,0.951,\"Someone (2030), a venue\"\n")
    cited = table2(make_metrics(), "esc10").query("Evaluation == 'published'")
    assert list(cited["Network"]) == ["A new network"] and list(cited["Accuracy"]) == ["95.1%"]
    assert list(cited["Source"]) == ["Someone (2030), a venue"]


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

    monkeypatch.setattr(tables.os, "replace", failing_replace)
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


def test_budget_curve_table_keeps_0_in_csv_and_shows_all(tmp_path):
    csv_path, md_path = write_table(budget_curve(make_budget_metrics()), tmp_path / "label_budget")
    back = pd.read_csv(csv_path)
    assert pd.api.types.is_integer_dtype(back["labels_per_class"])
    assert list(back["labels_per_class"])[-1] == 0 and list(back["budget"])[-1] == "all"
    assert "all" in md_path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------- reading metrics and fold accuracies


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


def test_load_metrics_rejects_old_all_budgets(tmp_path):
    make_budget_metrics().astype({"labels_per_class": object}).replace({"labels_per_class": {0: "all"}}).to_csv(
        tmp_path / "metrics_old.csv", index=False)
    with pytest.raises(ValueError, match="metrics_old.csv: labels_per_class must hold non-negative integers"):
        load_metrics(tmp_path / "metrics_old.csv")


def _write_folds(folder, frame):
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / tables.FOLD_ACCURACIES_FILE, index=False)
    return folder


def test_load_fold_accuracies_reads_folders_and_files_and_tags_each_row_with_its_run(tmp_path):
    metrics = make_budget_metrics().assign(seed=0)
    run0 = _write_folds(tmp_path / "run0", metrics)
    _write_folds(tmp_path / "run1", metrics.assign(seed=1))
    folds = tables.load_fold_accuracies([run0, tmp_path / "run1" / tables.FOLD_ACCURACIES_FILE])
    assert len(folds) == 2 * len(metrics)
    assert sorted(folds["source"].unique()) == [str(run0), str(tmp_path / "run1" / tables.FOLD_ACCURACIES_FILE)]
    every = tables.load_fold_accuracies([run0], budgets=[0, 4])
    assert sorted(every["labels_per_class"].unique()) == [0, 4]


def test_load_fold_accuracies_names_what_is_wrong(tmp_path):
    run = _write_folds(tmp_path / "run", make_budget_metrics())
    with pytest.raises(FileNotFoundError, match=r"nowhere.*not found: give results folders"):
        tables.load_fold_accuracies([tmp_path / "nowhere"])
    with pytest.raises(ValueError, match=r"has no column\(s\) seed: it is not a fold_accuracies.csv"):
        tables.load_fold_accuracies([run], stats.SEED_COMPARISON_COLUMNS)
    with pytest.raises(ValueError, match=r"no rows at labels_per_class \[2\]"):
        tables.load_fold_accuracies([run], budgets=[2])
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv is not a readable CSV"):
        tables.load_fold_accuracies([tmp_path / "empty.csv"])
    with pytest.raises(ValueError, match="runs is empty"):
        tables.load_fold_accuracies([])


# ---------------------------------------------------------------------- esc-lib compare


def _seed_run(folder, seed: int, budgets=(0, 4)):
    rows = [{"config": "c", "method": method, "seed": seed, "pool": "all", "labels_per_class": budget, "fold": fold,
             "scored_on": "test", "accuracy": accuracy - (0.3 if budget else 0.0) + 0.01 * seed, "seconds": 5.0}
            for budget in budgets
            for method, accuracies in (("supervised", [0.8, 0.9, 0.85]), ("selftrain", [0.85, 0.9, 0.9]))
            for fold, accuracy in zip((1, 2, 3), accuracies)]
    return _write_folds(folder, pd.DataFrame(rows))


def test_compare_puts_each_method_against_supervised_over_the_seeds_of_several_runs(tmp_path, capsys):
    runs = [str(_seed_run(tmp_path / f"run{seed}", seed)) for seed in (0, 1)]
    assert main(["compare", *runs, "--budgets", "0", "--out", str(tmp_path / "seeds")]) == 0
    written = pd.read_csv(tmp_path / "seeds.csv")
    assert written["folds"].tolist() == [3] and written["seeds"].tolist() == ["0, 1"]
    assert written["labels per class"].tolist() == ["all"]
    out, err = capsys.readouterr()
    assert out.startswith("Each method against supervised over several seeds") and "| all" in out
    assert f"wrote {tmp_path / 'seeds.csv'}" in err
    assert (tmp_path / "seeds.md").read_text().startswith("Each method against supervised")
    # Without --budgets every budget, every label last; the table is what stats.seed_comparison makes.
    assert main(["compare", *runs]) == 0
    folds = tables.load_fold_accuracies(runs, stats.SEED_COMPARISON_COLUMNS)
    assert stats.seed_comparison(folds).to_markdown(index=False) in capsys.readouterr().out


def test_compare_puts_one_configuration_against_another_method_by_method(tmp_path, capsys):
    rows = [{"config": config_id, "method": "supervised", "seed": 0, "labels_per_class": 0, "fold": fold,
             "accuracy": accuracy, "seconds": seconds}
            for config_id, accuracies, seconds in (("net", [0.8, 0.9, 0.7], 10.0), ("net-ens3", [0.85, 0.9, 0.8], 30.0))
            for fold, accuracy in zip((1, 2, 3), accuracies)]
    run = _write_folds(tmp_path / "sweep", pd.DataFrame(rows))
    assert main(["compare", str(run), "--base", "net", "--other", "ens3", "--out", str(tmp_path / "cmp")]) == 0
    written = pd.read_csv(tmp_path / "cmp.csv").iloc[0]
    assert (written["base (%)"], written["other (%)"], written["folds"]) == (80.0, 85.0, 3)
    expected = stats.paired_test([0.8, 0.9, 0.7], [0.85, 0.9, 0.8])
    assert written["p (paired t)"] == pytest.approx(round(expected["t_pvalue"], 3))
    assert (written["s/fold base"], written["s/fold other"]) == (10.0, 30.0)
    out = capsys.readouterr().out
    assert out.startswith("Configuration net-ens3 (other) against net (base)") and "| supervised" in out
    # A run holding both configurations: without --other, --base names the one whose methods are compared.
    assert main(["compare", str(run)]) == 2
    assert "the runs hold 2 configurations (net, net-ens3): name one with --base" in capsys.readouterr().err
    assert main(["compare", str(run), "--base", "ens3"]) == 2
    assert "no 'supervised' rows" not in (err := capsys.readouterr().err) and "methods [] have no rows" in err


@pytest.mark.parametrize("arguments, message", [
    (["{tmp}/nowhere"], "nowhere not found: give results folders"),
    (["{run}", "--other", "x"], "--other needs --base"),
    (["{run}", "--base", "c", "--other", "x"], "0 configurations end with 'x'"),
    (["{run}", "--methods", "fixmatch"], r"methods ['fixmatch'] have no rows"),
    (["{run}", "--budgets", "2"], "no rows at labels_per_class [2]"),
])
def test_compare_names_a_bad_run_or_argument_in_one_line_and_exits_2(tmp_path, capsys, arguments, message):
    run = _seed_run(tmp_path / "run", 0)
    assert main(["compare", *(a.format(tmp=tmp_path, run=run) for a in arguments)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("esc-lib compare: error: ") and message in err and "Traceback" not in err


def test_compare_exits_1_when_the_table_cannot_be_written(tmp_path, capsys):
    run = _seed_run(tmp_path / "run", 0)
    (tmp_path / "file").write_text("not a folder")
    assert main(["compare", str(run), "--out", str(tmp_path / "file" / "seeds")]) == 1
    assert "cannot write the table" in capsys.readouterr().err


def test_compare_runs_as_a_module(tmp_path):
    import subprocess

    run = _seed_run(tmp_path / "run", 0)
    completed = subprocess.run([sys.executable, "-m", "esc_lib", "compare", str(run)], capture_output=True,
                               text=True, check=False, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "| selftrain" in completed.stdout


@pytest.mark.parametrize("arguments, published", [
    (["search-strong-ensemble", "--base", "cosine100", "--other", "cosine100-ens3"], "search-strong-ensemble/ensemble.csv"),
    (["budgets7-warm", "budgets7-warm-seed1", "--budgets", "0"], "budgets7-warm-seed1/seeds.csv"),
])
def test_compare_gives_the_published_tables_again(tmp_path, arguments, published):
    """The tables published with the commands the README gives come out of the same runs unchanged."""
    results = config.PROJECT_ROOT / "results"
    if not (results / published).is_file():
        pytest.skip(f"results/{published} is not in this checkout")
    runs = [str(results / a) if not a.startswith("-") and (results / a).is_dir() else a for a in arguments]
    assert main(["compare", *runs, "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again.csv").read_text() == (results / published).read_text()


# ---------------------------------------------------------------------- the module


def test_public_api_is_documented():
    for name in tables.__all__:
        item = getattr(tables, name)
        if callable(item):
            assert item.__doc__ and ("Parameters" in item.__doc__ or "Returns" in item.__doc__), name
