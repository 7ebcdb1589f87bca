"""Store extraction per clip: one thread, two threads, and a Dask LocalCluster, on the same clips in one run.

Reuses the Ogg clips ``benchmarks/bench_scale.py --workdir DIR`` generated
(or makes them), builds a fresh store of the first ``--n`` with each path in
turn and prints milliseconds per clip and the ratio to two threads (the
default path)::

    python benchmarks/bench_extract_parallel.py --workdir ../bench-scale --n 1500

``--malloc`` adds a one-worker LocalCluster started with Dask's default
worker environment (``MALLOC_TRIM_THRESHOLD_=65536``, which ``esc_lib.store``
drops) beside the same cluster as ``esc_lib.store`` starts it, and one thread
in this process: what the worker's allocator setting costs per clip.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


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
        paths += [("Dask 1 worker", dict(scheduler="local", n_jobs=1), None),
                  ("Dask 1 worker, Dask's MALLOC_TRIM", dict(scheduler="local", n_jobs=1), {})]
    results = {}
    ours = store._WORKER_ENVIRON
    with tempfile.TemporaryDirectory() as tmp:
        for name, options, environ in paths:
            root = Path(tmp) / "store"
            store._WORKER_ENVIRON = ours if environ is None else environ
            try:
                start = time.perf_counter()
                store.build_store(files, root, FeatureParams(), progress=False, **options)
                results[name] = (time.perf_counter() - start) / len(files) * 1000
            finally:
                store._WORKER_ENVIRON = ours
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
