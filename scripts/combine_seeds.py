"""Put each method against supervised over several seeds' runs of one profile, each fold averaged over the seeds.

Reads ``fold_accuracies.csv`` from each published results folder (notebook 04
writes it: every fold, method and budget of the run, with the seed), and
writes one table over all of them (:func:`esc_lib.report.seed_comparison`)::

    .venv/bin/python scripts/combine_seeds.py results/budgets7-warm results/budgets7-warm-seed1 \\
        --budgets 0 --out results/budgets7-warm-seed1/seeds

prints it, and with ``--out STEM`` saves ``STEM.csv`` and ``STEM.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from esc_lib import evaluation, report  # noqa: E402

FILE = "fold_accuracies.csv"


def load(folders: list[Path], budgets: list[int] | None = None) -> pd.DataFrame:
    frames = []
    for folder in folders:
        path = folder / FILE if folder.is_dir() else folder
        if not path.is_file():
            raise SystemExit(f"combine_seeds: {path} not found: give results folders that notebook 04 wrote "
                             f"{FILE} into (runs published since it exists), or the CSV files themselves")
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise SystemExit(f"combine_seeds: {path} is not a readable CSV ({error})") from None
        lacking = [column for column in report.SEED_COMPARISON_COLUMNS if column not in frame]
        if lacking:
            raise SystemExit(f"combine_seeds: {path} has no column(s) {', '.join(lacking)}: it is not a "
                             f"{FILE} of a run published with its seeds")
        frames.append(frame.assign(source=str(folder)))
    folds = pd.concat(frames, ignore_index=True)
    if budgets is not None:
        folds = folds[folds["labels_per_class"].isin(budgets)]
        if folds.empty:
            raise SystemExit(f"combine_seeds: no rows at labels_per_class {budgets} (0: all labels)")
    return folds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="results folders (or fold_accuracies.csv files)")
    parser.add_argument("--budgets", type=int, nargs="+", default=None,
                        help="labels per class to keep (0: all labels; default: every budget)")
    parser.add_argument("--methods", nargs="+", default=None, help="methods against supervised (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="write STEM.csv and STEM.md")
    args = parser.parse_args(argv)
    try:
        table = report.seed_comparison(load(args.folders, args.budgets), methods=args.methods)
    except ValueError as error:
        raise SystemExit(f"combine_seeds: {error}") from None
    print(table.attrs["caption"])
    print(table.to_markdown(index=False))
    if args.out:
        for path in evaluation.write_table(table, args.out):
            print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
