"""The notebooks' settings cell (esc_lib.notebook): Run All twice in one kernel, papermill's names, quick mode.

The cells are the committed notebooks' own: the ``parameters`` cell and the
cell after it are executed in one namespace, as a kernel executes them.
"""

from __future__ import annotations

import nbformat
import numpy as np
import pytest

from esc_lib import config, notebook
from esc_lib.settings import NOTEBOOK_SECTIONS, Settings, SettingsError, load_profile

NOTEBOOKS = sorted(NOTEBOOK_SECTIONS)


def _cells(stem: str) -> tuple[str, str]:
    """The sources of a notebook's ``parameters`` cell and of the settings cell after it."""
    code = [cell for cell in nbformat.read(config.notebooks_dir() / f"{stem}.ipynb", as_version=4).cells
            if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "notebook.settings(globals(), " + repr(stem) in code[1].source
    return code[0].source, code[1].source


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """Runs, figures and results under tmp_path; quick mode off unless a test sets it."""
    for name in ("runs", "figures", "results"):
        monkeypatch.setenv(f"ESC_{name.upper()}_DIR", str(tmp_path / name))
    monkeypatch.delenv(notebook.QUICK_VARIABLE, raising=False)
    return tmp_path


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_run_all_again_in_the_same_kernel_reads_the_changed_parameter_and_ignores_the_notebooks_own_names(
        stem, folders, capsys):
    parameters, settings_cell = _cells(stem)
    namespace: dict = {}
    exec(parameters, namespace)
    exec(settings_cell, namespace)
    assert namespace["experiment"].settings.seed == 0
    # What the rest of the notebook (and the user) defined: arrays, objects, loop variables, plain literals.
    namespace.update(X=np.zeros((2, 3)), pool=object(), fold=5, rows=[1, 2], note="mine", start=1.5)
    with pytest.raises(SettingsError, match="unknown parameter 'X'"):
        Settings.from_namespace(namespace)  # what the cell did before: a kernel restart was the only way on
    exec(parameters.replace("\nseed: int = 0 ", "\nseed: int = 3 "), namespace)  # the user changes a parameter
    exec(settings_cell, namespace)
    assert namespace["experiment"].settings.seed == 3
    assert namespace["experiment"].run_dir == folders / "runs" / "interactive"
    said = capsys.readouterr().out
    assert "quick mode" not in said
    if stem == "01_preprocessing":  # the data locations one per line, not a dict's repr
        assert f"data locations:\n  data_root      {config.data_root()}\n" in said and "{'" not in said


def test_papermill_names_the_schema_does_not_know_are_still_an_error(folders):
    parameters, _ = _cells("03_finetuning")
    namespace: dict = {}
    exec(parameters + "\n# Parameters\nclips_per_clas = 1\n", namespace)  # papermill's injected cell, with a typo
    with pytest.raises(SettingsError, match="did you mean 'clips_per_class'"):
        Settings.from_namespace(namespace, notebook="03_finetuning")
    del namespace["clips_per_clas"]
    assert Settings.from_namespace(namespace, notebook="03_finetuning").clips_per_class == 0


def test_from_namespace_reads_only_the_notebooks_own_sections():
    namespace = {"seed": 2, "filters": 16}  # filters: a network parameter, which 01 does not declare
    assert Settings.from_namespace(namespace, notebook="01_preprocessing").filters == Settings().filters
    assert Settings.from_namespace(dict(namespace), notebook="02_cae_pretraining").filters == 16
    with pytest.raises(SettingsError, match="no parameters are defined for notebook '05_nothing'"):
        Settings.from_namespace(namespace, notebook="05_nothing")


@pytest.mark.parametrize("value, expected", [("", False), ("0", False), ("no", False), ("1", True), ("true", True),
                                             ("Yes", True)])
def test_quick_mode_reads_esc_quick(monkeypatch, value, expected):
    monkeypatch.setenv(notebook.QUICK_VARIABLE, value)
    assert notebook.quick_mode() is expected


def test_quick_mode_rejects_a_value_that_is_neither_on_nor_off(monkeypatch):
    monkeypatch.setenv(notebook.QUICK_VARIABLE, "maybe")
    with pytest.raises(ValueError, match="ESC_QUICK='maybe'"):
        notebook.quick_mode()


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_quick_mode_runs_the_smoke_sizes_with_the_users_changes_into_its_own_folders(stem, folders, monkeypatch, capsys):
    parameters, settings_cell = _cells(stem)
    monkeypatch.setenv(notebook.QUICK_VARIABLE, "1")
    namespace: dict = {}
    exec(parameters.replace("\nseed: int = 0 ", "\nseed: int = 3 "), namespace)
    exec(settings_cell, namespace)
    settings = namespace["experiment"].settings
    smoke = load_profile("smoke").parameters
    assert (settings.clips_per_class, settings.max_unlabeled) == (smoke["clips_per_class"], smoke["max_unlabeled"])
    assert settings.seed == 3  # the user's change, on top of the smoke profile
    assert settings.profile == "quick" and not settings.publish_figures
    assert namespace["experiment"].run_dir == folders / "runs" / "quick"
    said = capsys.readouterr().out
    assert "quick mode (ESC_QUICK=1)" in said and "your changes (seed=3)" in said
    if "figure_dir" in namespace:  # 01-03 draw figures: into the quick run's folder, never figures/ or results/
        assert namespace["figure_dir"] == folders / "runs" / "quick" / "figures"
        assert namespace["table_dir"] == folders / "runs" / "quick" / "tables"
    assert not (folders / "figures").exists() and not (folders / "results").exists()


def test_quick_settings_keep_every_changed_parameter():
    cell = Settings(filters=32, methods=["supervised"], profile="mine", publish_figures=True)
    quick = notebook.quick_settings(cell, "03_finetuning")
    assert quick.filters == 32 and quick.methods == ["supervised"]
    assert quick.max_epochs == load_profile("smoke").parameters["max_epochs"]
    assert (quick.profile, quick.publish_figures) == ("quick", False)


def test_quick_mode_in_a_run_with_its_own_run_folder_is_an_error(folders, monkeypatch):
    monkeypatch.setenv(notebook.QUICK_VARIABLE, "1")
    with pytest.raises(SettingsError, match="quick mode is for JupyterLab"):
        notebook.settings({"run_dir": str(folders / "runs" / "x")}, "03_finetuning")


def test_progress_bars_go_to_standard_output_in_a_jupyter_kernel(monkeypatch, capsys):
    """In a kernel, standard error is drawn as an error box (and the bar's last newline as a second, empty one)."""
    import sys

    from esc_lib import features

    kernel_stream = type("OutStream", (), {"__module__": "ipykernel.iostream", "write": lambda self, text: None,
                                           "flush": lambda self: None, "isatty": lambda self: False})()
    with features.progress_bar(3, "features", True) as bar:  # a terminal or a log: standard error, as before
        bar.update(3)
    assert "3/3" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stderr", kernel_stream)
    with features.progress_bar(3, "features", True) as bar:
        bar.update(3)
    assert "features: 100%" in capsys.readouterr().out
