"""Rewrite each notebook's parameters cell from the schema (esc_lib.settings).

Run after adding or changing a parameter; tests/test_settings.py fails while a
notebook's cell differs from what the schema generates::

    .venv/bin/python scripts/sync_parameters.py
"""

from __future__ import annotations

import sys

import nbformat

from esc_lib import atomic, config
from esc_lib.settings import NOTEBOOK_SECTIONS, parameters_cell


def main() -> int:
    for stem in NOTEBOOK_SECTIONS:
        path = config.notebooks_dir() / f"{stem}.ipynb"
        notebook = nbformat.read(path, as_version=4)
        cell = next(c for c in notebook.cells if c.cell_type == "code")
        if "parameters" not in cell.metadata.get("tags", []):
            raise SystemExit(f"{path}: the first code cell is not tagged 'parameters'")
        source = parameters_cell(stem)
        if cell.source != source:
            cell.source = source
            atomic.write_text(path, nbformat.writes(notebook) + "\n")
            print(f"updated {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
