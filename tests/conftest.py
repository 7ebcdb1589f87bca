"""Shared fixtures: where the real data is, and how to execute a notebook.

Tests that need the real audio use the ``esc10_root`` / ``unlabeled_root``
fixtures (and carry the ``realdata`` marker).  Where the data is absent they
skip with a reason that says which setting to use; with ``ESC_REQUIRE_DATA=1``
(set by ``.ci/run``) an absent data folder is an error instead, so CI cannot
pass without having run them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esc_lib import config

PROJECT_ROOT = config.PROJECT_ROOT


def _require(path: Path, what: str, variable: str) -> Path:
    if path.is_dir():
        return path
    message = (
        f"{what} not found at {path}; set {variable} (or ESC_DATA_ROOT to the folder that holds "
        f"esc10/ and unlabeled/, e.g. ../shared/data) to run this test"
    )
    if os.environ.get("ESC_REQUIRE_DATA") == "1":
        pytest.fail(f"ESC_REQUIRE_DATA=1 but {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def esc10_root() -> Path:
    """The real ESC-10 folder (ESC-50 layout), or skip."""
    return _require(config.esc10_dir(), "ESC-10", "ESC10_DIR")


@pytest.fixture(scope="session")
def unlabeled_root() -> Path:
    """The real unlabeled pool folder, or skip."""
    return _require(config.unlabeled_dir(), "the unlabeled pool", "ESC_UNLABELED_DIR")


@pytest.fixture()
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A fresh feature cache for one test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ESC_CACHE_DIR", str(cache))
    return cache


def execute_notebook(name: str, output_dir: Path, parameters: dict) -> Path:
    """Run ``notebooks/<name>`` with papermill and the project's kernel; return the output path.

    The kernel is the one the bootstrap registers (``esc-lib``); it inherits
    this process's environment, so path settings made with ``monkeypatch``
    reach the notebook.
    """
    import papermill

    notebook = PROJECT_ROOT / "notebooks" / name
    output = output_dir / name
    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters,
        kernel_name="esc-lib",
        cwd=str(notebook.parent),
        progress_bar=False,
    )
    return output
