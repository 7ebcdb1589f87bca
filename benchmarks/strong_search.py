"""The exploration behind ``profiles/strong.yaml``: named variants, scored on validation folds.

Each variant trains the classifier of :class:`esc_lib.experiment.Experiment`
on some test folds' training folds and prints, per fold, the validation
accuracy at the epoch early stopping chose (what the choice was made on), the
test accuracy (printed for the record, not for choosing) and the time. The
strong preset took ``h_gmp``'s settings.

Usage::

    ESC_DATA_ROOT=../shared/data .venv/bin/python benchmarks/strong_search.py --list
    ESC_DATA_ROOT=../shared/data .venv/bin/python benchmarks/strong_search.py h_gmp c_aug --folds 1 3

Runs go to ``runs/strong-search/<variant>`` (gitignored); rows are appended to
``runs/strong-search/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time

_FEATURES = {"n_mels": 64, "n_fft": 4096, "hop_length": 2048}
_CNN = {"encoder": "(16)3c-2p-(32)3c-2p-(64)3c-2p-(128)3c-2p", "batch_norm": True, "dropout": 0.3}
_AUGMENT = "shift:max_shift=30 + mask:max_freq_width=8:max_time_width=12 + mixup:alpha=0.4"
_LONG = {"patience": 15, "max_epochs": 120}

#: name -> (settings, methods, what it tests)
VARIANTS = {
    "b_nobn": ({**_FEATURES, **_CNN, "batch_norm": False, "head": "gap-fc"}, ["supervised"], "no batch norm"),
    "b_bn09": ({**_FEATURES, **_CNN, "head": "gap-fc"}, ["supervised"], "batch norm, momentum 0.9"),
    "c_noaug": ({**_FEATURES, **_CNN, "head": "gap-fc", **_LONG}, ["supervised"], "no augmentation, patience 15"),
    "c_aug": ({**_FEATURES, **_CNN, "head": "gap-fc", "augment": _AUGMENT, **_LONG}, ["supervised"], "augmentation, global average pooling"),
    "d_216": (
        {"n_mels": 64, "n_fft": 2048, "hop_length": 1024, **_CNN, "head": "gap-fc",
         "augment": "shift:max_shift=60 + mask:max_freq_width=8:max_time_width=24 + mixup:alpha=0.4", **_LONG},
        ["supervised"], "64x216 frames",
    ),
    "e_pre": ({**_FEATURES, **_CNN, "head": "gap-fc", "augment": _AUGMENT, **_LONG, "cae_max_epochs": 20}, ["pretrained"], "CAE pre-training"),
    "f_deltas": ({**_FEATURES, **_CNN, "head": "gap-fc", "deltas": True, "augment": _AUGMENT, **_LONG}, ["supervised"], "deltas as a second channel"),
    "g_mel128": (
        {"n_mels": 128, "n_fft": 4096, "hop_length": 2048, **_CNN, "head": "gap-fc",
         "augment": "shift:max_shift=30 + mask:max_freq_width=16:max_time_width=12 + mixup:alpha=0.4", **_LONG},
        ["supervised"], "128 mel bands",
    ),
    "h_gmp": ({**_FEATURES, **_CNN, "head": "gmp-fc", "augment": _AUGMENT, **_LONG}, ["supervised"], "global max pooling (chosen)"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", help="variant names (see --list)")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 3], help="test folds whose splits to train (default: 1 3)")
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    args = parser.parse_args(argv)
    if args.list or not args.variants:
        for name, (_, methods, what) in VARIANTS.items():
            print(f"{name:10s} {what} ({', '.join(methods)})")
        return 0
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; see --list")

    from esc_lib import config
    from esc_lib.atomic import write_text
    from esc_lib.experiment import Experiment, Settings

    out = config.runs_dir() / "strong-search"
    log = out / "results.jsonl"
    for name in args.variants:
        settings, methods, what = VARIANTS[name]
        experiment = Experiment(Settings(folds=args.folds, run_dir=str(out / name), **settings), verbose=0)
        for fold in args.folds:
            for method in methods:
                start = time.monotonic()
                outcome = experiment.train_classifier(fold, method)
                history = outcome["history"]
                best = history.loc[history["val_loss"].idxmin()]
                row = {
                    "variant": name, "what": what, "fold": fold, "method": method,
                    "validation_accuracy": round(float(best["val_accuracy"]), 4),
                    "test_accuracy": outcome["metrics"]["accuracy"],
                    "epochs": len(history), "seconds": round(time.monotonic() - start),
                }
                print(json.dumps(row), flush=True)
                previous = log.read_text() if log.is_file() else ""
                write_text(log, previous + json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
