"""The conda environment and the pip lock pin the same versions."""

import os
import re
import sys

import pytest

from esc_lib import config

ROOT = config.PROJECT_ROOT


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[_normalise(name)] = version
    return pins


def _environment_pins() -> dict[str, str]:
    yaml = pytest.importorskip("yaml")
    content = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in content["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip section"
    pins = {}
    for entry in pip_sections[0]:
        if entry.startswith("-e"):
            continue
        name, _, version = entry.partition("==")
        assert version, f"environment.yml: {entry!r} is not pinned with =="
        pins[_normalise(name)] = version
    return pins


def _direct_dependencies() -> set[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + extras["cpu"] + extras["test"]
    return {_normalise(re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0]) for r in requirements}


def test_environment_yml_matches_the_lock():
    lock, environment = _lock(), _environment_pins()
    mismatched = {n: (v, lock.get(n)) for n, v in environment.items() if lock.get(n) != v}
    assert mismatched == {}, "environment.yml pin != requirements.lock pin: {name: (yml, lock)}"


def test_every_direct_dependency_is_pinned_in_both():
    lock, environment = _lock(), _environment_pins()
    direct = _direct_dependencies()
    assert direct - set(lock) == set(), "direct dependencies missing from requirements.lock"
    assert direct - set(environment) == set(), "direct dependencies missing from environment.yml"


def test_python_version_agrees():
    yaml = pytest.importorskip("yaml")
    content = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in content["dependencies"]
    assert "3.11" in (ROOT / "pyproject.toml").read_text()


def test_installed_versions_are_the_pinned_ones():
    """The running environment is the one its lock describes (bootstrap ran): the CPU lock, or with
    TensorFlow's GPU build (bootstrap --gpu) the GPU lock, CUDA wheels included."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("tensorflow-cpu")
        lock, names = _lock(), _direct_dependencies()
    except PackageNotFoundError:
        lock = _pins(ROOT / "requirements-gpu.lock")
        lock["tensorflow"] = lock.pop("tensorflow[and-cuda]")
        names = (_direct_dependencies() - {"tensorflow-cpu"}) | {"tensorflow"} | {n for n in lock if n.startswith("nvidia-")}
    wrong = {}
    for name in names:
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != lock[name]:
            wrong[name] = (installed, lock[name])
    assert wrong == {}, "installed != pinned: {name: (installed, pinned)}"


def _pins(path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.strip().partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[_normalise(name)] = version
    return pins


def test_the_gpu_lock_is_the_cpu_lock_with_tensorflow_and_cuda():
    """requirements-gpu.lock (bootstrap --gpu): every CPU pin, tensorflow[and-cuda] at tensorflow-cpu's version,
    and only NVIDIA's CUDA wheels besides (regenerate with scripts/gpu_lock.py)."""
    cpu, gpu = _lock(), _pins(ROOT / "requirements-gpu.lock")
    assert gpu.pop("tensorflow[and-cuda]") == cpu.pop("tensorflow-cpu")
    added = {name: version for name, version in gpu.items() if name not in cpu}
    assert added and all(name.startswith("nvidia-") and name.endswith("-cu12") for name in added), added
    assert {name: gpu[name] for name in cpu if gpu.get(name) != cpu[name]} == {}, "GPU pin != CPU pin"


def test_tensorflow_is_an_extra_of_one_version_in_two_builds():
    """TensorFlow is not a plain dependency (that would name one build and break `pip check` in the other
    environment): the `cpu` extra names tensorflow-cpu, `gpu` tensorflow[and-cuda], with one version range."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [r for r in project["dependencies"] if r.startswith("tensorflow")]
    (cpu,), (gpu,) = project["optional-dependencies"]["cpu"], project["optional-dependencies"]["gpu"]
    assert cpu.startswith("tensorflow-cpu") and gpu.startswith("tensorflow[and-cuda]")
    assert cpu.removeprefix("tensorflow-cpu") == gpu.removeprefix("tensorflow[and-cuda]")


def test_pip_check_finds_no_broken_requirement():
    """The environment bootstrap built satisfies every installed package's declared requirements, esc_lib's included."""
    import subprocess

    done = subprocess.run([sys.executable, "-m", "pip", "check", "--disable-pip-version-check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bootstrap_takes_only_the_gpu_option():
    import subprocess

    done = subprocess.run([str(ROOT / "scripts" / "bootstrap.sh"), "--cuda"], capture_output=True, text=True)
    assert done.returncode == 2 and "unknown option '--cuda' (the only one is --gpu)" in done.stderr


def test_a_second_bootstrap_waits_for_the_first():
    """Two run_all.sh started together on a fresh checkout both bootstrapped at once and broke pip."""
    import fcntl
    import subprocess
    import time

    env = {**os.environ, "ESC_VENV": sys.prefix}
    script = str(ROOT / "scripts" / "bootstrap.sh")
    first = subprocess.run([script], capture_output=True, text=True, env=env, timeout=600)
    if "is up to date" not in first.stdout:
        pytest.skip(f"this interpreter's environment ({sys.prefix}) is not one bootstrap.sh keeps up to date")
    with open(os.path.join(sys.prefix, ".bootstrap.lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = subprocess.Popen([script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(3)
        assert waiting.poll() is None, "bootstrap did not wait for the lock"
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "another bootstrap is building" in out and out.rstrip().endswith("is up to date")
