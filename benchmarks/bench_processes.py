"""Training throughput on a small CPU: one process using every core, or one process per core.

The budgets study trains hundreds of classifiers one after another in one process, and
TensorFlow spreads each training step over every core it sees (its default intra- and
inter-op thread pools).  The study's networks are small (a few hundred thousand weights on
64 x 108 inputs, batches of 32), so a step may not keep two cores busy; two processes of one
thread each, training two classifiers side by side, might then do more work per second.
This measures it, in one run, for the network of a profile (default ``budgets``: the strong
network, its augmentation and batch size):

* ``shared``  -- one worker process with TensorFlow's default thread pools (the baseline: how
                 ``run_all.sh`` trains now);
* ``split``   -- ``--processes`` worker processes at once (default: one per visible CPU), each
                 with one intra-op and one inter-op thread (and ``OMP_NUM_THREADS=1``).

Each worker builds the network, trains one warm-up epoch (tracing), says it is ready and waits;
the parent starts the workers of a way together, so the timed epochs of ``split``'s workers
overlap.  Each worker then trains ``--epochs`` epochs of ``model.fit`` on the project's
``BatchStream`` (augmented batches) and reports samples/s; a way's rate is the sum over its
workers.  The ways alternate for ``--rounds`` rounds (the order rotating, so outside load hits
both alike); the medians and the ratio ``split`` / ``shared`` are printed.  A ratio well above 1
says a study would finish sooner trained as that many processes (separate run folders or a
runner that trains folds in parallel); about 1 or less says the cores are already used.

The machine must be otherwise idle for the ratio to mean anything: other training runs take
cores from the workers unevenly.  The load average at the start and end is printed.

Usage::

    python benchmarks/bench_processes.py                     # budgets network, random features
    python benchmarks/bench_processes.py --epochs 1 --rounds 1 --samples 320   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(args) -> int:
    """One worker: build, warm up, print ``ready``, wait for a line on stdin, train, print the rate."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    sys.path.insert(0, str(HERE))
    import bench_training as bt  # the strong network's builders, shared with the numerics benchmark

    from esc_lib import augment as augmentations
    from esc_lib import streams, training

    settings = bt._strong_settings(args.profile)
    X, y, _, n_classes, _ = bt._strong_features(settings, False, args.samples, args.seed)
    X = (X - X.mean()) / X.std()
    Y = training.one_hot(y, n_classes)
    augment = augmentations.from_spec(settings.augment, n_classes=n_classes) if settings.augment else None
    model = bt._strong_model(settings, X.shape[1:], n_classes, "float32", args.seed)
    stream = streams.BatchStream(X, Y, batch_size=settings.batch_size, shuffle=True, seed=args.seed, augment=augment)
    dataset = stream.as_dataset(0).repeat()
    model.fit(dataset, steps_per_epoch=stream.steps_per_epoch, epochs=1, shuffle=False, verbose=0)
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=stream.steps_per_epoch, epochs=args.epochs, shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    print(json.dumps({"samples_per_s": args.epochs * stream.steps_per_epoch * settings.batch_size / seconds,
                      "seconds": seconds}), flush=True)
    return 0


def _run_way(args, processes: int, threads: int) -> tuple[float, list[float]]:
    """Start ``processes`` workers of ``threads`` threads, release them together; (total, per worker) samples/s."""
    command = [sys.executable, __file__, "--worker", "--threads", str(threads), "--profile", args.profile,
               "--samples", str(args.samples), "--epochs", str(args.epochs), "--seed", str(args.seed)]
    environment = dict(os.environ)
    if threads == 1:
        environment["OMP_NUM_THREADS"] = "1"
    workers = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment)
               for _ in range(processes)]
    try:
        for process in workers:
            line = process.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a worker did not start (said {line!r}); run it alone: {' '.join(command)}")
        for process in workers:  # release them together
            process.stdin.write("go\n")
            process.stdin.flush()
        rates = []
        for process in workers:
            rates.append(json.loads(process.stdout.readline())["samples_per_s"])
            process.wait()
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
    return sum(rates), rates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="budgets", help="profile whose network, batch size and augmentation train")
    parser.add_argument("--samples", type=int, default=640, help="random clips per worker (an epoch)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per worker and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds over the two ways")
    parser.add_argument("--processes", type=int, default=os.cpu_count(), help="workers of the split way")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.processes < 2:
        parser.error(f"--processes must be at least 2 (got {args.processes}); the split way needs two workers to compare")

    ways = {"shared": (1, 0), "split": (args.processes, 1)}
    print(f"{os.cpu_count()} CPUs visible; load average at the start {os.getloadavg()[0]:.2f} (should be near 0)")
    print(f"network of profile {args.profile!r}, {args.samples} random clips per worker, {args.epochs} timed epochs "
          f"per worker and round, {args.rounds} rounds")
    print(f"shared: 1 process, TensorFlow's default threads; split: {args.processes} processes x 1 thread")
    totals: dict[str, list[float]] = {name: [] for name in ways}
    for round_index in range(args.rounds):
        order = list(ways) if round_index % 2 == 0 else list(ways)[::-1]
        for name in order:
            processes, threads = ways[name]
            total, rates = _run_way(args, processes, threads)
            totals[name].append(total)
            each = ", ".join(f"{rate:.1f}" for rate in rates)
            print(f"round {round_index + 1} {name:7s} {total:8.1f} samples/s (per process: {each})")
    baseline = statistics.median(totals["shared"])
    print()
    print(f"{'way':8s} {'samples/s (median)':>19s} {'min':>8s} {'max':>8s} {'vs shared':>10s}")
    for name, values in totals.items():
        rate = statistics.median(values)
        print(f"{name:8s} {rate:19.1f} {min(values):8.1f} {max(values):8.1f} {rate / baseline:9.2f}x")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
