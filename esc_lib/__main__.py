"""Command line: ``python -m esc_lib`` (or ``esc-lib``).

Subcommands
-----------
predict BUNDLE FILES_OR_FOLDER... [--top-k K] [--csv OUT.csv]
    Classify audio files (any length, rate, channel count; folders are
    searched recursively) with a bundle saved by
    :func:`esc_lib.predict.save_bundle`.  Prints the top-k classes with
    probabilities per file and a summary of the files that could not be
    read; ``--csv`` also writes the table (atomically).
compare RUN [RUN ...] [--base CONFIG [--other CONFIG]] [--budgets N ...] [--methods M ...] [--out STEM]
    Pair runs fold by fold from the ``fold_accuracies.csv`` that notebook 04
    publishes in each results folder (several folders: several seeds of one
    study, paired by fold and seed, each fold averaged over the seeds).
    With ``--base`` and ``--other``: each method of configuration OTHER
    against the same method of BASE (:func:`esc_lib.stats.config_comparison`).
    Without ``--other``: each method against supervised within one
    configuration, BASE when the runs hold several
    (:func:`esc_lib.stats.seed_comparison`).  Prints the caption and the
    table; ``--out STEM`` also writes ``STEM.csv`` and ``STEM.md``.

recommend RUN [RUN ...] [--labels-per-class N] [--alpha A] [--readme FILE [--check]]
    Read a published budgets study (its results folder; several: several
    seeds) as advice (:mod:`esc_lib.guidance`): every method at every budget
    against supervised, paired by fold, and one method per budget - the
    largest gain with p < A (default 0.05), else supervised.
    ``--labels-per-class N`` says which holds at a budget of N.  ``--readme``
    rewrites the block between the study-table markers of FILE (atomically);
    with ``--check`` it writes nothing and says whether the block is current.

results-index [--results DIR] [--check]
    Write ``results/README.md``, the index of every published results folder
    (``results/*/`` and ``results/archive/*/``), from each folder's
    ``run.json`` (:func:`esc_lib.runs.index`).  ``--check`` writes nothing and
    says whether the index is current.

Exit status: for ``predict``, 0 when at least one file was predicted, 1 when
none could be; for ``compare``, 0 when the table was made, 1 when ``--out``
cannot be written; for ``recommend``, 0 when made (with ``--check``: when the
block is current), 1 when FILE cannot be written (with ``--check``: out of
date); for ``results-index``, 0 when written (with ``--check``:
when current), 1 when it cannot be written (with ``--check``: when it is out of
date); 2 for a bad bundle, bad runs, a folder without ``run.json`` or bad
arguments (a one-line message on stderr, no traceback).  TensorFlow is imported only by the
``predict`` command, so ``--help`` stays quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from esc_lib import atomic

__all__ = ["main", "build_parser"]

_PROGRAM = "esc-lib"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _budget(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected labels per class, a non-negative integer (0: all), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog=_PROGRAM,
        description="Semi-supervised environmental sound classification toolkit (esc_lib).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    predict = commands.add_parser(
        "predict",
        help="classify audio files with a saved model bundle",
        description=(
            "Classify audio files of any length, sampling rate and channel count with a saved model bundle. "
            "Each file is cut into the model's windows (5 s for ESC) and the window probabilities are averaged. "
            "Files that cannot be read are listed at the end; they do not stop the others."
        ),
    )
    predict.add_argument("bundle", metavar="BUNDLE", help="bundle folder (holds bundle.json and model.keras)")
    predict.add_argument("inputs", metavar="FILES_OR_FOLDER", nargs="+",
                         help="audio files and/or folders (searched recursively for audio files)")
    predict.add_argument("--top-k", type=_positive_int, default=3, metavar="K",
                         help="classes shown per file (default 3; more than the number of classes shows all)")
    predict.add_argument("--csv", type=Path, metavar="OUT.csv",
                         help="also write the predictions as CSV: file, n_windows, top1_class, top1_probability, ...")
    predict.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    predict.set_defaults(handler=_predict)
    compare = commands.add_parser(
        "compare",
        help="pair runs fold by fold: one configuration against another, or each method against supervised",
        description=(
            "Pair published runs fold by fold, from the fold_accuracies.csv notebook 04 writes into each results "
            "folder. Several folders are several seeds: they are paired by fold and seed, and each fold's accuracy "
            "is averaged over the seeds before the paired t and Wilcoxon tests, which count folds. With --base and "
            "--other, each method of configuration OTHER is put against the same method of BASE; without --other, "
            "each method against supervised within one configuration (BASE, when the runs hold several)."
        ),
    )
    compare.add_argument("runs", metavar="RUN", nargs="+", type=Path,
                         help="results folders holding fold_accuracies.csv (or those CSV files); "
                              "several: several seeds")
    compare.add_argument("--base", metavar="CONFIG",
                         help="the base configuration: its name, or how the name ends (must name exactly one)")
    compare.add_argument("--other", metavar="CONFIG",
                         help="the configuration put against --base, method by method (name or end of name)")
    compare.add_argument("--budgets", type=_budget, nargs="+", metavar="N",
                         help="labels per class to keep (0: all labels; default: every budget)")
    compare.add_argument("--methods", nargs="+", metavar="METHOD",
                         help="methods to compare (default: every one the runs hold; without --other, "
                              "all but supervised)")
    compare.add_argument("--out", type=Path, metavar="STEM", help="also write STEM.csv and STEM.md")
    compare.set_defaults(handler=_compare)
    advice = commands.add_parser(
        "recommend",
        help="which method to use at a label budget, from a published budgets study",
        description=(
            "Read a published budgets study (profiles/budgets.yaml; several results folders: several seeds of it) as "
            "advice: every method at every budget against supervised, paired by fold (each fold averaged over the "
            "seeds), with seconds per fold, and one method per budget - the largest gain over supervised among the "
            "methods ahead of it with a paired t p-value below --alpha; where none is, supervised."
        ),
    )
    advice.add_argument("runs", metavar="RUN", nargs="+", type=Path,
                        help="results folders of one study holding fold_accuracies.csv; several: several seeds")
    advice.add_argument("--labels-per-class", type=_budget, metavar="N",
                        help="your labelled clips per class: say which recommendation holds for it (0: every label)")
    advice.add_argument("--alpha", type=float, default=0.05, metavar="A",
                        help="a method is recommended only when ahead of supervised with p < A (default 0.05)")
    advice.add_argument("--readme", type=Path, metavar="FILE",
                        help="rewrite the study table between the markers of FILE (e.g. README.md)")
    advice.add_argument("--check", action="store_true",
                        help="with --readme: write nothing; exit 1 when the block is not what would be written")
    advice.set_defaults(handler=_recommend)
    index = commands.add_parser(
        "results-index",
        help="write results/README.md, the index of the published results folders, from their run.json",
        description=(
            "Write results/README.md from the run.json of every published results folder (results/*/ and "
            "results/archive/*/): what made each folder (command, commit, date, wall time), whether it scored test "
            "or validation folds, and what supersedes it."
        ),
    )
    index.add_argument("--results", type=Path, metavar="DIR",
                       help="the results folder (default: ESC_RESULTS_DIR, else results/ of the project)")
    index.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 when results/README.md is not what would be written")
    index.set_defaults(handler=_results_index)
    return parser


def _error(command: str, message: str) -> None:
    print(f"{_PROGRAM} {command}: error: {message}", file=sys.stderr)


def _format_file(row, k: int) -> str:
    lines = [f"{row['file']}  ({row['n_windows']} window{'s' if row['n_windows'] != 1 else ''})"
             + (f"  [{row['note']}]" if row.get("note") else "")]
    names = [row[f"top{rank}_class"] for rank in range(1, k + 1)]
    width = max(len(name) for name in names)
    for rank, name in enumerate(names, start=1):
        lines.append(f"  {rank}. {name:<{width}}  {row[f'top{rank}_probability']:.3f}")
    return "\n".join(lines)


def _predict(args: argparse.Namespace) -> int:
    # Quiet TensorFlow's C++ start-up chatter; the user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from esc_lib import predict

    try:
        bundle = predict.load_bundle(args.bundle)
    except predict.BundleError as error:
        _error("predict", str(error))
        return 2
    table, skipped = bundle.predict_files(args.inputs, top_k=args.top_k, progress=args.progress)
    k = min(args.top_k, bundle.n_classes)
    blocks = [_format_file(row, k) for row in table.to_dict("records")]
    if blocks:
        print("\n\n".join(blocks))
    if skipped.n_skipped:
        print(skipped.summary(limit=50), file=sys.stderr)
    if table.empty:
        _error("predict", f"no file could be predicted ({skipped.n_skipped} skipped)")
        return 1
    silent = table.loc[table["note"] == predict.SILENT_NOTE, "file"].tolist()
    if silent:
        print(f"warning: {len(silent)} file(s) are silent (every sample zero) and got a class that means nothing, "
              f"e.g. {silent[0]}", file=sys.stderr)
    print(f"\n{len(table)} file(s) predicted, {skipped.n_skipped} skipped", file=sys.stderr)
    if args.csv is not None:
        try:
            with atomic.atomic_path(args.csv.expanduser()) as temporary:
                table.to_csv(temporary, index=False)
        except OSError as error:
            _error("predict", f"{args.csv}: cannot write the CSV ({error.strerror or error})")
            return 1
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from esc_lib import stats, tables

    if args.other is not None and args.base is None:
        _error("compare", "--other needs --base, the configuration it is put against")
        return 2
    columns = stats.CONFIG_COMPARISON_COLUMNS if args.other is not None else stats.SEED_COMPARISON_COLUMNS
    try:
        folds = tables.load_fold_accuracies([run.expanduser() for run in args.runs], columns, args.budgets)
        if args.other is not None:
            table = stats.config_comparison(folds, args.base, args.other, methods=args.methods)
        else:
            if args.base is not None:
                folds = folds[folds["config"] == stats.match_config(folds, args.base)]
            elif "config" in folds and folds["config"].nunique() > 1:
                names = ", ".join(sorted(map(str, folds["config"].unique())))
                _error("compare", f"the runs hold {folds['config'].nunique()} configurations ({names}): name one with "
                                  "--base, or two with --base and --other")
                return 2
            table = stats.seed_comparison(folds, methods=args.methods)
    except (OSError, ValueError) as error:
        _error("compare", str(error))
        return 2
    print(table.attrs["caption"])
    print()
    print(table.to_markdown(index=False))
    if args.out is not None:
        try:
            written = tables.write_table(table, args.out.expanduser())
        except OSError as error:
            _error("compare", f"{args.out}: cannot write the table ({error.strerror or error})")
            return 1
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _write_or_check(command: str, path: Path, text: str, check: bool, done: str) -> int:
    """Write a generated file atomically, or with ``check`` say whether it already holds ``text`` (exit 0/1)."""
    if check:
        current = path.is_file() and path.read_text(encoding="utf-8") == text
        print(f"{path} is {'current' if current else f'out of date: run python -m esc_lib {command}'}")
        return 0 if current else 1
    try:
        atomic.write_text(path, text)
    except OSError as error:
        _error(command, f"{path}: cannot write it ({error.strerror or error})")
        return 1
    print(done, file=sys.stderr)
    return 0


def _recommend(args: argparse.Namespace) -> int:
    from esc_lib import guidance, stats, tables

    if args.check and args.readme is None:
        _error("recommend", "--check needs --readme, the file whose block it checks")
        return 2
    runs = [run.expanduser() for run in args.runs]
    try:
        folds = tables.load_fold_accuracies(runs, stats.SEED_COMPARISON_COLUMNS)
        table = guidance.study(folds)
        advice = guidance.recommend(table, args.alpha)
    except (OSError, ValueError) as error:
        _error("recommend", str(error))
        return 2
    block = guidance.headline(table, advice, sources=[str(run) for run in args.runs], alpha=args.alpha)
    if args.readme is None:
        print(block, end="")
    if args.labels_per_class is not None:
        chosen, note = guidance.for_budget(advice, args.labels_per_class)
        yours = f"At {args.labels_per_class} labelled clips per class" if args.labels_per_class else "With every label"
        print(f"\n{yours} ({note}): {chosen.method} - {chosen.reason}.")
    if args.readme is None:
        return 0
    path = args.readme.expanduser()
    try:
        text = guidance.replace_block(path.read_text(encoding="utf-8"), block, name=str(path))
    except OSError as error:
        _error("recommend", f"{path}: cannot read it ({error.strerror or error})")
        return 2
    except ValueError as error:
        _error("recommend", str(error))
        return 2
    return _write_or_check("recommend", path, text, args.check, f"wrote the study table into {path}")


def _results_index(args: argparse.Namespace) -> int:
    from esc_lib import config, runs

    root = args.results.expanduser() if args.results is not None else None
    try:
        text = runs.index(root)
    except (OSError, ValueError) as error:
        _error("results-index", str(error))
        return 2
    path = (root if root is not None else config.results_dir()) / runs.INDEX_FILE
    return _write_or_check("results-index", path, text, args.check,
                           f"wrote {path} ({len(runs.result_folders(path.parent))} folders)")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help (0) and on bad arguments (2).
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
