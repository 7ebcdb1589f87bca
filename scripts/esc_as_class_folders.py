"""Arrange a dataset in ESC-50 layout as a folder per class (links, no copies): the worked example of "own" data.

    python scripts/esc_as_class_folders.py ../shared/data/esc10 ~/esc10-folders
    ./run_all.sh --profile own --labelled-dir ~/esc10-folders --data-root ../shared/data

Each clip becomes ``DEST/<category>/<file name>`` (a symbolic link to the clip);
the official folds are *not* carried over, so the `own` profile makes its own
(stratified, grouped by source recording through the ESC file names).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a folder in ESC-50 layout (meta/esc50.csv and audio/)")
    parser.add_argument("dest", help="the folder to create, one subfolder per class")
    args = parser.parse_args(argv)
    from esc_lib.data import datasets

    try:
        dataset = datasets.load_labelled(args.source)
    except datasets.DatasetError as error:
        raise SystemExit(f"esc_as_class_folders: {error}") from None
    dest = Path(args.dest).expanduser().resolve()
    if dest.exists() and any(dest.iterdir()):
        raise SystemExit(f"esc_as_class_folders: {dest} exists and is not empty; name a new folder")
    for path, category in zip(dataset.meta["path"], dataset.meta["category"]):
        target = dest / category
        target.mkdir(parents=True, exist_ok=True)
        os.symlink(path, target / Path(path).name)
    print(f"{len(dataset)} clips of {dataset.n_classes} classes linked under {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
