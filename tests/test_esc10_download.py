"""The user's command 1, ``./run_all.sh --profile esc10`` on a machine with no data: ESC-10 and its pool from ESC-50.

Where no ESC-10 is found or set, the runner downloads ESC-50 (verified, as the
``paper`` profile does), takes its ``esc10`` rows as the labelled set and its 40
other classes as the unlabeled pool, both as links to the downloaded clips.  The
split is a pure function over the metadata (tested here on made-up metadata, the
bad inputs too), the folders are tested on a small ESC-50 tree, and the whole
command runs end to end against a scaled-down ESC-50 served from 127.0.0.1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from _http_server import FileServer, build_esc50_tree, serve_esc50
from conftest import ESC10_TARGETS, preserved_environ
from esc_lib import config, reproduce
from esc_lib.data import datasets, download

#: 6 classes x 5 folds, one clip each: (fold, freesound id, take, target, category, esc10).
#: dog, rain and helicopter are ESC-10's; pig, cow and frog are of ESC-50's other classes.
ROWS = [(fold, 400000 + 10 * fold + k, "A", target, category, esc10)
        for fold in range(1, 6)
        for k, (target, category, esc10) in enumerate([(0, "dog", True), (10, "rain", True), (40, "helicopter", True),
                                                       (2, "pig", False), (3, "cow", False), (4, "frog", False)])]
#: A pig clip of fold 1 cut from the recording of fold 1's dog clip: the leakage filter must keep it out of the pool.
ROWS[3] = (1, ROWS[0][1], "B", 2, "pig", False)
ESC10_ROWS = [row for row in ROWS if row[5]]
OTHER_ROWS = [row for row in ROWS if not row[5]]


def _name(row) -> str:
    fold, source, take, target = row[:4]
    return f"{fold}-{source}-{take}-{target}.wav"


def _esc50_meta(esc10_targets=ESC10_TARGETS.values()) -> pd.DataFrame:
    """Metadata of the 50 classes' layout, 2 clips per class: the ESC-10 targets flagged ``esc10``."""
    rows = [{"filename": f"{fold}-{1000 * target + fold}-A-{target}.wav", "fold": fold, "target": target,
             "category": f"class{target}", "esc10": target in set(esc10_targets), "src_file": 1000 * target + fold,
             "take": "A"}
            for target in range(50) for fold in (1, 2)]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------
# The split: which rows are ESC-10, which are the pool
# ----------------------------------------------------------------------------


def test_the_pool_never_holds_an_esc10_class_and_is_the_40_others():
    meta = _esc50_meta()
    labelled, pool = datasets.esc10_split(meta)
    assert set(meta.loc[labelled, "target"]) == set(ESC10_TARGETS.values())
    assert not set(meta.loc[pool, "target"]) & set(ESC10_TARGETS.values())
    assert not set(meta.loc[pool, "category"]) & set(meta.loc[labelled, "category"])
    assert meta.loc[pool, "target"].nunique() == 40 and not (labelled & pool).any() and (labelled | pool).all()


def test_the_split_reads_the_esc10_flag_as_text_too():
    meta = _esc50_meta()
    meta["esc10"] = meta["esc10"].map({True: "True", False: "False"})
    labelled, _ = datasets.esc10_split(meta)
    assert labelled.sum() == 20


def _flag_one_row_wrongly(meta):
    meta.loc[0, "esc10"] = not meta.loc[0, "esc10"]


def _rename_one_row(meta):
    meta.loc[0, "category"] = "another name"


def _share_a_name(meta):
    meta.loc[meta["target"] == 1, "category"] = "class0"


@pytest.mark.parametrize("spoil, message", [
    (lambda meta: meta.pop("esc10"), r"column\(s\) \['esc10'\] missing"),
    (_flag_one_row_wrongly, "target 0 has more than one esc10"),
    (_rename_one_row, "target 0 has more than one category"),
    (_share_a_name, "category 'class0' has more than one target"),
    (lambda meta: meta.__setitem__("esc10", False), "0 ESC-10 row"),
    (lambda meta: meta.__setitem__("esc10", True), "0 row"),
    (lambda meta: meta.__setitem__("esc10", "maybe"), "must be True/False"),
])
def test_metadata_that_cannot_be_split_is_refused_naming_the_file(spoil, message):
    meta = _esc50_meta()
    spoil(meta)
    with pytest.raises(datasets.DatasetError, match=message) as raised:
        datasets.esc10_split(meta, "somewhere/meta/esc50.csv")
    assert "somewhere/meta/esc50.csv" in str(raised.value)


# ----------------------------------------------------------------------------
# The folders made from an ESC-50 folder
# ----------------------------------------------------------------------------


@pytest.fixture
def esc50(tmp_path) -> Path:
    build_esc50_tree(tmp_path / "data" / "ESC-50", rows=ROWS)
    (tmp_path / "data" / "ESC-50" / "LICENSE").write_text("CC BY-NC 3.0\n")
    return tmp_path / "data" / "ESC-50"


def test_esc10_is_the_esc10_rows_and_the_pool_the_other_classes_linked_not_copied(esc50):
    data = esc50.parent
    esc10, pool = download.esc10_from_esc50(esc50, data / "esc10", data / "unlabeled")
    original = (esc50 / "meta" / "esc50.csv").read_text().splitlines()
    kept = (esc10 / "meta" / "esc50.csv").read_text().splitlines()
    assert kept == [original[0]] + [line for line in original[1:] if line.split(",")[4] == "True"]  # as written
    assert sorted(p.name for p in (esc10 / "audio").iterdir()) == sorted(map(_name, ESC10_ROWS))
    assert sorted(p.name for p in datasets.find_audio_files(pool)) == sorted(map(_name, OTHER_ROWS))
    for clip in [*(esc10 / "audio").iterdir(), *datasets.find_audio_files(pool)]:
        assert os.path.samefile(clip, esc50 / "audio" / clip.name)  # one file on disk, not two
    # Checked against ESC-50's metadata: no pool clip is of an ESC-10 class.
    meta = datasets.read_metadata(esc50 / "meta" / "esc50.csv").set_index("filename")
    pooled = meta.loc[[p.name for p in datasets.find_audio_files(pool)]]
    assert not pooled["esc10"].any() and not set(pooled["target"]) & {0, 10, 40}
    dataset = datasets.load_esc10(esc10)
    assert dataset.classes == ["dog", "rain", "helicopter"] and len(dataset) == 15
    for folder in (esc10, pool):
        record = json.loads((folder / ".esc_lib-from-esc50.json").read_text())
        assert record["source"] == str(esc50) and record["linked"] == "hard links"
        assert (folder / "LICENSE").read_text() == "CC BY-NC 3.0\n"
    assert sorted(p.name for p in data.iterdir()) == ["ESC-50", "esc10", "unlabeled"]  # no staging, no lock left


def test_the_leakage_filter_keeps_a_clip_of_an_esc10_source_out_of_the_pool(esc50):
    esc10, pool = download.esc10_from_esc50(esc50, esc50.parent / "esc10", esc50.parent / "unlabeled")
    found = datasets.unlabeled_pool(pool, exclude_freesound_ids=datasets.source_ids(esc10))
    assert found.n_excluded_leakage == 1 and len(found) == len(OTHER_ROWS) - 1
    assert _name(ROWS[3]) not in {p.name for p in found.files}


def test_where_hard_links_fail_the_clips_are_relative_symbolic_links_that_survive_the_rename(esc50, monkeypatch):
    def no_hard_links(source, target):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(download.os, "link", no_hard_links)
    esc10, pool = download.esc10_from_esc50(esc50, esc50.parent / "esc10", esc50.parent / "unlabeled")
    clips = [*(esc10 / "audio").iterdir(), *datasets.find_audio_files(pool)]
    assert all(clip.is_symlink() and not os.path.isabs(os.readlink(clip)) for clip in clips)
    assert all(os.path.samefile(clip, esc50 / "audio" / clip.name) for clip in clips)
    assert json.loads((pool / ".esc_lib-from-esc50.json").read_text())["linked"] == "symbolic links"
    assert len(datasets.load_esc10(esc10)) == 15


def test_where_no_link_can_be_made_the_clips_are_copied(esc50, monkeypatch):
    def refuse(*args):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(download.os, "link", refuse)
    monkeypatch.setattr(download.os, "symlink", refuse)
    esc10, _ = download.esc10_from_esc50(esc50, esc50.parent / "esc10")
    clip = next((esc10 / "audio").iterdir())
    assert not clip.is_symlink() and clip.read_bytes() == (esc50 / "audio" / clip.name).read_bytes()
    assert json.loads((esc10 / ".esc_lib-from-esc50.json").read_text())["linked"] == "copies"


def test_existing_folders_are_left_as_they_are(esc50):
    data = esc50.parent
    (data / "unlabeled").mkdir()
    (data / "unlabeled" / "mine.txt").write_text("a pool of one's own")
    esc10, pool = download.esc10_from_esc50(esc50, data / "esc10", data / "unlabeled")
    assert [p.name for p in pool.iterdir()] == ["mine.txt"]
    again, _ = download.esc10_from_esc50(esc50, data / "esc10")
    assert again == esc10 and len(list((esc10 / "audio").iterdir())) == len(ESC10_ROWS)


def test_a_listed_clip_missing_from_esc50_stops_before_any_folder_is_made(esc50):
    (esc50 / "audio" / _name(OTHER_ROWS[-1])).unlink()
    with pytest.raises(datasets.DatasetError, match=_name(OTHER_ROWS[-1]).rsplit(".", 1)[0]):
        download.esc10_from_esc50(esc50, esc50.parent / "esc10", esc50.parent / "unlabeled")
    assert sorted(p.name for p in esc50.parent.iterdir()) == ["ESC-50"]


# ----------------------------------------------------------------------------
# When a run makes them: no ESC-10 found, none set
# ----------------------------------------------------------------------------


def _clear_data_variables(monkeypatch):
    for variable in config.ENVIRONMENT_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)


def _isolated(tmp_path, monkeypatch):
    """No data location set; runs, cache, figures and results under ``tmp_path`` (never the project's)."""
    _clear_data_variables(monkeypatch)
    for variable, folder in (("ESC_RUNS_DIR", "runs"), ("ESC_CACHE_DIR", "cache"), ("ESC_FIGURES_DIR", "figures"),
                             ("ESC_RESULTS_DIR", "results")):
        monkeypatch.setenv(variable, str(tmp_path / folder))


@pytest.mark.parametrize("present, variables, pool, expected", [
    ([], {}, True, ("esc10", "unlabeled")),                     # a user's first run: both made
    ([], {}, False, ("esc10", None)),                           # unlabeled: none / escus needs no pool folder
    (["esc10", "unlabeled"], {}, True, (None, None)),           # a data root that holds them (CI): nothing changes
    (["esc10"], {}, True, (None, None)),                        # ESC-10 of one's own: left to the loader
    (["unlabeled"], {}, True, ("esc10", None)),                 # a pool of one's own: kept, ESC-10 made
    ([], {"ESC10_DIR": "elsewhere"}, True, (None, None)),       # set but absent: the loader's error, no download
    ([], {"ESC_UNLABELED_DIR": "pool"}, True, ("esc10", None)),
])
def test_which_folders_a_run_makes(tmp_path, monkeypatch, present, variables, pool, expected):
    _clear_data_variables(monkeypatch)
    monkeypatch.setenv("ESC_DATA_ROOT", str(tmp_path))
    for name in present:
        (tmp_path / name).mkdir()
    for variable, value in variables.items():
        monkeypatch.setenv(variable, str(tmp_path / value))
    made = download.missing_esc10_folders(pool=pool)
    assert made == tuple(tmp_path / name if name else None for name in expected)


def _no_notebook(monkeypatch):
    """papermill's execution replaced by nothing: the runner's own work before each notebook still happens."""
    import papermill

    executed = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda notebook, output, **kw: executed.append(Path(notebook).name))
    return executed


def test_a_run_with_a_data_root_that_holds_esc10_downloads_nothing(tmp_path, monkeypatch):
    _isolated(tmp_path, monkeypatch)
    build_esc50_tree(tmp_path / "data" / "esc10", rows=ESC10_ROWS)
    (tmp_path / "data" / "unlabeled").mkdir()
    executed = _no_notebook(monkeypatch)
    with FileServer() as server:
        serve_esc50(server, tmp_path / "data" / "esc10", download.ESC50_COMMIT)
        assert reproduce.main(["--profile", "esc10", "--run-name", "r", "--stages", "1", "--data-root",
                               str(tmp_path / "data"), "--esc50-url", server.url, "-p", "folds", "[1]"]) == 0
        assert server.requests == []
    assert executed == ["01_preprocessing.ipynb"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["esc10", "unlabeled"]


def test_a_run_whose_esc10_folder_is_set_but_absent_downloads_nothing(tmp_path, monkeypatch):
    _isolated(tmp_path, monkeypatch)
    _no_notebook(monkeypatch)
    with FileServer() as server:
        reproduce.main(["--profile", "esc10", "--run-name", "r", "--stages", "1", "--data-root", str(tmp_path / "data"),
                        "--esc10-dir", str(tmp_path / "typo"), "--esc50-url", server.url])
        assert server.requests == []
    assert not (tmp_path / "data").exists()


def test_a_download_that_fails_stops_the_run_in_one_line(tmp_path, monkeypatch, capsys):
    _isolated(tmp_path, monkeypatch)
    executed = _no_notebook(monkeypatch)
    with FileServer() as server, pytest.raises(SystemExit) as stopped:  # serves nothing: HTTP 404
        reproduce.main(["--profile", "esc10", "--run-name", "r", "--stages", "1", "--data-root", str(tmp_path / "data"),
                        "--esc50-url", server.url])
    line = str(stopped.value)
    assert line.startswith("run_all.sh: ") and "HTTP 404" in line and "\n" not in line
    assert executed == [] and "no ESC-10 found at" in capsys.readouterr().out
    assert not (tmp_path / "data" / "esc10").exists() and not (tmp_path / "data" / "unlabeled").exists()


# ----------------------------------------------------------------------------
# End to end: ./run_all.sh --profile esc10 with no data, against the local server
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def esc10_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("esc10-download")
    release = tmp / "release"
    meta_sha = build_esc50_tree(release, rows=ROWS)
    (release / "LICENSE").write_text("CC BY-NC 3.0 (scaled down for the end-to-end test)\n")
    expect = tmp / "expect.json"
    expect.write_text(json.dumps({"expected_meta_sha256": meta_sha, "n_rows": 30, "per_fold": 6, "per_class": 5}))
    environment = {"ESC_RUNS_DIR": tmp / "runs", "ESC_CACHE_DIR": tmp / "cache",
                   "ESC_FIGURES_DIR": tmp / "figures", "ESC_RESULTS_DIR": tmp / "results"}
    with FileServer() as server, pytest.MonkeyPatch.context() as patch, preserved_environ():
        archive = serve_esc50(server, release, download.ESC50_COMMIT)
        for variable in config.ENVIRONMENT_VARIABLES.values():  # no data anywhere: CI's ESC_DATA_ROOT included
            patch.delenv(variable, raising=False)
        for name, value in environment.items():
            patch.setenv(name, str(value))
        status = reproduce.main([
            "--profile", "esc10", "--run-name", "esc10-e2e", "--data-root", str(tmp / "data"),
            "--esc50-url", server.url, "--esc50-expect", str(expect),
            "-p", "folds", "[1]", "-p", "label_budgets", "[0]", "-p", "filters", "8", "-p", "batch_size", "8",
            "-p", "cae_batch_size", "8", "-p", "max_epochs", "2", "-p", "cae_max_epochs", "1",
        ])
        requests = list(server.requests)
        # A second call finds everything in place: no request at all.
        download.download_esc10(tmp / "data" / "esc10", tmp / "data" / "unlabeled", tmp / "data" / "ESC-50",
                                base_url=server.url, verify_options=json.loads(expect.read_text()), progress=False)
        again = list(server.requests)
    assert status == 0
    return tmp, requests, again, archive


@pytest.mark.slow
def test_command_1_downloads_esc50_once_verified_and_links_esc10_and_the_other_classes(esc10_run):
    tmp, requests, again, archive = esc10_run
    data = tmp / "data"
    assert [path for _, path, _ in requests] == [archive, "/codeload/esc50.zip"]  # once, for the whole run
    assert again == requests
    assert json.loads((data / "ESC-50" / ".esc_lib-esc50.json").read_text())["commit"] == download.ESC50_COMMIT
    assert sorted(p.name for p in data.iterdir()) == ["ESC-50", "esc10", "unlabeled"]
    assert not list(data.rglob("*.part")) and not list(data.glob("*.zip"))
    labelled = datasets.read_metadata(data / "esc10" / "meta" / "esc50.csv")
    assert sorted(labelled["filename"]) == sorted(map(_name, ESC10_ROWS)) and labelled["esc10"].all()
    pool = datasets.find_audio_files(data / "unlabeled")
    assert sorted(p.name for p in pool) == sorted(map(_name, OTHER_ROWS))
    meta = datasets.read_metadata(data / "ESC-50" / "meta" / "esc50.csv").set_index("filename")
    assert not meta.loc[[p.name for p in pool], "esc10"].any()  # no ESC-10 class in the pool
    stored = {datasets.file_identity(p) for p in (data / "ESC-50" / "audio").iterdir()}
    assert {datasets.file_identity(p) for p in [*pool, *(data / "esc10" / "audio").iterdir()]} <= stored


@pytest.mark.slow
def test_command_1_trains_on_esc10_with_the_other_classes_as_its_pool(esc10_run):
    tmp = esc10_run[0]
    run = tmp / "runs" / "esc10-e2e"
    log = "\n".join(path.read_text() for path in sorted(run.glob("notebooks/*.ipynb")))
    # 15 clips of the other classes, one cut from the source of an ESC-10 clip: 14 reach pre-training.
    assert f"unlabeled files: {len(OTHER_ROWS) - 1} audio file(s) under {tmp / 'data' / 'unlabeled'}" in log
    assert "1 excluded by the leakage filter" in log
    metrics = pd.concat([pd.read_csv(path) for path in run.glob("results/*/metrics.csv")])
    assert {"supervised", "pretrained"} <= set(metrics["method"])
    assert set(metrics["fold"]) == {1} and (metrics["n_test"] == 3).all()
    assert any((tmp / "results" / "esc10-e2e").glob("*.csv")) and any((tmp / "figures" / "esc10-e2e").glob("*.png"))
