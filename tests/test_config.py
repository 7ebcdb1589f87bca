"""Paths derive from the project root and every one can be overridden."""

from pathlib import Path

import pytest

from esc_lib import config

FUNCTIONS = {
    "data_root": config.data_root,
    "esc50_dir": config.esc50_dir,
    "esc10_dir": config.esc10_dir,
    "escus_dir": config.escus_dir,
    "unlabeled_dir": config.unlabeled_dir,
    "labelled_dir": config.labelled_dir,
    "cache_dir": config.cache_dir,
    "runs_dir": config.runs_dir,
    "figures_dir": config.figures_dir,
    "results_dir": config.results_dir,
}


def test_defaults_live_under_the_project(monkeypatch):
    for variable in config.ENVIRONMENT_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    for name, function in FUNCTIONS.items():
        assert function().is_relative_to(config.PROJECT_ROOT), name
    assert config.esc10_dir() == config.PROJECT_ROOT / "data" / "esc10"
    assert (config.PROJECT_ROOT / "pyproject.toml").is_file()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_location_follows_its_variable(name, monkeypatch, tmp_path):
    target = tmp_path / name
    monkeypatch.setenv(config.ENVIRONMENT_VARIABLES[name], str(target))
    assert FUNCTIONS[name]() == target.resolve()


def test_data_root_moves_the_datasets(monkeypatch, tmp_path):
    for variable in config.ENVIRONMENT_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ESC_DATA_ROOT", str(tmp_path))
    assert config.esc10_dir() == tmp_path.resolve() / "esc10"
    assert config.unlabeled_dir() == tmp_path.resolve() / "unlabeled"
    assert config.esc50_dir() == tmp_path.resolve() / "ESC-50"
    assert config.labelled_dir() == tmp_path.resolve() / "own"
    assert set(config.describe()) == set(FUNCTIONS)


def test_no_absolute_paths_in_sources():
    """No file of the project hard-codes a machine's absolute path."""
    suspicious = ("/work/", "/home/", "/root/", "/tmp/", "C:\\\\")
    roots = [config.PROJECT_ROOT / d for d in ("esc_lib", "notebooks", "profiles", "benchmarks", "scripts")]
    files = [p for r in roots if r.exists() for p in r.rglob("*") if p.suffix in {".py", ".ipynb", ".yaml", ".sh"}]
    files += [config.PROJECT_ROOT / n for n in ("run_all.sh", "run_tests.sh", "environment.yml")]
    offenders = [str(p) for p in files if p.exists() and any(s in p.read_text() for s in suspicious)]
    assert offenders == []
