"""Training throughput of the paper classifier: the project's pipeline vs plain ``model.fit``.

Three ways to train the paper classifier ``(64)5c-2p-(64)3c-2p-(64)3c-2p-128fc``
on 28 x 36 x 1 features, batch size 32, in one process:

* ``plain``    -- ``model.fit(X, y, batch_size=32, shuffle=True)`` on in-memory arrays
                  (the baseline);
* ``stream``   -- ``model.fit`` on ``BatchStream(X, y).as_dataset()`` (the project's
                  data pipeline, nothing else);
* ``training`` -- :func:`esc_lib.training.fit` with the same stream (adds the
                  per-epoch checkpoint, history.csv and best-model saving).

Each path gets its own model (same architecture and seed) and one warm-up
epoch (tracing), then ``--epochs`` timed epochs.  The paths are run in turn
``--rounds`` times, interleaved and in a rotating order, so that load from
other processes on the machine hits all of them alike; the median samples/s
per path is reported, with the ratio to ``plain`` (target >= 0.9).  Each
``training`` call is a complete short run (a fresh run folder, the final
``model.keras`` and ``done.json`` included), so its per-run costs are counted
against only ``--epochs`` epochs.

Usage::

    python benchmarks/bench_training.py                # random features, 1600 clips
    python benchmarks/bench_training.py --real         # ESC-10 paper features (needs the data)
    python benchmarks/bench_training.py --samples 800 --epochs 2 --rounds 1   # quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _features(real: bool, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    if real:
        from esc_lib import features
        from esc_lib.data import datasets

        dataset = datasets.load_esc10()
        X = features.extract_clips(dataset.paths, features.PAPER, progress=False)
        X = features.Standardizer().fit(X).transform(X)
        return X.astype("float32"), dataset.labels.astype("int64"), f"ESC-10 paper features ({len(X)} clips)"
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, 28, 36, 1)).astype("float32")
    y = rng.integers(0, 10, size=samples).astype("int64")
    return X, y, f"random 28x36x1 features ({samples} clips)"


def _model(seed: int):
    from esc_lib import models, training

    training.set_seed(seed)
    model = models.build_classifier((28, 36, 1), 10, encoder=models.PAPER_ENCODER, head="128fc")
    return training.compile_classifier(model)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="use ESC-10 paper features instead of random arrays")
    parser.add_argument("--samples", type=int, default=1600, help="random clips (ignored with --real)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per path and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the paths")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from esc_lib import streams, training

    X, y, what = _features(args.real, args.samples, args.seed)
    n, batch = len(X), args.batch_size
    print(f"data: {what}; batch size {batch}; {args.epochs} timed epochs x {args.rounds} rounds per path")
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs visible, "
          f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}")

    models_by_path = {name: _model(args.seed) for name in ("plain", "stream", "training")}
    stream = streams.BatchStream(X, y, batch_size=batch, shuffle=True, seed=args.seed)
    scratch = Path(tempfile.mkdtemp(prefix="bench-training-"))
    next_epoch = {"stream": 0}

    def run_plain(epochs: int) -> None:
        models_by_path["plain"].fit(X, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0)

    def run_stream(epochs: int) -> None:
        dataset = stream.as_dataset(next_epoch["stream"]).repeat()
        models_by_path["stream"].fit(dataset, steps_per_epoch=stream.steps_per_epoch, epochs=epochs, shuffle=False,
                                     verbose=0)
        next_epoch["stream"] += epochs

    def run_training(epochs: int, counter=[0]) -> None:  # noqa: B006 - a run folder per call
        counter[0] += 1
        training.fit(models_by_path["training"], stream, None, scratch / f"run{counter[0]}", max_epochs=epochs,
                     patience=None, seed=args.seed, verbose=0)

    runners = {"plain": run_plain, "stream": run_stream, "training": run_training}
    for name, run in runners.items():  # warm-up: trace the train step, fill caches
        start = time.perf_counter()
        run(1)
        print(f"warm-up {name:9s} {time.perf_counter() - start:6.2f} s")

    rates: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for round_index in range(args.rounds):
        # Rotate the order each round so a burst of outside load does not always hit the same path.
        for name in names[round_index % 3:] + names[: round_index % 3]:
            run = runners[name]
            start = time.perf_counter()
            run(args.epochs)
            seconds = time.perf_counter() - start
            rates[name].append(args.epochs * n / seconds)
            print(f"round {round_index + 1} {name:9s} {seconds:6.2f} s  {rates[name][-1]:8.1f} samples/s")

    baseline = statistics.median(rates["plain"])
    print()
    print(f"{'path':10s} {'samples/s (median)':>20s} {'min':>8s} {'max':>8s} {'vs plain':>10s}")
    for name in runners:
        rate = statistics.median(rates[name])
        print(f"{name:10s} {rate:20.1f} {min(rates[name]):8.1f} {max(rates[name]):8.1f} {rate / baseline:9.2f}x")
    shutil.rmtree(scratch, ignore_errors=True)
    ratio = statistics.median(rates["training"]) / baseline
    print(f"\npipeline (esc_lib.training.fit on a BatchStream) / plain model.fit = {ratio:.2f}x "
          f"({'meets' if ratio >= 0.9 else 'BELOW'} the 0.9x target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
