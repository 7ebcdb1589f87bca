"""``supervised``: the baseline -- the classifier from random initialisation, on the labelled clips alone."""

from __future__ import annotations

from esc_lib.methods.base import Method, SplitData, Trained

__all__ = ["Supervised", "METHOD"]


class Supervised(Method):
    """Every other method is compared with this one, paired by fold (:mod:`esc_lib.stats`)."""

    def train(self, split: SplitData) -> Trained:
        return Trained.of(train_from(split, self.name))


def train_from(split: SplitData, stage: str, pretrained=None):
    """The classifier of ``stage``'s run folder trained on the split's labelled clips (from ``pretrained``'s encoder
    when given): :func:`esc_lib.training.train_classifier` with the split's members, scoring and lines.

    The ways that differ only in where the weights start (``supervised``, ``pretrained``, ``contrastive``)
    are this call; a teacher or a start of another method is its run, loaded when finished.
    """
    from esc_lib import training

    return training.train_classifier(
        split.train, split.validation, split.n_classes, split.run_dir(stage), split.settings,
        stage=stage, pretrained=pretrained, **split.common())


METHOD = Supervised(
    name="supervised", summary="from random initialisation, on the labelled clips alone (the baseline)",
    section=None, folder_tag="", uses_unlabeled=False)
