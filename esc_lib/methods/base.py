"""What every way of training a classifier shares: the data a method is handed, what it gives back, its description.

A method is a :class:`Method`: a name, the settings section it owns, what its
run folders are named and keyed by, and ``train(split) -> Trained``.  The
orchestrator (:class:`esc_lib.experiment.Experiment`) hands it a
:class:`SplitData` -- one test fold at one label budget, standardised, with
the protocol's unlabeled clips, encoders and run folders behind callables --
and scores the :class:`Trained` it gets back.  The method knows nothing of
folds, budgets or pools beyond that, so a method is tested on synthetic arrays
alone.

Nothing here imports TensorFlow: the settings schema reads the registry's
descriptions before any work starts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from esc_lib.settings import Settings

__all__ = ["SplitData", "Trained", "Method", "refuse_warm_start_on_refit"]


@dataclass(frozen=True)
class SplitData:
    """One test fold at one label budget, as a method trains on it.

    Attributes
    ----------
    settings : esc_lib.settings.Settings
    test_fold : int
    labels_per_class : int >= 0
        0: every labelled clip.
    classes : sequence of str
        Class names, index = label.
    train, validation : (np.ndarray [shape=(n, n_mels, n_frames, channels)], np.ndarray [shape=(n,)])
        Standardised features and integer labels of the labelled training clips and of the
        watched validation clips (both already cut to the label budget).
    train_rows, validation_rows, score_rows : np.ndarray of int
        Their rows (and the scored clips') in the labelled dataset (what is trained on with
        labels is left out of the unlabeled clips by methods that pseudo-label them).
    score : np.ndarray [shape=(n_scored, ...)]
        Standardised features whose class probabilities are scored (the test fold, or in a
        search the validation fold).
    seeds : sequence of int
        One seed per ensemble member (:func:`esc_lib.protocol.member_seed`).
    unlabeled : callable ``(exclude=None) -> array or esc_lib.store.LazyRows``
        The fold's unlabeled clips, standardised: the pool and the non-test folds' audio
        with labels dropped, less the labelled rows ``exclude``.
    sources : callable ``(exclude=None) -> list of str``
        Where each row of ``unlabeled(exclude)`` comes from (a pool file or a clip's file name).
    encoder : callable ``(kind) -> keras.Model``
        The fold's pre-trained encoder of ``kind`` (``"pretrained"``: the CAE, ``"contrastive"``),
        trained the first time, loaded after.
    run_dir : callable ``(method) -> Path``
        Member 0's run folder of ``method``'s classifier for this fold and budget.
    say : callable
        Receives one line per step.
    verbose : int
        Keras' verbosity for training.
    """

    settings: "Settings"
    test_fold: int
    labels_per_class: int
    classes: Sequence[str]
    train: tuple
    validation: tuple
    train_rows: Any
    validation_rows: Any
    score_rows: Any
    score: Any
    seeds: Sequence[int]
    unlabeled: Callable[..., Any]
    sources: Callable[..., list]
    encoder: Callable[[str], Any]
    run_dir: Callable[[str], Path]
    say: Callable[[str], None] = print
    verbose: int = 0

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def with_seeds(self, seeds: Sequence[int]) -> "SplitData":
        """The same split trained with other members (e.g. a larger teacher ensemble)."""
        return replace(self, seeds=list(seeds))

    def common(self) -> dict:
        """The keywords of :func:`esc_lib.training.train_classifier` every method passes alike."""
        return dict(seeds=list(self.seeds), score=self.score, verbose=2 if self.verbose else 0, say=self.say)


@dataclass
class Trained:
    """What a method gives back for one split: its scored classifier's outcome, as
    :class:`esc_lib.training.ClassifierRun` describes it (``scored`` the probabilities on
    ``SplitData.score``, ``validation``, ``histories``, ``epochs``, ``models``), with
    ``seconds`` the training time of everything the score needed -- a teacher's or a start's
    run included, from the runs' histories, so the same when finished runs are loaded.
    """

    scored: Any
    validation: Any
    histories: list
    epochs: list
    models: list
    seconds: float

    @classmethod
    def of(cls, run, extra_seconds: float = 0.0) -> "Trained":
        """From a :class:`esc_lib.training.ClassifierRun`, adding the seconds of the runs it started from."""
        return cls(scored=run.scored, validation=run.validation, histories=run.histories, epochs=run.epochs,
                   models=run.models, seconds=float(run.seconds) + float(extra_seconds))


@dataclass(frozen=True)
class Method:
    """One way of training a classifier, as the settings, the run folders and the orchestrator see it.

    Subclasses set the attributes and implement :meth:`train`; the registry
    (:mod:`esc_lib.methods`) holds one instance per name.

    Attributes
    ----------
    name : str
        What ``methods`` in the settings names it by.
    summary : str
        One line for tables, ``--help`` and the docs.
    section : str or None
        The settings section it owns (its parameters, :mod:`esc_lib.settings`), or None.
    folder_tag : str
        Inserted in its classifiers' run-folder names (``bs32-f64-fixmatch-bn0-...``).
    tag_prefix : str
        Prefix of its non-default settings in the configuration's name (``-fm-t0.7``).
    tag_letters : dict
        Parameter -> the short letter its value is named by in the configuration's name;
        other changed parameters are named by a short hash.
    keyed_unless_default : tuple of str
        Parameters of its section added after runs were made: they enter the run folders'
        keys only when they differ from their defaults, so older runs keep their folders.
    uses_unlabeled : bool
        Whether it learns from the unlabeled clips (directly or through an encoder).
    """

    name: str = ""
    summary: str = ""
    section: str | None = None
    folder_tag: str = ""
    tag_prefix: str = ""
    tag_letters: dict = field(default_factory=dict)
    keyed_unless_default: tuple = ()
    uses_unlabeled: bool = True

    # ------------------------------------------------------------ settings
    def starts_from(self, settings: "Settings") -> str | None:
        """The pre-trained encoder its classifiers start from: ``"pretrained"`` (the CAE's), ``"contrastive"`` or None."""
        return None

    def key_sections(self, settings: "Settings") -> tuple:
        """The settings sections its trained classifiers depend on: their run folders' keys hash exactly these."""
        sections = ("data", "features", "network", "classifier")
        return sections + ((self.section,) if self.section else ())

    def run_folder_tag(self, settings: "Settings") -> str:
        """The readable part of its classifiers' run-folder names (after batch size and encoder)."""
        return self.folder_tag

    def check(self, settings: "Settings") -> None:
        """Raise ``ValueError`` naming the parameters when ``settings`` ask it for something it cannot do."""

    def config_tag(self, settings: "Settings") -> str:
        """Its non-default settings in the configuration's name, e.g. ``-fm-t0.7-u1`` ('' when all are defaults)."""
        if not self.section:
            return ""
        fields = type(settings).model_fields
        changed = {name: value for name, value in settings.section(self.section).items()
                   if value != fields[name].default}
        if not changed:
            return ""
        letters = self.tag_letters
        parts = [f"{letters[name]}{int(value)}" if isinstance(value, bool) else
                 f"{letters[name]}{value:g}" if isinstance(value, float) else f"{letters[name]}{value}"
                 for name, value in changed.items() if name in letters]
        rest = {name: value for name, value in changed.items() if name not in letters}
        if rest:
            parts.append(hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:4])
        return f"-{self.tag_prefix}-" + "-".join(parts)

    # ------------------------------------------------------------ training
    def train(self, split: SplitData) -> Trained:
        """Train (or load, when finished before) this method's classifier of one split and score ``split.score``."""
        raise NotImplementedError(f"method {self.name!r} does not implement train()")


def refuse_warm_start_on_refit(settings: "Settings", name: str, warm: str, cold: str, what: str) -> None:
    """A ``ValueError`` when ``name`` is ``warm`` (start from a trained classifier) while the classifiers are refit on
    the validation fold with early stopping: the start would have trained on the fold that then stops it early."""
    if getattr(settings, name) == warm and settings.refit_on_validation and settings.lr_schedule == "constant":
        raise ValueError(
            f"{name} '{warm}' with refit_on_validation and lr_schedule 'constant' would start {what} "
            "refit on the validation fold and then stop it early on that same fold: "
            f"set lr_schedule to 'cosine', refit_on_validation to false, or {name} to '{cold}'")
