"""What ./run_all.sh does at each start and writes to its log: nothing rewritten, nothing said twice, bad folds first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from _http_server import build_esc50_tree
from esc_lib import config, reproduce
from esc_lib.data.datasets import DatasetError


def test_the_git_filter_is_not_rewritten_at_each_start(tmp_path):
    """bootstrap.sh installs the notebook filter at every start; .git/config is now written only when it changes."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (tmp_path / "scripts").mkdir()
    shutil.copy(config.PROJECT_ROOT / "scripts" / "install_git_filter.sh", tmp_path / "scripts")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    script = ["bash", str(tmp_path / "scripts" / "install_git_filter.sh")]
    environment = {**os.environ, "PYTHON": str(config.PROJECT_ROOT / ".venv" / "bin" / "python")}
    subprocess.run(script, check=True, env=environment)
    git_config = tmp_path / ".git" / "config"
    before = git_config.stat()
    assert "filter \"nbstripout\"" in git_config.read_text()
    os.utime(git_config, ns=(before.st_atime_ns, before.st_mtime_ns - 10**9))  # a rewrite would move it on
    written = git_config.stat()
    subprocess.run(script, check=True, env=environment)
    after = git_config.stat()
    assert (after.st_ino, after.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    subprocess.run(script, check=True, env={**environment, "PYTHON": "/another/python"})  # a change is written
    assert "/another/python" in git_config.read_text()


def test_what_a_notebook_writes_to_stderr_reaches_the_log_once(tmp_path):
    """A tqdm bar (stderr) was written twice per update: by papermill's log and by its stderr file.

    In a process of its own, as the runner is: pytest's log capture would hide the second copy.
    """
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import sys\nsys.stderr.write('BAR 50%\\n'); sys.stderr.flush()\nprint('LINE', flush=True)")]
    nb.metadata["kernelspec"] = {"name": reproduce.KERNEL_NAME, "display_name": "esc-lib", "language": "python"}
    notebook = tmp_path / "bar.ipynb"
    nbformat.write(nb, str(notebook))
    output = tmp_path / "out" / "bar.ipynb"
    output.parent.mkdir()
    code = ("import sys; from pathlib import Path; from esc_lib import reproduce; "
            "reproduce._execute(Path(sys.argv[1]), Path(sys.argv[2]), {}, kernel_log=Path(sys.argv[3]))")
    done = subprocess.run([sys.executable, "-c", code, str(notebook), str(output), str(tmp_path / reproduce.KERNEL_LOG)],
                          capture_output=True, text=True, cwd=config.PROJECT_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (done.stdout + done.stderr).count("BAR 50%") == 1
    assert (done.stdout + done.stderr).count("LINE") == 1


@pytest.mark.parametrize("name", ["01_preprocessing", "02_cae_pretraining"])
def test_the_notebooks_do_not_print_the_pool_summary_again(name):
    """Experiment.pool prints "unlabeled pool: N windows from M file(s) used, K skipped"; the notebooks printed it again."""
    notebook = nbformat.read(config.PROJECT_ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            printed = [line for line in cell.source.splitlines() if line.lstrip().startswith("print(")]
            assert not [line for line in printed if "pool.report" in line], f"{name} prints the pool's report again"


@pytest.fixture
def small_esc10(tmp_path, monkeypatch):
    """An ESC-50-layout folder whose ESC-10 rows are in folds 1 and 2, as ESC10_DIR; runs under tmp_path."""
    build_esc50_tree(tmp_path / "esc10")
    monkeypatch.setenv("ESC10_DIR", str(tmp_path / "esc10"))
    monkeypatch.setenv("ESC_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


def test_a_fold_the_dataset_lacks_stops_the_run_naming_folds_before_any_run_folder(small_esc10, monkeypatch):
    """-p folds "[6]" failed in stage 1 as "parameter test_folds: ...", after the run folder was made."""
    started = []
    monkeypatch.setattr(reproduce, "_execute", lambda *args, **kwargs: started.append(args))
    with pytest.raises(SystemExit) as stopped:
        reproduce.main(["--profile", "smoke", "--run-name", "bad-folds", "-p", "folds", "[2, 6]"])
    meta = small_esc10 / "esc10" / "meta" / "esc50.csv"
    assert str(stopped.value) == (f"run_all.sh: parameter folds: fold(s) [6] not among the dataset's folds [1, 2] "
                                  f"({meta}); choose test folds among them (e.g. -p folds '[1, 2]')")
    assert started == [] and not (small_esc10 / "runs").exists()


def test_the_experiment_names_the_folds_parameter_too(small_esc10):
    from esc_lib.data import datasets
    from esc_lib.experiment import Experiment, Settings

    dataset = datasets.load_esc10()
    with pytest.raises(DatasetError, match=r"^parameter folds: fold\(s\) \[6\] not among the dataset's folds \[1, 2\]"):
        Experiment(Settings(folds=[1, 6], run_dir=str(small_esc10 / "runs" / "x")), dataset=dataset, verbose=0)


def test_jobs_reach_the_notebooks_and_the_run_still_publishes_as_the_profile(small_esc10, monkeypatch):
    """--jobs sets the jobs parameter of every notebook; unlike -p it changes only the speed, so the run keeps
    publishing into the profile's folders (-p would move them under the run name)."""
    monkeypatch.setenv("ESC_RESULTS_DIR", str(small_esc10 / "results"))
    monkeypatch.setenv("ESC_FIGURES_DIR", str(small_esc10 / "figures"))
    passed = []
    monkeypatch.setattr(reproduce, "_execute", lambda notebook, output, parameters, *args, **kwargs: passed.append(parameters))
    profile = small_esc10 / "mine.yaml"
    profile.write_text("extends: smoke\nparameters: {folds: [1, 2]}\n")
    assert reproduce.main(["--profile", str(profile), "--run-name", "two", "--jobs", "2", "--stages", "1,3"]) == 0
    assert [(p["jobs"], p["profile"]) for p in passed] == [(2, "mine"), (2, "mine")]
    with pytest.raises(SystemExit):
        reproduce.main(["--profile", "smoke", "--run-name", "never", "--jobs", "-1"])
    assert not (small_esc10 / "runs" / "never").exists()
