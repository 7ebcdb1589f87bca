"""Store extraction per clip: one thread, two threads, and a Dask LocalCluster, on the same clips in one run.

Reuses the Ogg clips ``benchmarks/bench_scale.py --workdir DIR`` generated
(or makes them), builds a fresh store of the first ``--n`` with each path in
turn and prints milliseconds per clip and the ratio to two threads (the
default path)::

    python benchmarks/bench_extract_parallel.py --workdir ../bench-scale --n 1500
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
    args = parser.parse_args(argv)
    files = _clips(args.workdir, args.n)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in (("1 thread", dict(n_jobs=1)), ("2 threads", dict(n_jobs=2)),
                              ("Dask LocalCluster", dict(scheduler="local"))):
            root = Path(tmp) / name.replace(" ", "-")
            start = time.perf_counter()
            store.build_store(files, root, FeatureParams(), progress=False, **options)
            results[name] = (time.perf_counter() - start) / len(files) * 1000
            shutil.rmtree(root)
    for name, ms in results.items():
        print(f"{name:18s} {ms:6.2f} ms/clip  speed x{results['2 threads'] / ms:.2f} of 2 threads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
