"""Write requirements-gpu.lock from requirements.lock: tensorflow_cpu -> tensorflow[and-cuda], CUDA wheels pinned.

pip resolves the CPU lock with ``tensorflow[and-cuda]`` at the same version in
its place (``--dry-run --report``: metadata only, nothing is installed), and
every package it would install is pinned.  Run after changing the CPU lock::

    .venv/bin/python scripts/gpu_lock.py

tests/test_environment.py checks that the two locks agree.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from esc_lib import atomic  # noqa: E402

HEADER = """\
# The GPU environment (scripts/bootstrap.sh --gpu, or ESC_GPU=1): requirements.lock with tensorflow_cpu
# replaced by tensorflow[and-cuda] at the same version and the CUDA/cuDNN wheels it pulls in (Linux x86-64, NVIDIA driver >= 525).
# Regenerate after changing requirements.lock: python scripts/gpu_lock.py (tests/test_environment.py checks they agree).
"""


def _key(line: str) -> str:
    """The normalised project name of a pin, without extras."""
    return re.sub(r"[-_.]+", "-", line.split("==")[0].split("[")[0]).lower()


def main() -> int:
    cpu = [line for line in (ROOT / "requirements.lock").read_text().splitlines() if line and not line.startswith("#")]
    version = next(line.split("==")[1] for line in cpu if _key(line) == "tensorflow-cpu")
    wanted = [line for line in cpu if _key(line) != "tensorflow-cpu"] + [f"tensorflow[and-cuda]=={version}"]
    with tempfile.TemporaryDirectory() as tmp:
        requirements, report = Path(tmp) / "requirements.txt", Path(tmp) / "report.json"
        requirements.write_text("\n".join(wanted) + "\n")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--dry-run",
                        "--ignore-installed", "--report", str(report), "-r", str(requirements)], check=True)
        resolved = {item["metadata"]["name"]: item["metadata"]["version"] for item in json.loads(report.read_text())["install"]}
    pins = {_key(line): line for line in wanted}
    for name, pinned in resolved.items():
        if _key(name) not in pins and _key(name) not in ("pip", "setuptools", "wheel"):  # as pip freeze
            pins[_key(name)] = f"{name}=={pinned}"  # the CUDA wheels tensorflow[and-cuda] adds
    lines = [pins[key] for key in sorted(pins)]
    atomic.write_text(ROOT / "requirements-gpu.lock", HEADER + "\n".join(lines) + "\n")
    print(f"requirements-gpu.lock: {len(lines)} pins ({len(lines) - len(wanted)} added for CUDA)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
