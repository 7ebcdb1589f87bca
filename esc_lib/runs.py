"""Published results folders that describe themselves: ``run.json``, the index, figures published once.

Every folder under ``results/`` holds a ``run.json`` saying what made it, so a
table can be traced to a command without reading the README's prose:

``folder``, ``figures``
    The results folder and its figures folder, relative to the project root.
``question``
    What the run answers, in one line (the profile's description for a new run).
``profile``, ``run_dir``, ``configurations``
    The profile it published for, the run folder under ``runs/`` and the
    configurations it trained (``kept_configurations``: those of the profile's
    sweep kept from an earlier publication, see :mod:`esc_lib.report`).
``command``, ``overrides``
    The command line (``./run_all.sh ...``; notebook 04 run by hand says so)
    and its ``-p`` overrides as a mapping.
``commit``, ``commit_is``
    A commit of this repository and what it is: for a new run the checkout's
    HEAD when notebook 04 published (``-dirty`` when the tree had changes).
``date``, ``machine_cpu``, ``wall_time_s``
    When it was published, the CPU it ran on and the wall time of the whole
    command in seconds (written by the runner at its end); ``null`` where not
    known, never guessed.
``scored_on``
    ``"test"`` or ``"validation"`` (a search, whose test folds were never scored).
``superseded_by``
    The folder whose run replaces this one, or ``null`` while it is current.
    Superseded folders live under ``results/archive/`` (and their figures under
    ``figures/archive/``).
``figures_elsewhere``
    Figures this run made that are byte-identical to one already published
    elsewhere: name -> the path of the copy kept (:func:`deduplicate_figures`).

``python -m esc_lib results-index`` writes ``results/README.md`` from them
(:func:`index`): every folder, current ones first.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from esc_lib import atomic, config

__all__ = [
    "RUN_FILE",
    "INDEX_FILE",
    "ARCHIVE",
    "FIELDS",
    "machine_cpu",
    "git_commit",
    "read_record",
    "write_record",
    "record_publication",
    "finish_publication",
    "deduplicate_figures",
    "result_folders",
    "index",
    "write_index",
]

#: The file in every published results folder.
RUN_FILE = "run.json"
#: The generated index of ``results/``.
INDEX_FILE = "README.md"
#: Where superseded folders live, under ``results/`` and ``figures/``.
ARCHIVE = "archive"
#: The fields of a ``run.json``, in the order they are written (others follow).
FIELDS = ("folder", "figures", "question", "profile", "run_dir", "configurations", "kept_configurations", "command",
          "overrides", "commit", "commit_is", "date", "machine_cpu", "wall_time_s", "wall_time_source", "scored_on",
          "superseded_by", "notes", "derived", "figures_elsewhere")


def machine_cpu() -> str:
    """This machine's CPU in words, with the cores this process may use: ``"Intel(R) Xeon(R) Processor, 2 cores"``."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"


def git_commit(root: str | os.PathLike | None = None) -> str | None:
    """The checkout's HEAD, short, with ``-dirty`` when tracked files differ from it; None outside a git checkout."""
    root = Path(root) if root is not None else config.PROJECT_ROOT
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=30, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if changed else head or None


def _relative(path: str | os.PathLike) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(config.PROJECT_ROOT.resolve()))
    except ValueError:
        return str(path)


def read_record(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's ``run.json`` as a dict (empty when there is none).

    Raises
    ------
    ValueError
        If the file is not a JSON object (the message names it).
    """
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}: must hold a JSON object, found {type(record).__name__}")
    return record


def write_record(folder: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``run.json`` atomically, the :data:`FIELDS` first in their order; returns its path."""
    ordered = {name: record[name] for name in FIELDS if name in record}
    ordered.update({name: value for name, value in record.items() if name not in ordered})
    path = Path(folder) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(ordered, indent=2, ensure_ascii=False) + "\n")
    return path


def record_publication(results_folder: str | os.PathLike, figures_folder: str | os.PathLike, settings, run_dir, *,
                       configurations=(), kept=(), question: str | None = None) -> Path:
    """Notebook 04's part of ``run.json``: what it knows when it publishes into ``results_folder``.

    Parameters
    ----------
    results_folder, figures_folder : path
        Where the tables and figures are published.
    settings : esc_lib.settings.Settings
        The profile's own configuration (its ``score`` and ``profile``).
    run_dir : path
        The run folder the tables come from.
    configurations, kept : iterable of str
        The configurations this run trained, and those of the profile's sweep
        kept from an earlier publication.
    question : str, optional
        One line on what the run answers; default the profile's description.

    The command line, its overrides and the wall time are the runner's
    (:func:`finish_publication`); a notebook run by hand leaves them so.  A
    republished folder is current again: ``superseded_by`` is reset.
    """
    record = read_record(results_folder)
    record.update({
        "folder": _relative(results_folder),
        "figures": _relative(figures_folder),
        "question": question or record.get("question"),
        "profile": settings.profile,
        "run_dir": _relative(run_dir),
        "configurations": sorted(set(configurations)),
        "kept_configurations": sorted(set(kept)),
        "command": "notebooks/04_results.ipynb (run by hand: the runner fills in its command)",
        "overrides": None,
        "commit": git_commit(),
        "commit_is": "HEAD of the checkout when notebook 04 published (-dirty: with uncommitted changes)",
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine_cpu": machine_cpu(),
        "wall_time_s": None,
        "wall_time_source": None,
        "scored_on": settings.score,
        "superseded_by": None,
    })
    for stale in ("notes", "derived", "figures_elsewhere"):  # of the earlier publication
        record.pop(stale, None)
    return write_record(results_folder, record)


def finish_publication(results_folder: str | os.PathLike, figures_folder: str | os.PathLike, run_dir, *,
                       command: str, overrides: Mapping[str, Any] | None, wall_time_s: float | None) -> bool:
    """The runner's part, at its end: the command, its overrides and the wall time, then figures and the index.

    The record is completed only when this command ran notebook 04
    (``wall_time_s`` is not None) and that notebook published the folder
    from this run (its ``run_dir`` is ``run_dir``); returns whether it was.
    Either way the figures folder is rid of copies
    (:func:`deduplicate_figures`) and ``results/README.md`` is regenerated,
    since notebooks 01-03 publish figures too.
    """
    results_folder, figures_folder = Path(results_folder), Path(figures_folder)
    record = read_record(results_folder)
    mine = wall_time_s is not None and bool(record) and record.get("run_dir") == _relative(run_dir)
    if mine:
        record.update({"command": command, "overrides": dict(overrides) if overrides else None,
                       "wall_time_s": round(float(wall_time_s), 1),
                       "wall_time_source": "the runner: the whole command, every stage"})
        write_record(results_folder, record)
    if figures_folder.is_dir():
        deduplicate_figures(figures_folder, figures_folder.parent, results_folder if results_folder.is_dir() else None)
    if results_folder.parent.is_dir():
        try:
            write_index(results_folder.parent)
        except ValueError as error:  # a folder of an older checkout without run.json: the run itself is done
            print(f"run_all: {results_folder.parent / INDEX_FILE} not regenerated: {error}")
    return mine


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _keep_first(name: str) -> tuple:
    # Within one folder notebook 04's name is kept (04_learning_curves.png), the stable one to link to;
    # notebook 03's per-configuration copy of the same drawing goes.
    return (not name.startswith("04_"), name)


def deduplicate_figures(figure_dir: str | os.PathLike, figures_root: str | os.PathLike | None = None,
                        results_folder: str | os.PathLike | None = None) -> dict[str, str]:
    """Remove the PNGs of ``figure_dir`` that are byte-identical to a figure kept elsewhere; return name -> kept copy.

    A figure already published in another folder under ``figures_root`` is
    kept there; within ``figure_dir`` notebook 04's name is kept over notebook
    03's per-configuration copy.  The pointers are added to the
    ``figures_elsewhere`` of ``results_folder``'s ``run.json`` when it is given;
    then only folders whose results folder (the same path under
    ``results_folder``'s parent) has a ``run.json`` count as published, so a
    pointer never goes to the figures of a run stopped before notebook 04.
    """
    figure_dir = Path(figure_dir)
    seen: dict[str, Path] = {}
    if figures_root is not None:
        figures_root = Path(figures_root)
        for path in sorted(figures_root.rglob("*.png")):
            if path.parent.resolve() == figure_dir.resolve():
                continue
            if results_folder is not None:
                counterpart = Path(results_folder).parent / path.parent.relative_to(figures_root) / RUN_FILE
                if not counterpart.is_file():
                    continue
            seen.setdefault(_digest(path), path)
    removed: dict[str, str] = {}
    for path in sorted(figure_dir.glob("*.png"), key=lambda p: _keep_first(p.name)):
        digest = _digest(path)
        if digest in seen:
            removed[path.name] = _relative(seen[digest])
            path.unlink()
        else:
            seen[digest] = path
    if removed and results_folder is not None:
        record = read_record(results_folder)
        record["figures_elsewhere"] = {**record.get("figures_elsewhere", {}), **removed}
        write_record(results_folder, record)
    return removed


def published_configurations(results_folder: str | os.PathLike) -> set[str]:
    """The configurations a published folder holds: its ``run.json``'s, else the ``config`` column of its tables."""
    folder = Path(results_folder)
    record = read_record(folder)
    names = set(record.get("configurations") or []) | set(record.get("kept_configurations") or [])
    if names:
        return names
    import pandas as pd

    for table in ("fold_accuracies.csv", "summary.csv"):
        path = folder / table
        if path.is_file():
            frame = pd.read_csv(path)
            if "config" in frame.columns:
                names |= set(frame["config"].dropna().astype(str))
    return names


def archive_superseded(results_folder: str | os.PathLike, figures_folder: str | os.PathLike,
                       configurations: Iterable[str]) -> Path | None:
    """Move a published folder to ``archive/`` when a run is about to publish other configurations into it.

    A profile whose settings changed publishes under the same name; without
    this its run would write over the tables of the old settings.  When
    ``results_folder`` holds a ``run.json`` and none of its configurations
    (:func:`published_configurations`) is among ``configurations`` (the
    profile's points as they are now), the folder moves to
    ``results/archive/<name>-<its date>`` and its figures to
    ``figures/archive/`` beside it; its ``run.json`` says where it went and
    ``superseded_by`` names the folder it leaves to.  Pointers of other
    folders into its figures (``figures_elsewhere``) follow it.  A folder
    holding one of ``configurations`` (a republished or resumed run, or a
    sweep's other points) stays, for its rows to be kept beside the new ones.

    Returns
    -------
    archived : Path or None
        The archived results folder, None when nothing moved.
    """
    results_folder, figures_folder = Path(results_folder), Path(figures_folder)
    record = read_record(results_folder)
    if not record or published_configurations(results_folder) & set(configurations):
        return None
    date = str(record.get("date") or "")[:10].replace("-", "") or datetime.now().strftime("%Y%m%d")
    results_archive = results_folder.parent / ARCHIVE
    figures_archive = figures_folder.parent / ARCHIVE
    name, n = f"{results_folder.name}-{date}", 1
    while (results_archive / name).exists() or (figures_archive / name).exists():
        n += 1
        name = f"{results_folder.name}-{date}-{n}"
    old_figures, new_figures = _relative(figures_folder), _relative(figures_archive / name)
    results_archive.mkdir(parents=True, exist_ok=True)
    results_folder.rename(results_archive / name)
    if figures_folder.is_dir():
        figures_archive.mkdir(parents=True, exist_ok=True)
        figures_folder.rename(figures_archive / name)
    record.update({"folder": _relative(results_archive / name), "figures": new_figures,
                   "superseded_by": results_folder.name})  # as every archived folder names it: relative to results/
    write_record(results_archive / name, record)
    # Pointers of every published folder (this one's too) into the moved figures follow them.
    for folder in result_folders(results_folder.parent):
        other = read_record(folder)
        pointers = other.get("figures_elsewhere") or {}
        moved = {figure: new_figures + target[len(old_figures):] if target.startswith(old_figures + "/") else target
                 for figure, target in pointers.items()}
        if moved != pointers:
            write_record(folder, {**other, "figures_elsewhere": moved})
    return results_archive / name


def result_folders(results_root: str | os.PathLike | None = None) -> list[Path]:
    """Every published results folder: the folders of ``results/`` and of ``results/archive/``."""
    root = Path(results_root) if results_root is not None else config.results_dir()
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and p.name != ARCHIVE]
    if (root / ARCHIVE).is_dir():
        folders += [p for p in sorted((root / ARCHIVE).iterdir()) if p.is_dir()]
    return folders


def _cell(value) -> str:
    if value is None or value == "" or value == {}:
        return "-"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _minutes(seconds) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(int(round(float(seconds))), 60)
    return f"{minutes} min {rest} s"


def index(results_root: str | os.PathLike | None = None) -> str:
    """``results/README.md``: every folder's ``run.json`` in two tables, current folders then superseded ones.

    Raises
    ------
    ValueError
        If a folder has no ``run.json`` (the message names every such folder) or
        one that is not a JSON object.
    """
    root = Path(results_root) if results_root is not None else config.results_dir()
    folders = result_folders(root)
    missing = [str(folder.relative_to(root)) for folder in folders if not (folder / RUN_FILE).is_file()]
    if missing:
        raise ValueError(f"results folders without {RUN_FILE}: {', '.join(missing)}")
    rows = [(folder, read_record(folder)) for folder in folders]
    lines = [
        "# Published results",
        "",
        f"Generated by `python -m esc_lib results-index` from each folder's `{RUN_FILE}` (see `esc_lib/runs.py` for "
        "its fields); do not edit by hand. *Scored on* says whether a folder's numbers are test-fold accuracies or "
        "a search's validation-fold accuracies (whose test folds were never scored). The commit is the one named by "
        "*commit is* in each `run.json` (for folders published before `run.json` existed: the commit that published "
        "the tables). Narratives of the studies: `docs/experiments/`.",
        "",
    ]
    for title, current in (("Current", True), ("Superseded (kept for the record)", False)):
        chosen = [(folder, record) for folder, record in rows if (record.get("superseded_by") is None) == current]
        if not chosen:
            continue
        lines += [f"## {title}", "",
                  "| folder | question | scored on | date | commit | wall time | command |" if current else
                  "| folder | question | scored on | date | commit | superseded by | command |",
                  "|---|---|---|---|---|---|---|"]
        for folder, record in chosen:
            name = folder.relative_to(root).as_posix()
            last = _minutes(record.get("wall_time_s")) if current else f"`{_cell(record.get('superseded_by'))}`"
            command = record.get("command")
            lines.append(
                f"| [`{name}`]({name}/) | {_cell(record.get('question'))} | {_cell(record.get('scored_on'))} "
                f"| {_cell(str(record.get('date') or '')[:10])} | {_cell(record.get('commit'))} | {last} "
                f"| {'`' + _cell(command) + '`' if command else '-'} |")
        lines.append("")
    return "\n".join(lines)


def write_index(results_root: str | os.PathLike | None = None) -> Path:
    """Write :func:`index` to ``results/README.md`` (atomically); returns its path."""
    root = Path(results_root) if results_root is not None else config.results_dir()
    path = root / INDEX_FILE
    atomic.write_text(path, index(root))
    return path
