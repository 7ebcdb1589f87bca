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
import contextlib
import os
import sys
import time
from datetime import datetime
from pathlib import Path

__all__ = ["main", "build_parser", "config_id", "STAGES"]

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
  esc10   ESC-10 + any folder of unlabeled audio (ESC10_DIR, ESC_UNLABELED_DIR); where
          neither is found or set, both are made from ESC-50 (downloaded, verified):
          its ESC-10 rows and its 40 other classes. Runs on a 2-core machine.
  smoke   a handful of clips and one epoch: checks the whole pipeline in minutes.
  strong  larger log-mels, augmentation and pre-training: the beyond-the-paper preset.
  budgets the strong network with every way of using unlabeled audio (CAE, contrastive,
          self-training, mean teacher, FixMatch, FreeMatch, MixMatch) at 4, 8, 16 and all
          labelled clips per class.
  own     your own labelled recordings (--labelled-dir: a folder per class or a CSV/TSV),
          folds made for you; the strong network with and without the CAE.
  search/strong    the strong preset's search, scored on the validation folds only (--sweep).
  search/fixmatch  FixMatch's threshold and ratio, chosen on the validation folds (--sweep).
  search/selftrain self-training's threshold, cap and rounds, chosen the same way (--sweep).
  search/selftrain-teacher  self-training's teacher: more members, the CAE's encoder, a second round (--sweep).
  search/selftrain-curriculum  a third round, or a cap growing each round (--sweep).
  search/selftrain-warm  students fine-tuned from their teacher for fewer epochs (--sweep).
  --list-profiles shows every profile; `python -m esc_lib.settings` every parameter.

GPU: ./run_all.sh --gpu (or ESC_GPU=1) builds and uses the GPU environment (.venv-gpu from
requirements-gpu.lock: tensorflow[and-cuda]); -p precision mixed_float16 and -p distribute
mirrored (every visible GPU) are settings; each run says which device trains.

data options: each sets the environment variable named in brackets, which a
notebook opened in JupyterLab reads too.  Default locations derive from the
project root (data/, cache/, runs/, figures/, results/).

examples:
  ./run_all.sh --profile esc10 --data-root ../shared/data
  ./run_all.sh --profile esc10 --data-root ../shared/data --sweep
  ./run_all.sh --profile smoke --esc10-dir ~/audio/esc10 --unlabeled-dir ~/audio/field-recordings
  ./run_all.sh --profile esc10 -p batch_size 64 -p filters 32 --stages 2,3,4
  ./run_all.sh --profile budgets --data-root ../shared/data --jobs 2   # two folds at a time on 2 cores
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
        "--scheduler", metavar="ADDRESS",
        help="extract the unlabeled pool into its on-disk store (pool_store: true) on Dask: 'local' for a LocalCluster "
             "of one worker per core, or a running scheduler's address, e.g. tcp://10.0.0.5:8786 "
             "(sets ESC_DASK_SCHEDULER, which a notebook reads too)",
    )
    parser.add_argument(
        "--jobs", metavar="N", type=int, default=None,
        help="train N test folds side by side, each in a worker process of one thread (the jobs parameter; 0: one "
             "per CPU core). On a CPU one process does not keep two cores busy with these small networks: --jobs 2 "
             "on 2 cores trains about twice as fast (benchmarks/bench_processes.py). Only the speed changes: the run "
             "publishes where it would without it",
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
    sources = parser.add_argument_group("download sources (the paper profile; mirrors in the same layout)")
    for option, variable in config.SOURCE_VARIABLES.items():
        metavar = "FILE" if option == "esc50_expect" else "URL"
        sources.add_argument(f"--{option.replace('_', '-')}", metavar=metavar, default=None, help=f"[{variable}]")
    return parser


def _settings(parameters: dict, where: str):
    """Validate ``parameters`` against the schema; a bad or unknown one stops the run in one line."""
    from esc_lib.settings import Settings, SettingsError

    try:
        return Settings(**parameters)
    except SettingsError as error:
        raise SystemExit(f"run_all.sh: {where}: {error}") from None


def config_id(parameters: dict) -> str:
    """Name of a grid point, e.g. ``bs32-f64-unpool-bn0``: :attr:`esc_lib.settings.Settings.config_id`."""
    return _settings(parameters, "parameters").config_id


def _failure_line(label: str, output: Path, error: Exception) -> str:
    """One line for a failed notebook: the stage, the error's own message, where the full traceback is."""
    name = getattr(error, "ename", None) or type(error).__name__
    message = str(getattr(error, "evalue", None) or error).strip().splitlines()
    text = message[-1] if message else ""
    return f"run_all: {label} failed: {name}: {text} (the executed notebook with the traceback: {output})"


def _format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


#: Prefix of the executed notebooks' paths for papermill: each save goes through :class:`_AtomicNotebookIO`.
ATOMIC_SCHEME = "atomic://"


class _AtomicNotebookIO:
    """papermill I/O handler for the executed notebooks: every save replaces the file whole.

    papermill rewrites the output notebook after each cell; a plain write that
    stops half-way (a full disk, a kill) would leave invalid JSON.  Here each
    save is a temporary file renamed over the notebook (:func:`esc_lib.atomic.write_bytes`),
    so the file on disk is always the last complete save, and a failed save
    raises an ``OSError`` naming the notebook.
    """

    @staticmethod
    def _path(path: str) -> str:
        return path[len(ATOMIC_SCHEME):] if path.startswith(ATOMIC_SCHEME) else path

    def read(self, path):
        with open(self._path(path), encoding="utf-8") as handle:
            return handle.read()

    def write(self, buf, path):
        from esc_lib import atomic

        target = self._path(path)
        try:
            atomic.write_bytes(target, buf.encode("utf-8"))
        except OSError as error:
            raise OSError(error.errno, f"cannot save the executed notebook {target} ({error.strerror or error}); "
                                       "the last complete save is kept") from None

    def listdir(self, path):
        folder = self._path(path)
        return [os.path.join(folder, name) for name in os.listdir(folder)]

    def pretty_path(self, path):
        return self._path(path)


def _register_atomic_io() -> None:
    from papermill.iorw import papermill_io

    if not any(scheme == ATOMIC_SCHEME for scheme, _ in papermill_io._handlers):
        papermill_io.register(ATOMIC_SCHEME, _AtomicNotebookIO())


#: Where, in a run folder, the kernels' own standard error goes (TensorFlow's C++ log lines, ipykernel's start-up notes).
KERNEL_LOG = "kernels.log"


def _kernel_manager(log: Path):
    """A kernel manager class whose kernels write their standard error (file descriptor 2) to ``log``.

    TensorFlow's C++ runtime logs to the process's stderr, not through Python, so
    those lines (the oneDNN and CPU-feature banners, an ``E0000 ... use_unbounded_threadpool``
    line per model that is not an error) never reach the notebook but flood a
    run's log.  What Python prints, warnings included, still goes to the notebook.

    Two lines a successful run used to log are gone at their source: the kernels talk
    over CurveZMQ with keys the manager provisions where the kernel spec supports it
    (ipykernel's does), so no kernel warns "Kernel is running over TCP without encryption";
    and a kernel is shut down without the interrupt jupyter_client sends first, which
    in a kernel still finishing its last message logged "ERROR | KeyboardInterrupt caught
    in kernel" (a kernel that does not exit is still killed after the wait).
    """
    import zmq
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class QuietKernelManager(AsyncKernelManager):
        @default("transport_encryption")
        def _encrypted_where_possible(self):
            return "auto" if zmq.has("curve") else "disabled"

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as handle:  # the kernel keeps its own copy of the descriptor
                kw["stderr"] = handle
                return await super()._async_launch_kernel(kernel_cmd, **kw)

        async def _async_interrupt_kernel(self):
            if self.shutting_down:  # papermill shuts a kernel down once its notebook has run: nothing to interrupt
                return
            await super()._async_interrupt_kernel()

    return QuietKernelManager


def _fetch_esc10(parameters: dict) -> None:
    """ESC-10 (and its pool) made from a verified ESC-50 download, where a run reads ESC-10 and none is found or set.

    :func:`esc_lib.data.download.missing_esc10_folders` decides (a data root
    holding ``esc10/`` makes nothing); ESC-50 goes to the ESC-50 folder, its
    ESC-10 rows to the ESC-10 folder and its 40 other classes to the unlabeled
    folder, as links.  Called before each notebook, once the run folder is held,
    so only a run that reaches a notebook downloads; cheap once the folders exist.
    """
    from esc_lib.settings import Settings

    # A notebook's own parameters beside the settings (a test notebook's, say) are not the
    # dataset's business: only the settings among them choose what is read.
    settings = _settings({k: v for k, v in parameters.items() if k in Settings.model_fields}, "parameters")
    if settings.dataset != "esc10":
        return
    from esc_lib import locks
    from esc_lib.data import datasets, download

    esc10, pool = download.missing_esc10_folders(pool=settings.unlabeled == "folder")
    if esc10 is None:
        return
    made = f"{esc10}" + (f" (its 10 classes) and {pool} (its 40 other classes, as the unlabeled pool)" if pool else "")
    print(f"run_all: no ESC-10 found at {esc10} nor set (--esc10-dir): ESC-50 at {config.esc50_dir()} (downloaded "
          f"and verified when absent), its clips linked into {made}", flush=True)
    try:
        download.download_esc10(esc10, pool, pool=pool is not None, base_url=config.esc50_url(),
                                verify_options=download.esc50_expectations())
    except (download.DownloadError, datasets.DatasetError, locks.FolderBusyError) as error:
        raise SystemExit(f"run_all.sh: {error}") from None


def _execute(notebook: Path, output: Path, parameters: dict, kernel_log: Path | None = None,
             fetch_data: bool = False) -> None:
    """Run ``notebook`` into ``output`` with ``parameters`` (those it declares); ``fetch_data``: the runner's
    download of ESC-10 first where the run reads it and finds none (:func:`_fetch_esc10`)."""
    import papermill

    if fetch_data:
        _fetch_esc10(parameters)
    _register_atomic_io()
    extra = {}
    if kernel_log is not None:
        # ipykernel forwards what is written to file descriptor 2 into the notebook (and so,
        # through papermill, into the run's log twice); with capture_fd_output off it stays
        # the kernel's own stderr, which goes to kernel_log.
        extra = {"kernel_manager_class": _kernel_manager(kernel_log),
                 "extra_arguments": ["--IPKernelApp.capture_fd_output=False"]}
    # A save a killed runner left half-written (esc_lib.atomic's temporary beside the notebook)
    # was never the notebook: remove it.  The notebook itself is always a complete save.
    for leftover in output.parent.glob(f".{output.name}.*.tmp*"):
        leftover.unlink(missing_ok=True)
    declared = papermill.inspect_notebook(str(notebook))
    # Each notebook receives only the parameters it declares, so papermill does
    # not warn about the others and a typo in a profile is reported below.
    passed = {k: v for k, v in parameters.items() if k in declared}
    papermill.execute_notebook(
        str(notebook),
        ATOMIC_SCHEME + str(output),
        parameters=passed,
        kernel_name=KERNEL_NAME,
        cwd=str(NOTEBOOKS_DIR),
        progress_bar=False,
        log_output=False,  # the stdout/stderr files below get every output; the log would repeat stderr's
        stdout_file=sys.stdout,
        stderr_file=sys.stderr,
        **extra,
    )


def _stop_on_sigterm() -> None:
    """Make SIGTERM (``kill``, a scheduler's stop) stop the runner the way Ctrl-C does."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _stop_kernels(timeout: float = 10.0) -> int:
    """Shut down the notebook kernels this runner started (its child processes); returns how many there were.

    papermill's own clean-up does not run when its event loop is interrupted, and a
    kernel left behind would go on training.  SIGTERM first, SIGKILL after ``timeout`` s.
    """
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=timeout)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    return len(children)


def main(argv: list[str] | None = None) -> int:
    # What the run holds (its run folder's lock, esc_lib.locks) is given back however the runner ends.
    with contextlib.ExitStack() as held:
        return _main(argv, held)


def _main(argv: list[str] | None, held: contextlib.ExitStack) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_profiles:
        from esc_lib.settings import load_profile

        for path in sorted(PROFILES_DIR.glob("*.yaml")) + sorted(PROFILES_DIR.glob("*/*.yaml")):
            name = str(path.relative_to(PROFILES_DIR).with_suffix(""))
            print(f"{name:24s} {load_profile(path).description}")
        return 0

    # The kernels import this project's esc_lib (not another checkout's that an environment
    # shared between checkouts may have been installed from).
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if paths[0] != str(config.PROJECT_ROOT):
        os.environ["PYTHONPATH"] = os.pathsep.join([str(config.PROJECT_ROOT)] + [p for p in paths if p])
    if args.scheduler:
        os.environ["ESC_DASK_SCHEDULER"] = args.scheduler
    for option, variable in config.SOURCE_VARIABLES.items():
        value = getattr(args, option)
        if value:
            os.environ[variable] = str(Path(value).expanduser().resolve()) if option == "esc50_expect" else value
    try:
        config.esc50_url(), config.escus_server()
    except ValueError as error:
        raise SystemExit(f"run_all.sh: {error}") from None
    if os.environ.get("ESC50_EXPECT"):
        os.environ["ESC50_EXPECT"] = str(config.esc50_expect())  # kernels run in notebooks/
    for option, variable in DIRECTORY_OPTIONS.items():
        value = getattr(args, option)
        if value:
            os.environ[variable] = str(Path(value).expanduser().resolve())
        elif os.environ.get(variable):
            # Kernels run in notebooks/: hand them absolute paths.
            os.environ[variable] = str(getattr(config, option)())

    import yaml

    from esc_lib.settings import SettingsError, load_profile

    try:
        profile = load_profile(args.profile)
    except SettingsError as error:
        raise SystemExit(f"run_all.sh: {error}") from None
    parameters = dict(profile.parameters)
    for name, value in args.param:
        try:
            parameters[name] = yaml.safe_load(value)
        except yaml.YAMLError:
            parser.error(f"-p {name} {value!r}: the value is not valid YAML (quote text, e.g. -p {name} 'a b')")
    try:
        stages = sorted({int(s) for s in args.stages.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--stages takes comma-separated stage numbers, got {args.stages!r}")
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        parser.error(f"--stages: no stage {unknown}; stages are {sorted(STAGES)}")

    # A profile given by name is named by it ("search/strong" -> "search-strong"), a file by its stem.
    given = Path(args.profile)
    profile_name = given.stem if given.suffix in (".yaml", ".yml") else args.profile.replace("/", "-")
    run_name = args.run_name or f"{profile_name}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir = config.runs_dir() / run_name
    parameters["run_dir"] = str(run_dir)
    if args.jobs is not None:
        if args.jobs < 0:
            parser.error(f"--jobs takes a number of processes >= 0 (0: one per CPU core), got {args.jobs}")
        parameters["jobs"] = args.jobs  # how fast, not what: not an override that reroutes the results
    # Figures and tables of a run with -p overrides go to figures/<run name>,
    # so they never pass for the profile's own.
    parameters.setdefault("profile", run_name if args.param else profile_name)
    # Every point is validated before any work (and before the run folder exists).
    base = _settings(parameters, "-p overrides" if args.param else profile.path)
    points = profile.points() if args.sweep else [{}]
    ids = [_settings({**parameters, **point}, f"sweep point {point}").config_id for point in points]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise SystemExit(f"run_all.sh: sweep points share the name(s) {repeated}; each point must change a setting the name shows")
    # The test folds against the dataset's, where its metadata is at hand: before any run folder or notebook.
    from esc_lib.data import datasets, recordings

    listed = recordings.dataset_folds(base.dataset, base.labelled_layout, base.n_folds)
    if listed is not None:
        try:
            datasets.check_folds(base.folds, *listed)
        except datasets.DatasetError as error:
            raise SystemExit(f"run_all.sh: {error}") from None
    # One runner per run folder: a second one (the same --run-name) stops here, naming the first.
    from esc_lib import locks

    try:
        held.enter_context(locks.hold(run_dir, "run folder", advice="give this run another --run-name"))
    except locks.FolderBusyError as error:
        raise SystemExit(f"run_all.sh: {error}") from None
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    if base.publish_figures:
        # A published folder of this name that holds none of the profile's configurations as they are now (its
        # settings changed since) moves to archive/ before anything is published over it.
        from esc_lib import runs

        published = parameters["profile"]
        current = {_settings({**parameters, **point}, f"sweep point {point}").config_id for point in profile.points()}
        archived = runs.archive_superseded(config.results_dir() / published, config.figures_dir() / published, current)
        if archived is not None:
            print(f"run_all: results/{published} held the results of other settings: moved to {archived} "
                  "(superseded; its figures to figures/archive/)")

    print(f"run_all: profile {profile_name}, run folder {run_dir} (TensorFlow's own log lines: {run_dir / KERNEL_LOG})")
    for name, location in config.describe().items():
        print(f"run_all:   {name:14s} {location}")
    total_start = time.monotonic()
    _stop_on_sigterm()
    for stage in stages:
        notebook_name, per_point = STAGES[stage]
        notebook = NOTEBOOKS_DIR / notebook_name
        if not notebook.is_file():
            print(f"run_all: stage {stage} ({notebook_name}) is not in this checkout yet; skipped")
            continue
        for index, point in enumerate(points if per_point else [{}], start=1):
            stage_parameters = {**parameters, **point}
            # Only the profile's own point publishes into figures/ and results/;
            # the other grid points keep their figures in the run folder.
            is_base = config_id(stage_parameters) == base.config_id
            stage_parameters["publish_figures"] = is_base and base.publish_figures
            if not is_base and "label_budgets" not in point:
                # Label-budget runs belong to the profile's own point; the grid is about Table 1 (every label).
                stage_parameters["label_budgets"] = [base.reference_budget]
            suffix = f"__{config_id(stage_parameters)}" if per_point else ""
            output = run_dir / "notebooks" / f"{notebook.stem}{suffix}.ipynb"
            label = f"stage {stage} {notebook.stem}" + (f" [{config_id(stage_parameters)}] {index}/{len(points)}" if per_point else "")
            print(f"run_all: {label} ...", flush=True)
            start = time.monotonic()
            try:
                _execute(notebook, output, stage_parameters, kernel_log=run_dir / KERNEL_LOG, fetch_data=True)
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see _stop_on_sigterm)
                stopped = _stop_kernels()
                print(f"run_all: {label} stopped; {stopped} notebook kernel(s) shut down. Finished runs are kept: "
                      f"the same command resumes (the executed notebook so far: {output})", flush=True)
                return 130
            except Exception as error:  # papermill's PapermillExecutionError, or a kernel that died
                raise SystemExit(_failure_line(label, output, error)) from None
            print(f"run_all: {label} done in {_format_seconds(time.monotonic() - start)} -> {output}", flush=True)
    if base.publish_figures:
        # The published folder's run.json gets this command line and its wall time (notebook 04 wrote the rest);
        # its figures lose copies of figures published elsewhere, and results/README.md is regenerated.
        import shlex

        from esc_lib import runs

        published = parameters["profile"]
        overrides = {name: yaml.safe_load(value) for name, value in args.param}
        command = "./run_all.sh " + shlex.join(sys.argv[1:] if argv is None else list(argv))
        wall_time = time.monotonic() - total_start if 4 in stages else None
        runs.finish_publication(config.results_dir() / published, config.figures_dir() / published, run_dir,
                                command=command, overrides=overrides, wall_time_s=wall_time)
    print(f"run_all: finished in {_format_seconds(time.monotonic() - total_start)}; run folder {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
