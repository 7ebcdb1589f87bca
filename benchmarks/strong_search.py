"""The exploration behind ``profiles/strong.yaml``: named variants, scored on validation folds.

Two rounds, two protocols (for test fold *k* the validation fold is *k + 1*
and the other three folds train, as in :class:`esc_lib.experiment.Experiment`):

* ``early-stop`` (first round): :meth:`Experiment.train_classifier` with
  early stopping; prints the validation accuracy at the epoch early stopping
  chose and, for the record, the test accuracy.
* ``fixed`` (second round): a fixed schedule (Adam with a cosine decay to 0
  over ``epochs``, or a constant rate) trained to its end on the three
  training folds, then scored on the validation fold only -- the test folds
  are never scored, so nothing here can leak into the choice.  Each seed's
  validation probabilities are saved, so the summary also gives the
  accuracy of the seeds' averaged probabilities (an ensemble).

Usage::

    ESC_DATA_ROOT=../shared/data .venv/bin/python benchmarks/strong_search.py --list
    ESC_DATA_ROOT=../shared/data .venv/bin/python benchmarks/strong_search.py gmpt_cos100 wide_cos100
    ESC_DATA_ROOT=../shared/data .venv/bin/python benchmarks/strong_search.py cos100 --seeds 0 1 2

Runs go to ``runs/strong-search/`` (gitignored); rows are appended to
``runs/strong-search/results.jsonl``; a finished (variant, split, seed) is
loaded, not trained again.
"""

from __future__ import annotations

import argparse
import json
import time

_FEATURES = {"n_mels": 64, "n_fft": 4096, "hop_length": 2048}
_NARROW = "(16)3c-2p-(32)3c-2p-(64)3c-2p-(128)3c-2p"
_WIDE = "(32)3c-2p-(64)3c-2p-(128)3c-2p-(256)3c-2p"
_CNN = {"encoder": _NARROW, "batch_norm": True, "dropout": 0.3}
_AUGMENT = "shift:max_shift=30 + mask:max_freq_width=8:max_time_width=12 + mixup:alpha=0.4"
_LONG = {"patience": 15, "max_epochs": 120}
_FIXED = {**_FEATURES, **_CNN, "head": "gmp-fc", "augment": _AUGMENT}

#: name -> (protocol, settings, methods, what it tests).  ``fixed`` settings also take
#: ``epochs`` and ``schedule`` ("cosine" or "constant"); ``shared`` pre-trains one CAE on the
#: unlabeled pool alone (``pretrain_on_train_folds=False``), which also sets the input statistics.
VARIANTS = {
    # First round (early stopping; the profile's first version took h_gmp).
    "b_nobn": ("early-stop", {**_FEATURES, **_CNN, "batch_norm": False, "head": "gap-fc"}, ["supervised"], "no batch norm"),
    "b_bn09": ("early-stop", {**_FEATURES, **_CNN, "head": "gap-fc"}, ["supervised"], "batch norm, momentum 0.9"),
    "c_noaug": ("early-stop", {**_FEATURES, **_CNN, "head": "gap-fc", **_LONG}, ["supervised"], "no augmentation, patience 15"),
    "c_aug": ("early-stop", {**_FEATURES, **_CNN, "head": "gap-fc", "augment": _AUGMENT, **_LONG}, ["supervised"], "augmentation, global average pooling"),
    "d_216": (
        "early-stop",
        {"n_mels": 64, "n_fft": 2048, "hop_length": 1024, **_CNN, "head": "gap-fc",
         "augment": "shift:max_shift=60 + mask:max_freq_width=8:max_time_width=24 + mixup:alpha=0.4", **_LONG},
        ["supervised"], "64x216 frames",
    ),
    "e_pre": ("early-stop", {**_FEATURES, **_CNN, "head": "gap-fc", "augment": _AUGMENT, **_LONG, "cae_max_epochs": 20}, ["pretrained"], "CAE pre-training"),
    "f_deltas": ("early-stop", {**_FEATURES, **_CNN, "head": "gap-fc", "deltas": True, "augment": _AUGMENT, **_LONG}, ["supervised"], "deltas as a second channel"),
    "g_mel128": (
        "early-stop",
        {"n_mels": 128, "n_fft": 4096, "hop_length": 2048, **_CNN, "head": "gap-fc",
         "augment": "shift:max_shift=30 + mask:max_freq_width=16:max_time_width=12 + mixup:alpha=0.4", **_LONG},
        ["supervised"], "128 mel bands",
    ),
    "h_gmp": ("early-stop", {**_FEATURES, **_CNN, "head": "gmp-fc", "augment": _AUGMENT, **_LONG}, ["supervised"], "global max pooling (first preset)"),
    # Second round (fixed schedules, validation folds only).
    "const100": ("fixed", {**_FIXED, "epochs": 100, "schedule": "constant"}, ["supervised"], "h_gmp for 100 epochs at a constant rate"),
    "cos100": ("fixed", {**_FIXED, "epochs": 100, "schedule": "cosine"}, ["supervised"], "h_gmp, cosine decay over 100 epochs"),
    "gmpt_cos100": ("fixed", {**_FIXED, "head": "gmpt-fc", "epochs": 100, "schedule": "cosine"}, ["supervised"], "max over time only (mel rows kept)"),
    "wide_cos100": ("fixed", {**_FIXED, "encoder": _WIDE, "epochs": 100, "schedule": "cosine"}, ["supervised"], "channels doubled (32-64-128-256)"),
    "wide_gmpt_sup_shared": (
        "fixed", {**_FIXED, "encoder": _WIDE, "head": "gmpt-fc", "epochs": 100, "schedule": "cosine", "shared": True},
        ["supervised"], "wide + gmpt, pool statistics (the pre-trained variant's baseline)",
    ),
    "wide_gmpt_pre_shared": (
        "fixed", {**_FIXED, "encoder": _WIDE, "head": "gmpt-fc", "epochs": 100, "schedule": "cosine", "shared": True,
                  "cae_max_epochs": 20},
        ["pretrained"], "wide + gmpt from one CAE pre-trained on the unlabeled pool",
    ),
}


def _early_stop(name, settings, methods, what, folds, out, log):
    from esc_lib.experiment import Experiment, Settings

    experiment = Experiment(Settings(folds=folds, run_dir=str(out / name), **settings), verbose=0)
    for fold in folds:
        for method in methods:
            start = time.monotonic()
            outcome = experiment.train_classifier(fold, method)
            history = outcome["history"]
            best = history.loc[history["val_loss"].idxmin()]
            _log(log, {
                "variant": name, "what": what, "fold": fold, "method": method,
                "validation_accuracy": round(float(best["val_accuracy"]), 4),
                "test_accuracy": outcome["metrics"]["accuracy"],
                "epochs": len(history), "seconds": round(time.monotonic() - start),
            })


def _fixed(name, settings, methods, what, splits, seeds, out, log):
    """Train each (split, seed) for a fixed schedule on the training folds; score the validation fold."""
    import numpy as np

    from esc_lib import augment as augmentations
    from esc_lib import models, streams, training
    from esc_lib.experiment import Experiment, Settings

    settings = dict(settings)
    epochs, schedule, shared = settings.pop("epochs"), settings.pop("schedule"), settings.pop("shared", False)
    experiment = Experiment(
        Settings(**settings, pretrain_on_train_folds=not shared, run_dir=str(out / "experiment")), verbose=0
    )
    s = experiment.settings
    X, y, k = experiment.features, experiment.dataset.labels, experiment.dataset.n_classes
    (method,) = methods
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    accuracies, ensembles = [], []
    for split in splits:
        indices = experiment.split(split)
        scaler = experiment.standardizer(split)
        X_train, X_validation = scaler.transform(X[indices["train"]]), scaler.transform(X[indices["validation"]])
        truth = y[indices["validation"]]
        probabilities = []
        for seed in seeds:
            saved = folder / f"split{split}_seed{seed}.npy"
            if not saved.is_file():
                start = time.monotonic()
                run_seed = seed * 1000 + split

                def build():
                    return models.build_classifier(
                        X.shape[1:], k, encoder=s.encoder, head=s.head, batch_norm=s.batch_norm, dropout=s.dropout
                    )

                training.set_seed(run_seed)
                model = build()
                if method == "pretrained":
                    cae, _ = experiment.pretrain(split)
                    training.set_seed(run_seed)
                    model = build()
                    models.transfer_encoder(cae, model)
                stream = streams.BatchStream(
                    X_train, training.one_hot(y[indices["train"]], k), batch_size=s.batch_size, seed=run_seed,
                    augment=augmentations.from_spec(s.augment, n_classes=k) if s.augment else None,
                )
                decay = epochs * stream.steps_per_epoch if schedule == "cosine" else None
                training.compile_classifier(model, learning_rate=s.learning_rate, decay_steps=decay)
                # One endless dataset of epochs in order (as esc_lib.training.fit feeds Keras), no checkpoints.
                model.fit(stream.as_dataset(0).repeat(), steps_per_epoch=stream.steps_per_epoch, epochs=epochs,
                          shuffle=False, verbose=0)
                np.save(saved, training.predict_proba(model, X_validation))
                accuracy = float(np.mean(np.load(saved).argmax(axis=1) == truth))
                _log(log, {"variant": name, "what": what, "split": split, "validation_fold": indices["validation_fold"],
                           "seed": seed, "method": method, "validation_accuracy": round(accuracy, 4),
                           "epochs": epochs, "seconds": round(time.monotonic() - start)})
            probabilities.append(np.load(saved))
        accuracies.append([float(np.mean(p.argmax(axis=1) == truth)) for p in probabilities])
        ensembles.append(float(np.mean(np.mean(probabilities, axis=0).argmax(axis=1) == truth)))
    single = np.mean(accuracies, axis=1)
    print(f"{name}: validation accuracy per split {np.round(single, 4).tolist()}, mean {np.mean(single):.4f}"
          + (f"; average of {len(seeds)} seeds {np.round(ensembles, 4).tolist()}, mean {np.mean(ensembles):.4f}"
             if len(seeds) > 1 else ""), flush=True)


def _log(log, row: dict) -> None:
    from esc_lib.atomic import write_text

    print(json.dumps(row), flush=True)
    previous = log.read_text() if log.is_file() else ""
    write_text(log, previous + json.dumps(row) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", help="variant names (see --list)")
    parser.add_argument("--folds", type=int, nargs="+", default=None,
                        help="test folds whose splits to train (default: 1 3 for early-stop, 1-5 for fixed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the fixed-schedule runs (default: 0)")
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    args = parser.parse_args(argv)
    if args.list or not args.variants:
        for name, (protocol, _, methods, what) in VARIANTS.items():
            print(f"{name:22s} [{protocol}] {what} ({', '.join(methods)})")
        return 0
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; see --list")

    from esc_lib import config

    out = config.runs_dir() / "strong-search"
    out.mkdir(parents=True, exist_ok=True)
    log = out / "results.jsonl"
    for name in args.variants:
        protocol, settings, methods, what = VARIANTS[name]
        if protocol == "early-stop":
            _early_stop(name, settings, methods, what, args.folds or [1, 3], out, log)
        else:
            _fixed(name, settings, methods, what, args.folds or [1, 2, 3, 4, 5], args.seeds, out, log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
