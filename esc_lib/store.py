"""An on-disk feature store for pools too large for memory: shards of ``.npy``, read memory-mapped.

ESC-US holds 250 000 clips: their 64 x 108 log-mels are 6.9 GB of float32, more
than a pool should hold in memory.  A :class:`FeatureStore` keeps them on disk
as *shards*, each the windows of a fixed run of files:

``<root>/manifest.json``
    The feature parameters, their key and the files of every shard, written
    first (atomically).  A store is for one list of files and one set of
    parameters; building into a folder made for others is an error.
``<root>/shard-00000.npy``, ``shard-00000.index.npy``, ``shard-00000.json``
    The windows [shape=(n, n_mels, n_frames, n_channels), float32], the file
    each window comes from (position in the manifest's file list), and the
    shard's report (files used, files skipped with the reason).  The report is
    written last: a shard without it is not done, so a build killed half-way
    resumes at the first shard not done, and nothing half-written is ever read
    (each file is written under a temporary name and renamed, :mod:`esc_lib.atomic`).

Building holds one shard in memory; reading maps the shards
(``np.load(mmap_mode="r")``), so :attr:`FeatureStore.X` is a
:class:`ShardedArray` whose rows are read from disk when indexed, and
:meth:`FeatureStore.batches` streams shuffled batches shard by shard with
Pescador.  Features are those of :func:`esc_lib.features.extract_pool` (the
same window function), so a store and the in-memory pool agree exactly.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from esc_lib import atomic
from esc_lib.data import audio
from esc_lib.features import FeatureParams, Standardizer, progress_bar, resolve_jobs, run_parallel, window_features

__all__ = ["StoreError", "FeatureStore", "ShardedArray", "build_store", "open_store", "standardizer_from"]

MANIFEST = "manifest.json"
_VERSION = 1


class StoreError(ValueError):
    """A store folder holds another store, or is damaged; the message names it and says what to do."""


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def _gather(parts: Sequence, starts: np.ndarray, rows: np.ndarray, row_shape: tuple) -> np.ndarray:
    """Rows ``rows`` (indices into the parts laid end to end, ``starts`` their offsets) as one float32 array."""
    out = np.empty((len(rows), *row_shape), dtype=np.float32)
    owner = np.searchsorted(starts, rows, side="right") - 1
    for part in np.unique(owner):
        chosen = np.flatnonzero(owner == part)
        out[chosen] = parts[part][rows[chosen] - starts[part]]
    return out


class ShardedArray:
    """The rows of several ``.npy`` shards as one read-only array (memory-mapped; rows read when indexed).

    Supports ``len``, ``shape``, ``dtype``, ``ndim`` and indexing by an int, a
    slice or an array of ints (any order, repeats allowed); ``np.asarray`` of
    it reads everything.
    """

    def __init__(self, paths: Sequence[Path], row_shape: tuple):
        self._arrays = [np.load(path, mmap_mode="r") for path in paths]
        self._starts = np.cumsum([0] + [len(a) for a in self._arrays])
        self.shape = (int(self._starts[-1]), *row_shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            index = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"row {key} out of range for {len(self)} rows")
            shard = int(np.searchsorted(self._starts, index, side="right") - 1)
            return np.array(self._arrays[shard][index - self._starts[shard]])
        rows = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key, dtype=np.int64).reshape(-1)
        rows = np.where(rows < 0, rows + len(self), rows)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows out of range for {len(self)} rows")
        return _gather(self._arrays, self._starts, rows, self.shape[1:])

    def __array__(self, dtype=None, copy=None):
        whole = np.concatenate([np.asarray(a) for a in self._arrays]) if self._arrays else np.zeros(self.shape, self.dtype)
        return whole.astype(dtype) if dtype is not None else whole

    def chunks(self) -> Iterator[np.ndarray]:
        """Each shard's rows in turn (one shard in memory at a time)."""
        for array in self._arrays:
            yield np.asarray(array)


@dataclass
class FeatureStore:
    """A finished store (see the module docstring); open one with :func:`open_store`.

    Attributes
    ----------
    root : Path
    params : FeatureParams
    files : list of Path
        Every file listed for the store, in order (skipped ones included).
    X : ShardedArray [shape=(n_windows, n_mels, n_frames, n_channels)]
    file_index : np.ndarray [shape=(n_windows,), dtype=int64]
        ``files[file_index[i]]`` gave row ``i``.
    report : esc_lib.data.audio.SkipReport
        Files used and files skipped, with the reason.
    """

    root: Path
    params: FeatureParams
    files: list
    X: ShardedArray
    file_index: np.ndarray
    report: audio.SkipReport

    def __len__(self) -> int:
        return len(self.X)

    def batches(self, batch_size: int, seed: int, epoch: int = 0,
                transform: Callable[[np.ndarray], np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """One epoch of shuffled batches of rows, reading one shard at a time.

        The shards are visited in a seeded order (``(seed, epoch)``), each shard's
        rows shuffled within it, so memory holds one shard; ``transform`` (e.g. a
        fitted :class:`~esc_lib.features.Standardizer`'s ``transform``) is applied
        per batch.  Every row appears once per epoch.
        """
        import pescador

        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        rng = np.random.default_rng([int(seed), int(epoch)])
        order = rng.permutation(len(self.X._arrays))
        seeds = rng.integers(0, 2**31, size=len(order))

        def shard_rows(shard: int, shard_seed: int):
            array = self.X._arrays[shard]
            for row in np.random.default_rng(shard_seed).permutation(len(array)):
                yield np.asarray(array[row])

        streams = pescador.Streamer(_chain, [pescador.Streamer(shard_rows, int(s), int(k)) for s, k in zip(order, seeds)])
        batch = []
        for row in streams:
            batch.append(row)
            if len(batch) == batch_size:
                stacked = np.stack(batch)
                yield transform(stacked) if transform is not None else stacked
                batch = []
        if batch:
            stacked = np.stack(batch)
            yield transform(stacked) if transform is not None else stacked


def _chain(streamers):
    for streamer in streamers:
        yield from streamer


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _build_shard(root: str, shard: int, files: Sequence[str], offset: int, params: dict, last: str,
                 min_last_seconds: float, n_jobs: int = 1, bar=None) -> int:
    """Extract one shard and write it (windows, index, then the report that marks it done); returns its file count.

    A plain function of plain arguments, so a Dask worker can run it: the shard
    is written by whoever computes it (with a cluster, ``root`` must be a
    folder every worker sees).
    """
    params = FeatureParams.from_dict(params)
    root, paths = Path(root), [Path(f) for f in files]
    results, failures = {}, {}
    with (progress_bar(0, "", False) if bar is None else contextlib.nullcontext(bar)) as progress:
        for index, features in run_parallel(
                range(len(paths)), lambda i: window_features(paths[i], params, last, min_last_seconds), n_jobs, progress,
                on_error=lambda i, error: failures.__setitem__(i, str(error))):
            results[index] = features
    used = sorted(results)
    X = np.concatenate([results[i] for i in used]) if used else np.zeros((0, *params.shape), np.float32)
    index = np.concatenate([np.full(len(results[i]), offset + i, np.int64) for i in used]) if used else np.zeros(0, np.int64)
    name = _shard_name(shard)
    with atomic.atomic_path(root / f"{name}.npy") as temporary, open(temporary, "wb") as handle:
        np.save(handle, X.astype(np.float32), allow_pickle=False)
    with atomic.atomic_path(root / f"{name}.index.npy") as temporary, open(temporary, "wb") as handle:
        np.save(handle, index, allow_pickle=False)
    report = {"used": [str(paths[i]) for i in used], "skipped": [[str(paths[i]), failures[i]] for i in sorted(failures)]}
    atomic.write_text(root / f"{name}.json", json.dumps(report))  # last: the shard is done
    return len(paths)


def build_store(files: Sequence[str | Path], root: str | Path, params: FeatureParams, *, files_per_shard: int = 256,
                n_jobs: int | None = None, progress: bool = True, last: str = "pad",
                min_last_seconds: float = 1.0, scheduler: str | None = None) -> FeatureStore:
    """Extract the windows of ``files`` into a store at ``root`` shard by shard, resuming a killed build.

    Parameters
    ----------
    files : sequence of str or Path
        Audio files of any length, rate and channel count; one that cannot be
        decoded (or gives no window) is skipped and counted, never fatal.
    root : str or Path
        The store's folder (created).
    params : FeatureParams
    files_per_shard : int > 0
        Files per shard: what one build step holds in memory, and one Dask task.
    n_jobs, progress, last, min_last_seconds
        As in :func:`esc_lib.features.extract_pool` (``n_jobs``: threads here,
        or workers of the LocalCluster).
    scheduler : str, optional
        None: threads in this process.  ``"local"``: a ``dask.distributed``
        LocalCluster of ``n_jobs`` single-threaded worker processes.  Else the
        address of a running Dask scheduler (``tcp://host:8786``), whose workers
        must see ``root`` and the files.  The features are the same either way.

    Raises
    ------
    StoreError
        ``root`` holds a store of other files or parameters.
    """
    if isinstance(files_per_shard, bool) or not isinstance(files_per_shard, (int, np.integer)) or files_per_shard < 1:
        raise ValueError(f"files_per_shard must be a positive integer, got {files_per_shard!r}")
    root = Path(root)
    files = [str(Path(f)) for f in files]
    shards = [files[i:i + files_per_shard] for i in range(0, len(files), files_per_shard)]
    manifest = {"version": _VERSION, "params": params.to_dict(), "key": params.key(),
                "window": {"last": last, "min_last_seconds": float(min_last_seconds)}, "shards": shards}
    existing = _read_json(root / MANIFEST)
    if existing is None:
        atomic.write_text(root / MANIFEST, json.dumps(manifest, indent=1))
    elif existing != manifest:
        raise StoreError(f"{root}: holds a feature store of other files or parameters; "
                         "build into a new folder, or delete this one to rebuild it")
    for leftover in root.glob(".*.tmp*"):  # half-written by a killed build: never committed
        leftover.unlink(missing_ok=True)
    jobs = resolve_jobs(n_jobs)
    todo = [i for i in range(len(shards)) if _read_json(root / f"{_shard_name(i)}.json") is None]
    offset = np.cumsum([0] + [len(s) for s in shards])
    arguments = [(str(root), i, shards[i], int(offset[i]), params.to_dict(), last, float(min_last_seconds)) for i in todo]
    with progress_bar(sum(len(shards[i]) for i in todo), "log-mel store", progress) as bar:
        if scheduler is None:
            for args in arguments:
                _build_shard(*args, n_jobs=jobs, bar=bar)
        else:
            _build_on_dask(arguments, scheduler, jobs, bar)
    return open_store(root)


# Dask's nanny gives every worker MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's
# mmap threshold: each decoded clip (a few MB, allocated and freed per clip) then costs a
# fresh mmap and its page faults, ~1/3 more time per clip (benchmarks/bench_extract_parallel.py).
# Our tasks free their memory at the end of each shard, so the workers keep glibc's default.
# The one-thread BLAS/OpenMP settings stay: one worker per core.
_WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def _local_cluster(n_workers: int):
    """A LocalCluster of ``n_workers`` one-thread worker processes, leaving this process's environment as it was.

    The nanny writes its workers' variables (OMP_NUM_THREADS=1, ...) into
    ``os.environ`` of the process that starts it; they would then reach every
    process started later from here (a notebook kernel, TensorFlow's threads).
    """
    import os

    import dask
    from dask.distributed import LocalCluster

    saved = dict(os.environ)
    try:
        with dask.config.set(_WORKER_ENVIRON):
            return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _build_on_dask(arguments: list, scheduler: str, n_workers: int, bar) -> None:
    """One Dask task per shard, on a LocalCluster (``"local"``) or the scheduler at an address."""
    from dask.distributed import Client, as_completed

    cluster = None
    try:
        if scheduler == "local":
            cluster = _local_cluster(n_workers)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as error:
                raise StoreError(f"no Dask scheduler answers at {scheduler} ({error}); start one (dask scheduler) "
                                 "or unset ESC_DASK_SCHEDULER to extract on this machine") from None
        with client:
            futures = [client.submit(_build_shard, *args, pure=False) for args in arguments]
            for future in as_completed(futures):
                bar.update(future.result())
    finally:
        if cluster is not None:
            cluster.close()


def open_store(root: str | Path) -> FeatureStore:
    """A finished store at ``root``.

    Raises
    ------
    StoreError
        No store there, or a shard not finished (the build was stopped: run it again to finish).
    """
    root = Path(root)
    manifest = _read_json(root / MANIFEST)
    if manifest is None or manifest.get("version") != _VERSION:
        raise StoreError(f"{root}: no feature store (no readable {MANIFEST}); build one with esc_lib.store.build_store")
    params = FeatureParams.from_dict(manifest["params"])
    report, paths, indices = audio.SkipReport(), [], []
    for shard in range(len(manifest["shards"])):
        name = _shard_name(shard)
        done = _read_json(root / f"{name}.json")
        if done is None:
            raise StoreError(f"{root}: shard {shard} of {len(manifest['shards'])} is not finished; "
                             "run the build again to finish it")
        report.n_used += len(done["used"])
        for path, reason in done["skipped"]:
            report.skip(path, reason)
        paths.append(root / f"{name}.npy")
        indices.append(np.load(root / f"{name}.index.npy"))
    files = [Path(f) for shard in manifest["shards"] for f in shard]
    X = ShardedArray(paths, tuple(params.shape))
    file_index = np.concatenate(indices) if indices else np.zeros(0, np.int64)
    return FeatureStore(root=root, params=params, files=files, X=X, file_index=file_index, report=report)


def standardizer_from(X: ShardedArray | np.ndarray, eps: float = 1e-6) -> Standardizer:
    """A :class:`~esc_lib.features.Standardizer` fitted shard by shard (float64 sums), never holding the pool.

    Equal to ``Standardizer().fit(np.asarray(X))`` up to floating-point rounding.
    """
    chunks = X.chunks() if isinstance(X, ShardedArray) else [np.asarray(X)]
    count, total, squares = 0, None, None
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        values = chunk.astype(np.float64)
        s, q = values.sum(axis=(0, 2)), np.square(values).sum(axis=(0, 2))
        total, squares = (s, q) if total is None else (total + s, squares + q)
        count += chunk.shape[0] * chunk.shape[2]
    if not count:
        raise ValueError("standardizer_from: no rows to take statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    scaler = Standardizer(eps=eps)
    scaler.mean_, scaler.std_ = mean, np.where(std < eps, 1.0, std)
    return scaler


class LazyRows:
    """Several row sources (a :class:`ShardedArray`, in-memory arrays) as one, optionally transformed per read.

    ``rows[i]`` / ``rows[indices]`` read only those rows and pass them through
    ``transform`` (e.g. a fitted Standardizer's ``transform``), so the CAE can
    train on a pool plus labelled clips without a standardised copy in memory.
    """

    def __init__(self, parts: Sequence, transform: Callable[[np.ndarray], np.ndarray] | None = None):
        self.parts = [p for p in parts if len(p)]
        if not self.parts:
            raise ValueError("LazyRows: no rows in any part")
        shapes = {tuple(p.shape[1:]) for p in self.parts}
        if len(shapes) != 1:
            raise ValueError(f"LazyRows: parts of different row shapes {sorted(shapes)}")
        self._starts = np.cumsum([0] + [len(p) for p in self.parts])
        self.shape = (int(self._starts[-1]), *shapes.pop())
        self.ndim, self.dtype = len(self.shape), np.dtype(np.float32)
        self.transform = transform

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        rows = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key, dtype=np.int64)
        single = rows.ndim == 0
        rows = rows.reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows out of range for {len(self)} rows")
        out = _gather(self.parts, self._starts, rows, self.shape[1:])
        if self.transform is not None:
            out = self.transform(out)
        return out[0] if single else out

    def chunks(self) -> Iterator[np.ndarray]:
        """Untransformed rows, a shard or an in-memory part at a time."""
        for part in self.parts:
            yield from (part.chunks() if isinstance(part, ShardedArray) else [np.asarray(part)])


class RowStream:
    """Seeded epochs of batches gathered from an array-like (a :class:`LazyRows`), for :func:`esc_lib.training.fit`.

    Epoch ``e`` visits ``rows`` in the order ``np.random.default_rng([seed, e]).permutation``
    (or as given, without shuffling), in batches of ``batch_size`` (the last
    smaller): the batches :class:`esc_lib.streams.BatchStream` makes of the
    same rows in memory, read here a batch at a time through Pescador.  The
    target is the input (an autoencoder).
    """

    def __init__(self, X, rows, batch_size: int, seed: int = 0, shuffle: bool = True):
        self.X, self.rows = X, np.asarray(rows, dtype=np.int64)
        if len(self.rows) == 0:
            raise ValueError("RowStream: no rows")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size, self.seed, self.shuffle = int(batch_size), int(seed), bool(shuffle)

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def epoch(self, epoch: int):
        import pescador

        order = np.random.default_rng([self.seed, int(epoch)]).permutation(len(self.rows)) if self.shuffle \
            else np.arange(len(self.rows))

        def batches():
            for start in range(0, len(order), self.batch_size):
                x = self.X[self.rows[order[start:start + self.batch_size]]].astype(np.float32, copy=False)
                yield x, x

        yield from pescador.Streamer(batches)

    def as_dataset(self, initial_epoch: int = 0):
        import tensorflow as tf

        from esc_lib.streams import epochs_dataset

        spec = tf.TensorSpec(shape=(None, *self.X.shape[1:]), dtype=tf.float32)
        return epochs_dataset(self, initial_epoch, (spec, spec))
