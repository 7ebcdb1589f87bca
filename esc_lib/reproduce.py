"""Headless reproduction: run the numbered notebooks with papermill.

``./run_all.sh`` calls ``python -m esc_lib.reproduce``; everything after the
script name is passed here.  A *profile* is a YAML file of notebook
parameters (``profiles/<name>.yaml``, or any path), so a user can write their
own.  A profile file has two sections::

    parameters:        # passed to every notebook (each takes the ones it declares)
      dataset: esc10
      batch_size: 32
    sweep:             # used with --sweep; one papermill run per point
      grid:            # every combination of these lists
        batch_size: [16, 32, 64]
        filters: [16, 32, 64]
      variants:        # extra points: the base parameters with these changes
        - {decoder: upsample}
        - {batch_norm: true}

Stages 2 (CAE pre-training) and 3 (fine-tuning) run once per grid point, each
with its own output notebook; stage 4 collects every grid point of the run
folder into the tables.  Only the standard library is imported at module
level so that ``--help`` works before the environment exists.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from datetime import datetime
from pathlib import Path

__all__ = ["main", "build_parser", "load_profile", "grid_points", "config_id", "STAGES"]

from esc_lib import config  # standard library only, like this module

PROFILES_DIR = config.profiles_dir()
NOTEBOOKS_DIR = config.notebooks_dir()
KERNEL_NAME = "esc-lib"

#: Stage number -> (notebook file, runs once per grid point?)
STAGES = {
    1: ("01_preprocessing.ipynb", False),
    2: ("02_cae_pretraining.ipynb", True),
    3: ("03_finetuning.ipynb", True),
    4: ("04_results.ipynb", False),
}

#: run_all.sh option -> environment variable read by esc_lib.config.
DIRECTORY_OPTIONS = config.ENVIRONMENT_VARIABLES

_EPILOG = """\
profiles (profiles/<name>.yaml; --profile also takes a path to your own file):
  paper   ESC-50 + ESC-US parts as in the paper, downloaded into the data root when
          absent (about 0.6 GB of ESC-50 and 1 GB per ESC-US part); the default.
  esc10   ESC-10 + any folder of unlabeled audio (ESC10_DIR, ESC_UNLABELED_DIR).
          This is what runs on a 2-core machine with ../shared/data.
  smoke   a handful of clips and one epoch: checks the whole pipeline in minutes.
  strong  larger log-mels, augmentation and pre-training: the beyond-the-paper preset.

data options: each sets the environment variable named in brackets, which a
notebook opened in JupyterLab reads too.  Default locations derive from the
project root (data/, cache/, runs/, figures/, results/).

examples:
  ./run_all.sh --profile esc10 --data-root ../shared/data
  ./run_all.sh --profile esc10 --data-root ../shared/data --sweep
  ./run_all.sh --profile smoke --esc10-dir ~/audio/esc10 --unlabeled-dir ~/audio/field-recordings
  ./run_all.sh --profile esc10 -p batch_size 64 -p filters 32 --stages 2,3,4
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_all.sh",
        description=(
            "Reproduce the experiments: build/refresh the virtual environment, then execute "
            "notebooks/01..04 headless with papermill into a run folder (executed notebooks "
            "kept there) and write figures/ and results/."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profile", default="paper", help="profile name in profiles/ or path to a YAML file (default: paper)"
    )
    parser.add_argument("--list-profiles", action="store_true", help="list the profiles and exit")
    parser.add_argument(
        "--sweep", action="store_true", help="run the profile's grid (stages 2 and 3 once per grid point)"
    )
    parser.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override one notebook parameter (VALUE is read as YAML: 64, true, [1, 2], text)",
    )
    parser.add_argument("--stages", default="1,2,3,4", help="comma-separated stages to run (default: 1,2,3,4)")
    parser.add_argument("--run-name", default=None, help="run folder name under the runs dir (default: <profile>-<time>)")
    data = parser.add_argument_group("data and output locations")
    for option, variable in DIRECTORY_OPTIONS.items():
        data.add_argument(f"--{option.replace('_', '-')}", metavar="DIR", default=None, help=f"[{variable}]")
    return parser


def _profile_path(profile: str) -> Path:
    candidate = Path(profile).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise SystemExit(f"run_all.sh: profile file {candidate} does not exist")
        return candidate
    path = PROFILES_DIR / f"{profile}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))) or "none"
        raise SystemExit(f"run_all.sh: unknown profile {profile!r}; known profiles: {known}; or pass a path to a YAML file")
    return path


def load_profile(profile: str) -> tuple[dict, dict]:
    """Read a profile: returns ``(parameters, sweep)``."""
    import yaml

    path = _profile_path(profile)
    with open(path) as handle:
        content = yaml.safe_load(handle) or {}
    if not isinstance(content, dict) or not set(content) <= {"parameters", "sweep", "description"}:
        raise SystemExit(f"run_all.sh: {path} must be a mapping with 'parameters' (and optionally 'sweep', 'description')")
    parameters, sweep = content.get("parameters") or {}, content.get("sweep") or {}
    if not isinstance(parameters, dict) or not isinstance(sweep, dict):
        raise SystemExit(f"run_all.sh: {path}: 'parameters' and 'sweep' must be mappings (name: value)")
    parameters, sweep = dict(parameters), dict(sweep)
    if not set(sweep) <= {"grid", "variants"}:
        raise SystemExit(f"run_all.sh: {path}: sweep takes 'grid' (a mapping of lists) and 'variants' (a list of mappings)")
    for name, values in (sweep.get("grid") or {}).items():
        if not isinstance(values, list) or not values:
            raise SystemExit(f"run_all.sh: {path}: sweep.grid.{name} must be a non-empty list")
    variants = sweep.get("variants") or []
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise SystemExit(f"run_all.sh: {path}: sweep.variants must be a list of mappings")
    return parameters, sweep


def grid_points(sweep: dict) -> list[dict]:
    """Every combination of ``sweep["grid"]`` (or the base point), then each of ``sweep["variants"]``, without repeats."""
    grid = sweep.get("grid") or {}
    names = list(grid)
    # Without a grid the profile's own point comes first, then the variants.
    points = [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))] if grid else [{}]
    for variant in sweep.get("variants") or []:
        if variant not in points:
            points.append(dict(variant))
    return points


def config_id(parameters: dict) -> str:
    """Name of a grid point, e.g. ``bs32-f64-unpool-bn0``: :attr:`esc_lib.experiment.Settings.config_id`."""
    import dataclasses

    from esc_lib.experiment import Settings

    known = {f.name for f in dataclasses.fields(Settings)}
    return Settings.from_mapping({k: v for k, v in parameters.items() if k in known}).config_id


def _format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _execute(notebook: Path, output: Path, parameters: dict) -> None:
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    # Each notebook receives only the parameters it declares, so papermill does
    # not warn about the others and a typo in a profile is reported below.
    passed = {k: v for k, v in parameters.items() if k in declared}
    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=passed,
        kernel_name=KERNEL_NAME,
        cwd=str(NOTEBOOKS_DIR),
        progress_bar=False,
        log_output=True,
        stdout_file=sys.stdout,
        stderr_file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_profiles:
        import yaml

        for path in sorted(PROFILES_DIR.glob("*.yaml")):
            description = (yaml.safe_load(path.read_text()) or {}).get("description", "")
            print(f"{path.stem:8s} {description}")
        return 0

    for option, variable in DIRECTORY_OPTIONS.items():
        value = getattr(args, option)
        if value:
            os.environ[variable] = str(Path(value).expanduser().resolve())
        elif os.environ.get(variable):
            # Kernels run in notebooks/: hand them absolute paths.
            os.environ[variable] = str(getattr(config, option)())

    import yaml

    parameters, sweep = load_profile(args.profile)
    for name, value in args.param:
        parameters[name] = yaml.safe_load(value)
    try:
        stages = sorted({int(s) for s in args.stages.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--stages takes comma-separated stage numbers, got {args.stages!r}")
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        parser.error(f"--stages: no stage {unknown}; stages are {sorted(STAGES)}")

    profile_name = Path(args.profile).stem
    run_name = args.run_name or f"{profile_name}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir = config.runs_dir() / run_name
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    parameters["run_dir"] = str(run_dir)
    # Figures and tables of a run with -p overrides go to figures/<run name>,
    # so they never pass for the profile's own.
    parameters.setdefault("profile", run_name if args.param else profile_name)
    points = grid_points(sweep) if args.sweep else [{}]
    ids = [config_id({**parameters, **point}) for point in points]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise SystemExit(f"run_all.sh: sweep points share the name(s) {repeated}; each point must change a setting the name shows")

    all_declared: set[str] = {"run_dir", "profile"}
    print(f"run_all: profile {profile_name}, run folder {run_dir}")
    for name, location in config.describe().items():
        print(f"run_all:   {name:14s} {location}")
    total_start = time.monotonic()
    for stage in stages:
        notebook_name, per_point = STAGES[stage]
        notebook = NOTEBOOKS_DIR / notebook_name
        if not notebook.is_file():
            print(f"run_all: stage {stage} ({notebook_name}) is not in this checkout yet; skipped")
            continue
        import papermill

        all_declared |= set(papermill.inspect_notebook(str(notebook)))
        for index, point in enumerate(points if per_point else [{}], start=1):
            stage_parameters = {**parameters, **point}
            # Only the profile's own point publishes into figures/ and results/;
            # the other grid points keep their figures in the run folder.
            is_base = config_id(stage_parameters) == config_id(parameters)
            stage_parameters["publish_figures"] = is_base
            if not is_base and "label_budgets" not in point:
                # Label-budget runs belong to the profile's own point; the grid is about Table 1.
                stage_parameters["label_budgets"] = []
            suffix = f"__{config_id(stage_parameters)}" if per_point else ""
            output = run_dir / "notebooks" / f"{notebook.stem}{suffix}.ipynb"
            label = f"stage {stage} {notebook.stem}" + (f" [{config_id(stage_parameters)}] {index}/{len(points)}" if per_point else "")
            print(f"run_all: {label} ...", flush=True)
            start = time.monotonic()
            _execute(notebook, output, stage_parameters)
            print(f"run_all: {label} done in {_format_seconds(time.monotonic() - start)} -> {output}", flush=True)
    unused = sorted(set(parameters) - all_declared)
    if unused and stages == sorted(STAGES):
        print(f"run_all: warning: no notebook declares the profile parameter(s) {', '.join(unused)}")
    print(f"run_all: finished in {_format_seconds(time.monotonic() - total_start)}; run folder {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
