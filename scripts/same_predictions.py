"""Whether two run folders scored the same: every configuration's predictions byte for byte, metrics but timing.

For a restructure that must not change a result: run the same command on the old commit (in a
git worktree) and on the new one, each into its own runs folder, then::

    .venv/bin/python scripts/same_predictions.py OLD_RUN_FOLDER NEW_RUN_FOLDER

Prints one line per configuration and file, and exits 0 when every ``predictions.csv`` is
byte-identical and every ``metrics.csv`` equal but for the seconds columns (1 otherwise).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

TIMING = ("seconds", "wall_seconds")


def compare(old: Path, new: Path) -> list[tuple[str, bool, str]]:
    """``(what, same, detail)`` per configuration and file of ``old/results/*/`` against ``new``'s."""
    rows = []
    configs = sorted({p.parent.name for p in old.glob("results/*/metrics.csv")} | {p.parent.name for p in new.glob("results/*/metrics.csv")})
    if not configs:
        raise SystemExit(f"same_predictions: no results/*/metrics.csv under {old} or {new}")
    for config in configs:
        a, b = old / "results" / config, new / "results" / config
        if not (a / "metrics.csv").is_file() or not (b / "metrics.csv").is_file():
            rows.append((f"{config}", False, f"only in {old if (a / 'metrics.csv').is_file() else new}"))
            continue
        same = (a / "predictions.csv").read_bytes() == (b / "predictions.csv").read_bytes()
        n = len(pd.read_csv(a / "predictions.csv"))
        rows.append((f"{config}/predictions.csv", same, f"{n} rows, {'byte-identical' if same else 'DIFFERENT'}"))
        ma, mb = pd.read_csv(a / "metrics.csv"), pd.read_csv(b / "metrics.csv")
        timing = [c for c in TIMING if c in ma.columns and c in mb.columns]
        equal = ma.drop(columns=timing).equals(mb.drop(columns=timing))
        methods = ", ".join(f"{m} {acc:.4f}" for m, acc in ma.groupby("method", sort=False)["accuracy"].mean().items())
        rows.append((f"{config}/metrics.csv", equal, f"{len(ma)} rows, {'equal but ' + '/'.join(timing) if equal else 'DIFFERENT'}"
                     f" (mean accuracy: {methods})"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="run folder made by the old commit")
    parser.add_argument("new", type=Path, help="run folder made by the new commit with the same command")
    args = parser.parse_args(argv)
    rows = compare(args.old, args.new)
    for what, _, detail in rows:
        print(f"{what}: {detail}")
    return 0 if all(same for _, same, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
