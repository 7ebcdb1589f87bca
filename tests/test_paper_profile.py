"""The default command, ``./run_all.sh`` with the ``paper`` profile, end to end against a local server.

A scaled-down ESC-50 (GitHub's archive layout, at the pinned commit) and two
ESC-US parts (Dataverse's API: the dataset listing with sizes and MD5s, then
each file) are made up here, served from 127.0.0.1, and the ``paper`` profile
runs through the runner with few clips, parts and epochs: download, verification
(against the scaled-down release's own expectations, ``--esc50-expect``), the
leakage filter, extraction, the CAE, fine-tuning and the tables.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from _http_server import FileServer, build_esc50_tree, dataverse_listing, serve_esc50, write_clip
from conftest import preserved_environ
from esc_lib import reproduce
from esc_lib.data import download

pytestmark = pytest.mark.slow

#: 4 classes x 5 folds, one clip each: (fold, freesound id, take, target, category, esc10).
ROWS = [(fold, 300000 + 10 * fold + k, "A", target, category, esc10)
        for fold in range(1, 6)
        for k, (target, category, esc10) in enumerate([(0, "dog", True), (1, "rooster", False),
                                                       (10, "rain", True), (40, "helicopter", True)])]
LEAKED = ROWS[0][1]  # an ESC-US clip cut from the source of a labelled clip


def _escus_part(folder: Path, number: int, freesound_ids: list[int]) -> bytes:
    """One ESC-US part: ``ESC-US/<nn>/<id>-<freesound id>-0-5.ogg`` clips in a tar.gz."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for i, freesound in enumerate(freesound_ids):
            clip = write_clip(folder / f"{number}-{i}.ogg", seconds=5.0, frequency=150.0 + 90 * i + 400 * number,
                              format="OGG", subtype="VORBIS")
            archive.add(clip, arcname=f"ESC-US/{number:02d}/{number * 1000 + i:06d}-{freesound}-0-5.ogg")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper")
    release = tmp / "release"
    meta_sha = build_esc50_tree(release, rows=ROWS)
    (release / "README.md").write_text("# ESC-50 (scaled down for the end-to-end test)\n")
    expect = tmp / "expect.json"
    expect.write_text(json.dumps({"expected_meta_sha256": meta_sha, "n_rows": 20, "per_fold": 4, "per_class": 5}))
    parts = [_escus_part(tmp / "escus-source", 1, [LEAKED, 900001, 900002, 900003]),
             _escus_part(tmp / "escus-source", 2, [900004, 900005, 900006, 900007]),
             b"never downloaded"]
    files = [{"id": 7001 + i, "filename": f"ESC-US-{i + 1:02d}.tar.gz", "body": body} for i, body in enumerate(parts)]
    files.append({"id": 7100, "filename": "ESC-US.csv", "tabular": True,
                  "body": b"filename,freesound_id\n" + f"001000-{LEAKED}-0-5.ogg,{LEAKED}\n".encode()})
    environment = {
        "ESC_RUNS_DIR": tmp / "runs", "ESC_CACHE_DIR": tmp / "cache",
        "ESC_FIGURES_DIR": tmp / "figures", "ESC_RESULTS_DIR": tmp / "results",
    }
    with FileServer() as server, pytest.MonkeyPatch.context() as patch, preserved_environ():
        serve_esc50(server, release, download.ESC50_COMMIT)
        server.add_json(f"/api/datasets/:persistentId/?persistentId={download.ESCUS_DOI}", dataverse_listing(files))
        for item in files:
            server.add(f"/api/access/datafile/{item['id']}" + ("?format=original" if item.get("tabular") else ""),
                       item["body"])
        for name, value in environment.items():
            patch.setenv(name, str(value))
        status = reproduce.main([
            "--profile", "paper", "--run-name", "paper-e2e", "--data-root", str(tmp / "data"),
            "--esc50-url", server.url, "--escus-server", server.url, "--esc50-expect", str(expect),
            "-p", "escus_parts", "2", "-p", "folds", "[1]", "-p", "filters", "8", "-p", "batch_size", "8",
            "-p", "cae_batch_size", "8", "-p", "max_epochs", "2", "-p", "cae_max_epochs", "1",
        ])
        requests = list(server.requests)
    assert status == 0
    return tmp, requests


def test_the_paper_profile_downloads_verifies_and_extracts_both_datasets(paper_run):
    tmp, requests = paper_run
    data = tmp / "data"
    assert (data / "ESC-50" / "meta" / "esc50.csv").is_file() and len(list((data / "ESC-50" / "audio").glob("*.wav"))) == 20
    assert json.loads((data / "ESC-50" / ".esc_lib-esc50.json").read_text())["commit"] == download.ESC50_COMMIT
    clips = sorted((data / "ESC-US").rglob("*.ogg"))
    assert len(clips) == 8  # two parts of four; the third was not asked for
    paths = [path for _, path, _ in requests]
    assert "/api/access/datafile/7003" not in paths
    assert not list((data / "ESC-US" / "archives").glob("*")) if (data / "ESC-US" / "archives").exists() else True
    assert not list(data.rglob("*.part"))


def test_the_paper_profile_filters_leaked_sources_and_trains_both_methods(paper_run):
    tmp, _ = paper_run
    run = tmp / "runs" / "paper-e2e"
    log = "\n".join(path.read_text() for path in sorted(run.glob("notebooks/*.ipynb")))
    assert "1 excluded by the leakage filter" in log
    # The pool is the seven clips left (5 s each, one window apiece): the leaked one never reaches the CAE.
    assert "unlabeled pool: 7 windows" in log
    metrics = pd.concat([pd.read_csv(path) for path in run.glob("results/*/metrics.csv")])
    assert set(metrics["method"]) == {"supervised", "pretrained"}
    assert set(metrics["fold"]) == {1} and (metrics["n_test"] == 4).all()
    assert (tmp / "results" / "paper-e2e").is_dir() and any((tmp / "results" / "paper-e2e").glob("*.csv"))
    assert any((tmp / "figures" / "paper-e2e").glob("*.png"))
