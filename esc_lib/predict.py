"""Prediction on your own audio with a saved model bundle.

A *bundle* is a folder that holds everything needed to classify new audio
the way a model was trained::

    my-bundle/
        model.keras     the trained classifier (Keras 3 format)
        bundle.json     format version, feature parameters, normalisation
                        statistics, class names, window settings, free-form info

:func:`save_bundle` writes one (into a temporary sibling folder that is
renamed into place, so a bundle on disk is always complete),
:func:`export_from_experiment` writes one from a classifier trained by
:class:`esc_lib.experiment.Experiment`, and :func:`load_bundle` reads one
back with a clear :class:`BundleError` for anything missing or wrong.

How a file is classified
------------------------
The file is decoded, mixed down to mono and resampled to the bundle's rate
(:func:`esc_lib.data.audio.read_audio`), cut into consecutive windows of the
clip length the model was trained on (5 s for ESC) by
:func:`esc_lib.data.audio.split_windows` (a partial last window of at least
``min_last_seconds`` is padded with zeros, a shorter one dropped; a file
shorter than one window is padded to one window, so any non-empty file gets
a prediction; one shorter than ``min_clip_seconds`` gets it with a note and a
warning, being mostly padding), each window is peak-normalised (when the features were),
turned into log-mel features (:func:`esc_lib.features.logmel`), standardised
with the training statistics and classified.  The file's class
probabilities are the mean of its windows' probabilities.

From Python::

    from esc_lib.predict import load_bundle
    bundle = load_bundle("runs/paper/bundles/bs32-f64-unpool-bn0-pretrained-fold1")
    table, skipped = bundle.predict_files(["recordings/"], top_k=3)

From the command line (see :mod:`esc_lib.__main__`)::

    python -m esc_lib predict BUNDLE recordings/ --top-k 3 --csv predictions.csv
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

import esc_lib
from esc_lib.data import audio
from esc_lib.features import FEATURE_VERSION, FeatureParams, Standardizer, logmel

if TYPE_CHECKING:  # keras (and TensorFlow) are imported only when a model is needed.
    import keras

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "MODEL_FILE",
    "BUNDLE_FILE",
    "DEFAULT_WINDOWS",
    "BundleError",
    "Bundle",
    "save_bundle",
    "load_bundle",
    "export_from_experiment",
]

#: Value of the ``format`` field that marks a ``bundle.json`` as ours.
BUNDLE_FORMAT = "esc_lib.bundle"
#: Version of the bundle layout this module writes and reads.
BUNDLE_VERSION = 1
#: File names inside a bundle folder.
MODEL_FILE = "model.keras"
BUNDLE_FILE = "bundle.json"
#: How files are cut into windows and the windows' predictions combined.
DEFAULT_WINDOWS = {"last": "pad", "min_last_seconds": 1.0, "aggregate": "mean"}

_REQUIRED_FIELDS = ("format_version", "feature_params", "feature_version", "standardizer", "classes", "windows")
# Files whose windows are classified in one model call by predict_files.
_FILES_PER_BATCH = 32


#: The ``note`` of a predicted file whose every sample is zero.
SILENT_NOTE = "silent: every sample is zero, so the classes mean nothing"
#: The start of the ``note`` of a predicted file shorter than ``min_clip_seconds``.
SHORT_NOTE = "short:"


class BundleError(ValueError):
    """A bundle path or its content is unusable; the message names the path and what to do."""


def _one_line(error: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (Keras errors span many), shortened."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_classes(classes, where: str) -> list[str]:
    if isinstance(classes, str) or not isinstance(classes, (list, tuple)):
        raise BundleError(f"{where}: classes must be a list of class names, got {type(classes).__name__}")
    classes = list(classes)
    if len(classes) < 2 or not all(isinstance(name, str) and name for name in classes):
        raise BundleError(f"{where}: classes must list at least 2 non-empty names, got {classes!r}")
    if len(set(classes)) != len(classes):
        duplicates = sorted({name for name in classes if classes.count(name) > 1})
        raise BundleError(f"{where}: class names must be unique, repeated: {duplicates}")
    return classes


def _check_windows(windows, where: str) -> dict:
    if not isinstance(windows, dict):
        raise BundleError(f"{where}: 'windows' must be a mapping like {DEFAULT_WINDOWS}, got {windows!r}")
    merged = {**DEFAULT_WINDOWS, **windows}
    unknown = sorted(set(merged) - set(DEFAULT_WINDOWS))
    if unknown:
        raise BundleError(f"{where}: unknown window setting(s) {unknown}; known: {sorted(DEFAULT_WINDOWS)}")
    if merged["last"] not in ("pad", "drop"):
        raise BundleError(f"{where}: windows.last must be 'pad' or 'drop', got {merged['last']!r}")
    minimum = merged["min_last_seconds"]
    if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or not minimum >= 0:
        raise BundleError(f"{where}: windows.min_last_seconds must be a number >= 0, got {minimum!r}")
    if merged["aggregate"] != "mean":
        raise BundleError(f"{where}: windows.aggregate must be 'mean', got {merged['aggregate']!r}")
    merged["min_last_seconds"] = float(minimum)
    return merged


def _check_model(model, feature_params: FeatureParams, standardizer: Standardizer, classes: list[str], where: str) -> None:
    """The model, features, statistics and classes must fit together."""
    output_shape = tuple(model.output_shape)
    if len(output_shape) != 2 or output_shape[-1] != len(classes):
        raise BundleError(
            f"{where}: the model outputs {output_shape[1:]} values per input but the bundle names "
            f"{len(classes)} classes; export the bundle again from the matching training run"
        )
    input_shape = tuple(model.input_shape[1:])
    if input_shape != tuple(feature_params.shape):
        raise BundleError(
            f"{where}: the model expects inputs of shape {input_shape} but the feature parameters give "
            f"{tuple(feature_params.shape)}; the bundle mixes a model and features from different runs"
        )
    expected = (feature_params.n_mels, feature_params.n_channels)
    if not standardizer.fitted or tuple(standardizer.mean_.shape) != expected:
        state = tuple(standardizer.mean_.shape) if standardizer.fitted else "not fitted"
        raise BundleError(
            f"{where}: the standardizer must be fitted on {expected[0]} mel bands x {expected[1]} channel(s), "
            f"got {state}"
        )


@dataclass
class Bundle:
    """A trained classifier with everything needed to use it on new audio.

    Attributes
    ----------
    model : keras.Model
        Input [shape=(batch, n_mels, n_frames, n_channels)], output class
        probabilities [shape=(batch, K)].
    feature_params : FeatureParams
        How the model's inputs were computed.
    standardizer : Standardizer
        Fitted on the model's training data.
    classes : list of str [length=K]
        ``classes[i]`` names output ``i``.
    info : dict
        Free-form description (training configuration, fold, accuracy, ...).
    windows : dict
        ``last``, ``min_last_seconds`` (see :func:`esc_lib.data.audio.split_windows`)
        and ``aggregate`` (``"mean"`` of the window probabilities).
    path : Path or None
        The folder it was loaded from.
    """

    model: "keras.Model"
    feature_params: FeatureParams
    standardizer: Standardizer
    classes: list[str]
    info: dict = field(default_factory=dict)
    windows: dict = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    path: Path | None = None

    def __post_init__(self) -> None:
        self.classes = _check_classes(self.classes, "Bundle")
        self.windows = _check_windows(self.windows, "Bundle")
        _check_model(self.model, self.feature_params, self.standardizer, self.classes, "Bundle")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    # ------------------------------------------------------------ prediction
    def features(self, windows: np.ndarray) -> np.ndarray:
        """Standardised model inputs of audio windows.

        Parameters
        ----------
        windows : np.ndarray [shape=(n_windows, feature_params.n_samples)]
            Mono audio at ``feature_params.sr``; each window is
            peak-normalised here when the features were (a window that
            already is stays exactly the same).

        Returns
        -------
        X : np.ndarray [shape=(n_windows, n_mels, n_frames, n_channels), dtype=float32]
        """
        params = self.feature_params
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2 or windows.shape[1] != params.n_samples:
            raise ValueError(
                f"windows must have shape (n_windows, {params.n_samples}) "
                f"({params.duration} s at {params.sr} Hz), got {windows.shape}"
            )
        X = np.empty((len(windows), *params.shape), dtype=np.float32)
        for i, window in enumerate(windows):
            X[i] = logmel(audio.peak_normalise(window) if params.normalise else window, params)
        return self.standardizer.transform(X)

    def _classify(self, X: np.ndarray) -> np.ndarray:
        from esc_lib import training

        return np.asarray(training.predict_proba(self.model, X), dtype=np.float64)

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities of each audio window.

        Parameters
        ----------
        windows : np.ndarray [shape=(n_windows, feature_params.n_samples)]
            See :meth:`features`.

        Returns
        -------
        probabilities : np.ndarray [shape=(n_windows, K), dtype=float64]
            Rows sum to 1; column ``i`` is ``classes[i]``.
        """
        return self._classify(self.features(windows))

    def file_windows(self, path: str | Path) -> np.ndarray:
        """A file of any length, rate and channel count as the model's windows.

        Returns
        -------
        windows : np.ndarray [shape=(n_windows >= 1, feature_params.n_samples), dtype=float32]
            Not yet peak-normalised (:meth:`features` does that).

        Raises
        ------
        esc_lib.data.audio.AudioError
            If the file is missing, cannot be decoded, holds no samples or is cut short.
        """
        return self._windows(audio.read_audio(path, self.feature_params.sr))

    def _windows(self, samples: np.ndarray) -> np.ndarray:
        params = self.feature_params
        windows = audio.split_windows(
            samples, params.sr, params.duration, self.windows["last"], self.windows["min_last_seconds"], normalise=False
        )
        if len(windows) == 0:
            # Shorter than one window (and than min_last_seconds): pad it to one
            # window, as ESC clips themselves are padded to 5 s.
            windows = audio.fix_length(samples, params.n_samples)[np.newaxis]
        return windows

    def predict_file(self, path: str | Path, min_clip_seconds: float = audio.MIN_CLIP_SECONDS) -> np.ndarray:
        """Class probabilities of one file: the mean over its windows.

        Returns
        -------
        probabilities : np.ndarray [shape=(K,), dtype=float64]

        Raises
        ------
        esc_lib.data.audio.AudioError
            If the file cannot be read as audio.

        Warns
        -----
        UserWarning
            The file is shorter than ``min_clip_seconds``: classified from mostly padding.
        """
        samples = audio.read_audio(path, self.feature_params.sr)
        seconds = len(samples) / self.feature_params.sr
        if seconds < min_clip_seconds:
            warnings.warn(f"{audio.printable(path)}: "
                          f"{_short_note(seconds, min_clip_seconds, self.feature_params.duration)}", stacklevel=2)
        return self.predict_windows(self._windows(samples)).mean(axis=0)

    def predict_files(
        self,
        files_or_folders: str | Path | Iterable[str | Path],
        top_k: int = 3,
        progress: bool = False,
        n_jobs: int | None = None,
        min_clip_seconds: float = audio.MIN_CLIP_SECONDS,
    ) -> tuple[pd.DataFrame, audio.SkipReport]:
        """The top-k classes of many files; unreadable files are reported, not fatal.

        Parameters
        ----------
        files_or_folders : str, Path or iterable of them
            Audio files, and folders searched recursively for audio files
            (:func:`esc_lib.data.datasets.find_audio_files`, sorted by path).
        top_k : int > 0
            Classes per file; more than K gives all K.
        progress : bool
            Show a tqdm progress bar over the files.
        n_jobs : int > 0, optional
            Threads that decode files and compute features (default: the
            cores available to the process).
        min_clip_seconds : float >= 0
            A file shorter than this (the ``min_clip_seconds`` setting) is still
            classified, but mostly from padding: it gets a note starting with
            :data:`SHORT_NOTE` and a warning names how many there were.

        Returns
        -------
        table : pd.DataFrame [shape=(n_predicted, 2 + 2 * k)]
            One row per file that could be read, in input order.  Wide
            layout: ``file`` (str), ``n_windows`` (int), then for rank
            r = 1..k ``top{r}_class`` (str) and ``top{r}_probability``
            (float, mean over the file's windows; decreasing in r), and
            ``note``: :data:`SILENT_NOTE` for a file whose every sample is
            zero (its classes mean nothing), a note starting with
            :data:`SHORT_NOTE` for one shorter than ``min_clip_seconds`` (silent
            or not), else empty.
        skipped : esc_lib.data.audio.SkipReport
            ``n_used`` files predicted; each unreadable file (or cut short, or
            missing path, or folder without audio) with the reason.  A file
            named twice (or through a hard or symbolic link) is predicted once.

        Warns
        -----
        UserWarning
            When some files are shorter than ``min_clip_seconds``.
        """
        from tqdm import tqdm  # text bar (tqdm.auto wants ipywidgets in a notebook)

        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        k = min(int(top_k), self.n_classes)
        if isinstance(min_clip_seconds, bool) or not isinstance(min_clip_seconds, (int, float)) or not min_clip_seconds >= 0:
            raise ValueError(f"min_clip_seconds must be a number of seconds >= 0, got {min_clip_seconds!r}")
        report = audio.SkipReport()
        files = _expand(files_or_folders, report)
        if n_jobs is None:
            jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        elif isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
            raise ValueError(f"n_jobs must be a positive integer or None, got {n_jobs!r}")
        else:
            jobs = int(n_jobs)

        def load(path: Path):
            try:
                samples = audio.read_audio(path, self.feature_params.sr)
                windows = self._windows(samples)
                return self.features(windows), not np.any(windows), len(samples) / self.feature_params.sr
            except audio.AudioError as error:
                return error

        rows, short = [], []
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="esc-predict") as executor, \
                tqdm(total=len(files), desc="predict", unit="file", disable=not progress) as bar:
            for start in range(0, len(files), _FILES_PER_BATCH):
                chunk = files[start : start + _FILES_PER_BATCH]
                loaded = []
                for path, result in zip(chunk, executor.map(load, chunk)):
                    if isinstance(result, audio.AudioError):
                        report.skip(path, _reason(result, path))
                    else:
                        loaded.append((path, *result))
                bar.update(len(chunk))
                if not loaded:
                    continue
                # One model call for the windows of the whole chunk.
                probabilities = self._classify(np.concatenate([X for _, X, _, _ in loaded]))
                bounds = np.cumsum([0] + [len(X) for _, X, _, _ in loaded])
                for (path, X, silent, seconds), begin, end in zip(loaded, bounds[:-1], bounds[1:]):
                    row = _row(path, probabilities[begin:end].mean(axis=0), len(X), self.classes, k)
                    # A file of zeros, or of a few samples padded to a window, still gets a class (the
                    # model must answer), which means nothing or little: say so.
                    row["note"] = SILENT_NOTE if silent else ""
                    if seconds < min_clip_seconds:  # (a few samples may resample to none: short, not silent)
                        row["note"] = _short_note(seconds, min_clip_seconds, self.feature_params.duration)
                        short.append(path)
                    rows.append(row)
        report.n_used = len(rows)
        if short:
            warnings.warn(f"{len(short)} file(s) shorter than min_clip_seconds ({min_clip_seconds:g} s) were classified "
                          f"from mostly padding, e.g. {audio.printable(short[0])}; their note says so", stacklevel=2)
        columns = ["file", "n_windows"] + [f"top{r}_{what}" for r in range(1, k + 1) for what in ("class", "probability")]
        columns.append("note")
        table = pd.DataFrame(rows, columns=columns)
        table["n_windows"] = table["n_windows"].astype(np.int64)
        return table, report

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write this bundle to a folder (see :func:`save_bundle`)."""
        return save_bundle(path, self.model, self.feature_params, self.standardizer, self.classes,
                           info=self.info, windows=self.windows, overwrite=overwrite)

    def describe(self) -> str:
        """A few lines on what the bundle is (for logs and the command line)."""
        params = self.feature_params
        lines = [
            f"bundle {self.path}" if self.path else "bundle (not saved)",
            f"  {self.n_classes} classes: {', '.join(self.classes)}",
            f"  inputs {params.shape} from {params.duration} s windows at {params.sr} Hz",
        ]
        shown = {key: self.info[key] for key in ("config_id", "method", "test_fold", "test_accuracy") if key in self.info}
        if shown:
            lines.append("  " + ", ".join(f"{key}={value}" for key, value in shown.items()))
        return "\n".join(lines)


def _reason(error: audio.AudioError, path: Path) -> str:
    """The error without the leading path (the report lists the path already)."""
    text = _one_line(error)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _short_note(seconds: float, minimum: float, window: float) -> str:
    return (f"{SHORT_NOTE} {seconds:.3g} s of audio, under min_clip_seconds ({minimum:g} s), padded to a {window:g} s "
            "window, so the classes mean little")


def _row(path: Path, probabilities: np.ndarray, n_windows: int, classes: list[str], k: int) -> dict:
    # A stable sort keeps the class order for ties, so the ranking is deterministic.
    order = np.argsort(-probabilities, kind="stable")[:k]
    row = {"file": str(path), "n_windows": n_windows}
    for rank, index in enumerate(order, start=1):
        row[f"top{rank}_class"] = classes[index]
        row[f"top{rank}_probability"] = float(probabilities[index])
    return row


def _expand(files_or_folders, report: audio.SkipReport) -> list[Path]:
    """Files as given and the audio files inside folders, each file once; missing paths go to the report.

    A file is one file by device and inode (:func:`esc_lib.data.datasets.file_identity`): named twice,
    inside two given folders, or through a hard or symbolic link, it is predicted once, under its first name.
    """
    from esc_lib.data import datasets

    if isinstance(files_or_folders, (str, os.PathLike)):
        files_or_folders = [files_or_folders]
    files: list[Path] = []
    seen: set = set()
    for item in files_or_folders:
        path = Path(item).expanduser()
        if path.is_dir():
            found = datasets.find_audio_files(path)
            if not found:
                extensions = ", ".join(datasets.AUDIO_EXTENSIONS)
                report.skip(path, f"folder holds no audio files (looked for {extensions})")
        elif path.exists():
            found = [path]
        else:
            report.skip(path, "no such file or folder")
            found = []
        for file in found:
            identity = datasets.file_identity(file)
            if identity not in seen:
                seen.add(identity)
                files.append(file)
    return files


# ---------------------------------------------------------------------------
# Saving and loading


def _jsonable(value):
    """``json.dumps`` default: NumPy scalars and arrays, paths."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _keras_version() -> str:
    import keras

    return keras.__version__


def save_bundle(
    path: str | Path,
    model: "keras.Model",
    feature_params: FeatureParams,
    standardizer: Standardizer,
    classes: Iterable[str],
    info: dict | None = None,
    windows: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a classifier and its preprocessing as a bundle folder.

    The folder is written under a temporary name beside ``path`` and renamed
    into place, so it is never half-written.

    Parameters
    ----------
    path : str or Path
        The bundle folder to create.
    model : keras.Model
        A classifier with input ``feature_params.shape`` and ``len(classes)``
        outputs.
    feature_params : FeatureParams
    standardizer : Standardizer
        Fitted.
    classes : iterable of str
        Name of each output, in output order.
    info : dict, optional
        Free-form JSON-able description (training configuration, fold,
        accuracy, ...).  The esc_lib and Keras versions and the creation
        time are recorded anyway.
    windows : dict, optional
        Overrides of :data:`DEFAULT_WINDOWS`.
    overwrite : bool
        Replace an existing bundle at ``path``.  Only a bundle (a folder with
        ``bundle.json``) or an empty folder is ever replaced.

    Returns
    -------
    path : Path

    Raises
    ------
    BundleError
        If ``path`` exists (without ``overwrite``, or is not a bundle), or
        the parts do not fit together (model outputs vs classes, model
        inputs vs feature shape, unfitted standardizer), or ``info`` is not
        JSON-able.
    """
    path = Path(path).expanduser()
    classes = _check_classes(list(classes), str(path))
    windows = _check_windows(windows or {}, str(path))
    if not isinstance(feature_params, FeatureParams):
        raise BundleError(f"{path}: feature_params must be an esc_lib.features.FeatureParams, got {type(feature_params).__name__}")
    if not isinstance(standardizer, Standardizer):
        raise BundleError(f"{path}: standardizer must be an esc_lib.features.Standardizer, got {type(standardizer).__name__}")
    _check_model(model, feature_params, standardizer, classes, str(path))
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise BundleError(f"{path}: already exists; choose another path or pass overwrite=True")
        if not path.is_dir() or not ((path / BUNDLE_FILE).is_file() or not any(path.iterdir())):
            raise BundleError(f"{path}: exists and is not a bundle folder; refusing to replace it")
    payload = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "esc_lib_version": esc_lib.__version__,
        "keras_version": _keras_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "feature_version": FEATURE_VERSION,
        "feature_params": feature_params.to_dict(),
        "input_shape": list(feature_params.shape),
        "standardizer": standardizer.to_dict(),
        "classes": classes,
        "windows": windows,
        "info": dict(info or {}),
    }
    try:
        payload["checksum"] = _checksum(payload)
        text = json.dumps(payload, indent=2, default=_jsonable, allow_nan=False) + "\n"
    except (TypeError, ValueError) as error:
        raise BundleError(f"{path}: info must be JSON-serialisable (plain numbers, strings, lists, dicts): {error}") from error

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    temporary.mkdir()
    try:
        model.save(temporary / MODEL_FILE)
        (temporary / BUNDLE_FILE).write_text(text)
        for name in (MODEL_FILE, BUNDLE_FILE):
            with open(temporary / name, "rb") as handle:
                os.fsync(handle.fileno())
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
            os.replace(temporary, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    return path


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle folder written by :func:`save_bundle`.

    Parameters
    ----------
    path : str or Path
        The bundle folder.

    Returns
    -------
    Bundle

    Raises
    ------
    BundleError
        With a one-line message naming the path, for: a missing path; a file
        instead of a folder; a folder without ``bundle.json``; a
        ``bundle.json`` that is not valid JSON, not a bundle, of an
        unsupported format version, lacks a field or has a bad value;
        features computed by another version of esc_lib's feature code;
        a missing or unloadable ``model.keras``; a model whose output size
        differs from the number of classes (or whose input differs from the
        feature shape).
    """
    path = Path(path).expanduser()
    how = "a bundle is a folder with bundle.json and model.keras, made by esc_lib.predict.save_bundle or export_from_experiment"
    if not path.exists():
        raise BundleError(f"{path}: no such bundle folder; check the path ({how})")
    if not path.is_dir():
        hint = " (give the folder that holds it, not the model file)" if path.suffix == ".keras" else ""
        raise BundleError(f"{path}: is a file, not a bundle folder{hint}; {how}")
    manifest = path / BUNDLE_FILE
    if not manifest.is_file():
        raise BundleError(f"{path}: not a bundle folder, it has no {BUNDLE_FILE}; {how}")
    try:
        payload = json.loads(manifest.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"{manifest}: corrupt, not valid JSON ({_one_line(error)}); export the bundle again") from error
    except OSError as error:
        raise BundleError(f"{manifest}: cannot be read ({_one_line(error)})") from error
    if not isinstance(payload, dict) or payload.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{manifest}: not an esc_lib bundle (no \"format\": \"{BUNDLE_FORMAT}\"); {how}")
    version = payload.get("format_version")
    if version != BUNDLE_VERSION:
        if isinstance(version, int) and not isinstance(version, bool) and version > BUNDLE_VERSION:
            advice = "it was written by a newer esc_lib; upgrade esc_lib to read it"
        else:
            advice = "export the bundle again with this esc_lib"
        raise BundleError(
            f"{manifest}: unsupported bundle format version {version!r} (this esc_lib reads version {BUNDLE_VERSION}); {advice}"
        )
    missing = [name for name in _REQUIRED_FIELDS if name not in payload]
    if missing:
        raise BundleError(f"{manifest}: incomplete, lacks {', '.join(missing)}; export the bundle again")
    if "checksum" in payload and payload["checksum"] != _checksum(payload):
        raise BundleError(
            f"{manifest}: its feature parameters, statistics, classes or windows are not the ones the model was "
            f"exported with (was the file edited?); predictions would not match training: export the bundle again"
        )
    if payload["feature_version"] != FEATURE_VERSION:
        raise BundleError(
            f"{manifest}: its features were computed by esc_lib feature code version {payload['feature_version']!r}, "
            f"this esc_lib computes version {FEATURE_VERSION}; predictions would not match training, so retrain or "
            f"use the esc_lib the bundle was made with"
        )
    try:
        feature_params = FeatureParams.from_dict(payload["feature_params"])
    except (TypeError, ValueError, AttributeError) as error:
        raise BundleError(f"{manifest}: bad feature_params ({_one_line(error)})") from error
    try:
        standardizer = Standardizer.from_dict(payload["standardizer"])
    except (TypeError, ValueError, AttributeError) as error:
        raise BundleError(f"{manifest}: bad standardizer statistics ({_one_line(error)})") from error
    classes = _check_classes(payload["classes"], str(manifest))
    windows = _check_windows(payload["windows"], str(manifest))
    info = payload.get("info") or {}
    if not isinstance(info, dict):
        raise BundleError(f"{manifest}: info must be a mapping, got {type(info).__name__}")

    model_file = path / MODEL_FILE
    if not model_file.is_file():
        raise BundleError(f"{path}: the model file {MODEL_FILE} is missing; export the bundle again")
    model = _load_model(model_file)
    _check_model(model, feature_params, standardizer, classes, str(path))
    info = {**info, "esc_lib_version": payload.get("esc_lib_version"), "created": payload.get("created")}
    return Bundle(model, feature_params, standardizer, classes, info=info, windows=windows, path=path)


#: The fields of bundle.json that must stay as exported: how audio becomes the model's input.
_CHECKED_FIELDS = ("feature_version", "feature_params", "input_shape", "standardizer", "classes", "windows")


def _checksum(payload: dict) -> str:
    """SHA-256 of the fields that turn audio into the model's input and its output into names."""
    text = json.dumps({name: payload.get(name) for name in _CHECKED_FIELDS}, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()


def _load_model(model_file: Path):
    import keras

    import esc_lib.layers  # noqa: F401  (registers the custom layers for loading)

    try:
        return keras.saving.load_model(model_file, compile=False)
    except Exception as error:  # Keras raises many types (ValueError, OSError, zipfile errors, ...).
        raise BundleError(
            f"{model_file}: cannot load the model ({type(error).__name__}: {_one_line(error)}); "
            f"the file may be damaged or from an incompatible Keras; export the bundle again"
        ) from error


def export_from_experiment(
    experiment,
    test_fold: int,
    method: str = "pretrained",
    path: str | Path | None = None,
    labels_per_class: int = 0,
    overwrite: bool = False,
) -> Path:
    """Bundle a classifier that an :class:`~esc_lib.experiment.Experiment` has trained.

    The model is the one the experiment scored: the run's ``model.keras``
    (a finished :func:`esc_lib.training.fit`), the refit run's with
    ``refit_on_validation``, and with ``ensemble`` > 1 one model averaging
    the members' probabilities (:meth:`~esc_lib.experiment.Experiment.scored_runs`); the statistics are that fold's
    :meth:`~esc_lib.experiment.Experiment.standardizer`; the classes are the
    dataset's.  ``info`` records the configuration, method, fold, epochs and
    the test accuracy from the experiment's ``metrics.csv`` when present.

    Parameters
    ----------
    experiment : esc_lib.experiment.Experiment
    test_fold : int
        The fold the classifier was tested on (trained on the others).
    method : {"supervised", "pretrained"}
    path : str or Path, optional
        Default ``<run_dir>/bundles/<config_id>-<method>-fold<k>[-lpc<n>]``.
    labels_per_class : int >= 0
        The label budget of the run (as given to ``train_classifier``); 0 (the default) means all labels.
    overwrite : bool
        Replace an existing bundle at ``path``.

    Returns
    -------
    path : Path

    Raises
    ------
    BundleError
        If the run has no finished classifier, or see :func:`save_bundle`.
    """
    from esc_lib import training

    if isinstance(labels_per_class, bool) or not isinstance(labels_per_class, (int, np.integer)) or labels_per_class < 0:
        raise ValueError(f"labels_per_class must be an integer >= 0 (0 = all labels), got {labels_per_class!r}")
    labels_per_class = int(labels_per_class)
    runs = [Path(run) for run in experiment.scored_runs(method, test_fold, labels_per_class)]
    train_hint = f"train it first with experiment.train_classifier({test_fold}, {method!r}) or cross_validate()"
    members, dones = [], []
    for run in runs:
        model_file = run / training.MODEL_FILE
        done_file = run / training.DONE_FILE
        if not model_file.is_file():
            raise BundleError(f"{run}: no trained {method} classifier for test fold {test_fold} here; {train_hint}")
        if not done_file.is_file():
            raise BundleError(f"{run}: training of this classifier has not finished (no {training.DONE_FILE}); {train_hint}")
        try:
            dones.append(json.loads(done_file.read_text()))
        except (OSError, json.JSONDecodeError):
            dones.append({})
        members.append(_load_model(model_file))
    model = members[0] if len(members) == 1 else _average(members)
    done = dones[0]
    settings = experiment.settings
    budget = f"-lpc{labels_per_class}" if labels_per_class else ""
    if path is None:
        path = Path(experiment.run_dir) / "bundles" / f"{settings.config_id}-{method}-fold{test_fold}{budget}"
    info = {
        "source": "esc_lib.experiment",
        "config_id": settings.config_id,
        "method": method,
        "test_fold": int(test_fold),
        "labels_per_class": labels_per_class,
        "training_run": str(runs[0]),
        "training_runs": [str(run) for run in runs],
        "epochs": done.get("epochs"),
        "best_epoch": done.get("best_epoch"),
        "test_accuracy": _test_accuracy(experiment, method, test_fold, labels_per_class),
        "settings": settings.model_dump(),
    }
    return save_bundle(
        path,
        model,
        experiment.feature_params,
        experiment.standardizer(test_fold),
        experiment.dataset.classes,
        info=info,
        overwrite=overwrite,
    )


def _average(members: list) -> "keras.Model":
    """One model whose output is the mean of the members' class probabilities (an ensemble)."""
    import keras

    inputs = keras.Input(shape=tuple(members[0].input_shape[1:]), name="features")
    for index, member in enumerate(members):
        member.name = f"member{index}"  # Keras needs unique names inside one model
    outputs = keras.layers.Average(name="mean_probabilities")([member(inputs) for member in members])
    return keras.Model(inputs, outputs, name=f"ensemble_of_{len(members)}")


def _test_accuracy(experiment, method: str, test_fold: int, labels_per_class: int) -> float | None:
    """The fold's test accuracy from ``metrics.csv``, or None when it was not recorded.

    ``labels_per_class`` is an integer, 0 for all labels (older files wrote
    ``"all"``, read as 0).  Rows scored on the validation fold (a search) are
    not a test accuracy and are ignored.
    """
    metrics_file = Path(experiment.results_dir()) / "metrics.csv"
    if not metrics_file.is_file():
        return None
    try:
        metrics = pd.read_csv(metrics_file, dtype={"labels_per_class": str})
        budgets = metrics["labels_per_class"].replace({"all": "0"})
        budgets = pd.to_numeric(budgets, errors="coerce")
        chosen = (
            (metrics["method"] == method)
            & (metrics["fold"] == int(test_fold))
            & (budgets == int(labels_per_class))
        )
        if "scored_on" in metrics.columns:
            chosen &= metrics["scored_on"].fillna("test") == "test"
        rows = metrics[chosen]
    except (OSError, ValueError, KeyError, pd.errors.ParserError):
        return None
    return float(rows["accuracy"].iloc[-1]) if len(rows) else None
