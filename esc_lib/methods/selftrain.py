"""``selftrain``: a teacher's confident pseudo-labels of the unlabeled clips, and a student trained on them.

As in Noisy Student (Xie et al. 2020), without growing the student: the
supervised classifier of the fold and budget labels the unlabeled clips; those
it is confident about (:func:`select_pseudo_labels`, ``selftrain_threshold``,
at most ``selftrain_per_class`` per class) join the labelled clips, and a
student of the same network, trained with the same augmentation and dropout
(its noise), learns from both.  Each round's student teaches the next.  Unlike
FixMatch, the pseudo-labels come from a finished classifier, so they need no
long schedule to appear.  With ``selftrain_labeler`` ``"propagation"`` the
teacher's embeddings give them instead, by label spreading
(:func:`propagate_labels`, Iscen et al. 2019).

Each round's pseudo-labels are written to ``pseudo_labels.csv`` in its
student's folder, so a student resumed after a kill learns from exactly the
clips it started with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from esc_lib import atomic, protocol
from esc_lib.methods.base import Method, SplitData, Trained, refuse_warm_start_on_refit
from esc_lib.methods.supervised import train_from

__all__ = ["SelfTraining", "METHOD", "PSEUDO_LABELS_FILE", "pseudo_labels_of_round", "select_pseudo_labels", "propagate_labels",
           "PROPAGATION_NEIGHBORS", "PROPAGATION_ALPHA"]

#: Each self-training round's pseudo-labels, in its student's folder.
PSEUDO_LABELS_FILE = "pseudo_labels.csv"


class SelfTraining(Method):
    def starts_from(self, settings) -> str | None:
        """A self-trained student starts from ``selftrain_init``'s encoder (None: random initialisation)."""
        return settings.selftrain_init if settings.selftrain_init in ("pretrained", "contrastive") else None

    def key_sections(self, settings) -> tuple:
        # The teacher of the first round is another method's classifier (its own stage and folder); students
        # start from the encoder their teacher was fine-tuned from, so its settings are theirs.
        extra = {"pretrained": ("pretraining",), "contrastive": ("selfsupervised",)}.get(settings.selftrain_init, ())
        return ("data", "features", "network", "classifier", "selftraining") + extra

    def check(self, settings) -> None:
        if settings.selftrain_cap_growth and not settings.selftrain_per_class:
            raise ValueError(
                f"selftrain_cap_growth {settings.selftrain_cap_growth} grows a cap, but selftrain_per_class is 0 (no cap): "
                "set selftrain_per_class to the first round's cap, or selftrain_cap_growth to 0")
        refuse_warm_start_on_refit(settings, "selftrain_student", "teacher", "scratch", "each student from a teacher")

    def train(self, split: SplitData) -> Trained:
        """Self-training on one split: the teacher's method's classifier teaches; each round's student teaches the next.

        Round ``r`` keeps the teacher's confident predictions on the unlabeled
        clips, writes them to ``pseudo_labels.csv`` in its folder, and trains a
        student of the same network on the labelled clips plus those (the cap
        grows by ``selftrain_cap_growth`` per class each round; the classifier
        settings: augmentation, dropout, schedule, refit;
        ``selftrain_student_epochs`` epochs when set).  With
        ``selftrain_student`` ``"teacher"`` each student starts from its
        teacher's weights (member ``i`` from member ``i`` mod the teacher's)
        and is fine-tuned, instead of starting as the teacher did.  The teacher
        of round 1 is the ``supervised`` method's run of this fold and budget
        (loaded when it exists), or with ``selftrain_init`` the ``pretrained`` /
        ``contrastive`` method's, whose encoder then initialises every student
        too; with ``selftrain_teachers`` > 1 that run and members of further
        seeds beside it (``-m<k>``) teach together, their probabilities
        averaged.  The last round's student is the one scored, in this method's
        folder, earlier rounds beside it (``-round<r>``); the cost counts every
        teacher before it.
        """
        from esc_lib import training

        s = split.settings
        kind = self.starts_from(s)
        pretrained = split.encoder(kind) if kind else None
        (X_train, y_train), validation = split.train, split.validation
        # The pool and the non-test folds' audio as pre-training and FixMatch see them, less the clips
        # trained on with their labels (with pool_store read a chunk at a time, only the chosen gathered).
        with_labels = (np.union1d(split.train_rows, split.validation_rows) if s.refit_on_validation
                       else np.asarray(split.train_rows))
        X_unlabeled = split.unlabeled(exclude=with_labels)
        sources = split.sources(exclude=with_labels)

        def teaching(run):  # the members' mean probabilities on the unlabeled clips
            if s.selftrain_labeler == "propagation":  # spread along the members' embeddings instead
                return np.mean([propagate_labels(
                    training.predict_embeddings(model, X_train), y_train,
                    training.predict_embeddings(model, X_unlabeled), split.n_classes) for model in run.models], axis=0)
            return np.mean([training.predict_proba(model, X_unlabeled) for model in run.models], axis=0)

        taught_by = "supervised" if s.selftrain_init == "scratch" else s.selftrain_init
        members = max(len(split.seeds), s.selftrain_teachers)
        split.say(f"  teacher: the {taught_by} classifier of this fold and budget"
                  + (f", {members} members" if members > 1 else ""))
        teacher = train_from(
            split.with_seeds([protocol.member_seed(s.seed, split.test_fold, m) for m in range(members)]),
            taught_by, pretrained=pretrained)
        spent = teacher.seconds
        final = split.run_dir(self.name)
        for round_ in range(1, s.selftrain_rounds + 1):
            run = final if round_ == s.selftrain_rounds else final.with_name(f"{final.name}-round{round_}")
            cap = s.selftrain_per_class + (round_ - 1) * s.selftrain_cap_growth if s.selftrain_per_class else 0
            rows, pseudo = pseudo_labels_of_round(
                run / PSEUDO_LABELS_FILE, lambda: teaching(teacher), sources, s.selftrain_threshold, cap, split.classes)
            counts = np.bincount(pseudo, minlength=split.n_classes)
            split.say(f"  round {round_}: {len(rows)} of {len(X_unlabeled)} unlabeled clips pseudo-labelled "
                      f"(confidence >= {s.selftrain_threshold:g}" + (f", at most {cap} per class" if cap else "")
                      + f"; per class {counts.min()}-{counts.max()})")
            student = training.train_classifier(
                (np.concatenate([X_train, X_unlabeled[rows]]), np.concatenate([y_train, pseudo])),
                validation, split.n_classes, run, s, stage=self.name, pretrained=pretrained,
                initial=teacher.models if s.selftrain_student == "teacher" else None,
                max_epochs=s.selftrain_student_epochs or None, **split.common())
            if round_ < s.selftrain_rounds:
                spent += student.seconds
            teacher = student
        return Trained.of(student, spent)


METHOD = SelfTraining(
    name="selftrain", summary="a student trained on the labelled clips plus a teacher's confident pseudo-labels",
    section="selftraining", folder_tag="-selftrain", tag_prefix="st",
    tag_letters={"selftrain_threshold": "t", "selftrain_per_class": "k", "selftrain_rounds": "r",
                 "selftrain_cap_growth": "g", "selftrain_teachers": "n", "selftrain_init": "i",
                 "selftrain_student": "s", "selftrain_student_epochs": "se", "selftrain_labeler": "l"},
    keyed_unless_default=("selftrain_teachers", "selftrain_init", "selftrain_cap_growth", "selftrain_student",
                          "selftrain_student_epochs", "selftrain_labeler"))


def pseudo_labels_of_round(path: Path, probabilities, sources: list[str], threshold: float, per_class: int,
                           classes) -> tuple[np.ndarray, np.ndarray]:
    """One round's pseudo-labels: chosen and written to ``path`` the first time, read back after that.

    ``probabilities`` is called (the teacher's predictions on the unlabeled
    clips) only when the file is not there yet.  A student resumed after a
    kill so learns from exactly the clips it started with; a file that
    names other clips than today's unlabeled ones (the pool changed) is an
    error, not a silent mix.

    Returns
    -------
    rows : np.ndarray of int
        Rows of the unlabeled clips (and of ``sources``) that are pseudo-labelled.
    labels : np.ndarray of int
    """
    if path.is_file():
        saved = pd.read_csv(path)
        rows, pseudo = saved["row"].to_numpy(dtype=np.int64), saved["label"].to_numpy(dtype=np.int64)
        if (rows >= len(sources)).any() or [sources[i] for i in rows] != list(saved["source"].astype(str)):
            raise ValueError(
                f"{path} names other unlabeled clips than this run has (the pool or folds changed); "
                f"remove {path.parent} to train this student again")
        return rows, pseudo
    rows, pseudo, confidence = select_pseudo_labels(probabilities(), threshold, per_class)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, pd.DataFrame({
        "row": rows, "source": [sources[i] for i in rows], "label": pseudo,
        "category": [classes[k] for k in pseudo], "confidence": confidence.round(6),
    }).to_csv(index=False))
    return rows, pseudo


#: Neighbours of each clip in :func:`propagate_labels`' graph (Iscen et al. 2019 use 50 of 50 000 images;
#: a split at 4 labels per class has ~240 clips, 24 per class).
PROPAGATION_NEIGHBORS = 10
#: How much of its neighbours' labels a clip takes each step (sklearn's ``alpha``; 0.99 in Iscen et al.).
PROPAGATION_ALPHA = 0.99


def propagate_labels(labelled, y, unlabeled, n_classes: int, neighbors: int = PROPAGATION_NEIGHBORS,
                     alpha: float = PROPAGATION_ALPHA) -> np.ndarray:
    """Class distributions of unlabeled clips by label spreading over a nearest-neighbour graph of embeddings.

    The labelled and unlabeled embeddings (L2-normalised, so distance is
    cosine) form one k-nearest-neighbour graph; the labelled clips' classes
    spread along it (:class:`sklearn.semi_supervised.LabelSpreading`), so an
    unlabeled clip takes the classes of the clips it lies among, not only the
    side of the classifier's boundary it falls on.

    Parameters
    ----------
    labelled : array [shape=(n, d)]
    y : array of int [shape=(n,)]
        The labelled clips' classes, in ``range(n_classes)``.
    unlabeled : array [shape=(m, d)]
    n_classes : int
    neighbors : int > 0
    alpha : float in (0, 1)

    Returns
    -------
    np.ndarray [shape=(m, n_classes)]
        Rows summing to 1 (a class no labelled clip has gets 0), ready for :func:`select_pseudo_labels`.
    """
    from sklearn.semi_supervised import LabelSpreading

    labelled, unlabeled = np.asarray(labelled, dtype="float64"), np.asarray(unlabeled, dtype="float64")
    y = np.asarray(y, dtype="int64")
    if labelled.ndim != 2 or unlabeled.ndim != 2 or labelled.shape[1] != unlabeled.shape[1]:
        raise ValueError(f"embeddings must be [n, d] with the same d, got {labelled.shape} and {unlabeled.shape}")
    if len(y) != len(labelled) or len(y) == 0 or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"y must give each of the {len(labelled)} labelled clips a class in range({n_classes})")
    if len(unlabeled) == 0:
        return np.zeros((0, n_classes))
    X = np.concatenate([labelled, unlabeled])
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    spreading = LabelSpreading(kernel="knn", n_neighbors=min(int(neighbors), len(X) - 1), alpha=alpha, max_iter=1000)
    spreading.fit(X, np.concatenate([y, -np.ones(len(unlabeled), dtype="int64")]))
    distributions = np.zeros((len(unlabeled), n_classes))
    distributions[:, spreading.classes_] = spreading.label_distributions_[len(labelled):]
    distributions = np.nan_to_num(distributions)  # an isolated clip: no label reached it
    return distributions / np.maximum(distributions.sum(axis=1, keepdims=True), 1e-12)


def select_pseudo_labels(probabilities, threshold: float, per_class: int = 0):
    """Self-training's pseudo-labelled clips: the teacher's confident predictions, optionally capped per class.

    Parameters
    ----------
    probabilities : array [shape=(n, n_classes)]
        The teacher's class probabilities for the unlabeled clips.
    threshold : float in [0, 1]
        A clip is kept when its top probability is at least this.
    per_class : int >= 0
        Keep at most this many clips per predicted class, the most confident
        first (ties: the earlier clip); 0 keeps every confident clip.  A cap
        stops a class the teacher over-predicts from swamping the student.

    Returns
    -------
    rows : np.ndarray of int [shape=(k,)]
        The kept clips, in increasing order.
    labels : np.ndarray of int [shape=(k,)]
        Their pseudo-labels (the teacher's arg-max).
    confidence : np.ndarray of float [shape=(k,)]
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 0:
        raise ValueError(f"per_class must be an integer >= 0 (0: no cap), got {per_class!r}")
    probabilities = np.asarray(probabilities, dtype="float64")
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities must be [n_clips, n_classes], got shape {probabilities.shape}")
    labels, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    kept = np.flatnonzero(confidence >= float(threshold))
    if per_class:
        order = kept[np.lexsort((kept, -confidence[kept]))]  # most confident first, then by row
        rank = np.zeros(len(order), dtype=int)
        seen: dict[int, int] = {}
        for i, row in enumerate(order):
            rank[i] = seen.get(labels[row], 0)
            seen[labels[row]] = rank[i] + 1
        kept = np.sort(order[rank < per_class])
    return kept, labels[kept], confidence[kept]
