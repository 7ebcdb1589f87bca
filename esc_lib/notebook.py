"""The numbered notebooks' settings cell: the parameters cell's values, and a quick mode for JupyterLab.

Each notebook's cell after its ``parameters`` cell builds its settings with::

    experiment = Experiment(notebook.settings(globals(), "03_finetuning"))

which reads only the names that notebook's parameters cell declares
(:meth:`esc_lib.settings.Settings.from_namespace`), so *Run All* again in the
same kernel after a changed parameter works, and checks papermill's names.

**Quick mode.**  With ``ESC_QUICK=1`` in the kernel's environment (``ESC_QUICK=1
jupyter lab``, or ``%env ESC_QUICK=1`` in a console of the notebook's kernel),
the notebook runs the ``smoke`` profile's small sizes (1 clip per class and
fold, 12 pool files, 1 epoch, 8 filters) with every value you changed in the
parameters cell on top, into its own run folder ``runs/quick`` (figures in
``runs/quick/figures``, tables in ``runs/quick/tables``): nothing is published
into ``figures/`` or ``results/``, and the tracked parameters cell stays as it is.
A run with a run folder of its own (``./run_all.sh``, papermill's ``-p run_dir``)
is never quick: ``ESC_QUICK`` set there is an error, not a silently smaller run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from esc_lib import config
from esc_lib.settings import NOTEBOOK_SECTIONS, Settings, SettingsError, load_profile

__all__ = ["QUICK_VARIABLE", "QUICK_PROFILE", "QUICK_RUN", "quick_mode", "quick_settings", "settings"]

#: The environment variable that turns quick mode on (``1``, ``true``, ``yes``; off: unset, ``0``, ``false``, ``no``).
QUICK_VARIABLE = "ESC_QUICK"
#: The profile whose values make a quick run small.
QUICK_PROFILE = "smoke"
#: The run folder (under ``runs/``) and ``profile`` name of a quick run.
QUICK_RUN = "quick"

_ON, _OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def quick_mode() -> bool:
    """Whether ``ESC_QUICK`` asks for quick mode; a value that is neither on nor off is a ``ValueError`` naming it."""
    value = os.environ.get(QUICK_VARIABLE, "").strip().lower()
    if value not in _ON + _OFF:
        raise ValueError(f"{QUICK_VARIABLE}={os.environ[QUICK_VARIABLE]!r}: set it to 1 (quick mode) or 0 (off)")
    return value in _ON


def quick_settings(cell: Settings, notebook: str) -> Settings:
    """The quick run of a notebook whose parameters cell gave ``cell``.

    The ``smoke`` profile's values, then every parameter of the notebook's cell
    that differs from its default (what the user changed), then the quick run's
    own folders: ``run_dir`` ``runs/quick``, ``profile`` ``quick``, nothing published.
    """
    return Settings(**{**load_profile(QUICK_PROFILE).parameters, **_changes(cell, notebook),
                       "run_dir": str(config.runs_dir() / QUICK_RUN), "profile": QUICK_RUN, "publish_figures": False})


def _changes(cell: Settings, notebook: str) -> dict[str, Any]:
    """The parameters of the notebook's cell that differ from their defaults (the generated cell's values)."""
    values = cell.model_dump()
    return {name: values[name] for name in Settings.names(NOTEBOOK_SECTIONS[notebook])
            if values[name] != Settings.model_fields[name].default and name not in ("run_dir", "profile", "publish_figures")}


def settings(namespace: Mapping[str, Any], notebook: str, say=print) -> Settings:
    """A notebook's settings: its parameters cell (and papermill's) from ``namespace``, quick when ``ESC_QUICK`` says so.

    Parameters
    ----------
    namespace : the notebook's ``globals()``
    notebook : str
        Its stem, a key of :data:`esc_lib.settings.NOTEBOOK_SECTIONS` (``"01_preprocessing"``, ...).
    say : callable or None
        Where the one line saying that quick mode is on goes.

    Raises
    ------
    esc_lib.settings.SettingsError
        An unknown or bad parameter, or ``ESC_QUICK`` in a run with its own run folder (``run_dir``).
    """
    cell = Settings.from_namespace(namespace, notebook=notebook)
    if not quick_mode():
        return cell
    if cell.run_dir:
        raise SettingsError(
            f"{QUICK_VARIABLE} is set, but this run has its own run folder (run_dir {cell.run_dir!r}, e.g. run_all.sh's): "
            f"quick mode is for JupyterLab; unset {QUICK_VARIABLE}, or run ./run_all.sh --profile {QUICK_PROFILE}")
    quick = quick_settings(cell, notebook)
    if say is not None:
        changed = ", ".join(f"{name}={value!r}" for name, value in _changes(cell, notebook).items())
        say(f"quick mode ({QUICK_VARIABLE}={os.environ[QUICK_VARIABLE]}): the {QUICK_PROFILE} profile's sizes"
            + (f" with your changes ({changed})" if changed else "")
            + f"; run folder {quick.run_dir}, figures and tables in it (nothing published)")
    return quick
