"""Store extraction per clip: one thread, two threads, and a Dask LocalCluster, on the same clips in one run.

Reuses the Ogg clips ``benchmarks/bench_scale.py --workdir DIR`` generated
(or makes them), builds a fresh store of the first ``--n`` with each path in
turn, after an untimed warm-up (the files read once, a small store built so
imports and numba's kernels are in place), and prints milliseconds per clip
and the ratio to two threads (the default path)::

    python benchmarks/bench_extract_parallel.py --workdir ../bench-scale --n 1500

``--malloc`` adds two clusters of one worker, started here and handed to
``build_store`` by address (as a cluster of your own would be): one with
Dask's default worker environment (``MALLOC_TRIM_THRESHOLD_=65536``), one
with the setting ``esc_lib.store`` and the README use
(``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_: null``),
against one thread in this process: what the worker's allocator setting
costs per clip (cluster start-up is not timed for these two).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


@contextlib.contextmanager
def _one_worker(worker_config: dict):
    """The address of a LocalCluster of one one-thread worker started under ``worker_config`` (Dask config)."""
    import os

    import dask
    from dask.distributed import LocalCluster

    saved = dict(os.environ)  # the nanny writes its workers' variables into this process's environment
    try:
        with dask.config.set(worker_config):
            cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def main(argv=None) -> int:
    from benchmarks.bench_scale import _clips
    from esc_lib import store
    from esc_lib.features import FeatureParams

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--malloc", action="store_true",
                        help="also one Dask worker with and without Dask's MALLOC_TRIM_THRESHOLD_")
    args = parser.parse_args(argv)
    files = _clips(args.workdir, args.n)
    paths = [("1 thread", dict(n_jobs=1), None), ("2 threads", dict(n_jobs=2), None),
             ("Dask LocalCluster", dict(scheduler="local"), None)]
    if args.malloc:
        paths += [("Dask 1 worker, trim setting dropped", {}, {TRIM: None}),
                  ("Dask 1 worker, Dask's MALLOC_TRIM", {}, {})]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        # untimed warm-up: the files into the page cache, librosa's imports and numba's compiled
        # kernels into this process, so the first timed path does not pay for what the others reuse
        for path in files:
            path.read_bytes()
        store.build_store(files[:32], Path(tmp) / "warm-up", FeatureParams(), progress=False, n_jobs=1)
        shutil.rmtree(Path(tmp) / "warm-up")
        for name, options, worker_config in paths:
            root = Path(tmp) / "store"
            with contextlib.ExitStack() as stack:
                if worker_config is not None:  # a cluster of one worker, started before the clock
                    address = stack.enter_context(_one_worker(worker_config))
                    options = dict(scheduler=address)
                start = time.perf_counter()
                store.build_store(files, root, FeatureParams(), progress=False, **options)
                results[name] = (time.perf_counter() - start) / len(files) * 1000
            shutil.rmtree(root)
    width = max(map(len, results))
    for name, ms in results.items():
        line = f"{name:{width}s} {ms:6.2f} ms/clip  speed x{results['2 threads'] / ms:.2f} of 2 threads"
        if name.startswith("Dask 1 worker"):
            line += f", x{results['1 thread'] / ms:.2f} of 1 thread"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
