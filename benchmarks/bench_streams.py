"""Streaming throughput: Pescador BatchStream vs plain in-memory batches vs tf.data.

For arrays of the paper's shape (n, 28, 36, 1) with integer labels, prints
batches/s of one epoch for:

* ``memory``: a seeded permutation and ``X[index[i:i + b]]`` slices (the floor);
* ``BatchStream.epoch``: one Pescador streamer per example, ChainMux, buffer_stream;
* ``BatchStream.as_dataset``: the same through ``tf.data`` (what Keras ``fit`` reads);
* ``BatchStream + augment``: with TimeShift + SpecMask on every batch;
* ``StochasticMux exhaustive``: Pescador's random mux, the design not taken
  (it draws each streamer from a probability vector over all of them).

Each row is the median of ``--repeats`` epochs.  Usage::

    python benchmarks/bench_streams.py                 # n = 400 (ESC-10), batch 32
    python benchmarks/bench_streams.py --n 20000       # pool-sized
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np


def epoch_time(run, repeats: int) -> float:
    times = []
    for repeat in range(repeats):
        start = time.perf_counter()
        run(repeat)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=400, help="examples (default 400, ESC-10)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="epochs timed per row (median reported)")
    parser.add_argument("--no-tf", action="store_true", help="skip the tf.data row (TensorFlow import takes seconds)")
    parser.add_argument("--no-stochastic", action="store_true", help="skip the StochasticMux row")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import pescador
    from tabulate import tabulate

    from esc_lib.augment import Compose, SpecMask, TimeShift
    from esc_lib.streams import BatchStream

    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n, 28, 36, 1)).astype(np.float32)
    y = rng.integers(0, 10, size=args.n)
    b = args.batch_size
    stream = BatchStream(X, y, batch_size=b, seed=0)
    steps = stream.steps_per_epoch

    def memory(epoch: int) -> None:
        index = np.random.default_rng([0, epoch]).permutation(args.n)
        for start in range(0, args.n, b):
            rows = index[start : start + b]
            X[rows], y[rows]

    def pescador_epoch(epoch: int) -> None:
        for _ in stream.epoch(epoch):
            pass

    augmented = BatchStream(X, y, batch_size=b, seed=0, augment=Compose(TimeShift(4), SpecMask()))

    def augmented_epoch(epoch: int) -> None:
        for _ in augmented.epoch(epoch):
            pass

    rows = [("memory: permutation + slicing", epoch_time(memory, args.repeats))]
    rows.append(("BatchStream.epoch (pescador ChainMux)", epoch_time(pescador_epoch, args.repeats)))
    rows.append(("BatchStream + TimeShift + SpecMask", epoch_time(augmented_epoch, args.repeats)))

    if not args.no_stochastic:
        streamers = stream._streamers

        def stochastic(epoch: int) -> None:
            mux = pescador.StochasticMux(streamers, n_active=min(32, args.n), rate=None, mode="exhaustive",
                                         random_state=epoch)
            for _ in pescador.buffer_stream(mux, b, partial=True):
                pass

        rows.append(("pescador StochasticMux exhaustive (not used)", epoch_time(stochastic, args.repeats)))

    if not args.no_tf:
        dataset = stream.as_dataset()
        iterator_epochs = iter(range(10**9))

        def through_tf(_: int) -> None:
            next(iterator_epochs)
            for _ in dataset:
                pass

        through_tf(0)  # graph building and the first iterator are set-up, not throughput
        rows.append(("BatchStream.as_dataset (tf.data, prefetch)", epoch_time(through_tf, args.repeats)))

    floor = rows[0][1]
    print(f"{args.n} examples of shape (28, 36, 1), batch {b}, {steps} batches per epoch; median of {args.repeats} epochs")
    print(tabulate(
        [(name, f"{seconds * 1e3:.1f}", f"{steps / seconds:,.0f}", f"{seconds / floor:.1f}") for name, seconds in rows],
        headers=["pipeline", "ms / epoch", "batches/s", "time / memory"],
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
