"""Published results folders: run.json, the generated index, figures published once, publishing that never destroys.

The publishing tests run notebook 04's report functions on synthetic data (no
audio); the last tests check the repository's own results/ and figures/.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from esc_lib import config, report, runs, tables
from esc_lib.__main__ import main
from esc_lib.experiment import Experiment
from esc_lib.settings import Settings

# ---------------------------------------------------------------------- merging a table


def test_merge_rows_keeps_old_rows_it_may_and_replaces_those_of_new_keys_in_place():
    old = pd.DataFrame({"b": [16, 32, 64], "batch_norm": [False, False, True], "acc": ["a", "b", "c"]})
    new = pd.DataFrame({"b": ["32", "8"], "batch_norm": ["False", "False"], "acc": ["B", "d"], "extra": [1, 2]})
    merged = tables.merge_rows(new, old, keys=("b", "batch_norm", "config"), keep=[True, True, False])
    # 32 (read back from a CSV as text) is the same row as 32: replaced where it stood; 64 may not survive.
    assert merged["acc"].tolist() == ["a", "B", "d"]
    assert list(merged.columns) == ["b", "batch_norm", "acc", "extra"]
    assert merged.attrs["kept_rows"] == 1


@pytest.mark.parametrize("value, text", [(16, "16"), (16.0, "16"), ("16", "16"), (True, "True"), (np.bool_(False), "False"),
                                         ("False", "False"), (float("nan"), ""), ("none", ""), (0.5, "0.5"), ("unpool", "unpool")])
def test_key_text_survives_a_csv_round_trip(value, text):
    assert tables.key_text(value) == text


@pytest.mark.parametrize("keys, keep, message", [
    (("config",), None, "no key column"),
    (("b",), [True], "one value per row of old"),
])
def test_merge_rows_refuses_what_it_cannot_merge(keys, keep, message):
    old = pd.DataFrame({"b": [1, 2], "x": [0, 0]})
    with pytest.raises(ValueError, match=message):
        tables.merge_rows(pd.DataFrame({"b": [3], "x": [1]}), old, keys, keep)


# ---------------------------------------------------------------------- publishing twice


def _trained(root, settings, dataset, features):
    from conftest import SyntheticPool

    experiment = Experiment(settings.replace(run_dir=str(root)), dataset=dataset, features=features,
                            pool=SyntheticPool(), verbose=0)
    experiment.run()
    return experiment


def _publish(experiment, figures, published, monkeypatch, points):
    monkeypatch.setattr(report, "profile_configurations", lambda settings: ("a test profile", points))
    results = report.Results.collect(experiment, figures, published)
    made = report.paper_tables(results)
    made["fold_accuracies"] = report.fold_accuracies(results)
    return results, made


def test_publishing_one_configuration_keeps_the_rows_of_the_profiles_other_configurations(tmp_path, monkeypatch):
    """Command 1 after a sweep: the point it trains replaces its own rows, the sweep's other rows stay."""
    from conftest import synthetic_dataset

    monkeypatch.setenv("ESC_RESULTS_DIR", str(tmp_path / "results"))
    dataset, features = synthetic_dataset()
    base = Settings(encoder="(4)3c-2p", head="8fc", batch_size=8, max_epochs=1, cae_max_epochs=1, folds=[1, 2, 3],
                    methods=["supervised", "pretrained"], embedding_method="pca", profile="prof")
    other = base.replace(batch_size=4)
    points = {base.config_id: base, other.config_id: other}
    published, figures = tmp_path / "results" / "prof", tmp_path / "figures" / "prof"

    # The sweep: both configurations in one run folder, published together.
    sweep = _trained(tmp_path / "sweep", base, dataset, features)
    _trained(tmp_path / "sweep", other, dataset, features)
    first, made = _publish(sweep, figures, published, monkeypatch, points)
    assert len(made["table1"]) == 2 and first.kept == {}
    sweep_table1 = pd.read_csv(published / "table1.csv")
    sweep_summary = pd.read_csv(published / "summary.csv")

    # Command 1: the profile's own configuration alone, in a fresh run folder.
    alone = _trained(tmp_path / "alone", base, dataset, features)
    second, made = _publish(alone, figures, published, monkeypatch, points)
    assert set(second.kept) == {other.config_id}
    table1 = pd.read_csv(published / "table1.csv")
    assert table1["b"].tolist() == sweep_table1["b"].tolist() == [4, 8]  # both rows, in the published order
    assert table1.equals(sweep_table1)  # the same training gives the same own row; the other is the sweep's
    assert "1 row(s) of the profile's other configurations" in (published / "table1.md").read_text()
    summary = pd.read_csv(published / "summary.csv")
    assert set(summary["config"]) == {base.config_id, other.config_id}
    kept = summary[summary["config"] == other.config_id].reset_index(drop=True)
    assert kept.equals(sweep_summary[sweep_summary["config"] == other.config_id].reset_index(drop=True))
    folds = pd.read_csv(published / "fold_accuracies.csv")
    assert set(folds["config"]) == {base.config_id, other.config_id} and len(folds) == 2 * 2 * 3
    assert (figures / "04_fold_accuracies.png").is_file()

    # A configuration outside the profile's sweep (or one renamed by a code change) is not kept.
    _publish(alone, figures, published, monkeypatch, {base.config_id: base})
    assert pd.read_csv(published / "table1.csv")["b"].tolist() == [8]
    assert set(pd.read_csv(published / "summary.csv")["config"]) == {base.config_id}

    record = runs.read_record(published)
    assert record["folder"].endswith("prof") and record["scored_on"] == "test"
    assert record["configurations"] == [base.config_id] and record["question"] == "a test profile"
    assert record["run_dir"].endswith("alone") and record["wall_time_s"] is None and record["superseded_by"] is None
    assert record["machine_cpu"] and record["date"]


def test_a_folder_published_before_its_folds_keeps_its_fold_figure(tmp_path, monkeypatch):
    """A folder whose configurations were published without fold_accuracies.csv (before it existed): the figure
    of every configuration's folds cannot be redrawn with them, so the published one stays."""
    from conftest import synthetic_dataset

    monkeypatch.setenv("ESC_RESULTS_DIR", str(tmp_path / "results"))
    dataset, features = synthetic_dataset()
    base = Settings(encoder="(4)3c-2p", head="8fc", batch_size=8, max_epochs=1, cae_max_epochs=1, folds=[1, 2],
                    methods=["supervised", "pretrained"], embedding_method="pca", profile="prof")
    other = base.replace(batch_size=4)
    points = {base.config_id: base, other.config_id: other}
    published, figures = tmp_path / "results" / "prof", tmp_path / "figures" / "prof"
    sweep = _trained(tmp_path / "sweep", base, dataset, features)
    _trained(tmp_path / "sweep", other, dataset, features)
    _publish(sweep, figures, published, monkeypatch, points)
    for suffix in (".csv", ".md"):
        (published / f"fold_accuracies{suffix}").unlink()
    before = (figures / "04_fold_accuracies.png").read_bytes()
    alone = _trained(tmp_path / "alone", base, dataset, features)
    _, made = _publish(alone, figures, published, monkeypatch, points)
    assert (figures / "04_fold_accuracies.png").read_bytes() == before
    assert set(made["fold_accuracies"]["config"]) == {base.config_id}  # the folds it has, written
    assert len(pd.read_csv(published / "table1.csv")) == 2


def test_a_run_stopped_before_its_results_leaves_no_empty_published_folder(tmp_path, monkeypatch):
    """publish_dirs names the folders and makes neither: notebooks 01-03 of a run killed before notebook 04 left an
    empty results/<profile>/, which the results index then refused for lacking its run.json."""
    from esc_lib.experiment import publish_dirs

    monkeypatch.setenv("ESC_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("ESC_FIGURES_DIR", str(tmp_path / "figures"))
    assert publish_dirs("prof") == (tmp_path / "figures" / "prof", tmp_path / "results" / "prof")
    assert publish_dirs("prof", tmp_path / "run", publish=False) == (tmp_path / "run" / "figures", tmp_path / "run" / "tables")
    assert not any(tmp_path.iterdir())
    tables.write_table(pd.DataFrame({"a": [1]}), tmp_path / "results" / "prof" / "t")  # the first table makes it
    assert (tmp_path / "results" / "prof" / "t.csv").is_file()


def test_a_run_folders_own_tables_write_no_run_json(tmp_path, monkeypatch):
    from conftest import synthetic_dataset

    monkeypatch.setenv("ESC_RESULTS_DIR", str(tmp_path / "results"))
    dataset, features = synthetic_dataset()
    settings = Settings(encoder="(4)3c-2p", head="8fc", batch_size=8, max_epochs=1, folds=[1, 2],
                        methods=["supervised"], profile="prof")
    experiment = _trained(tmp_path / "run", settings, dataset, features)
    results = report.Results.collect(experiment, tmp_path / "run" / "figures", tmp_path / "run" / "tables")
    assert not results.published and not (tmp_path / "run" / "tables" / runs.RUN_FILE).exists()


def test_profile_configurations_are_the_sweep_points_of_the_profile_published_for():
    settings = Settings(profile="esc10", filters=64, batch_size=32)
    description, points = report.profile_configurations(settings)
    assert "ESC-10" in description
    assert "bs16-f32-unpool-bn0" in points and "bs32-f64-upsample-bn0" in points and "bs32-f64-unpool-bn0-nopool" in points
    assert points["bs16-f32-unpool-bn0"].batch_size == 16
    # profiles/search/strong.yaml publishes as search-strong.
    assert len(report.profile_configurations(settings.replace(profile="search-strong"))[1]) > 1
    # A run published under its own name (-p overrides) has no profile: nothing is kept.
    assert report.profile_configurations(settings.replace(profile="budgets7-warm-seed1")) == (None, {})


# ---------------------------------------------------------------------- run.json, figures, the index


def _png(path, content: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG" + content)


def test_deduplicate_figures_keeps_one_copy_and_points_to_it(tmp_path):
    root = tmp_path / "figures"
    _png(root / "old" / "01_waveforms_logmels.png", b"waves")
    _png(root / "new" / "01_waveforms_logmels.png", b"waves")
    _png(root / "new" / "03_learning_curves_cfg.png", b"curves")
    _png(root / "new" / "04_learning_curves.png", b"curves")
    _png(root / "new" / "04_confusion_matrix.png", b"confusion")
    # A run stopped before notebook 04 left its figure but no results/<name>/run.json: never pointed to.
    _png(root / "a-stopped-run" / "01_waveforms_logmels.png", b"waves")
    runs.write_record(tmp_path / "results" / "old", {"folder": "results/old"})
    runs.write_record(tmp_path / "results" / "new", {"folder": "results/new"})
    removed = runs.deduplicate_figures(root / "new", root, tmp_path / "results" / "new")
    assert sorted(p.name for p in (root / "new").glob("*.png")) == ["04_confusion_matrix.png", "04_learning_curves.png"]
    assert removed["01_waveforms_logmels.png"].endswith("old/01_waveforms_logmels.png")
    assert removed["03_learning_curves_cfg.png"].endswith("new/04_learning_curves.png")
    assert runs.read_record(tmp_path / "results" / "new")["figures_elsewhere"] == removed
    assert (root / "old" / "01_waveforms_logmels.png").is_file()


def test_finish_publication_completes_only_the_record_this_run_made(tmp_path):
    results, figures = tmp_path / "results", tmp_path / "figures"
    runs.write_record(results / "prof", {"folder": "results/prof", "run_dir": str(tmp_path / "runs" / "a"),
                                         "command": "notebook", "wall_time_s": None, "superseded_by": None})
    runs.write_record(results / "archive" / "older", {"folder": "results/archive/older", "superseded_by": "prof"})
    figures.mkdir()
    assert not runs.finish_publication(results / "prof", figures / "prof", tmp_path / "runs" / "b",
                                       command="./run_all.sh --profile prof", overrides=None, wall_time_s=5.0)
    assert runs.read_record(results / "prof")["command"] == "notebook"
    assert not runs.finish_publication(results / "prof", figures / "prof", tmp_path / "runs" / "a",
                                       command="./run_all.sh --stages 2", overrides=None, wall_time_s=None)
    assert runs.finish_publication(results / "prof", figures / "prof", tmp_path / "runs" / "a",
                                   command="./run_all.sh --profile prof -p seed 1", overrides={"seed": 1},
                                   wall_time_s=61.25)
    record = runs.read_record(results / "prof")
    assert record["command"] == "./run_all.sh --profile prof -p seed 1" and record["overrides"] == {"seed": 1}
    assert record["wall_time_s"] == 61.2 or record["wall_time_s"] == 61.3
    text = (results / runs.INDEX_FILE).read_text()
    assert "[`prof`](prof/)" in text and "[`archive/older`](archive/older/)" in text and "1 min 1 s" in text
    assert text.index("## Current") < text.index("`prof`") < text.index("## Superseded") < text.index("archive/older")


def test_the_index_names_every_folder_without_run_json(tmp_path):
    runs.write_record(tmp_path / "a", {"folder": "results/a"})
    (tmp_path / "b").mkdir()
    (tmp_path / "archive" / "c").mkdir(parents=True)
    with pytest.raises(ValueError, match="without run.json: b, archive/c"):
        runs.index(tmp_path)
    assert main(["results-index", "--results", str(tmp_path)]) == 2


def test_read_record_names_a_file_that_is_not_a_json_object(tmp_path):
    (tmp_path / runs.RUN_FILE).write_text("[1, 2]")
    with pytest.raises(ValueError, match="run.json: must hold a JSON object"):
        runs.read_record(tmp_path)
    (tmp_path / runs.RUN_FILE).write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        runs.read_record(tmp_path)


def test_results_index_command_writes_and_checks(tmp_path, capsys):
    runs.write_record(tmp_path / "a", {"folder": "results/a", "question": "q", "scored_on": "test",
                                       "command": "./run_all.sh --profile a", "wall_time_s": 125})
    assert main(["results-index", "--results", str(tmp_path), "--check"]) == 1
    assert main(["results-index", "--results", str(tmp_path)]) == 0
    assert main(["results-index", "--results", str(tmp_path), "--check"]) == 0
    assert "| [`a`](a/) | q | test |" in (tmp_path / "README.md").read_text()
    assert "2 min 5 s" in (tmp_path / "README.md").read_text()
    capsys.readouterr()


# ---------------------------------------------------------------------- the repository's own results


def test_every_published_folder_describes_itself_and_the_index_is_current():
    root = config.PROJECT_ROOT / "results"
    folders = runs.result_folders(root)
    assert folders, "no published results folder"
    for folder in folders:
        record = runs.read_record(folder)
        name = folder.relative_to(root).as_posix()
        assert record, f"results/{name} has no run.json"
        for field in ("command", "commit", "date", "machine_cpu", "wall_time_s", "scored_on", "superseded_by"):
            assert field in record, f"results/{name}/run.json has no {field!r}"
        assert record["scored_on"] in ("test", "validation"), name
        archived = folder.parent.name == runs.ARCHIVE
        assert (record["superseded_by"] is not None) == archived, f"results/{name}: archived exactly when superseded"
        if archived:
            assert (root / record["superseded_by"]).is_dir(), f"{name} is superseded by a folder that is not there"
        for figure in (record.get("figures_elsewhere") or {}).values():
            assert (config.PROJECT_ROOT / figure).is_file(), f"results/{name}/run.json points to a missing {figure}"
    assert (root / runs.INDEX_FILE).read_text() == runs.index(root), \
        "results/README.md is out of date: python -m esc_lib results-index"


def test_no_two_published_figures_are_byte_identical():
    import hashlib

    seen: dict[str, str] = {}
    for path in sorted((config.PROJECT_ROOT / "figures").rglob("*.png")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest not in seen, f"{path} is a copy of {seen[digest]}"
        seen[digest] = str(path)


def test_run_json_is_json():
    for path in (config.PROJECT_ROOT / "results").rglob(runs.RUN_FILE):
        assert isinstance(json.loads(path.read_text()), dict), path


def test_the_runner_completes_the_record_notebook_04_wrote(tmp_path, monkeypatch):
    """run_all.sh's end: the command line, its overrides and the wall time join the run.json notebook 04 wrote;
    the figures folder loses a copy of a figure published elsewhere, and results/README.md is regenerated."""
    from esc_lib import reproduce
    from esc_lib.settings import Settings

    for name, folder in (("ESC_RUNS_DIR", "runs"), ("ESC_RESULTS_DIR", "results"), ("ESC_FIGURES_DIR", "figures")):
        monkeypatch.setenv(name, str(tmp_path / folder))
    _png(tmp_path / "figures" / "elsewhere" / "01_waveforms_logmels.png", b"waves")
    runs.write_record(tmp_path / "results" / "elsewhere", {"folder": "results/elsewhere", "scored_on": "test"})

    def notebook(notebook, output, parameters, kernel_log=None, **_):
        # What the notebooks publish: 01 a figure (here a copy of one published elsewhere), 04 the record.
        figures, results = tmp_path / "figures" / parameters["profile"], tmp_path / "results" / parameters["profile"]
        _png(figures / "01_waveforms_logmels.png", b"waves")
        if notebook.name.startswith("04"):
            settings = Settings(**{k: v for k, v in parameters.items() if k in Settings.model_fields})
            runs.record_publication(results, figures, settings, parameters["run_dir"], configurations=["c"])

    monkeypatch.setattr(reproduce, "_execute", notebook)
    assert reproduce.main(["--profile", "smoke", "--run-name", "mine", "-p", "seed", "3", "--stages", "1,4"]) == 0
    record = runs.read_record(tmp_path / "results" / "mine")  # -p overrides: published under the run name
    assert record["command"] == "./run_all.sh --profile smoke --run-name mine -p seed 3 --stages 1,4"
    assert record["overrides"] == {"seed": 3} and record["wall_time_s"] >= 0 and record["scored_on"] == "test"
    # (outside the project the path is absolute; inside it, relative to the project root)
    kept = tmp_path / "figures" / "elsewhere" / "01_waveforms_logmels.png"
    assert record["figures_elsewhere"] == {"01_waveforms_logmels.png": str(kept.resolve())}
    assert not (tmp_path / "figures" / "mine" / "01_waveforms_logmels.png").exists()
    assert "[`mine`](mine/)" in (tmp_path / "results" / runs.INDEX_FILE).read_text()


def test_a_folder_of_other_settings_is_archived_before_a_run_publishes_over_it(tmp_path):
    """A profile whose settings changed publishes under its old name: the old folder moves to archive/, marked."""
    results, figures = tmp_path / "results", tmp_path / "figures"
    runs.write_record(results / "prof", {"folder": "results/prof", "date": "2026-12-02T10:00:00+00:00",
                                         "scored_on": "test", "superseded_by": None})
    pd.DataFrame({"config": ["old-settings"], "method": ["supervised"]}).to_csv(results / "prof" / "summary.csv")
    _png(figures / "prof" / "04_fold_accuracies.png", b"old figure")
    pointer = str((figures / "prof" / "04_fold_accuracies.png").resolve())
    runs.write_record(results / "other", {"folder": "results/other", "figures_elsewhere": {"04_f.png": pointer}})

    # A run of the same settings (resumed, republished, or a sweep's other point) keeps the folder.
    assert runs.archive_superseded(results / "prof", figures / "prof", {"old-settings", "new"}) is None
    assert runs.archive_superseded(results / "none", figures / "none", {"new"}) is None  # nothing published
    archived = runs.archive_superseded(results / "prof", figures / "prof", {"new-settings"})
    assert archived == results / "archive" / "prof-20261202"
    assert not (results / "prof").exists() and not (figures / "prof").exists()
    moved_figure = figures / "archive" / "prof-20261202" / "04_fold_accuracies.png"
    assert moved_figure.read_bytes() == b"\x89PNGold figure" and (archived / "summary.csv").is_file()
    record = runs.read_record(archived)
    assert record["superseded_by"] == "prof" and record["folder"].endswith("archive/prof-20261202")
    assert record["figures"].endswith("archive/prof-20261202")
    assert runs.read_record(results / "other")["figures_elsewhere"] == {"04_f.png": str(moved_figure.resolve())}
    # The next archive of the same name and date does not overwrite the first.
    runs.write_record(results / "prof", {"folder": "results/prof", "date": "2026-12-02", "configurations": ["b"]})
    assert runs.archive_superseded(results / "prof", figures / "prof", {"c"}) == results / "archive" / "prof-20261202-2"
    assert runs.published_configurations(results / "archive" / "prof-20261202-2") == {"b"}


def test_the_runner_archives_the_folder_of_a_profiles_old_settings_before_stage_1(tmp_path, monkeypatch, capsys):
    from esc_lib import reproduce

    for name, folder in (("ESC_RUNS_DIR", "runs"), ("ESC_RESULTS_DIR", "results"), ("ESC_FIGURES_DIR", "figures")):
        monkeypatch.setenv(name, str(tmp_path / folder))
    runs.write_record(tmp_path / "results" / "smoke", {"folder": "results/smoke", "date": "2026-12-01",
                                                        "configurations": ["settings-of-old"]})
    _png(tmp_path / "figures" / "smoke" / "01_waveforms_logmels.png", b"old")
    seen = []

    def notebook(notebook, output, parameters, kernel_log=None, **_):
        # what stage 1 would overwrite: the old folder is already gone
        seen.append((tmp_path / "figures" / "smoke" / "01_waveforms_logmels.png").exists())

    monkeypatch.setattr(reproduce, "_execute", notebook)
    assert reproduce.main(["--profile", "smoke", "--run-name", "s", "--stages", "1"]) == 0
    assert seen == [False]
    archived = tmp_path / "results" / "archive" / "smoke-20261201"
    assert runs.read_record(archived)["superseded_by"].endswith("smoke")
    assert (tmp_path / "figures" / "archive" / "smoke-20261201" / "01_waveforms_logmels.png").read_bytes() == b"\x89PNGold"
    assert "held the results of other settings: moved to" in capsys.readouterr().out
