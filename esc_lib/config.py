"""Every path the project uses, derived from the project root.

Each location can be overridden by an environment variable (and ``run_all.sh``
has an option for each, which sets the variable).  Values are read at call
time, so a notebook or test that changes ``os.environ`` sees the change.

========================  ==========================================  ======================
function                  default                                     environment variable
========================  ==========================================  ======================
:func:`data_root`         ``<project>/data``                          ``ESC_DATA_ROOT``
:func:`esc50_dir`         ``<data_root>/ESC-50``                      ``ESC50_DIR``
:func:`esc10_dir`         ``<data_root>/esc10``                       ``ESC10_DIR``
:func:`escus_dir`         ``<data_root>/ESC-US``                      ``ESCUS_DIR``
:func:`unlabeled_dir`     ``<data_root>/unlabeled``                   ``ESC_UNLABELED_DIR``
:func:`labelled_dir`      ``<data_root>/own``                         ``ESC_LABELLED_DIR``
:func:`cache_dir`         ``<project>/cache``                         ``ESC_CACHE_DIR``
:func:`runs_dir`          ``<project>/runs``                          ``ESC_RUNS_DIR``
:func:`figures_dir`       ``<project>/figures``                       ``ESC_FIGURES_DIR``
:func:`results_dir`       ``<project>/results``                       ``ESC_RESULTS_DIR``
========================  ==========================================  ======================

Where the datasets are downloaded from (a mirror in the same layout, or the
tests' server on 127.0.0.1) is set the same way:

========================  ==========================================  ======================
function                  default                                     environment variable
========================  ==========================================  ======================
:func:`esc50_url`         ``https://github.com`` (the pinned commit)  ``ESC50_URL``
:func:`escus_server`      ``https://dataverse.harvard.edu``           ``ESCUS_SERVER``
:func:`esc50_expect`      none: the pinned release's checks           ``ESC50_EXPECT``
========================  ==========================================  ======================

Where a run on ESC-10 finds no :func:`esc10_dir` and none is set, the runner makes it, and
:func:`unlabeled_dir` likewise, from a verified ESC-50 download
(:func:`esc_lib.data.download.download_esc10`): the data root is where downloads go.

Relative values are taken relative to the project root (where ``run_all.sh`` is),
so ``ESC_DATA_ROOT=../shared/data`` means the same in a notebook kernel and in a shell.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "PROJECT_ROOT",
    "ENVIRONMENT_VARIABLES",
    "data_root",
    "esc50_dir",
    "esc10_dir",
    "escus_dir",
    "unlabeled_dir",
    "labelled_dir",
    "cache_dir",
    "runs_dir",
    "figures_dir",
    "results_dir",
    "profiles_dir",
    "SOURCE_VARIABLES",
    "esc50_url",
    "escus_server",
    "esc50_expect",
    "notebooks_dir",
    "describe",
]

#: The folder that holds ``pyproject.toml``; the package lives in ``<root>/esc_lib``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Environment variable for each configurable location.
ENVIRONMENT_VARIABLES = {
    "data_root": "ESC_DATA_ROOT",
    "esc50_dir": "ESC50_DIR",
    "esc10_dir": "ESC10_DIR",
    "escus_dir": "ESCUS_DIR",
    "unlabeled_dir": "ESC_UNLABELED_DIR",
    "labelled_dir": "ESC_LABELLED_DIR",
    "cache_dir": "ESC_CACHE_DIR",
    "runs_dir": "ESC_RUNS_DIR",
    "figures_dir": "ESC_FIGURES_DIR",
    "results_dir": "ESC_RESULTS_DIR",
}


#: Download sources -> environment variable (``run_all.sh --esc50-url`` etc. set them).
SOURCE_VARIABLES = {
    "esc50_url": "ESC50_URL",
    "escus_server": "ESCUS_SERVER",
    "esc50_expect": "ESC50_EXPECT",
}

#: Where ESC-50 and ESC-US come from when nothing is set.
DEFAULT_ESC50_URL = "https://github.com"
DEFAULT_ESCUS_SERVER = "https://dataverse.harvard.edu"


def _url(name: str, default: str) -> str:
    value = os.environ.get(SOURCE_VARIABLES[name], "").strip()
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"{SOURCE_VARIABLES[name]}={value!r} is not an http(s) address; set it to e.g. {default}")
    return (value or default).rstrip("/")


def esc50_url() -> str:
    """Base address of the ESC-50 archive: GitHub, or a mirror serving ``/karolpiczak/ESC-50/archive/<commit>.zip``."""
    return _url("esc50_url", DEFAULT_ESC50_URL)


def escus_server() -> str:
    """The Dataverse installation ESC-US is listed and downloaded from (or a mirror of its API)."""
    return _url("escus_server", DEFAULT_ESCUS_SERVER)


def esc50_expect() -> Path | None:
    """A JSON file of :func:`esc_lib.data.download.verify_esc50` expectations for another release than the pinned one
    (its metadata's sha256 and counts, e.g. a scaled-down mirror); None: the pinned release's checks."""
    value = os.environ.get(SOURCE_VARIABLES["esc50_expect"], "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    return (path if path.is_absolute() else PROJECT_ROOT / path).resolve()


def _from_env(name: str, default: Path) -> Path:
    value = os.environ.get(ENVIRONMENT_VARIABLES[name], "").strip()
    if not value:
        return default
    path = Path(value).expanduser()
    # Relative to the project root, not the working directory: notebook kernels
    # run in notebooks/, the commands of the README in the root.
    return (path if path.is_absolute() else PROJECT_ROOT / path).resolve()


def data_root() -> Path:
    """Folder holding the datasets (downloads go here too)."""
    return _from_env("data_root", PROJECT_ROOT / "data")


def esc50_dir() -> Path:
    """ESC-50 in its release layout: ``meta/esc50.csv`` and ``audio/``."""
    return _from_env("esc50_dir", data_root() / "ESC-50")


def esc10_dir() -> Path:
    """ESC-10 in ESC-50 layout (``meta/esc50.csv`` cut to the ESC-10 rows)."""
    return _from_env("esc10_dir", data_root() / "esc10")


def escus_dir() -> Path:
    """ESC-US: downloaded parts and the extracted clips."""
    return _from_env("escus_dir", data_root() / "ESC-US")


def unlabeled_dir() -> Path:
    """Any folder of audio used as an unlabeled pool."""
    return _from_env("unlabeled_dir", data_root() / "unlabeled")


def labelled_dir() -> Path:
    """Your own labelled recordings (``dataset: own``): a folder per class, a CSV/TSV table, or ESC-50 layout."""
    return _from_env("labelled_dir", data_root() / "own")


def cache_dir() -> Path:
    """Feature cache (safe to delete; see :func:`esc_lib.features.clear_cache`)."""
    return _from_env("cache_dir", PROJECT_ROOT / "cache")


def runs_dir() -> Path:
    """Run folders: executed notebooks, checkpoints, per-fold metrics."""
    return _from_env("runs_dir", PROJECT_ROOT / "runs")


def figures_dir() -> Path:
    """Published figures (committed, regenerated by ``run_all.sh``)."""
    return _from_env("figures_dir", PROJECT_ROOT / "figures")


def results_dir() -> Path:
    """Published result tables, CSV and Markdown (committed, regenerated)."""
    return _from_env("results_dir", PROJECT_ROOT / "results")


def profiles_dir() -> Path:
    """Parameter files (``paper.yaml``, ``esc10.yaml``, ``smoke.yaml``, ...)."""
    return PROJECT_ROOT / "profiles"


def notebooks_dir() -> Path:
    """The numbered notebooks."""
    return PROJECT_ROOT / "notebooks"


def describe() -> dict[str, str]:
    """Every configurable location, resolved now, as ``{name: path}``."""
    functions = {
        "data_root": data_root,
        "esc50_dir": esc50_dir,
        "esc10_dir": esc10_dir,
        "escus_dir": escus_dir,
        "unlabeled_dir": unlabeled_dir,
        "labelled_dir": labelled_dir,
        "cache_dir": cache_dir,
        "runs_dir": runs_dir,
        "figures_dir": figures_dir,
        "results_dir": results_dir,
    }
    return {name: str(function()) for name, function in functions.items()}
