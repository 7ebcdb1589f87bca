"""Feature extraction speed on ESC-10: the seed's loop vs this project's, cold and warm.

Measured in one run, on the same files, with the paper's parameters:

1. ``naive``: the seed code's way, one process: ``librosa.load`` + pad/crop +
   peak-normalise + ``librosa.feature.melspectrogram`` + ``power_to_db``;
   also with OpenBLAS held to one thread (:mod:`threadpoolctl`), since its
   spinning threads make the seed much slower when other processes load the
   machine;
2. ``cold``: :func:`esc_lib.features.extract_clips` with an empty cache (a
   temporary folder), on every core; also with one thread, to separate the
   per-clip speed-up from the parallel one;
3. ``warm``: the same call again, served from the cache; also with the
   per-dataset bundle removed, i.e. from the per-clip entries alone;
4. ``floor``: decoding the same files alone with ``soundfile.read``, one
   process.

Before timing, every file is read once (so no method pays for a cold disk)
and librosa / the feature kernels are called once (so no method pays for
imports or one-time set-up).  Targets: cold >= 3x naive, cold time <= 2x the
floor's, warm >= 50x naive.  Every method runs once per round, in turn, and
the median round is reported; the process CPU time (all threads) is printed
beside the wall time, because it does not depend on other processes sharing
the machine, and so is the machine's load average.

Usage::

    python benchmarks/bench_features.py               # all 400 ESC-10 clips
    python benchmarks/bench_features.py --limit 100   # fewer clips
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from esc_lib.features import seed_logmel


def esc10_paths(root: Path | None, limit: int | None) -> list[Path]:
    from esc_lib import config
    from esc_lib.data.datasets import load_esc10

    root = Path(root) if root else config.esc10_dir()
    if not (root / "meta" / "esc50.csv").is_file():
        sys.exit(
            f"ESC-10 not found at {root} (no meta/esc50.csv). Set ESC_DATA_ROOT to the folder "
            f"that holds esc10/ (e.g. ../shared/data), ESC10_DIR to the dataset itself, or pass --root."
        )
    paths = load_esc10(root).paths
    return paths[:limit] if limit else paths


def timed(function) -> tuple[float, float, object]:
    """Wall-clock and process CPU seconds (all threads) of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="ESC-10 folder (default: esc_lib.config.esc10_dir())")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N clips")
    parser.add_argument("--jobs", type=int, default=None, help="threads for extract_clips (default: all cores)")
    parser.add_argument(
        "--repeats", type=int, default=3,
        help="rounds; each round runs every method once, in turn, and the median round is reported "
             "(so a burst of load from other processes hits one round, not one method)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    import soundfile
    from tabulate import tabulate

    paths = esc10_paths(args.root, args.limit)
    n = len(paths)
    cache = tempfile.mkdtemp(prefix="esc-bench-cache-")
    os.environ["ESC_CACHE_DIR"] = cache
    from esc_lib import features

    jobs = features.resolve_jobs(args.jobs)
    load_before = os.getloadavg()
    for path in paths:
        path.read_bytes()
    seed_logmel(paths[0])
    features.extract_clips(paths[:1], cache=False, progress=False)
    bundles = features.cache_root() / features.PAPER.key() / "bundles"

    def cold():
        features.clear_cache()
        return features.extract_clips(paths, n_jobs=jobs, progress=False)

    def warm():
        return features.extract_clips(paths, n_jobs=jobs, progress=False)

    def warm_entries():
        for bundle in bundles.glob("*"):
            bundle.unlink()
        return features.extract_clips(paths, n_jobs=jobs, progress=False)

    def naive_one_thread():
        # librosa's mel product runs on OpenBLAS threads, which spin when
        # other processes hold the cores; this row shows the seed without that.
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return np.stack([seed_logmel(p) for p in paths])

    methods = {
        "floor": ("floor: soundfile.read, 1 process", lambda: [soundfile.read(p, dtype="float32") for p in paths]),
        "naive": ("naive: seed loop (librosa), 1 process", lambda: np.stack([seed_logmel(p) for p in paths])),
        "naive1": ("naive, BLAS limited to 1 thread", naive_one_thread),
        "single": ("extract_clips, no cache, 1 thread",
                   lambda: features.extract_clips(paths, cache=False, n_jobs=1, progress=False)),
        "cold": (f"cold: extract_clips, empty cache, {jobs} threads", cold),
        "warm": ("warm: extract_clips, cached", warm),
        "entries": ("warm, per-clip entries only (no bundle)", warm_entries),
    }
    times = {key: [] for key in methods}
    outputs = {}
    for _ in range(args.repeats):
        for key, (_, function) in methods.items():
            wall, cpu, outputs[key] = timed(function)
            times[key].append((wall, cpu))
            if key == "entries":
                warm()  # rebuild the bundle for the next round's warm run
    load_after = os.getloadavg()
    features.clear_cache()
    os.rmdir(cache)

    median = {key: sorted(values)[len(values) // 2] for key, values in times.items()}
    naive, floor = median["naive"][0], median["floor"][0]
    table = [
        (name, f"{median[key][0]:.3f}", f"{median[key][1]:.3f}", f"{n / median[key][0]:,.0f}",
         f"{naive / median[key][0]:.2f}", f"{median[key][0] / floor:.2f}")
        for key, (name, _) in methods.items()
    ]
    print(f"ESC-10, {n} clips, paper parameters -> {features.PAPER.shape}; {os.cpu_count()} CPUs; "
          f"median of {args.repeats} round(s); load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(tabulate(table, headers=["method", "wall s", "CPU s", "clips/s", "x naive", "time / floor"]))
    difference = float(np.abs(outputs["cold"][..., 0] - outputs["naive"]).max())
    print(f"max |cold - naive| = {difference:.2e} dB; warm == cold: {np.array_equal(outputs['cold'], outputs['warm'])}")
    # Decoding alone, spread perfectly over the cores, bounds any cold run from below.
    quickest = median["floor"][0] / jobs
    print(f"bound: decoding alone on {jobs} perfectly shared cores takes {quickest:.3f} s, so cold can reach at most "
          f"{naive / quickest:.2f}x naive ({median['naive1'][0] / quickest:.2f}x naive with 1 BLAS thread)")
    print(f"CPU per clip: decode {median['floor'][1] / n * 1e3:.2f} ms, this project {median['single'][1] / n * 1e3:.2f} ms, "
          f"seed {median['naive'][1] / n * 1e3:.2f} ms ({median['naive1'][1] / n * 1e3:.2f} ms with 1 BLAS thread)")
    cold_time, warm_time = median["cold"][0], median["warm"][0]
    naive1 = median["naive1"][0]
    targets = [
        ("cold >= 3x naive", naive / cold_time, 3.0, naive / cold_time >= 3.0),
        ("(cold >= 3x naive with 1 BLAS thread)", naive1 / cold_time, 3.0, naive1 / cold_time >= 3.0),
        ("cold time <= 2x floor time", cold_time / floor, 2.0, cold_time / floor <= 2.0),
        ("warm >= 50x naive", naive / warm_time, 50.0, naive / warm_time >= 50.0),
    ]
    print(tabulate(
        [(name, f"{value:.2f}", bound, "met" if ok else "MISSED") for name, value, bound, ok in targets],
        headers=["target", "measured", "bound", ""],
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
