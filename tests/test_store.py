"""The on-disk feature store (esc_lib.store): shards written atomically, resumed after a kill, read memory-mapped."""

from __future__ import annotations

import json

import os

import numpy as np
import pytest
from test_features import SMALL, write_tone

from esc_lib import features, store


@pytest.fixture()
def files(tmp_path):
    folder = tmp_path / "pool"
    folder.mkdir()
    made = [write_tone(folder / f"tone{i:02d}.wav", 1.0 + (i % 3), frequency=200.0 + 40 * i) for i in range(9)]
    (folder / "broken.wav").write_bytes(b"RIFF, but no audio")
    return made[:4] + [folder / "broken.wav"] + made[4:]


def test_a_store_holds_what_the_in_memory_pool_holds(files, tmp_path, isolated_cache):
    built = store.build_store(files, tmp_path / "store", SMALL, files_per_shard=3, progress=False)
    pool = features.extract_pool(files, SMALL, progress=False, cache=False)
    assert len(list((tmp_path / "store").glob("shard-*.json"))) == 4  # 10 files, 3 per shard
    np.testing.assert_array_equal(np.asarray(built.X), pool.X)
    assert built.X.shape == pool.X.shape and len(built) == len(pool.X)
    assert [built.files[i] for i in np.unique(built.file_index)] == pool.files
    assert built.report.n_used == 9 and built.report.n_skipped == 1
    assert built.report.skipped[0][0].endswith("broken.wav")
    # Indexing reads rows from the shards, in any order.
    rows = np.array([len(pool.X) - 1, 0, 5, 5, 2])
    np.testing.assert_array_equal(built.X[rows], pool.X[rows])
    np.testing.assert_array_equal(built.X[3], pool.X[3])
    np.testing.assert_array_equal(built.X[2:7], pool.X[2:7])
    with pytest.raises(IndexError):
        built.X[len(pool.X)]
    # Reopening reads the same, without extracting anything.
    again = store.open_store(tmp_path / "store")
    np.testing.assert_array_equal(again.X[rows], pool.X[rows])


def test_a_killed_build_resumes_at_the_first_unfinished_shard_and_ends_equal(files, tmp_path, monkeypatch):
    reference = store.build_store(files, tmp_path / "reference", SMALL, files_per_shard=3, progress=False)
    root = tmp_path / "store"
    calls = []
    real = store.window_features

    def killed_in_the_second_shard(path, *args):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt  # the process stops here (kill): shard 0 is done, shard 1 is not
        return real(path, *args)

    monkeypatch.setattr(store, "window_features", killed_in_the_second_shard)
    with pytest.raises(KeyboardInterrupt):
        store.build_store(files, root, SMALL, files_per_shard=3, progress=False, n_jobs=1)
    assert (root / "shard-00000.json").is_file() and not (root / "shard-00001.json").exists()
    (root / ".shard-00001.npy.0badcafe.tmp").write_bytes(b"half")  # what a kill during a write leaves
    with pytest.raises(store.StoreError, match="shard 1 of 4 is not finished; run the build again"):
        store.open_store(root)
    monkeypatch.setattr(store, "window_features", real)
    calls.clear()
    resumed = store.build_store(files, root, SMALL, files_per_shard=3, progress=False, n_jobs=1)
    np.testing.assert_array_equal(np.asarray(resumed.X), np.asarray(reference.X))
    np.testing.assert_array_equal(resumed.file_index, reference.file_index)
    assert not list(root.glob(".*.tmp*"))


def test_a_folder_of_another_store_is_refused(files, tmp_path):
    store.build_store(files[:3], tmp_path / "store", SMALL, progress=False)
    with pytest.raises(store.StoreError, match="other files or parameters"):
        store.build_store(files[:4], tmp_path / "store", SMALL, progress=False)
    with pytest.raises(store.StoreError, match="no feature store"):
        store.open_store(tmp_path / "elsewhere")


def test_batches_visit_every_row_once_per_epoch_one_shard_at_a_time(files, tmp_path):
    built = store.build_store(files, tmp_path / "store", SMALL, files_per_shard=2, progress=False)
    X = np.asarray(built.X)
    batches = list(built.batches(batch_size=4, seed=1, epoch=0))
    seen = np.concatenate(batches)
    assert sum(len(b) for b in batches) == len(X) and all(len(b) == 4 for b in batches[:-1])
    # Each row once: match rows by their content.
    keys = sorted(map(bytes, X.reshape(len(X), -1)))
    assert sorted(map(bytes, seen.reshape(len(seen), -1))) == keys
    again = np.concatenate(list(built.batches(batch_size=4, seed=1, epoch=0)))
    np.testing.assert_array_equal(seen, again)  # seeded
    assert not np.array_equal(np.concatenate(list(built.batches(4, seed=1, epoch=1))), seen)
    scaler = store.standardizer_from(built.X)
    transformed = np.concatenate(list(built.batches(4, seed=1, transform=scaler.transform)))
    np.testing.assert_allclose(transformed, scaler.transform(seen), rtol=1e-6)


def test_statistics_from_shards_equal_those_of_the_whole_pool(files, tmp_path):
    built = store.build_store(files, tmp_path / "store", SMALL, files_per_shard=2, progress=False)
    streamed = store.standardizer_from(built.X)
    whole = features.Standardizer().fit(np.asarray(built.X))
    np.testing.assert_allclose(streamed.mean_, whole.mean_, rtol=1e-10)
    np.testing.assert_allclose(streamed.std_, whole.std_, rtol=1e-8)
    assert json.loads((tmp_path / "store" / "manifest.json").read_text())["key"] == SMALL.key()


@pytest.mark.slow
def test_a_cae_trained_from_the_store_equals_one_trained_in_memory(files, tmp_path):
    """Peak memory aside, nothing changes: same batches, same weights."""
    from esc_lib import training
    from esc_lib.settings import Settings

    built = store.build_store(files, tmp_path / "store", SMALL, files_per_shard=2, progress=False)
    labelled = np.random.default_rng(0).normal(size=(5, *SMALL.shape)).astype("float32")
    scaler = store.standardizer_from(store.LazyRows([built.X, labelled]))
    lazy = store.LazyRows([built.X, labelled], transform=scaler.transform)
    in_memory = scaler.transform(np.concatenate([np.asarray(built.X), labelled]))
    np.testing.assert_array_equal(lazy[np.arange(len(lazy))], in_memory)
    settings = Settings(encoder="(4)3c-2p", cae_max_epochs=2, cae_batch_size=4, patience=5, seed=3)
    from_disk, history_disk = training.train_cae(lazy, tmp_path / "disk", settings)
    from_memory, history_memory = training.train_cae(in_memory, tmp_path / "memory", settings)
    for a, b in zip(from_disk.get_weights(), from_memory.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(history_disk["loss"].to_numpy(), history_memory["loss"].to_numpy())


@pytest.mark.slow
def test_an_experiment_with_pool_store_pretrains_from_disk(tmp_path, monkeypatch):
    """pool_store: the pool goes into a store in the cache, the statistics come shard by shard, the CAE streams it."""
    from conftest import synthetic_dataset

    from esc_lib.experiment import Experiment
    from esc_lib.settings import Settings, SettingsError

    folder = tmp_path / "unlabeled"
    folder.mkdir()
    for i in range(6):
        write_tone(folder / f"u{i}.wav", 7.0, sr=8000, frequency=150.0 + 50 * i)  # 2 windows each (5 s + 2 s)
    monkeypatch.setenv("ESC_UNLABELED_DIR", str(folder))
    monkeypatch.setenv("ESC_CACHE_DIR", str(tmp_path / "cache"))
    base = dict(encoder="(4)3c-2p", head="8fc", batch_size=8, max_epochs=1, cae_max_epochs=1, folds=[1],
                fixmatch_epochs=1, fixmatch_steps=0, contrastive_epochs=1, contrastive_batch_size=4, contrastive_validation_fraction=0.25,
                selftrain_threshold=0.0,
                sample_rate=8000, n_mels=8, n_fft=512, hop_length=4000, unlabeled="folder",
                pretrain_on_train_folds=False, methods=["supervised", "pretrained"])
    on_disk = Settings(**base, pool_store=True, run_dir=str(tmp_path / "disk"))
    in_memory = Settings(**base, run_dir=str(tmp_path / "memory"))
    from esc_lib.features import FeatureParams

    params = FeatureParams(sr=8000, n_mels=8, n_fft=512, hop_length=4000)
    dataset, features = synthetic_dataset(shape=params.shape)
    disk = Experiment(on_disk, dataset=dataset, features=features, verbose=0)
    memory = Experiment(in_memory, dataset=dataset, features=features, verbose=0)
    assert len(disk.pool.X) == len(memory.pool.X) == 12 and disk.pool.report.n_used == 6
    assert list((tmp_path / "cache" / "stores").iterdir())  # the store lives in the cache
    np.testing.assert_allclose(disk.standardizer(1).mean_, memory.standardizer(1).mean_, rtol=1e-6)
    model, history = disk.pretrain(1)
    assert len(history) == 1 and np.isfinite(history["loss"]).all()
    assert disk.train_classifier(1, "pretrained")["metrics"]["accuracy"] >= 0
    assert on_disk.key("cae") != in_memory.key("cae") and in_memory.key("cae") == Settings(**base).key("cae")
    # Every other way of using the pool reads it from the store too.
    for method in ("contrastive", "fixmatch", "selftrain"):
        assert disk.train_classifier(1, method)["metrics"]["accuracy"] >= 0, method
    with pytest.raises(SettingsError, match="pool_store keeps an unlabeled pool on disk"):
        Settings(**{**base, "unlabeled": "none", "pretrain_on_train_folds": True}, pool_store=True)


@pytest.mark.slow
def test_a_store_built_on_a_dask_local_cluster_equals_the_threaded_one(files, tmp_path, monkeypatch):
    from esc_lib import config

    monkeypatch.setenv("PYTHONPATH", str(config.PROJECT_ROOT))  # the workers import this checkout's esc_lib
    threaded = store.build_store(files, tmp_path / "threads", SMALL, files_per_shard=3, progress=False)
    before = dict(os.environ)
    on_dask = store.build_store(files, tmp_path / "dask", SMALL, files_per_shard=3, progress=False, n_jobs=2,
                                scheduler="local")
    assert dict(os.environ) == before  # the nanny's OMP_NUM_THREADS=1 ... do not leak into this process
    np.testing.assert_array_equal(np.asarray(on_dask.X), np.asarray(threaded.X))
    np.testing.assert_array_equal(on_dask.file_index, threaded.file_index)
    assert on_dask.report.skipped == threaded.report.skipped and on_dask.report.n_used == 9
    with pytest.raises(store.StoreError, match="no Dask scheduler answers at tcp://127.0.0.1:9"):
        store.build_store(files, tmp_path / "nowhere", SMALL, progress=False, scheduler="tcp://127.0.0.1:9")


def _worker_environ():
    import os

    return {name: os.environ.get(name) for name in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")}


@pytest.mark.slow
def test_local_cluster_workers_keep_glibcs_malloc_defaults_and_one_blas_thread(monkeypatch):
    """Dask's MALLOC_TRIM_THRESHOLD_ made each worker ~1/3 slower per clip (a fresh mmap per decoded clip)."""
    from dask.distributed import Client

    from esc_lib import config

    monkeypatch.setenv("PYTHONPATH", str(config.PROJECT_ROOT))
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    cluster = store._local_cluster(1)
    try:
        with Client(cluster) as client:
            (seen,) = client.run(_worker_environ).values()
    finally:
        cluster.close()
    assert seen == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


def test_the_scheduler_setting_reaches_the_store_build(tmp_path, monkeypatch):
    """run_all.sh --scheduler sets ESC_DASK_SCHEDULER; the experiment's pool store is built there."""
    from conftest import synthetic_dataset

    from esc_lib import reproduce
    from esc_lib.experiment import Experiment
    from esc_lib.settings import Settings

    seen = {}
    monkeypatch.setattr(store, "build_store", lambda files, root, params, **kw: seen.update(kw) or None)
    monkeypatch.setenv("ESC_DASK_SCHEDULER", "tcp://10.0.0.5:8786")
    monkeypatch.setattr(Experiment, "unlabeled_files", lambda self: [])
    dataset, features = synthetic_dataset()
    experiment = Experiment(Settings(pool_store=True, run_dir=str(tmp_path / "r")), dataset=dataset, features=features, verbose=0)
    experiment._pool_store()
    assert seen["scheduler"] == "tcp://10.0.0.5:8786"
    assert reproduce.build_parser().parse_args(["--scheduler", "local"]).scheduler == "local"
