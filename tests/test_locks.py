"""One process per run folder or download: two real processes, a stale lock of a killed one, the runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esc_lib import config, locks, reproduce

#: A second process that takes a folder's lock (argv[1]), says so, and holds it until it is killed.
HOLDER = """
import sys, time
from esc_lib import locks
lock = locks.acquire(sys.argv[1], "run folder")
print("held", flush=True)
time.sleep(120)
"""

#: A runner whose notebooks take a long time (the first stage sleeps), started as ./run_all.sh would start it.
SLOW_RUNNER = """
import sys, time
from esc_lib import reproduce
def slow(notebook, output, parameters, kernel_log=None, **_):
    print("stage running", flush=True)
    time.sleep(120)
reproduce._execute = slow
sys.exit(reproduce.main(sys.argv[1:]))
"""


def _start(code: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=config.PROJECT_ROOT, env=env)
    return process


def _wait_for(process: subprocess.Popen, word: str) -> None:
    line = process.stdout.readline()
    if word not in line:
        process.kill()
        raise AssertionError(f"the second process did not start: {line!r} {process.stderr.read()}")


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of tmp_path/run; killed at the end."""
    process = _start(HOLDER, str(tmp_path / "run"))
    _wait_for(process, "held")
    yield process
    process.kill()
    process.wait(timeout=30)


def test_a_second_process_stops_at_once_naming_the_folder_and_the_holder(tmp_path, holder):
    start = time.monotonic()
    with pytest.raises(locks.FolderBusyError) as raised:
        locks.acquire(tmp_path / "run", "run folder", advice="give this run another --run-name")
    assert time.monotonic() - start < 2.0  # no waiting
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"run folder {tmp_path / 'run'} is in use by process {holder.pid} (")
    assert f"stop it (kill {holder.pid}), or give this run another --run-name" in message
    assert raised.value.pid == holder.pid and raised.value.folder == tmp_path / "run"
    assert locks.holder(tmp_path / "run")["pid"] == holder.pid


def test_the_lock_of_a_killed_process_does_not_block(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)  # no clean-up at all: its lock file stays behind
    holder.wait(timeout=30)
    assert locks.lock_path(tmp_path / "run").is_file() and locks.holder(tmp_path / "run")["pid"] == holder.pid
    with locks.hold(tmp_path / "run", "run folder") as folder:
        assert folder == tmp_path / "run"
        assert locks.holder(folder)["pid"] == os.getpid()
    assert not locks.lock_path(tmp_path / "run").exists()  # a clean release leaves nothing


def test_a_released_lock_can_be_taken_again_and_leaves_nothing_beside_the_folder(tmp_path):
    for _ in range(2):
        with locks.hold(tmp_path / "run", "run folder"):
            assert sorted(p.name for p in tmp_path.iterdir()) == [".run.lock"]
    assert list(tmp_path.iterdir()) == []


def test_two_runners_with_one_run_name_the_second_stops_at_once(tmp_path, monkeypatch):
    """./run_all.sh twice with one --run-name: both used to train into one folder; the second now stops, naming the first."""
    monkeypatch.setenv("ESC_RUNS_DIR", str(tmp_path / "runs"))
    env = dict(os.environ)
    argv = ["--profile", "smoke", "--run-name", "same", "--stages", "1"]
    first = _start(SLOW_RUNNER, *argv, env=env)
    try:
        for line in first.stdout:  # its start lines, then the stage it sleeps in
            if "stage running" in line:
                break
        else:
            raise AssertionError(f"the first runner did not reach its stage: {first.stderr.read()}")
        start = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "esc_lib.reproduce", *argv], capture_output=True, text=True,
                                cwd=config.PROJECT_ROOT, env=env, timeout=120)
        assert second.returncode == 1 and time.monotonic() - start < 60
        run_dir = tmp_path / "runs" / "same"
        assert second.stderr.strip().splitlines() == [
            line for line in second.stderr.strip().splitlines() if line.startswith("run_all.sh: run folder")]
        assert f"run_all.sh: run folder {run_dir} is in use by process {first.pid} (" in second.stderr
        assert "give this run another --run-name" in second.stderr and "stage 1" not in second.stdout
    finally:
        first.send_signal(signal.SIGKILL)  # as a crash would: the next runner must not be blocked
        first.wait(timeout=30)
    ran = []
    monkeypatch.setattr(reproduce, "_execute", lambda notebook, output, parameters, kernel_log=None, **_: ran.append(output.name))
    assert reproduce.main(argv) == 0
    assert ran == ["01_preprocessing.ipynb"] and not locks.lock_path(tmp_path / "runs" / "same").exists()


def test_a_download_under_way_in_another_process_stops_a_second_one(tmp_path):
    """Two downloads into one data folder appended to one .part file and extracted over each other."""
    from esc_lib.data import download

    esc50, escus = tmp_path / "data" / "ESC-50", tmp_path / "data" / "ESC-US"
    holders = [_start(HOLDER, str(esc50)), _start(HOLDER, str(escus))]
    try:
        for process in holders:
            _wait_for(process, "held")
        # The port is closed: reaching the network would be another error.
        with pytest.raises(locks.FolderBusyError, match=rf"ESC-50 folder {esc50} is in use by process {holders[0].pid} "):
            download.download_esc50(esc50, base_url="http://127.0.0.1:9", progress=False, retries=0)
        with pytest.raises(locks.FolderBusyError, match=rf"ESC-US folder {escus} is in use by process {holders[1].pid} "):
            download.download_escus(escus, server="http://127.0.0.1:9", progress=False, retries=0)
    finally:
        for process in holders:
            process.kill()
            process.wait(timeout=30)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [".ESC-50.lock", ".ESC-US.lock"]  # nothing written


def test_a_file_system_without_locks_warns_and_goes_on(tmp_path, monkeypatch):
    import errno

    import filelock

    def no_flock(self, *args, **kwargs):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(filelock.FileLock, "acquire", no_flock)
    with pytest.warns(RuntimeWarning, match="cannot lock run folder .*a second process on it would not be stopped"):
        with locks.hold(tmp_path / "run", "run folder"):
            pass


def test_help_still_needs_no_environment():
    """The runner's --help imports nothing beyond the standard library (locks imports filelock only when used)."""
    code = "import sys, esc_lib.locks, esc_lib.reproduce; sys.exit('filelock' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=config.PROJECT_ROOT).returncode == 0
    assert Path(locks.__file__).parent == config.PROJECT_ROOT / "esc_lib"
