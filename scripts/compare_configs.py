"""Put one configuration of a run against another, method by method, paired by fold.

Notebook 04's tables put each method against supervised *within* a configuration; a sweep
that changes the network itself (an ensemble, say) also needs each configuration's method
against the base point's same method.  Reads ``fold_accuracies.csv`` of a published results
folder and compares the rows whose ``config`` ends with ``--other`` against those ending with
``--base`` (:func:`esc_lib.evaluation.paired_test`)::

    .venv/bin/python scripts/compare_configs.py results/search-strong-ensemble \\
        --base cosine100 --other cosine100-ens3 --out results/search-strong-ensemble/ensemble

prints the table, and with ``--out STEM`` saves ``STEM.csv`` and ``STEM.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from esc_lib import evaluation  # noqa: E402

FILE = "fold_accuracies.csv"


def _one_config(frame: pd.DataFrame, suffix: str, folder: Path) -> pd.DataFrame:
    chosen = frame[frame["config"].astype(str).str.endswith(suffix)]
    configs = sorted(chosen["config"].unique())
    if len(configs) != 1:
        raise SystemExit(f"compare_configs: {len(configs)} configurations of {folder / FILE} end with {suffix!r} "
                         f"({', '.join(configs) or 'none'}); give a suffix that names exactly one")
    return chosen


def compare(folder: Path, base: str, other: str) -> pd.DataFrame:
    path = folder / FILE
    if not path.is_file():
        raise SystemExit(f"compare_configs: {path} not found; give a results folder notebook 04 wrote")
    frame = pd.read_csv(path)
    a, b = _one_config(frame, base, folder), _one_config(frame, other, folder)
    rows = []
    for (method, budget), left in a.groupby(["method", "labels_per_class"], sort=True):
        right = b[(b["method"] == method) & (b["labels_per_class"] == budget)]
        if right.empty:
            continue
        test = evaluation.paired_test(left, right)
        rows.append({
            "method": method, "labels per class": evaluation.budget_label(budget),
            "base (%)": round(100 * test["mean_a"], 1), "other (%)": round(100 * test["mean_b"], 1),
            "difference (pp)": evaluation.format_difference(test["mean_difference"], test["ci_low"], test["ci_high"]),
            "p (paired t)": round(test["t_pvalue"], 3), "p (Wilcoxon)": round(test["wilcoxon_pvalue"], 3),
            "folds": test["n"],
            "s/fold base": round(left["seconds"].mean(), 1), "s/fold other": round(right["seconds"].mean(), 1),
        })
    if not rows:
        raise SystemExit(f"compare_configs: no method and budget of {path} is in both configurations")
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a results folder with fold_accuracies.csv")
    parser.add_argument("--base", required=True, help="how the base configuration's name ends")
    parser.add_argument("--other", required=True, help="how the compared configuration's name ends")
    parser.add_argument("--out", type=Path, help="save STEM.csv and STEM.md")
    args = parser.parse_args(argv)
    table = compare(args.folder, args.base, args.other)
    print(table.to_markdown(index=False))
    if args.out:
        evaluation.write_table(table, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
