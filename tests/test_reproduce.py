"""The headless runner: profiles, sweeps and its command line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from esc_lib import config, reproduce
from esc_lib.settings import Settings, SettingsError, load_profile

PROFILES = sorted(config.profiles_dir().glob("**/*.yaml"))


@pytest.mark.parametrize("path", PROFILES, ids=[str(p.relative_to(config.profiles_dir())) for p in PROFILES])
def test_shipped_profiles_load_and_every_point_validates(path):
    profile = load_profile(path)
    for point in profile.points():
        settings = Settings(**{**profile.parameters, **point})
        assert settings.dataset in {"esc10", "esc50", "own"}


def test_profile_parameters_are_declared_by_the_notebooks():
    """Every parameter a profile can set is declared by at least one notebook (none is silently dropped)."""
    papermill = pytest.importorskip("papermill")
    declared = set()
    for notebook in sorted(config.notebooks_dir().glob("0*.ipynb")):
        declared |= set(papermill.inspect_notebook(str(notebook)))
    assert set(Settings.model_fields) == declared


def test_esc10_sweep_is_the_paper_grid_plus_variants():
    profile = load_profile("esc10")
    parameters, points = profile.parameters, profile.points()
    ids = [reproduce.config_id({**parameters, **p}) for p in points]
    assert len(ids) == len(set(ids)) == 13
    grid = {(p["batch_size"], p["filters"]) for p in points if "batch_size" in p}
    assert grid == {(b, f) for b in (16, 32, 64) for f in (16, 32, 64)}
    assert "bs32-f64-upsample-bn0" in ids and "bs32-f64-unpool-bn1" in ids
    assert "bs32-f64-unpool-bn0-nopool" in ids and "bs32-f64-unpool-bn0-pool200" in ids


def test_config_id_matches_the_experiment_naming():
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
        ("parameters: {filterz: 16}\n", "unknown parameter 'filterz'; did you mean 'filters'"),
        ("parameters: {batch_size: abc}\n", "batch_size"),
        ("parameters: {}\nsweep: {variants: [{decodr: upsample}]}\n", "sweep point .*'decodr'.*'decoder'"),
        ("parameters: {filters: [16\n", "not valid YAML"),
    ],
)
def test_bad_profiles_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "mine.yaml"
    path.write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_profile(str(path))
    # The runner says it in one line, before any work.
    with pytest.raises(SystemExit, match=message) as stopped:
        reproduce.main(["--profile", str(path), "--run-name", "never"])
    assert "\n" not in str(stopped.value)


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(SettingsError, match="known profiles: .*esc10"):
        load_profile("no-such-profile")


@pytest.mark.parametrize("override, message", [
    (["-p", "filterz", "16"], "unknown parameter 'filterz'; did you mean 'filters'"),
    (["-p", "batch_size", "many"], "batch_size"),
    (["-p", "folds", "[]"], "folds"),
])
def test_bad_overrides_stop_the_run_before_any_work(tmp_path, monkeypatch, override, message):
    """An unknown or bad -p is an error naming it; no run folder is made."""
    monkeypatch.setenv("ESC_RUNS_DIR", str(tmp_path / "runs"))
    with pytest.raises(SystemExit, match=message):
        reproduce.main(["--profile", "smoke", "--run-name", "bad", *override])
    assert not (tmp_path / "runs" / "bad").exists()


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
        assigned = {node.target.id for node in tree.body}
        assert all(isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Constant | ast.List) for node in tree.body), \
            f"{path.name}: parameters must be annotated literals"
        assert set(papermill.inspect_notebook(str(path))) == assigned, path.name
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code_cells), f"{path.name} has outputs"


def test_a_failing_notebook_is_one_line_naming_the_stage_and_the_executed_notebook(tmp_path, monkeypatch):
    """A notebook that raises reaches the runner's user as one line, not papermill's traceback."""
    from papermill.exceptions import PapermillExecutionError

    def failing(notebook, output, parameters, kernel_log=None, **_):
        raise PapermillExecutionError(cell_index=2, exec_count=2, source="x", ename="SettingsError",
                                      evalue="parameter filters=0: Input should be greater than 0", traceback=["..."])

    monkeypatch.setenv("ESC_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(reproduce, "_execute", failing)
    with pytest.raises(SystemExit) as stopped:
        reproduce.main(["--profile", "smoke", "--run-name", "failing", "--stages", "1"])
    line = str(stopped.value)
    assert "\n" not in line and "stage 1 01_preprocessing failed: SettingsError: parameter filters=0" in line
    assert str(tmp_path / "runs" / "failing" / "notebooks" / "01_preprocessing.ipynb") in line


@pytest.mark.slow
def test_papermill_rejects_an_unknown_parameter_in_the_first_cell(tmp_path):
    """``papermill -p clips_per_clas 1`` stops before any work, naming the closest known parameter."""
    papermill = pytest.importorskip("papermill")
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as failed:
        papermill.execute_notebook(
            str(config.notebooks_dir() / "01_preprocessing.ipynb"), str(tmp_path / "out.ipynb"),
            parameters={"clips_per_clas": 1, "run_dir": str(tmp_path / "run")}, kernel_name=reproduce.KERNEL_NAME,
            cwd=str(config.notebooks_dir()), progress_bar=False,
        )
    assert failed.value.ename == "SettingsError"
    assert "unknown parameter 'clips_per_clas'; did you mean 'clips_per_class'" in failed.value.evalue
    assert not (tmp_path / "run").exists()


def _tiny_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("x = 1")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters] + [nbformat.v4.new_code_cell(f"print('cell {i}', x * {i})") for i in range(4)]
    nb.metadata["kernelspec"] = {"name": reproduce.KERNEL_NAME, "display_name": "esc-lib", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _outputs(path: Path) -> list:
    cells = json.loads(path.read_text())["cells"]
    return [[o.get("text") for o in c.get("outputs", [])] for c in cells if c["cell_type"] == "code"]


@pytest.mark.slow
def test_a_full_disk_while_a_notebook_is_saved_leaves_the_last_complete_save(tmp_path, monkeypatch):
    import errno

    from esc_lib import atomic

    notebook = _tiny_notebook(tmp_path / "tiny.ipynb")
    reference = tmp_path / "reference" / "tiny.ipynb"
    reference.parent.mkdir()
    reproduce._execute(notebook, reference, {"x": 2})
    assert _outputs(reference)[-1] == [["cell 3 6\n"]]

    output = tmp_path / "full" / "tiny.ipynb"
    output.parent.mkdir()
    real_fsync, saves = atomic._fsync, []

    def disk_fills_up(path):
        saves.append(path)
        if len(saves) >= 3:  # the third save of the executed notebook finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(path)

    monkeypatch.setattr(atomic, "_fsync", disk_fills_up)
    with pytest.raises(OSError, match=f"cannot save the executed notebook {output} \\(No space left on device\\)"):
        reproduce._execute(notebook, output, {"x": 2})
    json.loads(output.read_text())  # still valid JSON: the last complete save
    assert sorted(p.name for p in output.parent.iterdir()) == ["tiny.ipynb"]  # no temporary file left
    monkeypatch.setattr(atomic, "_fsync", real_fsync)
    reproduce._execute(notebook, output, {"x": 2})  # space again: the rerun completes ...
    assert _outputs(output) == _outputs(reference)  # ... as the uninterrupted run did


@pytest.mark.slow
def test_sigterm_stops_the_runner_and_the_kernel_it_started(esc10_or_synthetic, tmp_path):
    import os
    import signal
    import time

    import psutil

    environment = {**os.environ, **esc10_or_synthetic.environment(),
                   "ESC_RUNS_DIR": str(tmp_path / "runs"), "ESC_CACHE_DIR": str(tmp_path / "cache"),
                   "ESC_FIGURES_DIR": str(tmp_path / "figures"), "ESC_RESULTS_DIR": str(tmp_path / "results")}
    runner = subprocess.Popen(
        [sys.executable, "-m", "esc_lib.reproduce", "--profile", "smoke", "--run-name", "stopped"],
        cwd=config.PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline, kernels = time.monotonic() + 120, []
        while time.monotonic() < deadline and not kernels:
            time.sleep(1)
            kernels = [p for p in psutil.Process(runner.pid).children(recursive=True)
                       if "ipykernel" in " ".join(p.cmdline())]
        assert kernels, "the runner started no notebook kernel within 2 minutes"
        time.sleep(3)  # the kernel is at work
        runner.send_signal(signal.SIGTERM)
        output, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, output[-2000:]
    assert "stopped;" in output and "the same command resumes" in output
    time.sleep(1)
    assert not [k for k in kernels if k.is_running() and k.status() != psutil.STATUS_ZOMBIE], "a kernel went on running"


@pytest.mark.slow
def test_what_a_kernel_writes_below_python_goes_to_the_kernel_log_not_the_run_log(tmp_path, capfd):
    """TensorFlow's C++ lines are written to file descriptor 2, as here; Python's own output stays in the notebook."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nos.write(2, b'E0000 C-LEVEL NOISE\\n')\nprint('python output')")]
    nb.metadata["kernelspec"] = {"name": reproduce.KERNEL_NAME, "display_name": "esc-lib", "language": "python"}
    notebook = tmp_path / "noisy.ipynb"
    nbformat.write(nb, str(notebook))
    output, log = tmp_path / "out" / "noisy.ipynb", tmp_path / "run" / reproduce.KERNEL_LOG
    output.parent.mkdir()
    reproduce._execute(notebook, output, {}, kernel_log=log)
    captured = capfd.readouterr()
    assert "C-LEVEL NOISE" in log.read_text()
    assert "C-LEVEL NOISE" not in captured.out + captured.err
    outputs = json.dumps([cell.get("outputs") for cell in json.loads(output.read_text())["cells"]])
    assert "C-LEVEL NOISE" not in outputs and "python output" in outputs


@pytest.mark.slow
def test_kill_9_while_a_notebook_runs_leaves_a_complete_notebook_and_the_rerun_matches(tmp_path):
    import os
    import signal
    import time

    import nbformat

    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("x = 1")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters] + [nbformat.v4.new_code_cell(f"import time\ntime.sleep(0.3)\nprint('cell {i}', x * {i})")
                               for i in range(40)]
    nb.metadata["kernelspec"] = {"name": reproduce.KERNEL_NAME, "display_name": "esc-lib", "language": "python"}
    notebook = tmp_path / "slow.ipynb"
    nbformat.write(nb, str(notebook))
    output = tmp_path / "out" / "slow.ipynb"
    output.parent.mkdir()
    script = (f"from pathlib import Path; from esc_lib import reproduce; "
              f"reproduce._execute(Path({str(notebook)!r}), Path({str(output)!r}), {{'x': 2}})")
    runner = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (output.exists() and "cell 3 6" in output.read_text()):
        time.sleep(0.2)
    os.killpg(runner.pid, signal.SIGKILL)  # the runner and its kernel, at once
    runner.wait(timeout=30)
    saved = json.loads(output.read_text())  # a complete save, whatever the moment of the kill
    assert "cell 39" not in json.dumps(saved["cells"][-1].get("outputs"))
    (output.parent / f".{output.name}.0badcafe.tmp").write_text('{"cells": [')  # what a kill mid-save leaves
    reproduce._execute(notebook, output, {"x": 2})
    assert sorted(p.name for p in output.parent.iterdir()) == ["slow.ipynb"]
    reference = tmp_path / "reference" / "slow.ipynb"
    reference.parent.mkdir()
    reproduce._execute(notebook, reference, {"x": 2})
    assert _outputs(output) == _outputs(reference)
