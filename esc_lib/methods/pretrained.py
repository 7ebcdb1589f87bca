"""``pretrained``: the paper's method -- the classifier starts from the fold's convolutional autoencoder's encoder.

The CAE itself is a pre-training stage of the protocol (:meth:`esc_lib.experiment.Experiment.pretrain`,
the ``pretraining`` section), trained once per fold on the unlabeled clips and shared by every
classifier that starts from it; this method fine-tunes all weights on the labelled clips.
"""

from __future__ import annotations

from esc_lib.methods.base import Method, SplitData, Trained
from esc_lib.methods.supervised import train_from

__all__ = ["Pretrained", "METHOD"]


class Pretrained(Method):
    def starts_from(self, settings) -> str | None:
        return "pretrained"

    def key_sections(self, settings) -> tuple:
        return ("data", "features", "network", "pretraining", "classifier")

    def run_folder_tag(self, settings) -> str:
        return f"-{settings.decoder}"

    def train(self, split: SplitData) -> Trained:
        return Trained.of(train_from(split, self.name, pretrained=split.encoder("pretrained")))


METHOD = Pretrained(
    name="pretrained", summary="from the fold's CAE encoder (switch-unpooling autoencoder), fine-tuned (the paper's)",
    section=None)
