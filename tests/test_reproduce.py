"""The headless runner: profiles, sweeps and its command line."""

import subprocess
import sys

import pytest

from esc_lib import config, reproduce


@pytest.mark.parametrize("profile", ["paper", "esc10", "smoke", "strong"])
def test_shipped_profiles_load(profile):
    if not (config.profiles_dir() / f"{profile}.yaml").exists():
        pytest.skip(f"profile {profile} not shipped yet")
    parameters, sweep = reproduce.load_profile(profile)
    assert parameters["dataset"] in {"esc10", "esc50"}
    assert all(isinstance(point, dict) for point in reproduce.grid_points(sweep))


def test_profile_parameters_are_declared_by_the_notebooks():
    """A profile never sets a parameter that no notebook reads (a typo would be silently ignored)."""
    papermill = pytest.importorskip("papermill")
    declared = set()
    for notebook in sorted(config.notebooks_dir().glob("0*.ipynb")):
        declared |= set(papermill.inspect_notebook(str(notebook)))
    for path in config.profiles_dir().glob("*.yaml"):
        parameters, sweep = reproduce.load_profile(str(path))
        names = set(parameters) | {k for point in reproduce.grid_points(sweep) for k in point}
        assert names - declared == set(), f"{path.name} sets parameters no notebook declares"


def test_esc10_sweep_is_the_paper_grid_plus_variants():
    parameters, sweep = reproduce.load_profile("esc10")
    points = reproduce.grid_points(sweep)
    ids = [reproduce.config_id({**parameters, **p}) for p in points]
    assert len(ids) == len(set(ids)) == 13
    grid = {(p["batch_size"], p["filters"]) for p in points if "batch_size" in p}
    assert grid == {(b, f) for b in (16, 32, 64) for f in (16, 32, 64)}
    assert "bs32-f64-upsample-bn0" in ids and "bs32-f64-unpool-bn1" in ids
    assert "bs32-f64-unpool-bn0-nopool" in ids and "bs32-f64-unpool-bn0-pool200" in ids


def test_config_id_matches_the_experiment_naming():
    from esc_lib.experiment import Settings

    settings = Settings(batch_size=16, filters=32, decoder="upsample", batch_norm=True)
    assert reproduce.config_id(
        {"batch_size": 16, "filters": 32, "decoder": "upsample", "batch_norm": True}
    ) == settings.config_id


@pytest.mark.parametrize(
    "content, message",
    [
        ("parameters: [1, 2]\n", "must be mappings"),
        ("parameters: {}\nsweep: {grid: {filters: 3}}\n", "non-empty list"),
        ("parameters: {}\nsweep: {variants: [3]}\n", "list of mappings"),
        ("parameters: {}\nextra: 1\n", "must be a mapping"),
    ],
)
def test_bad_profiles_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "mine.yaml"
    path.write_text(content)
    with pytest.raises(SystemExit, match=message):
        reproduce.load_profile(str(path))


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(SystemExit, match="known profiles: .*esc10"):
        reproduce.load_profile("no-such-profile")


def test_help_works_without_the_environment():
    """./run_all.sh --help runs on the system Python, before any bootstrap."""
    script = config.PROJECT_ROOT / "run_all.sh"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for word in ("--profile", "paper", "esc10", "smoke", "--data-root", "--unlabeled-dir", "ESC_DATA_ROOT", "--sweep"):
        assert word in result.stdout


def test_bad_stage_is_rejected(capsys):
    with pytest.raises(SystemExit):
        reproduce.main(["--profile", "smoke", "--stages", "7"])
    assert "no stage" in capsys.readouterr().err


def test_papermill_sees_every_parameter_of_every_notebook():
    """Each assignment in a parameters cell is one papermill can override (a comment with '=' once hid some)."""
    import ast

    import nbformat

    papermill = pytest.importorskip("papermill")
    for path in sorted(config.notebooks_dir().glob("0*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        code_cells = [c for c in notebook.cells if c.cell_type == "code"]
        assert "parameters" in code_cells[0].metadata.get("tags", []), f"{path.name}: first code cell is not tagged parameters"
        tree = ast.parse(code_cells[0].source)
        assigned = {t.id for node in tree.body for t in node.targets}
        assert all(isinstance(node.value, ast.Constant | ast.List) for node in tree.body), f"{path.name}: parameters must be literals"
        assert set(papermill.inspect_notebook(str(path))) == assigned, path.name
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code_cells), f"{path.name} has outputs"
