"""How right a run's pseudo-labels were, counted afterwards against the labelled metadata.

Self-training: reads every ``pseudo_labels.csv`` under a run folder (one per
self-training round, fold and budget) and, for the pseudo-labelled clips that
are labelled clips of the dataset (the non-test folds' audio, labels dropped
during training), compares the pseudo-label with the true class.  Pool files (no
label) are counted apart.  The labels are never used in training; this is a
diagnostic of a finished run::

    .venv/bin/python scripts/pseudo_label_accuracy.py runs/search-selftrain --metadata ../shared/data/esc10/meta/esc50.csv \
        --out results/search-selftrain/pseudo_label_accuracy.csv

Consistency training (``--method fixmatch``): FixMatch keeps no pseudo-labels,
so each finished classifier (``model.keras``, the network it ended with: with
``fixmatch_ema`` the average) labels again the unlabeled clips it trained on
(rebuilt from the run's profile and each classifier's ``settings.json``); the
table gives, per fold and configuration, the share of those clips above the
threshold (the last mask rate, without augmentation), how often those confident
targets are right, and the accuracy on every unlabeled clip, the labelled ones
left out.  Confident and wrong is confirmation bias::

    .venv/bin/python scripts/pseudo_label_accuracy.py runs/search-fixmatch-sslh --method fixmatch \
        --profile search/fixmatch-sslh --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from esc_lib import config, report  # noqa: E402
from esc_lib.methods.selftrain import PSEUDO_LABELS_FILE  # noqa: E402


def table(run_dir: Path, metadata: Path) -> pd.DataFrame:
    meta = pd.read_csv(metadata)
    return report.pseudo_label_table(run_dir, dict(zip(meta["filename"].astype(str), meta["category"])))


def consistency_table(run_dir: Path, base, method: str = "fixmatch", **data) -> pd.DataFrame:
    """Per finished ``method`` classifier under ``run_dir``: how many unlabeled clips its last network labels
    at or above ``fixmatch_threshold``, and how right (see the module docstring).

    ``base`` is the run's profile (a name or path) or its :class:`esc_lib.settings.Settings`; each
    classifier's ``settings.json`` goes on top.  ``data`` (``dataset=``, ``features=``, ``pool=``) is
    handed to :class:`esc_lib.experiment.Experiment` where the data is not the settings' (a test's).
    """
    import json
    import re

    import keras
    import numpy as np

    from esc_lib import layers  # noqa: F401  (registers the project's layers for loading)
    from esc_lib.experiment import Experiment
    from esc_lib.settings import Settings

    base = (base if isinstance(base, Settings) else Settings.from_profile(base)).model_dump()
    experiments: dict[str, Experiment] = {}
    rows = []
    for done in sorted(Path(run_dir).glob(f"classifiers/*/{method}/fold*/done.json")):
        folder = done.parent
        name = re.fullmatch(r"fold(\d+)(?:-lpc(\d+))?", folder.name)
        if name is None:  # a refit or a further ensemble member: the first member's run is the one trained on
            continue
        fold, budget = int(name.group(1)), int(name.group(2) or 0)
        stored = json.loads((folder / "settings.json").read_text())
        values = {key: value for section in stored.values() if isinstance(section, dict) for key, value in section.items()}
        settings = Settings(**{**base, **{k: v for k, v in values.items() if k in Settings.model_fields},
                               "run_dir": str(run_dir)})
        key = settings.model_dump_json()
        if key not in experiments:  # the dataset's features are read once per configuration
            experiments[key] = Experiment(settings, verbose=0, **data)
        experiment = experiments[key]
        split = experiment.split_data(fold, budget)
        X, sources = np.asarray(split.unlabeled()), split.sources()
        filenames = experiment.dataset.meta["filename"].astype(str).to_numpy()
        truth = dict(zip(filenames, experiment.dataset.labels))
        labelled = set(filenames[split.train_rows])
        known = np.array([source in truth and source not in labelled for source in sources], dtype=bool)
        model = keras.saving.load_model(folder / "model.keras", compile=False)
        probabilities = model.predict(X, verbose=0, batch_size=256)
        guess, confidence = probabilities.argmax(1), probabilities.max(1)
        right = np.array([truth.get(source, -1) for source in sources]) == guess
        confident = known & (confidence >= settings.fixmatch_threshold)
        unsure = known & ~confident
        rows.append({
            "classifier": folder.parents[1].name, "run": folder.name, "threshold": settings.fixmatch_threshold,
            "unlabeled": int(known.sum()), "confident": float(confident.sum() / max(int(known.sum()), 1)),
            "confident_right": float(right[confident].mean()) if confident.any() else float("nan"),
            "unconfident_right": float(right[unsure].mean()) if unsure.any() else float("nan"),
            "right": float(right[known].mean()) if known.any() else float("nan"),
            "classes_confident": int(len(set(guess[confident].tolist()))),
        })
    return pd.DataFrame(rows, columns=["classifier", "run", "threshold", "unlabeled", "confident", "confident_right",
                                       "unconfident_right", "right", "classes_confident"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--metadata", type=Path, default=None, help="meta/esc50.csv of the labelled data (default: ESC10_DIR's)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table as CSV here")
    parser.add_argument("--method", default="selftrain",
                        help="selftrain: its pseudo_labels.csv files; fixmatch (or any other method, supervised to compare): "
                             "each finished classifier labels the unlabeled clips again, at fixmatch_threshold")
    parser.add_argument("--profile", default=None, help="with --method fixmatch: the profile the run was made with")
    parser.add_argument("--data-root", type=Path, default=None, help="the data root the run read (ESC_DATA_ROOT)")
    args = parser.parse_args(argv)
    if args.data_root is not None:
        import os

        os.environ[config.ENVIRONMENT_VARIABLES["data_root"]] = str(args.data_root.resolve())
    if args.method != "selftrain":
        if not args.profile:
            raise SystemExit(f"pseudo_label_accuracy: --method {args.method} needs --profile (the one the run was made with)")
        found = consistency_table(args.run_dir, args.profile, args.method)
        if found.empty:
            raise SystemExit(f"pseudo_label_accuracy: no finished {args.method} classifier under {args.run_dir}/classifiers/")
        return _show(found, args.out)
    metadata = args.metadata or config.esc10_dir() / "meta" / "esc50.csv"
    if not metadata.is_file():
        raise SystemExit(f"pseudo_label_accuracy: {metadata} not found; pass --metadata path/to/meta/esc50.csv")
    found = table(args.run_dir, metadata)
    if found.empty:
        raise SystemExit(f"pseudo_label_accuracy: no {PSEUDO_LABELS_FILE} under {args.run_dir}/classifiers/*/selftrain/")
    return _show(found, args.out)


def _show(found: pd.DataFrame, out: Path | None) -> int:
    """Print the table, and write it as CSV to ``out`` when given."""
    print(found.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if out:
        from esc_lib import atomic

        atomic.write_text(out, found.to_csv(index=False, float_format="%.4f"))
        print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
