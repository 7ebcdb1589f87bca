"""Training throughput: the project's pipeline vs plain ``model.fit``, and the strong network's numerics.

Default mode -- three ways to train the paper classifier ``(64)5c-2p-(64)3c-2p-(64)3c-2p-128fc``
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

``--numerics`` -- the strong network (``profiles/strong.yaml``: its encoder,
head, batch norm, dropout, batch size, augmentation and learning rate; input
``n_mels`` x frames from its feature settings, 64 x 108) trained in these ways
on the same data and batches:

* ``float32``    -- Keras' ``float32`` dtype policy, ``jit_compile=False``, op
                    determinism on (as the project trains now; the baseline);
* ``bfloat16``   -- ``mixed_bfloat16`` (computations in bfloat16, variables
                    and the softmax output in float32), set through
                    :func:`esc_lib.training.numerics`; otherwise as ``float32``;
* ``xla``        -- ``float32`` with ``jit_compile=True`` (XLA compiles the
                    training step).  XLA has no deterministic max-pooling
                    gradient, and Keras refuses XLA while TensorFlow's op
                    determinism is on, so this way trains with it off;
* ``float32-nd`` -- ``float32`` with op determinism off: what dropping
                    determinism alone changes, next to ``xla``.

``--ways`` picks others (float32 first): ``bfloat16-nd`` and ``bfloat16-xla``
are ``mixed_bfloat16`` with op determinism off, without and with XLA.

``jit_compile`` is set explicitly on every way: Keras' default (``"auto"``,
what :func:`esc_lib.training.compile_classifier` leaves) turns XLA on when
TensorFlow sees a GPU and op determinism is off, otherwise off.  Each way
trains ``model.fit`` on the project's ``BatchStream`` (augmented batches,
one-hot targets), one warm-up epoch (tracing, XLA compilation), then
``--epochs`` timed epochs in ``--rounds`` interleaved rounds in a rotating
order; samples/s (median, min, max) and the ratio to ``float32`` are printed
with the device lines (:func:`esc_lib.training.device_summary`) and each way's
precision.

``--accuracy`` (with ``--real``; implies ``--numerics``) -- whether a faster
way keeps validation accuracy: each of ``float32``, ``bfloat16`` and ``xla``
(``float32-nd`` differs from ``float32`` only in rounding order) and each of
``--seeds`` trains a fresh network through :func:`esc_lib.training.fit` for
``--accuracy-epochs`` epochs (the profile's schedule, cosine to 0) on
``--train-folds`` (default 1-3) and is scored on ``--validation-fold``
(default 4; fold 5 is not used).  The runs are interleaved (seed by seed, the
ways in a rotating order); each run's samples/s over its epochs after the
first (no tracing or compilation) and its validation accuracy are printed,
then the means per way.  The features are the strong profile's log-mels of
ESC-10 (:func:`esc_lib.features.extract_clips`, cached), standardised with
statistics of the training folds.  Without ``--real`` it runs on random
features (a check of the code path; accuracy at chance).

Usage::

    python benchmarks/bench_training.py                # random features, 1600 clips
    python benchmarks/bench_training.py --real         # ESC-10 paper features (needs the data)
    python benchmarks/bench_training.py --samples 800 --epochs 2 --rounds 1   # quick
    python benchmarks/bench_training.py --numerics     # strong network: float32 / bfloat16 / XLA, random 64x108 features
    python benchmarks/bench_training.py --numerics --real                     # the same on ESC-10 (400 clips)
    ESC_DATA_ROOT=../shared/data python benchmarks/bench_training.py --real --accuracy   # validation accuracy, 30 epochs x 2 seeds per way
    python benchmarks/bench_training.py --real --accuracy --accuracy-epochs 10 --seeds 0   # quick
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


# ---------------------------------------------------------------------------
# --numerics / --accuracy: the strong network in float32, mixed bfloat16 and float32 + XLA

#: Way -> (Keras dtype policy, jit_compile, TensorFlow op determinism).  float32 first: the baseline
#: of the ratios, as the project trains now (esc_lib.training.set_seed turns op determinism on).
#: XLA cannot train this network with op determinism on ("GPU MaxPool gradient ops do not yet have a
#: deterministic XLA implementation", on the CPU too; Keras refuses jit_compile=True then anyway), so
#: it runs without, and ``float32-nd`` (float32, op determinism off) separates what XLA does from
#: what dropping determinism does.
WAYS = {
    "float32": ("float32", False, True),
    "bfloat16": ("mixed_bfloat16", False, True),
    "xla": ("float32", True, False),
    "float32-nd": ("float32", False, False),
    # Not run unless --ways names them:
    "bfloat16-nd": ("mixed_bfloat16", False, False),
    "bfloat16-xla": ("mixed_bfloat16", True, False),
}
#: The ways --numerics runs by default.
SPEED_WAYS = ("float32", "bfloat16", "xla", "float32-nd")
#: The ways whose accuracy --accuracy measures.
ACCURACY_WAYS = ("float32", "bfloat16", "xla")


def _determinism(on: bool) -> None:
    # TensorFlow has no public switch to turn op determinism off again; Keras reads the same private one.
    from tensorflow.python.framework import config as tf_config

    (tf_config.enable_op_determinism if on else tf_config.disable_op_determinism)()


def _strong_settings(profile: str):
    from esc_lib.settings import Settings

    return Settings.from_profile(profile)


def _strong_features(settings, real: bool, samples: int, seed: int):
    """Features [n, n_mels, n_frames, channels] (not standardised), labels, folds and a description."""
    from esc_lib import features

    params = features.FeatureParams(sr=settings.sample_rate, n_mels=settings.n_mels, n_fft=settings.n_fft,
                                    hop_length=settings.hop_length, deltas=settings.deltas)
    shape = "x".join(str(size) for size in params.shape)
    if real:
        from esc_lib.data import datasets

        dataset = datasets.load_esc10()
        X = features.extract_clips(dataset.paths, params, progress=False)
        return (X.astype("float32"), dataset.labels.astype("int64"), np.asarray(dataset.folds, dtype="int64"),
                dataset.n_classes, f"ESC-10 log-mels of the strong profile, {shape} ({len(X)} clips)")
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, *params.shape)).astype("float32")
    y = rng.integers(0, 10, size=samples).astype("int64")
    folds = np.arange(samples) % 5 + 1  # five equal folds in turn
    return X, y, folds, 10, f"random {shape} features ({samples} clips)"


def _strong_model(settings, input_shape, n_classes: int, way: str, seed: int, decay_steps: int | None = None):
    """The profile's classifier built and compiled for one way (dtype policy, jit_compile)."""
    from esc_lib import models, training

    precision, jit, deterministic = WAYS[way]
    with training.numerics(settings.replace(precision=precision), say=None):  # the device lines are printed up front
        training.set_seed(seed)
        model = models.build_classifier(input_shape, n_classes, encoder=settings.encoder_notation, head=settings.head,
                                        batch_norm=settings.batch_norm, dropout=settings.dropout)
        training.compile_classifier(model, learning_rate=settings.learning_rate,
                                    label_smoothing=settings.label_smoothing, decay_steps=decay_steps)
    # compile_classifier leaves Keras' "auto" (XLA on a GPU, not on a CPU): each way says what it wants.
    # The train function is made at the first fit, from this value; Keras only accepts True while op
    # determinism is off, which is then the way's setting for every fit (see _determinism_for).
    _determinism(deterministic)
    model.jit_compile = jit
    if model.jit_compile != jit:
        raise RuntimeError(f"{way}: Keras refused jit_compile={jit} for this model")
    return model


def _determinism_for(way: str):
    """A callback that sets the way's op determinism when training begins (after training.fit's set_seed)."""
    import keras

    deterministic = WAYS[way][2]
    return keras.callbacks.LambdaCallback(on_train_begin=lambda logs: _determinism(deterministic))


def _device_lines(ways) -> None:
    """The device line for each precision the ways use, and what Keras would pick for XLA by itself."""
    import keras
    import tensorflow as tf

    from esc_lib import training

    for precision in dict.fromkeys(WAYS[way][0] for way in ways):
        print(training.device_summary(precision))
    _determinism(False)
    probe = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    probe.compile(optimizer="adam", loss="mse")
    print(f"{os.cpu_count()} CPUs visible, intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}; "
          f"Keras' jit_compile='auto' resolves to {probe.jit_compile} here without op determinism, "
          f"to False with it (esc_lib.training.set_seed turns it on)")


def _precision_of(model, way: str) -> str:
    policy = model.dtype_policy
    return (f"policy {policy.name} (compute {policy.compute_dtype}, variables {policy.variable_dtype}), "
            f"jit_compile {model.jit_compile}, op determinism {'on' if WAYS[way][2] else 'off'}")


def _rotated(names: list[str], index: int) -> list[str]:
    # Rotate the order each round so a burst of outside load does not always hit the same way.
    shift = index % len(names)
    return names[shift:] + names[:shift]


def _table(rates: dict[str, list[float]], precisions: dict[str, str], what: str) -> None:
    baseline = statistics.median(rates["float32"])
    print()
    print(f"{'way':12s} {what + ' (median)':>22s} {'min':>8s} {'max':>8s} {'vs float32':>11s}  precision")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"{name:12s} {rate:22.1f} {min(values):8.1f} {max(values):8.1f} {rate / baseline:10.2f}x  {precisions[name]}")


def numerics_speed(args) -> int:
    """Samples/s of the strong network per way, interleaved rounds (``--numerics``)."""
    from esc_lib import augment as augmentations
    from esc_lib import streams, training

    settings = _strong_settings(args.profile)
    X, y, _, n_classes, what = _strong_features(settings, args.real, args.samples or 640, args.seed)
    X = (X - X.mean()) / X.std()  # a speed test: the scale only has to be sane
    Y = training.one_hot(y, n_classes)
    n, batch = len(X), settings.batch_size
    augment = augmentations.from_spec(settings.augment, n_classes=n_classes) if settings.augment else None
    print(f"strong network ({args.profile}): {settings.encoder_notation} / {settings.head}, batch norm "
          f"{settings.batch_norm}, dropout {settings.dropout}, batch size {batch}, augment {settings.augment!r}")
    print(f"data: {what}; {args.epochs} timed epochs x {args.rounds} rounds per way")
    _device_lines(args.ways or SPEED_WAYS)

    ways = args.ways or SPEED_WAYS
    models_by_way = {way: _strong_model(settings, X.shape[1:], n_classes, way, args.seed) for way in ways}
    precisions = {way: _precision_of(model, way) for way, model in models_by_way.items()}
    for way, line in precisions.items():
        print(f"{way:12s} {line}")
    # One stream per way with the same seed: the same (augmented) batches for each.
    streams_by_way = {way: streams.BatchStream(X, Y, batch_size=batch, shuffle=True, seed=args.seed, augment=augment)
                      for way in ways}
    next_epoch = {way: 0 for way in ways}

    def run(way: str, epochs: int) -> None:
        stream = streams_by_way[way]
        dataset = stream.as_dataset(next_epoch[way]).repeat()
        _determinism(WAYS[way][2])
        models_by_way[way].fit(dataset, steps_per_epoch=stream.steps_per_epoch, epochs=epochs, shuffle=False, verbose=0)
        next_epoch[way] += epochs

    for way in ways:  # warm-up: trace (and for XLA compile) the train step
        start = time.perf_counter()
        run(way, 1)
        print(f"warm-up {way:12s} {time.perf_counter() - start:6.2f} s")

    rates: dict[str, list[float]] = {way: [] for way in ways}
    for round_index in range(args.rounds):
        for way in _rotated(list(ways), round_index):
            start = time.perf_counter()
            run(way, args.epochs)
            seconds = time.perf_counter() - start
            rates[way].append(args.epochs * n / seconds)
            print(f"round {round_index + 1} {way:12s} {seconds:6.2f} s  {rates[way][-1]:8.1f} samples/s")
    _table(rates, precisions, "samples/s")
    return 0


def numerics_accuracy(args) -> int:
    """Validation accuracy and samples/s of complete training runs per way and seed (``--accuracy``)."""
    from esc_lib import augment as augmentations
    from esc_lib import features, streams, training

    settings = _strong_settings(args.profile)
    X, y, folds, n_classes, what = _strong_features(settings, args.real, args.samples or 640, args.seed)
    train = np.isin(folds, args.train_folds)
    validation = folds == args.validation_fold
    if not train.any() or not validation.any() or args.validation_fold in args.train_folds:
        raise ValueError(f"--train-folds {args.train_folds} and --validation-fold {args.validation_fold} must be "
                         f"disjoint folds of the data (folds {sorted(set(folds.tolist()))})")
    standardizer = features.Standardizer().fit(X[train])  # training folds only
    X_train, X_validation = standardizer.transform(X[train]), standardizer.transform(X[validation])
    Y_train = training.one_hot(y[train], n_classes)
    y_validation = y[validation]
    augment = augmentations.from_spec(settings.augment, n_classes=n_classes) if settings.augment else None
    epochs, batch = args.accuracy_epochs, settings.batch_size
    cosine = settings.lr_schedule == "cosine"
    print(f"strong network ({args.profile}): {settings.encoder_notation} / {settings.head}, batch norm "
          f"{settings.batch_norm}, dropout {settings.dropout}, batch size {batch}, augment {settings.augment!r}, "
          f"Adam {settings.learning_rate} {settings.lr_schedule}")
    print(f"data: {what}; train on folds {args.train_folds} ({len(X_train)} clips), validate on fold "
          f"{args.validation_fold} ({len(X_validation)} clips); {epochs} epochs per run, seeds {args.seeds}")
    if not args.real:
        print("note: random features - the accuracies are at chance; this checks the code path only")
    _device_lines(args.ways or ACCURACY_WAYS)

    scratch = Path(tempfile.mkdtemp(prefix="bench-numerics-"))
    ways = args.ways or ACCURACY_WAYS
    accuracy: dict[str, list[float]] = {way: [] for way in ways}
    rates: dict[str, list[float]] = {way: [] for way in ways}
    precisions: dict[str, str] = {}
    try:
        for seed_index, seed in enumerate(args.seeds):
            for way in _rotated(list(ways), seed_index):
                stream = streams.BatchStream(X_train, Y_train, batch_size=batch, shuffle=True, seed=seed, augment=augment)
                model = _strong_model(settings, X.shape[1:], n_classes, way, seed,
                                      decay_steps=epochs * stream.steps_per_epoch if cosine else None)
                precisions[way] = _precision_of(model, way)
                start = time.perf_counter()
                history = training.fit(model, stream, None, scratch / f"{way}-seed{seed}", max_epochs=epochs,
                                       patience=None, restore_best=False, seed=seed, verbose=0,
                                       callbacks=[_determinism_for(way)])
                seconds = time.perf_counter() - start
                # Epochs after the first: no tracing / XLA compilation in them.
                steady = history["seconds"].iloc[1:].sum() if epochs > 1 else history["seconds"].sum()
                rate = max(epochs - 1, 1) * len(X_train) / steady
                scores = training.evaluate(model, X_validation, y_validation)
                accuracy[way].append(float(scores["accuracy"]))
                rates[way].append(rate)
                print(f"seed {seed} {way:12s} {seconds:7.1f} s in all, {rate:7.1f} samples/s after epoch 1, "
                      f"training loss {history['loss'].iloc[-1]:.3f}, validation accuracy {accuracy[way][-1]:.4f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    _table(rates, precisions, "samples/s")
    print()
    n_validation = len(X_validation)
    print(f"validation accuracy on fold {args.validation_fold} ({n_validation} clips; one clip = "
          f"{100 / n_validation:.2f} points), {epochs} epochs:")
    for way, values in accuracy.items():
        per_seed = ", ".join(f"{value:.4f}" for value in values)
        print(f"{way:12s} mean {statistics.mean(values):.4f}  per seed {per_seed}  "
              f"vs float32 {statistics.mean(values) - statistics.mean(accuracy['float32']):+.4f}")
    return 0


def _ways(text: str) -> list[str]:
    ways = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [way for way in ways if way not in WAYS]
    if unknown or not ways or ways[0] != "float32" or len(set(ways)) != len(ways):
        raise argparse.ArgumentTypeError(f"{text!r}: name distinct ways of {', '.join(WAYS)}, float32 first (the baseline)")
    return ways


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="use ESC-10 features instead of random arrays")
    parser.add_argument("--samples", type=int, default=None,
                        help="random clips (ignored with --real; default 1600, with --numerics 640)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per path and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the paths")
    parser.add_argument("--batch-size", type=int, default=32, help="the default mode's batch size (--numerics: the profile's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--numerics", action="store_true",
                        help="the strong network in float32, mixed_bfloat16 and float32 + XLA (jit_compile)")
    parser.add_argument("--accuracy", action="store_true",
                        help="with --numerics: validation accuracy of complete runs per way (use with --real)")
    parser.add_argument("--profile", default="strong", help="profile whose network --numerics trains")
    parser.add_argument("--accuracy-epochs", type=int, default=30, help="epochs of each --accuracy run")
    parser.add_argument("--seeds", type=lambda text: [int(part) for part in text.split(",")], default=[0, 1],
                        help="--accuracy seeds, comma-separated (default 0,1)")
    parser.add_argument("--ways", type=_ways, default=None,
                        help=f"comma-separated, float32 first (of {', '.join(WAYS)}); default "
                             f"{','.join(SPEED_WAYS)}, with --accuracy {','.join(ACCURACY_WAYS)}")
    parser.add_argument("--train-folds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--validation-fold", type=int, default=4)
    args = parser.parse_args(argv)
    for name in ("samples", "epochs", "rounds", "batch_size", "accuracy_epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive int, got {value}")
    if args.accuracy:
        return numerics_accuracy(args)
    if args.numerics:
        return numerics_speed(args)
    args.samples = args.samples or 1600

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
