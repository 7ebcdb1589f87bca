"""How right a run's self-training pseudo-labels were, counted afterwards against the labelled metadata.

Reads every ``pseudo_labels.csv`` under a run folder (one per self-training
round, fold and budget) and, for the pseudo-labelled clips that are labelled
clips of the dataset (the non-test folds' audio, labels dropped during
training), compares the pseudo-label with the true class.  Pool files (no
label) are counted apart.  The labels are never used in training; this is a
diagnostic of a finished run::

    .venv/bin/python scripts/pseudo_label_accuracy.py runs/search-selftrain --metadata ../shared/data/esc10/meta/esc50.csv \
        --out results/search-selftrain/pseudo_label_accuracy.csv
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--metadata", type=Path, default=None, help="meta/esc50.csv of the labelled data (default: ESC10_DIR's)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table as CSV here")
    args = parser.parse_args(argv)
    metadata = args.metadata or config.esc10_dir() / "meta" / "esc50.csv"
    if not metadata.is_file():
        raise SystemExit(f"pseudo_label_accuracy: {metadata} not found; pass --metadata path/to/meta/esc50.csv")
    found = table(args.run_dir, metadata)
    if found.empty:
        raise SystemExit(f"pseudo_label_accuracy: no {PSEUDO_LABELS_FILE} under {args.run_dir}/classifiers/*/selftrain/")
    print(found.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        from esc_lib import atomic

        atomic.write_text(args.out, found.to_csv(index=False, float_format="%.4f"))
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
