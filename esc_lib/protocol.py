"""The cross-validation protocol as pure functions over metadata arrays.

Which clips train, which one early stopping watches, which are scored, which
audio pre-training and the input statistics may see, how label budgets and
hold-outs are drawn and which seed each run gets: all of it decided here
from per-clip metadata (fold numbers, labels, group ids) alone.  NumPy only,
no TensorFlow and no file I/O, so every rule can be tested in milliseconds.

Protocol (official ESC folds): for test fold *k* the validation fold is the
next fold after *k* in sorted order (wrapping), the remaining folds train.
The test fold is used for nothing but the final score: it is never in the
training or validation indices, never in what pre-training sees and never in
what the input statistics are computed from.

The numbers are those :class:`esc_lib.experiment.Experiment` used for the
published results (same permutations, same seeds): keep them bit-identical.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Iterable

import numpy as np

__all__ = [
    "Split",
    "validation_fold",
    "split",
    "optimistic_split",
    "check_test_folds",
    "label_budget",
    "budget_seed",
    "member_seed",
    "pretraining_clips",
    "shared_pretraining",
    "statistics_clips",
    "holdout",
    "check_groups_within_folds",
]

#: Fewest folds a cross-validation needs: one to test, one to validate, one to train.
MIN_FOLDS = 3


# --------------------------------------------------------------------------- input checks
def _integer(name: str, value, *, minimum: int | None = None) -> int:
    """``value`` as a Python int (NumPy integers welcome); bools, floats and the rest are a ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"parameter {name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"parameter {name} must be >= {minimum}, got {value}")
    return value


def _flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"parameter {name} must be True or False, got {value!r}")
    return bool(value)


def _fold_array(folds, name: str = "folds") -> np.ndarray:
    """Per-clip fold numbers as a 1-D int64 array; anything else is a ValueError naming ``name``."""
    array = np.asarray(folds)
    if array.ndim != 1:
        raise ValueError(f"parameter {name} must be a 1-D array of per-clip fold numbers, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"parameter {name} is empty: expected one fold number per clip")
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        return array.astype(np.int64)
    raise ValueError(f"parameter {name} must hold integer fold numbers, got dtype {array.dtype}")


def _available(folds: np.ndarray) -> list[int]:
    return sorted(int(f) for f in np.unique(folds))


def _index_array(indices, n: int, name: str = "indices") -> np.ndarray:
    """Clip indices as a 1-D int64 array, each in ``0..n-1`` and none repeated."""
    array = np.asarray(indices)
    if array.ndim != 1:
        raise ValueError(f"parameter {name} must be a 1-D array of clip indices, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"parameter {name} must hold integer clip indices, got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.min() < 0 or array.max() >= n:
        raise ValueError(f"parameter {name} must lie in 0..{n - 1} (one per clip of labels), got {array.min()}..{array.max()}")
    if len(np.unique(array)) != len(array):
        raise ValueError(f"parameter {name} repeats clip indices; each clip may appear once")
    return array


def _member_of(folds: np.ndarray, test_fold, name: str = "test_fold") -> int:
    test_fold = _integer(name, test_fold)
    available = _available(folds)
    if test_fold not in available:
        raise ValueError(f"parameter {name}={test_fold} is not among the folds {available}")
    return test_fold


# --------------------------------------------------------------------------- folds
@dataclass(frozen=True)
class Split:
    """The clips of one test fold's cross-validation round.

    Attributes
    ----------
    test_fold : int
        The fold scored, and used for nothing else.
    validation_fold : int
        The fold early stopping watches (the next fold after ``test_fold``).
    train : np.ndarray [shape=(n_train,), dtype=int64]
        Sorted indices of the clips of every other fold.
    validation : np.ndarray [shape=(n_validation,), dtype=int64]
        Sorted indices of the clips of ``validation_fold``.
    test : np.ndarray [shape=(n_test,), dtype=int64]
        Sorted indices of the clips of ``test_fold``.

    The arrays are read-only: a split is shared by every step of a fold, so
    one step shuffling it in place must not change another's clips.
    """

    test_fold: int
    validation_fold: int
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def __post_init__(self) -> None:
        for name in ("train", "validation", "test"):
            array = np.array(getattr(self, name), dtype=np.int64)  # a copy, so freezing it leaves the caller's alone
            if array.ndim != 1:
                raise ValueError(f"parameter {name} must be a 1-D array of clip indices, got shape {array.shape}")
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "test_fold", _integer("test_fold", self.test_fold))
        object.__setattr__(self, "validation_fold", _integer("validation_fold", self.validation_fold))
        if self.test_fold == self.validation_fold and not (
                len(self.test) and np.array_equal(self.validation, self.test) and not np.isin(self.train, self.test).any()):
            raise ValueError(f"parameter validation_fold must differ from test_fold, both are {self.test_fold}")

    @property
    def watches_test(self) -> bool:
        """Whether the test fold is the one watched during training (:func:`optimistic_split`)."""
        return self.validation_fold == self.test_fold

    def __eq__(self, other) -> bool:
        if not isinstance(other, Split):
            return NotImplemented
        return (
            self.test_fold == other.test_fold
            and self.validation_fold == other.validation_fold
            and all(np.array_equal(getattr(self, n), getattr(other, n)) for n in ("train", "validation", "test"))
        )

    @property
    def train_and_validation(self) -> np.ndarray:
        """``np.concatenate([train, validation])`` [shape=(n_train + n_validation,)], in that order (the refit's clips)."""
        return np.concatenate([self.train, self.validation])


def validation_fold(available_folds: Iterable[int], test_fold: int) -> int:
    """The validation fold of ``test_fold``: the next fold in sorted order, wrapping to the first.

    Parameters
    ----------
    available_folds : array-like of int [shape=(n,)]
        The folds (each once, or per-clip fold numbers: repeats are ignored).
    test_fold : int
        One of them.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        ``test_fold`` is not among the folds, or there are fewer than 3 folds.
    """
    if not isinstance(available_folds, np.ndarray):
        available_folds = list(available_folds)
    available = _available(_fold_array(available_folds, "available_folds"))
    test_fold = _integer("test_fold", test_fold)
    if test_fold not in available:
        raise ValueError(f"parameter test_fold={test_fold} is not among the available folds {available}")
    if len(available) < MIN_FOLDS:
        raise ValueError(f"cross-validation needs at least {MIN_FOLDS} folds, available_folds has {available}")
    return available[(available.index(test_fold) + 1) % len(available)]


def split(folds, test_fold: int) -> Split:
    """Train / validation / test indices for one test fold.

    Parameters
    ----------
    folds : array-like of int [shape=(n_clips,)]
        Fold number of every clip.
    test_fold : int
        The fold to score.

    Returns
    -------
    Split
        ``test`` = clips of ``test_fold``, ``validation`` = clips of
        :func:`validation_fold`, ``train`` = all others, each in clip order.

    Raises
    ------
    ValueError
        ``test_fold`` is not among ``folds``, or there are fewer than 3 folds.
    """
    folds = _fold_array(folds)
    available = _available(folds)
    test_fold = _integer("test_fold", test_fold)
    if test_fold not in available:
        raise ValueError(f"parameter test_fold={test_fold} is not among the dataset's folds {available}")
    watched = validation_fold(available, test_fold)
    return Split(
        test_fold=test_fold,
        validation_fold=watched,
        train=np.flatnonzero((folds != test_fold) & (folds != watched)),
        validation=np.flatnonzero(folds == watched),
        test=np.flatnonzero(folds == test_fold),
    )


def optimistic_split(folds, test_fold: int) -> Split:
    """SSLH's split for one test fold: every other fold trains, and the test fold is also the one watched.

    Cances et al. (2022) keep the checkpoint of the epoch most accurate on the fold they report, so the
    score is an upper bound: a choice was made on the scored clips.  Only for comparing with published
    numbers under their protocol (``protocol: sslh``); :func:`split` is the project's.

    Returns
    -------
    Split
        ``validation`` = ``test`` = clips of ``test_fold`` (``validation_fold == test_fold``), ``train`` =
        all the others.
    """
    folds = _fold_array(folds)
    available = _available(folds)
    test_fold = _integer("test_fold", test_fold)
    if test_fold not in available:
        raise ValueError(f"parameter test_fold={test_fold} is not among the dataset's folds {available}")
    if len(available) < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, the dataset has {available}")
    tested = np.flatnonzero(folds == test_fold)
    return Split(test_fold=test_fold, validation_fold=test_fold, train=np.flatnonzero(folds != test_fold),
                 validation=tested, test=tested)


def check_test_folds(folds, test_folds: Iterable[int]) -> None:
    """Check, before any work, that every requested test fold can be cross-validated.

    Parameters
    ----------
    folds : array-like of int [shape=(n_clips,)]
        Fold number of every clip.
    test_folds : iterable of int
        The test folds a run will go through (at least one).

    Raises
    ------
    ValueError
        One error naming every requested fold absent from ``folds`` and the
        folds available; or fewer than 3 folds; or no test fold requested.
    """
    folds = _fold_array(folds)
    available = _available(folds)
    if isinstance(test_folds, numbers.Integral) and not isinstance(test_folds, bool):
        test_folds = [test_folds]
    requested = [_integer("test_folds", f) for f in test_folds]
    if not requested:
        raise ValueError("parameter test_folds must list at least one test fold")
    missing = sorted(set(requested) - set(available))
    if missing:
        raise ValueError(f"parameter test_folds: fold(s) {missing} not among the dataset's folds {available}")
    if len(available) < MIN_FOLDS:
        raise ValueError(f"cross-validation needs at least {MIN_FOLDS} folds, the dataset has {available}")


# --------------------------------------------------------------------------- label budgets and seeds
def label_budget(labels, indices, labels_per_class: int, seed: int) -> np.ndarray:
    """The first ``labels_per_class`` clips of each class among ``indices``, in one seeded order.

    The order (``np.random.default_rng(seed).permutation(len(indices))``)
    does not depend on the budget, so for one seed the subsets are nested
    (the 4 clips of a class are among its 8).  A class with fewer clips than
    the budget among ``indices`` keeps all it has; a class absent from
    ``indices`` gets none.

    Parameters
    ----------
    labels : array-like [shape=(n_clips,)]
        Label of every clip of the whole dataset (indexed by ``indices``).
    indices : array-like of int [shape=(n,)]
        The clips to draw from (e.g. ``Split.train``), each once.
    labels_per_class : int >= 0
        Clips kept per class; 0 keeps them all.
    seed : int
        Seed of the order (see :func:`budget_seed`).

    Returns
    -------
    np.ndarray [shape=(m,), dtype=int64]
        Sorted subset of ``indices``, ``m = sum_c min(labels_per_class, n_c)``.

    Raises
    ------
    ValueError
        ``labels_per_class`` negative or not an integer, ``labels`` not 1-D,
        ``indices`` out of range or repeated.
    """
    labels_per_class = _integer("labels_per_class", labels_per_class, minimum=0)
    seed = _integer("seed", seed)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"parameter labels must be a 1-D array of per-clip labels, got shape {labels.shape}")
    indices = _index_array(indices, len(labels))
    if labels_per_class == 0 or len(indices) == 0:
        return np.sort(indices)
    chosen_labels = labels[indices]
    order = np.random.default_rng(seed).permutation(len(indices))
    shuffled, shuffled_labels = indices[order], chosen_labels[order]
    chosen = [shuffled[shuffled_labels == label][:labels_per_class] for label in np.unique(chosen_labels)]
    return np.sort(np.concatenate(chosen))


def budget_seed(seed: int, test_fold: int) -> int:
    """Seed of a test fold's label budgets: ``seed + test_fold`` (training and validation folds alike)."""
    return _integer("seed", seed) + _integer("test_fold", test_fold)


def member_seed(seed: int, test_fold: int, member: int) -> int:
    """Seed of one classifier: ``seed + test_fold + 1000 * member``.

    Member 0 is the single (non-ensemble) run, whose seed is
    ``seed + test_fold``; ``member`` must be >= 0.
    """
    return _integer("seed", seed) + _integer("test_fold", test_fold) + 1000 * _integer("member", member, minimum=0)


# --------------------------------------------------------------------------- pre-training and input statistics
def shared_pretraining(include_labelled_folds: bool) -> bool:
    """True when one CAE serves every test fold: it sees no labelled fold's audio."""
    return not _flag("include_labelled_folds", include_labelled_folds)


def pretraining_clips(folds, test_fold: int | None, include_labelled_folds: bool, *, hold_out_validation: bool = False) -> np.ndarray:
    """Labelled clips whose audio (labels dropped) joins pre-training for one test fold.

    Parameters
    ----------
    folds : array-like of int [shape=(n_clips,)]
        Fold number of every clip.
    test_fold : int or None
        The fold the CAE must not see; None for one CAE shared by every fold.
    include_labelled_folds : bool
        Whether the non-test folds' audio joins the unlabeled pool.
    hold_out_validation : bool
        Leave the validation fold of ``test_fold`` out too: a search scored
        on the validation fold (``score="validation"``) must not pre-train
        (or feed FixMatch) on the audio it scores.

    Returns
    -------
    np.ndarray [shape=(m,), dtype=int64]
        In clip order: every clip not in ``test_fold`` (nor, with
        ``hold_out_validation``, in its validation fold) when
        ``include_labelled_folds``, else none.

    Raises
    ------
    ValueError
        ``test_fold`` None with ``include_labelled_folds`` (a shared CAE
        would have seen some test fold), or ``test_fold`` not among ``folds``.
    """
    include_labelled_folds = _flag("include_labelled_folds", include_labelled_folds)
    hold_out_validation = _flag("hold_out_validation", hold_out_validation)
    folds = _fold_array(folds)
    if test_fold is None:
        if include_labelled_folds:
            raise ValueError(
                "parameter test_fold=None (one CAE shared by every fold) needs include_labelled_folds=False: "
                "a shared CAE pre-trained on the labelled folds would have seen every test fold"
            )
        return np.zeros(0, dtype=np.int64)
    test_fold = _member_of(folds, test_fold)
    if not include_labelled_folds:
        return np.zeros(0, dtype=np.int64)
    kept = folds != test_fold
    if hold_out_validation:
        kept &= folds != validation_fold(folds, test_fold)
    return np.flatnonzero(kept)


def statistics_clips(
    folds, test_fold: int, *, has_pool: bool, include_labelled_folds: bool, hold_out_validation: bool = False
) -> tuple[bool, np.ndarray]:
    """Where one test fold's per-band input statistics come from.

    With an unlabeled pool or ``include_labelled_folds``, from the
    pre-training data: the pool (when ``has_pool``) followed by the labelled
    clips of :func:`pretraining_clips` (concatenate in that order: the
    statistics are float sums).  With neither, from the labelled training
    folds (``split(folds, test_fold).train``, the validation fold excluded).
    Never from the test fold.

    Parameters
    ----------
    folds : array-like of int [shape=(n_clips,)]
        Fold number of every clip.
    test_fold : int
        The fold being scored.
    has_pool : bool
        Whether there is an unlabeled pool.
    include_labelled_folds : bool
        Whether the non-test folds' audio joins pre-training.
    hold_out_validation : bool
        As in :func:`pretraining_clips`: the validation fold is left out too.

    Returns
    -------
    use_pool : bool
        Whether the pool's features come first.
    labelled_indices : np.ndarray [shape=(m,), dtype=int64]
        Labelled clips (clip order) whose features follow.

    Raises
    ------
    ValueError
        ``test_fold`` not among ``folds`` (or fewer than 3 folds when the
        training folds are used).
    """
    has_pool = _flag("has_pool", has_pool)
    include_labelled_folds = _flag("include_labelled_folds", include_labelled_folds)
    if has_pool or include_labelled_folds:
        return has_pool, pretraining_clips(folds, test_fold, include_labelled_folds, hold_out_validation=hold_out_validation)
    return False, np.array(split(folds, test_fold).train)


def holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The CAE's validation hold-out: a seeded ``fraction`` of ``n`` examples.

    ``order = np.random.default_rng(seed).permutation(n)``;
    ``n_validation = max(1, int(round(n * fraction)))`` (Python's rounding,
    half to even); the first ``n_validation`` of the order validate.

    Parameters
    ----------
    n : int
        Number of examples.
    fraction : float in (0, 1)
        Share held out.
    seed : int

    Returns
    -------
    train : np.ndarray [shape=(n - n_validation,), dtype=int64]
    validation : np.ndarray [shape=(n_validation,), dtype=int64]
        Disjoint, together ``0..n-1``, both in permutation (not sorted) order.

    Raises
    ------
    ValueError
        ``fraction`` outside (0, 1), or nothing left to train on.
    """
    n = _integer("n", n, minimum=0)
    seed = _integer("seed", seed)
    if isinstance(fraction, (bool, np.bool_)) or not isinstance(fraction, numbers.Real) or not 0.0 < fraction < 1.0:
        raise ValueError(f"parameter fraction must be a number in (0, 1), got {fraction!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_validation = max(1, int(round(n * fraction)))
    if n_validation >= n:
        raise ValueError(
            f"parameter n={n}: cannot hold out {n_validation} of {n} example(s) for validation "
            f"(fraction {fraction}) and train on the rest; need at least 2 clips"
        )
    return order[n_validation:], order[:n_validation]


# --------------------------------------------------------------------------- groups
def _missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and value != value)


def check_groups_within_folds(groups, folds, *, what: str = "Freesound recording") -> None:
    """Check that the clips of each group (e.g. takes of one recording) lie in one fold.

    Parameters
    ----------
    groups : array-like [shape=(n_clips,)]
        Group id of every clip (e.g. ESC's ``src_file``); any hashable values.
    folds : array-like of int [shape=(n_clips,)]
        Fold number of every clip.
    what : str
        What a group is, for the message.

    Raises
    ------
    ValueError
        The first group (in clip order) with clips in more than one fold,
        named with its folds and the number of other such groups; or
        ``groups`` missing values or of another length than ``folds``.
    """
    folds = _fold_array(folds)
    groups = np.asarray(groups, dtype=object) if not isinstance(groups, np.ndarray) else groups
    if groups.ndim != 1 or len(groups) != len(folds):
        raise ValueError(
            f"parameter groups must be 1-D with one group per clip of folds ({len(folds)}), got shape {groups.shape}"
        )
    seen: dict = {}
    for position, (group, fold) in enumerate(zip(groups.tolist(), folds.tolist())):
        if _missing(group):
            raise ValueError(f"parameter groups has no {what} for clip {position} (got {group!r})")
        seen.setdefault(group, set()).add(fold)
    straddling = [(group, sorted(in_folds)) for group, in_folds in seen.items() if len(in_folds) > 1]
    if straddling:
        group, in_folds = straddling[0]
        others = f" ({len(straddling) - 1} other {what}(s) too)" if len(straddling) > 1 else ""
        raise ValueError(
            f"clips of one {what} must stay in one fold, or a test fold shares audio with training: "
            f"{what} {group!r} has clips in folds {in_folds}{others}"
        )
