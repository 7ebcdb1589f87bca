"""The one schema of every parameter: profiles, notebooks, the runner and the benchmarks read it.

Every parameter has a type, its allowed values, a default and a one-line
description, and belongs to one *section* -- what it shapes:

==============  ===========================================================================
section         what it shapes
==============  ===========================================================================
``data``        which labelled clips and which unlabeled pool (and the seed of every choice)
``features``    the log-mel front end
``network``     the encoder both stages share, and their optimiser
``pretraining`` the autoencoder only
``selfsupervised`` the contrastive encoder only (method ``contrastive``)
``classifier``  the classifier only
``semisupervised`` FixMatch-style consistency training only (method ``fixmatch``)
``selftraining`` pseudo-labels from a teacher and the student trained on them (method ``selftrain``)
``meanteacher`` agreement with an average of the classifier's own weights (method ``meanteacher``)
``freematch``   FreeMatch's self-adaptive thresholds and fairness loss (method ``freematch``, with ``semisupervised``)
``mixmatch``    MixMatch's sharpening, mixup and unlabeled loss weight (method ``mixmatch``, with ``semisupervised``)
``evaluation``  what is scored and how: test folds, methods, budgets, refit, ensembles
``output``      where results go and what is drawn; never changes a trained model
==============  ===========================================================================

A stage's run folder is named by a hash of the sections it depends on
(:meth:`Settings.key`): the CAE of ``data + features + network + pretraining``,
the supervised classifier of ``data + features + network + classifier``, the
CAE-pre-trained classifier of those and ``pretraining``, and so on
(:data:`PRETRAINING_SECTIONS`; each method's in :mod:`esc_lib.methods`,
:meth:`Settings.stage_sections`).  So a changed setting never reuses a model
trained with the old value, and nothing else has to be listed anywhere.

A method's own parameters are its section (``semisupervised`` for ``fixmatch``,
``selftraining`` for ``selftrain``, ...); everything else a method says about
its settings (checks, run-folder names) lives in its module of
:mod:`esc_lib.methods`, which :data:`METHODS` and ``methods`` come from.

This module imports no TensorFlow (only pydantic, PyYAML and the standard
library), so the runner can validate a profile before any work starts::

    settings = Settings.from_profile("profiles/esc10.yaml", {"filters": 32})
    settings.key("cae")          # '3f1c0a9e'
    Settings(filterz=16)         # SettingsError: unknown parameter 'filterz'; did you mean 'filters'?
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from esc_lib import methods as registry

__all__ = [
    "SECTIONS",
    "PRETRAINING_SECTIONS",
    "NOTEBOOK_SECTIONS",
    "METHODS",
    "SettingsError",
    "Settings",
    "Profile",
    "load_profile",
    "grid_points",
    "describe",
    "parameters_cell",
]

#: Section -> what it shapes (the order is the order of the parameters cells).
SECTIONS = {
    "data": "which labelled clips and which unlabeled pool",
    "features": "the log-mel front end",
    "network": "the encoder both stages share, and their optimiser",
    "pretraining": "the autoencoder only",
    "selfsupervised": "contrastive pre-training of the encoder (method 'contrastive')",
    "classifier": "the classifier only",
    "semisupervised": "consistency training on unlabeled clips (method 'fixmatch')",
    "selftraining": "a teacher's confident pseudo-labels, a student trained on them (method 'selftrain')",
    "meanteacher": "agreement with an average of the classifier's own weights on unlabeled clips (method 'meanteacher')",
    "freematch": "self-adaptive thresholds and fairness on top of semisupervised's consistency training (method 'freematch')",
    "mixmatch": "sharpened guesses and mixup of labelled and unlabeled clips, with semisupervised's batches (method 'mixmatch')",
    "evaluation": "what is scored and how",
    "output": "where results go and what is drawn",
}

#: The sections each pre-training stage depends on: the key of its run folder hashes exactly these.  A
#: method's classifiers depend on the sections its :meth:`esc_lib.methods.base.Method.key_sections` names.
PRETRAINING_SECTIONS = {
    "cae": ("data", "features", "network", "pretraining"),
    "contrastive_encoder": ("data", "features", "network", "selfsupervised"),
}

#: Settings added after runs were made, by section: a stage key names one only when it differs from
#: its default, so runs made before it keep their folders (the in-memory pool, one device in
#: float32, hard targets); a method's own are its ``keyed_unless_default``.
KEYED_UNLESS_DEFAULT = {
    "data": ("pool_store", "min_clip_seconds"),
    "network": ("precision", "distribute"),
    "classifier": ("label_smoothing", "protocol"),
}

#: The sections each notebook declares in its parameters cell.
NOTEBOOK_SECTIONS = {
    "01_preprocessing": ("data", "features", "evaluation", "output"),  # evaluation: the test folds are checked up front
    # selftraining: selftrain_init names the encoder a self-trained student starts from.
    "02_cae_pretraining": ("data", "features", "network", "pretraining", "selfsupervised", "selftraining", "evaluation",
                           "output"),
    "03_finetuning": tuple(SECTIONS),
    "04_results": tuple(SECTIONS),
}

#: The ways of training a classifier (:mod:`esc_lib.methods`, one module each), the baseline first.
METHODS = registry.names()

#: The paper's encoder, ``filters`` per convolution (section 4.4).
PAPER_ENCODER = "({f})5c-2p-({f})3c-2p-({f})3c-2p"

#: Two augmentations the methods' defaults use: a small shift, and a large shift with two frequency and
#: two time masks.
_SHIFT = "shift:max_shift=8"
_SHIFT_AND_MASKS = "shift:max_shift=30 + mask:freq_masks=2:max_freq_width=8:time_masks=2:max_time_width=12"
#: SSLH's views of an unlabeled clip (Cances et al. 2022; its ``aug/weak.yaml`` and ``strong.yaml``) on the
#: features: the weak view occludes up to 25% of the frames, changes the speed by 0.5-1.5 and cuts out 10-50%
#: of each axis, each with probability 0.5; the strong view always, up to 75%, 0.25-1.75 and 50-100%.
SSLH_WEAK = "occlusion:max_size=0.25:p=0.5 + speed:min_rate=0.5:max_rate=1.5:p=0.5 + cutout:min_size=0.1:max_size=0.5:p=0.5"
SSLH_STRONG = "occlusion:max_size=0.75 + speed:min_rate=0.25:max_rate=1.75 + cutout:min_size=0.5:max_size=1.0"


class SettingsError(ValueError):
    """A parameter that is unknown, of the wrong type or out of range; the message names it."""


def _p(default, section: str, description: str, *, augmentation: str = "", **constraints):
    """A parameter: its default, its section and its one-line description (shown by papermill and ``describe``).

    ``augmentation``: the parameter is an augmentation spec (:mod:`esc_lib.augment`), checked when set, and
    empty stands for this spec (:data:`DEFAULT_AUGMENTATIONS`).
    """
    if section not in SECTIONS:
        raise AssertionError(f"unknown section {section!r}")
    if "=" in description or "=" in str(default):
        raise AssertionError(f"{default!r} / {description!r}: papermill cannot parse a parameters line holding two '='")
    extra = {"section": section, **({"augmentation": augmentation} if augmentation else {})}
    return Field(default, description=description, json_schema_extra=extra, **constraints)


class Settings(BaseModel):
    """Every parameter of an experiment; the notebooks' ``parameters`` cells are generated from it.

    Build it from keywords, a mapping (:meth:`from_mapping`), a profile
    (:meth:`from_profile`) or a notebook's namespace (:meth:`from_namespace`).
    Values are checked strictly: ``"false"`` is not a bool and ``"64"`` not an
    int (a YAML profile or ``-p filters 64`` already gives real types).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # ---------------------------------------------------------------- data
    dataset: Literal["esc10", "esc50", "own"] = _p(
        "esc10", "data", 'labelled data, "esc10" (ESC10_DIR), "esc50" (ESC50_DIR) or "own" (ESC_LABELLED_DIR)')
    labelled_layout: Literal["auto", "esc50", "folders", "table"] = _p(
        "auto", "data", 'layout of "own" data: a folder per class, a CSV/TSV of path,label[,fold][,group], ESC-50; auto detects')
    n_folds: int = _p(5, "data", 'folds made for "own" data that lists none (stratified, grouped by recording)', ge=3)
    download: bool = _p(False, "data", "download ESC-50 / ESC-US when absent")
    unlabeled: Literal["folder", "escus", "none"] = _p(
        "folder", "data", 'unlabeled pool, "folder" (ESC_UNLABELED_DIR), "escus" (ESCUS_DIR) or "none"')
    escus_parts: int = _p(1, "data", "ESC-US parts to download (10 000 clips each)", ge=0)
    max_unlabeled: int = _p(0, "data", "at most this many unlabeled files, sampled with the seed; 0 means all", ge=0)
    pretrain_on_train_folds: bool = _p(
        True, "data", "add the non-test folds' audio (labels dropped) to the pool; false: one CAE for every fold")
    clips_per_class: int = _p(0, "data", "labelled clips per class and fold, for quick runs; 0 means all", ge=0)
    pool_store: bool = _p(
        False, "data", "keep the unlabeled pool's features on disk (esc_lib.store), read a batch at a time; for large pools")
    min_clip_seconds: float = _p(
        0.1, "data", 'seconds: shorter "own" recordings are skipped and counted (pool files under 1 s are anyway)',
        ge=0)
    seed: int = _p(0, "data", "seed of every random choice", ge=0)
    # ------------------------------------------------------------ features
    sample_rate: int = _p(44100, "features", "sampling rate in Hz the audio is resampled to", gt=0)
    n_mels: int = _p(28, "features", "mel bands (paper: 28)", gt=0)
    n_fft: int = _p(12288, "features", "STFT window in samples (paper: 12288)", gt=0)
    hop_length: int = _p(6144, "features", "STFT hop in samples (paper: 6144 -> 36 frames)", gt=0)
    deltas: bool = _p(False, "features", "add delta features as a second channel")
    # ------------------------------------------------------------- network
    filters: int = _p(64, "network", "filters f of the paper's (f)5c-2p-(f)3c-2p-(f)3c-2p (unused with an encoder)", gt=0)
    encoder: str = _p("", "network", 'encoder notation, e.g. "(32)3c-2p-(64)3c-2p"; empty means the paper encoder')
    batch_norm: bool = _p(False, "network", "batch normalisation after each convolution")
    learning_rate: float = _p(0.001, "network", "Adam learning rate of both stages", gt=0)
    patience: int = _p(5, "network", "early-stopping patience (epochs) on the validation loss", gt=0)
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = _p(
        "float32", "network",
        'numerics of training: "float32", or mixed precision: "mixed_float16" (NVIDIA GPUs), "mixed_bfloat16"')
    distribute: Literal["none", "mirrored"] = _p(
        "none", "network", '"mirrored": train on every visible GPU (tf.distribute.MirroredStrategy), batches split between them')
    # --------------------------------------------------------- pretraining
    decoder: Literal["unpool", "upsample"] = _p(
        "unpool", "pretraining", 'CAE decoder, "unpool" (switch unpooling) or "upsample"')
    cae_batch_size: int = _p(32, "pretraining", "autoencoder batch size", gt=0)
    cae_max_epochs: int = _p(30, "pretraining", "autoencoder epochs at most", gt=0)
    cae_validation_fraction: float = _p(
        0.1, "pretraining", "share of the pre-training clips held out for early stopping", gt=0, lt=1)
    # ------------------------------------------------------ selfsupervised
    contrastive_epochs: int = _p(50, "selfsupervised", "contrastive pre-training epochs at most", gt=0)
    contrastive_batch_size: int = _p(64, "selfsupervised", "clips per contrastive batch (each gives two views)", gt=1)
    contrastive_temperature: float = _p(0.2, "selfsupervised", "temperature of the NT-Xent loss", gt=0)
    contrastive_validation_fraction: float = _p(
        0.1, "selfsupervised", "share of the unlabeled clips held out for early stopping", gt=0, lt=1)
    contrastive_augment: str = _p(
        "", "selfsupervised", "augmentation making each of a clip's two views; empty: shift 30 frames + 2+2 masks",
        augmentation=_SHIFT_AND_MASKS)
    # ---------------------------------------------------------- classifier
    head: str = _p("128fc", "classifier", "classifier head notation; the last fc gets the number of classes")
    batch_size: int = _p(32, "classifier", "classifier batch size (paper grid: 16, 32, 64)", gt=0)
    dropout: float = _p(0.0, "classifier", "dropout before the dense layers (paper: 0)", ge=0, lt=1)
    label_smoothing: float = _p(
        0.0, "classifier", "share of each training target spread evenly over the classes (0: none)", ge=0, lt=1)
    augment: str = _p("", "classifier", 'augmentation of training batches, e.g. "shift + mask + mixup"; empty: none')
    max_epochs: int = _p(100, "classifier", "classifier epochs at most (a cosine schedule trains them all)", gt=0)
    lr_schedule: Literal["constant", "cosine"] = _p(
        "constant", "classifier", '"constant" (early stopping) or "cosine" (rate falls to 0 over max_epochs)')
    protocol: Literal["strict", "sslh"] = _p(
        "strict", "classifier", '"strict": the validation fold watches, the test fold is scored once; "sslh": '
        "SSLH's optimistic protocol - every other fold trains and the epoch most accurate on the test fold is scored")
    # ------------------------------------------------------ semisupervised
    fixmatch_threshold: float = _p(
        0.95, "semisupervised", "confidence a weak view's prediction needs to become a target", ge=0, le=1)
    fixmatch_weight: float = _p(1.0, "semisupervised", "weight of the unlabeled loss", ge=0)
    fixmatch_ratio: int = _p(1, "semisupervised", "unlabeled clips per labelled clip in a step (SSLH: 1)", gt=0)
    fixmatch_epochs: int = _p(
        0, "semisupervised", "with fixmatch_steps 0: epochs, each one pass over the labelled clips as in supervised "
        "training; 0: max_epochs", ge=0)
    fixmatch_steps: int = _p(
        2700, "semisupervised", "optimiser steps of a run, however many clips are labelled (SSLH's ESC-10 runs: "
        "about 2 700); 0: fixmatch_epochs passes over the labelled clips", ge=0)
    fixmatch_batch_size: int = _p(
        0, "semisupervised", "labelled clips in a step (fixmatch_ratio times as many unlabeled ones); 0: batch_size",
        ge=0)
    fixmatch_ema: float = _p(
        0.999, "semisupervised", "decay of the exponential moving average of the weights that is validated, saved "
        "and scored (0: the trained weights themselves)", ge=0, lt=1)
    fixmatch_labels_from: Literal["trained", "average"] = _p(
        "trained", "semisupervised", "which weights label the weak views: the trained ones (FixMatch) or their "
        "moving average (fixmatch_ema; as mean teacher's teacher, slower to confirm its own mistakes)")
    fixmatch_mixup: float = _p(
        0.0, "semisupervised", "FixMatch + mixup (SSLH): mix labelled clips and strong views with each other at "
        "lambda ~ Beta(a, a) kept at least 0.5, each keeping its own target; 0: no mixing", ge=0)
    fixmatch_init: Literal["scratch", "supervised"] = _p(
        "scratch", "semisupervised", "what the consistency-trained classifier starts from: random initialisation "
        "(scratch) or the supervised method's trained classifier of the fold and budget (supervised: fine-tuned "
        "for fixmatch_epochs, so its pseudo-labels are there from the first step)")
    fixmatch_align: bool = _p(
        False, "semisupervised", "distribution alignment (ReMixMatch): scale the weak views' predictions by the "
        "labelled clips' class shares over a running mean of the predictions, so pseudo-labels are not piled onto "
        "the classes the classifier favours")
    fixmatch_weak: str = _p(
        "", "semisupervised", "the weak augmentation of an unlabeled clip; empty: SSLH's (occlusion, speed, cutout, "
        "each with probability 0.5)", augmentation=SSLH_WEAK)
    fixmatch_strong: str = _p(
        "", "semisupervised", "the strong augmentation of an unlabeled clip; empty: SSLH's (occlusion up to 75%, "
        "speed 0.25-1.75, cutout of 50-100%)", augmentation=SSLH_STRONG)
    # -------------------------------------------------------- selftraining
    selftrain_threshold: float = _p(
        0.7, "selftraining", "confidence a teacher's prediction needs to become a pseudo-label", ge=0, le=1)
    selftrain_per_class: int = _p(
        0, "selftraining", "pseudo-labelled clips per class at most, the most confident first; 0: no cap", ge=0)
    selftrain_rounds: int = _p(
        1, "selftraining", "teacher -> student rounds; each student is the next round's teacher", gt=0)
    selftrain_cap_growth: int = _p(
        0, "selftraining", "pseudo-labels per class each later round's cap adds (a curriculum: round r takes "
        "selftrain_per_class + (r-1) x this); 0: the same cap every round", ge=0)
    selftrain_teachers: int = _p(
        1, "selftraining", "members of the first teacher, probabilities averaged: its method's run of the fold and "
        "more seeds (its students keep the ensemble setting)", gt=0)
    selftrain_student: Literal["scratch", "teacher"] = _p(
        "scratch", "selftraining", "what each student starts from: the teacher's own start (scratch: random, or "
        "selftrain_init's encoder) or the teacher's trained weights (teacher: fine-tuned, fewer epochs will do)")
    selftrain_student_epochs: int = _p(
        0, "selftraining", "epochs of each student (with cosine, its schedule's length); 0: max_epochs", ge=0)
    selftrain_labeler: Literal["classifier", "propagation"] = _p(
        "classifier", "selftraining", "what gives the pseudo-labels: the teacher's softmax (classifier) or label "
        "spreading over a 10-nearest-neighbour graph of the teacher's embeddings of the labelled and unlabeled clips "
        "(propagation, as Iscen et al. 2019), so a clip is labelled by the clips it sounds like")
    selftrain_init: Literal["scratch", "pretrained", "contrastive"] = _p(
        "scratch", "selftraining", "what teacher and students start from: random initialisation (the supervised "
        "classifier teaches), the CAE's encoder (the pretrained method's classifier teaches) or the contrastive encoder")
    # --------------------------------------------------------- meanteacher
    meanteacher_weight: float = _p(
        50.0, "meanteacher", "weight of the consistency loss (squared difference of student and teacher class "
        "probabilities, averaged over classes) once ramped up", ge=0)
    meanteacher_ema: float = _p(
        0.99, "meanteacher", "decay of the teacher's moving average of the student's weights", ge=0, lt=1)
    meanteacher_rampup: float = _p(
        0.4, "meanteacher", "share of the training steps over which the consistency weight rises from 0", ge=0, le=1)
    meanteacher_ratio: int = _p(3, "meanteacher", "unlabeled clips per labelled clip in a step", gt=0)
    meanteacher_epochs: int = _p(
        0, "meanteacher", "epochs, each one pass over the labelled clips as in supervised training; 0: max_epochs", ge=0)
    meanteacher_steps: int = _p(
        0, "meanteacher", "optimiser steps of a run however many clips are labelled, as whole passes over the labelled "
        "clips (at 4 per class of ESC-10: 2 steps a pass); 0: meanteacher_epochs passes", ge=0)
    meanteacher_student_view: str = _p(
        "", "meanteacher", "the augmentation of an unlabeled clip the student sees; empty: shift 8 frames",
        augmentation=_SHIFT)
    meanteacher_teacher_view: str = _p(
        "", "meanteacher", "the augmentation of the same clip the teacher sees; empty: shift 8 frames",
        augmentation=_SHIFT)
    # ----------------------------------------------------------- freematch
    freematch_momentum: float = _p(
        0.999, "freematch", "momentum of the running means the thresholds are made of: the weak views' mean confidence, "
        "each class's mean probability and the histogram of their arg-max classes", ge=0, lt=1)
    freematch_fairness: float = _p(
        0.001, "freematch", "weight of the self-adaptive fairness loss on the masked strong views (USB's configurations: "
        "0.001); 0: none", ge=0)
    # ------------------------------------------------------------ mixmatch
    mixmatch_temperature: float = _p(
        0.5, "mixmatch", "temperature of the sharpening of the two weak views' mean prediction (MixMatch: 0.5)",
        gt=0, le=1)
    mixmatch_alpha: float = _p(
        0.75, "mixmatch", "mixup of labelled and unlabeled clips at max(lam, 1 - lam) with lam from Beta(alpha, alpha) "
        "(MixMatch: 0.75)", gt=0)
    mixmatch_weight: float = _p(
        10.0, "mixmatch", "weight of the unlabeled mean squared error after its ramp-up (USB's audio configurations: "
        "10; the paper's CIFAR-10: 75)", ge=0)
    mixmatch_rampup: float = _p(
        0.4, "mixmatch", "share of the optimiser steps over which the unlabeled weight rises linearly from 0 (USB's "
        "audio configurations: 0.4)", ge=0, le=1)
    mixmatch_align: bool = _p(
        True, "mixmatch", "align the two weak views' mean prediction to the labelled clips' class shares before "
        "sharpening (ReMixMatch's distribution alignment): without it the guesses can pile onto one class")
    # ---------------------------------------------------------- evaluation
    folds: list[int] = _p([1, 2, 3, 4, 5], "evaluation", "test folds of the cross-validation", min_length=1)
    methods: list[str] = _p(
        ["supervised", "pretrained"], "evaluation", f"ways of training to compare: {', '.join(METHODS)}", min_length=1)
    label_budgets: list[int] = _p(
        [0], "evaluation", "labelled clips per class kept in the training folds and in the validation fold, one run each; 0 means all",
        min_length=1)
    refit_on_validation: bool = _p(
        False, "evaluation", "retrain on the training + validation folds and score that model")
    ensemble: int = _p(1, "evaluation", "classifiers per fold with different seeds, probabilities averaged", gt=0)
    score: Literal["test", "validation"] = _p(
        "test", "evaluation", '"test" scores the test folds; "validation" only the validation folds (searches)')
    jobs: int = _p(
        1, "evaluation", "test folds trained side by side, each in a process of its own with one thread (a small network "
        "does not keep two cores busy: on 2 cores 2 jobs train about twice as fast, benchmarks/bench_processes.py); "
        "0: one per CPU core; 1: one after another in this process", ge=0)
    # -------------------------------------------------------------- output
    profile: str = _p("esc10", "output", "subfolder of figures/ and results/ this run publishes into")
    run_dir: str = _p("", "output", "run folder for checkpoints and metrics; empty means runs/interactive")
    publish_figures: bool = _p(True, "output", "write into figures/<profile> and results/<profile> (else the run folder)")
    compare_decoders: bool = _p(True, "output", "also train the other decoder on the first fold for the reconstruction figure")
    embedding_method: Literal["tsne", "pca"] = _p("tsne", "output", '2-D embedding of encoder features, "tsne" or "pca"')

    # ------------------------------------------------------------ checks
    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, values):
        if isinstance(values, Mapping):
            unknown = [name for name in values if name not in cls.model_fields]
            if unknown:
                raise SettingsError(_unknown_message(unknown))
        return values

    @field_validator("folds", mode="before")
    @classmethod
    def _one_fold(cls, value):
        # A single fold (``-p folds 1``) means a list of one.
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("folds", "methods", "label_budgets", mode="before")
    @classmethod
    def _tuple_is_list(cls, value):
        return list(value) if isinstance(value, tuple) else value

    @field_validator("*", mode="before")
    @classmethod
    def _int_is_float(cls, value, info: ValidationInfo):
        # A float parameter takes an integer (``-p learning_rate 1``); strict mode would refuse it.
        if cls.model_fields[info.field_name].annotation is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @field_validator("*")
    @classmethod
    def _augment_parses(cls, value, info: ValidationInfo):
        if (info.field_name == "augment" or info.field_name in DEFAULT_AUGMENTATIONS) and value.strip():
            from esc_lib import augment  # NumPy only

            augment.from_spec(value, n_classes=2)  # raises ValueError naming the bad step
        return value

    @field_validator("methods")
    @classmethod
    def _registered_methods(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; the methods are {list(METHODS)} (esc_lib.methods)")
        if len(set(value)) != len(value):
            raise ValueError("methods must not repeat")
        return value

    @field_validator("label_budgets")
    @classmethod
    def _budgets_non_negative(cls, value: list[int]) -> list[int]:
        if any(v < 0 for v in value):
            raise ValueError("label budgets are clips per class: integers >= 0 (0 = all)")
        if len(set(value)) != len(value):
            raise ValueError("label budgets must not repeat")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if self.score == "validation" and self.refit_on_validation:
            raise ValueError(
                "score='validation' needs the validation fold held out, but refit_on_validation trains on it; "
                "set refit_on_validation to false for a search")
        if self.protocol == "sslh" and (self.refit_on_validation or self.score == "validation"):
            raise ValueError(
                "protocol 'sslh' trains on every fold but the test fold and watches the test fold itself: there is "
                "no validation fold to refit on or to score; set refit_on_validation to false and score to 'test'")
        if self.jobs != 1 and self.distribute == "mirrored":
            raise ValueError("jobs trains folds in processes of their own, distribute 'mirrored' one model on every GPU: "
                             "set jobs to 1 with distribute 'mirrored'")
        if self.pool_store and self.unlabeled == "none":
            raise ValueError("pool_store keeps an unlabeled pool on disk, but unlabeled is 'none'")
        for method in self.methods:  # what each method run asks of the rest (e.g. a warm start it cannot use)
            registry.get(method).check(self)
        needs_unlabeled = sorted(name for name in self.methods if registry.get(name).uses_unlabeled)
        if self.unlabeled == "none" and not self.pretrain_on_train_folds and needs_unlabeled:
            raise ValueError(
                f"the method(s) {needs_unlabeled} need unlabeled audio: set unlabeled to 'folder' or 'escus' "
                "or pretrain_on_train_folds to true (or methods to ['supervised'])")
        return self

    def __init__(self, **values: Any):
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise SettingsError(_one_line(error)) from None

    # ---------------------------------------------------------- builders
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Settings":
        """From a dict of parameters; an unknown name is an error naming the closest known one."""
        return cls(**dict(values))

    @classmethod
    def from_profile(cls, profile: str | Path, overrides: Mapping[str, Any] | None = None) -> "Settings":
        """A profile's parameters (``profiles/<name>.yaml`` or a path) with ``overrides`` on top."""
        return cls(**{**load_profile(profile).parameters, **dict(overrides or {})})

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any], notebook: str | None = None) -> "Settings":
        """From a notebook's ``globals()`` right after its parameters cell (and papermill's injected one).

        Every plain value there must be a parameter: a name papermill injected
        that the schema does not know (``-p clips_per_clas 1``) is an error
        before any work, not a silent full-size run.

        With ``notebook`` (a key of :data:`NOTEBOOK_SECTIONS`, e.g. ``"03_finetuning"``) only the names
        its parameters cell declares are read, and the unknown-name check is made at the first reading
        in a kernel only (it marks ``namespace``): *Run All* again in the same kernel, after a changed
        parameter, ignores what the notebook itself defined since (``experiment``, ``X``, ``pool``).
        A papermill run is always a first reading.
        """
        plain = {
            name: value for name, value in namespace.items()
            if not name.startswith("_") and name not in _NOTEBOOK_BUILTINS
            and not isinstance(value, ModuleType) and not callable(value)
        }
        if notebook is None:
            return cls(**plain)
        stem = Path(notebook).stem
        if stem not in NOTEBOOK_SECTIONS:
            raise SettingsError(f"no parameters are defined for notebook {notebook!r}; known: {sorted(NOTEBOOK_SECTIONS)}")
        first_reading = not namespace.get(_NAMESPACE_READ)
        if first_reading:
            unknown = sorted(name for name in plain if name not in cls.model_fields)
            if unknown:
                raise SettingsError(_unknown_message(unknown))
        declared = set(cls.names(NOTEBOOK_SECTIONS[stem]))
        settings = cls(**{name: value for name, value in plain.items() if name in declared})
        if first_reading and isinstance(namespace, MutableMapping):
            namespace[_NAMESPACE_READ] = True
        return settings

    def replace(self, **changes: Any) -> "Settings":
        """A copy with ``changes`` (validated like the rest)."""
        return type(self)(**{**self.model_dump(), **changes})

    # --------------------------------------------------------- structure
    @classmethod
    def section_of(cls, name: str) -> str:
        """The section a parameter belongs to."""
        if name not in cls.model_fields:
            raise SettingsError(_unknown_message([name]))
        return cls.model_fields[name].json_schema_extra["section"]

    @classmethod
    def names(cls, sections: Iterable[str] | None = None) -> list[str]:
        """Parameter names in schema order, optionally only those of ``sections``."""
        wanted = set(SECTIONS if sections is None else sections)
        unknown = wanted - set(SECTIONS)
        if unknown:
            raise SettingsError(f"unknown section(s) {sorted(unknown)}; sections are {list(SECTIONS)}")
        return [name for name in cls.model_fields if cls.section_of(name) in wanted]

    def section(self, name: str) -> dict[str, Any]:
        """The values of one section, as JSON-ready Python values."""
        return {field: value for field, value in self.model_dump().items() if self.section_of(field) == name}

    def stage_sections(self, stage: str) -> tuple[str, ...]:
        """The sections ``stage`` depends on: a pre-training stage's (:data:`PRETRAINING_SECTIONS`) or a method's
        (:meth:`esc_lib.methods.base.Method.key_sections`)."""
        if stage in PRETRAINING_SECTIONS:
            return PRETRAINING_SECTIONS[stage]
        if stage in METHODS:
            return registry.get(stage).key_sections(self)
        raise SettingsError(f"stage must be one of {sorted([*PRETRAINING_SECTIONS, *METHODS])}, got {stage!r}")

    def stage_settings(self, stage: str) -> dict[str, dict[str, Any]]:
        """``{section: values}`` of what ``stage`` (a pre-training stage or a method) depends on.

        The encoder is given as the notation actually built, so ``filters`` stops
        mattering once ``encoder`` is set.
        """
        sections = {name: self.section(name) for name in self.stage_sections(stage)}
        network = sections["network"]
        network["encoder"] = self.encoder_notation
        del network["filters"]
        if self.dataset != "own":
            # Settings of one's own recordings change nothing else: keep the keys of ESC runs.
            for name in ("labelled_layout", "n_folds"):
                sections["data"].pop(name, None)
        # Settings added after runs were made leave the keys alone at their defaults.
        for section, names in _keyed_unless_default().items():
            for name in names if section in sections else ():
                if sections[section].get(name) == type(self).model_fields[name].default:
                    sections[section].pop(name)
        if self.holds_out_validation:
            # A search's unlabeled clips (and input statistics) leave out the scored validation fold.
            sections["data"]["unlabeled_folds"] = "training folds only"
        # An empty augmentation stands for a default spec: hash the spec actually used.
        for section in sections.values():
            for name in DEFAULT_AUGMENTATIONS.keys() & section.keys():
                section[name] = self.augmentation(name)
        return sections

    def key(self, stage: str) -> str:
        """Hash (8 hex digits) of the sections ``stage`` depends on: the identity of its trained models."""
        text = json.dumps(self.stage_settings(stage), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    # -------------------------------------------------------------- names
    def augmentation(self, name: str) -> str:
        """The augmentation spec of ``contrastive_augment``, ``fixmatch_weak`` or ``fixmatch_strong`` (its default when empty)."""
        return getattr(self, name) or DEFAULT_AUGMENTATIONS[name]

    @property
    def holds_out_validation(self) -> bool:
        """Whether the non-test folds' audio used without labels leaves out the validation fold too.

        So with ``score="validation"`` (a search) and ``pretrain_on_train_folds``: the
        scored fold's audio never enters pre-training, FixMatch or the input statistics.
        """
        return self.score == "validation" and self.pretrain_on_train_folds

    @property
    def encoder_notation(self) -> str:
        """The encoder actually built: ``encoder``, or the paper's with ``filters``."""
        return self.encoder or PAPER_ENCODER.format(f=self.filters)

    @property
    def architecture(self) -> str:
        """The encoder for captions: the paper's with its filters named ``f``, or the custom notation."""
        return self.encoder or PAPER_ENCODER.format(f="f")

    @property
    def reference_budget(self) -> int:
        """The label budget tables and figures report: every label (0) when it was run, else the largest budget."""
        return 0 if 0 in self.label_budgets else max(self.label_budgets)

    @property
    def pool_label(self) -> str:
        """The unlabeled pool in words: ``all``, ``none`` or the number of files."""
        if self.unlabeled == "none":
            return "none"
        return str(self.max_unlabeled) if self.max_unlabeled else "all"

    def _encoder_tag(self) -> str:
        return _encoder_tag(self.encoder) if self.encoder else f"f{self.filters}"

    def _pool_tag(self) -> str:
        if self.unlabeled == "none":
            return "-nopool"
        return f"-pool{self.max_unlabeled}" if self.max_unlabeled else ""

    def _classifier_tags(self) -> str:
        tags = "" if self.head == "128fc" else "-" + self.head.replace(" ", "")
        tags += self._pool_tag()
        if self.augment:
            tags += "-aug-" + _augment_tag(self.augment)
        if self.lr_schedule != "constant":
            tags += f"-{self.lr_schedule}{self.max_epochs}"
        if self.label_smoothing:
            tags += f"-ls{self.label_smoothing:g}"
        if self.protocol != "strict":
            tags += f"-{self.protocol}protocol"
        return tags

    def _method_tags(self) -> str:
        """The non-default settings of the methods run (:meth:`esc_lib.methods.base.Method.config_tag`), so search
        points differ: e.g. ``-fm-t0.7-u1`` (FixMatch's threshold 0.7, 1 unlabeled clip per labelled one)."""
        return "".join(registry.get(name).config_tag(self) for name in METHODS if name in self.methods)

    @property
    def config_id(self) -> str:
        """Readable name of this configuration, e.g. ``bs32-f64-unpool-bn0``; notebooks and results are named by it.

        Names the batch size, the encoder (``f64`` for the paper's, else its
        filters and a hash), the decoder, batch norm, and the non-default pool,
        augmentation, schedule, refit, ensemble and settings of the methods run
        (FixMatch's, the contrastive encoder's), so sweep points differ.
        """
        name = f"bs{self.batch_size}-{self._encoder_tag()}-{self.decoder}-bn{int(self.batch_norm)}" + self._classifier_tags()
        if self.refit_on_validation:
            name += "-refit"
        if self.ensemble > 1:
            name += f"-ens{self.ensemble}"
        return name + self._method_tags()

    def cae_id(self, decoder: str | None = None) -> str:
        """Run-folder name of the CAE: readable part + :meth:`key` of ``"cae"`` (shared across batch sizes)."""
        settings = self if decoder in (None, self.decoder) else self.replace(decoder=decoder)
        name = f"{settings._encoder_tag()}-{settings.decoder}-bn{int(settings.batch_norm)}-cbs{settings.cae_batch_size}"
        return f"{name}{settings._pool_tag()}-{settings.key('cae')}"

    def starts_from(self, method: str) -> str | None:
        """The pre-trained encoder ``method`` starts from: ``"pretrained"`` (the CAE's), ``"contrastive"`` or None.

        A self-trained student starts from ``selftrain_init``'s.
        """
        return registry.get(method).starts_from(self)

    def classifier_id(self, method: str) -> str:
        """Run-folder name of a classifier: readable part + :meth:`key` of ``method``.

        The supervised baseline does not depend on pre-training, so the decoder
        variants of a sweep share it.  Refits and ensemble members are
        folders inside it (``fold1-refit``, ``fold1-m1``), so a refit reuses
        the early-stopped run it takes its epochs from.
        """
        if method not in METHODS:
            raise SettingsError(f"method must be one of {METHODS}, got {method!r}")
        origin = registry.get(method).run_folder_tag(self)
        name = f"bs{self.batch_size}-{self._encoder_tag()}{origin}-bn{int(self.batch_norm)}" + self._classifier_tags()
        return f"{name}-{self.key(method)}"

    def contrastive_id(self) -> str:
        """Run-folder name of the contrastively pre-trained encoder: readable part + its key."""
        name = f"{self._encoder_tag()}-simclr-bn{int(self.batch_norm)}-cbs{self.contrastive_batch_size}"
        return f"{name}{self._pool_tag()}-{self.key('contrastive_encoder')}"

    def to_json(self, stage: str | None = None) -> str:
        """Every parameter (or only what ``stage`` depends on), as the ``settings.json`` of a run folder."""
        payload = self.stage_settings(stage) if stage else {name: self.section(name) for name in SECTIONS}
        if stage:
            payload = {"stage": stage, "key": self.key(stage), **payload}
        return json.dumps(payload, indent=2, sort_keys=False) + "\n"


#: The augmentation an empty augmentation parameter stands for (not written as its default: papermill cannot
#: parse a parameters line holding two '='), from the schema (``_p(..., augmentation=...)``).
DEFAULT_AUGMENTATIONS = {
    name: spec.json_schema_extra["augmentation"] for name, spec in Settings.model_fields.items()
    if "augmentation" in spec.json_schema_extra
}


def _keyed_unless_default() -> dict[str, tuple[str, ...]]:
    """:data:`KEYED_UNLESS_DEFAULT` and each method's own (:attr:`esc_lib.methods.base.Method.keyed_unless_default`)."""
    table = dict(KEYED_UNLESS_DEFAULT)
    for method in registry.all_methods():
        if method.keyed_unless_default:
            table[method.section] = table.get(method.section, ()) + tuple(method.keyed_unless_default)
    return table


#: Names a Jupyter kernel puts into a notebook's namespace besides the parameters.
_NOTEBOOK_BUILTINS = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})
#: Set in a notebook's namespace by its first :meth:`Settings.from_namespace` (private: never read as a parameter).
_NAMESPACE_READ = "_esc_lib_parameters_read"


def _unknown_message(unknown: Iterable[str]) -> str:
    known = list(Settings.model_fields)
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        parts.append(f"unknown parameter {name!r}{hint}")
    return "; ".join(parts) + " (python -m esc_lib.settings lists every parameter)"


def _one_line(error: ValidationError) -> str:
    """Pydantic's errors as one readable line per parameter: name, value given, what is allowed."""
    messages = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if item["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        context = item.get("ctx", {})
        if "expected" in context:
            message = f"expected {context['expected']}"
        if where:
            messages.append(f"parameter {where}={item.get('input')!r}: {message}")
        else:
            messages.append(message)
    return "; ".join(messages)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:4]


def _encoder_tag(notation: str) -> str:
    """``(16)3c-2p-(32)3c-2p`` -> ``c16-32.1a2b``: the filters and a hash that keeps kernel and pooling sizes apart."""
    filters = re.findall(r"\((\d+)\)\s*\d+(?:x\d+)?c", notation)
    return f"c{'-'.join(filters)}.{_hash(notation.replace(' ', ''))}"


def _augment_tag(spec: str) -> str:
    """A short name for an augmentation: its step names and a hash of the whole text."""
    names = [item.split(":")[0] for item in spec.replace(" ", "").split("+") if item]
    return f"{'_'.join(names)}.{_hash(spec.replace(' ', ''))}"


# ---------------------------------------------------------------------------
# Profiles


class Profile(BaseModel):
    """A profile file: ``description``, ``parameters`` (a mapping), an optional ``sweep``.

    ``extends: <profile>`` starts from another profile's parameters (its sweep
    is not inherited), so a variant lists only what it changes.
    """

    model_config = ConfigDict(extra="forbid")

    path: str
    description: str = ""
    parameters: dict[str, Any] = {}
    sweep: dict[str, Any] = {}

    def points(self) -> list[dict[str, Any]]:
        """The sweep's points (see :func:`grid_points`)."""
        return grid_points(self.sweep)


def load_profile(profile: str | Path, _seen: tuple = ()) -> Profile:
    """Read and check a profile: ``profiles/<name>.yaml`` or a path to a YAML file.

    Every parameter and every sweep point is validated against the schema
    here, before any work, so a typo or a bad value stops the run with a line
    naming the file and the parameter.
    """
    import yaml

    from esc_lib import config

    path = Path(profile).expanduser()
    if not (path.suffix in (".yaml", ".yml") or path.exists()):
        path = config.profiles_dir() / f"{profile}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in config.profiles_dir().glob("*.yaml"))) or "none"
            raise SettingsError(f"unknown profile {str(profile)!r}; known profiles: {known}; or pass a path to a YAML file")
    if not path.is_file():
        raise SettingsError(f"profile file {path} does not exist")
    try:
        content = yaml.load(path.read_text(), Loader=_unique_key_loader()) or {}
    except _DuplicateKey as error:
        raise SettingsError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SettingsError(f"{path}:{where} is not valid YAML: {problem}") from None
    if not isinstance(content, dict) or not set(content) <= {"parameters", "sweep", "description", "extends"}:
        raise SettingsError(
            f"{path} must be a mapping with 'parameters' (and optionally 'extends', 'sweep', 'description')")
    parameters, sweep = content.get("parameters") or {}, content.get("sweep") or {}
    if not isinstance(parameters, dict) or not isinstance(sweep, dict):
        raise SettingsError(f"{path}: 'parameters' and 'sweep' must be mappings (name: value)")
    if content.get("extends"):
        # Another profile's parameters (a name in profiles/ or a path relative to this file), these on top.
        base = str(content["extends"])
        relative = path.parent / base
        if path.resolve() in _seen:
            raise SettingsError(f"{path}: profiles extend each other in a circle ({' -> '.join(p.name for p in _seen)})")
        target = relative if relative.suffix in (".yaml", ".yml") and relative.is_file() else base
        base_profile = load_profile(target, (*_seen, path.resolve()))
        parameters = {**base_profile.parameters, **parameters}
    if not set(sweep) <= {"grid", "variants"}:
        raise SettingsError(f"{path}: sweep takes 'grid' (a mapping of lists) and 'variants' (a list of mappings)")
    for name, values in (sweep.get("grid") or {}).items():
        if not isinstance(values, list) or not values:
            raise SettingsError(f"{path}: sweep.grid.{name} must be a non-empty list")
    variants = sweep.get("variants") or []
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise SettingsError(f"{path}: sweep.variants must be a list of mappings")
    result = Profile(path=str(path), description=str(content.get("description") or ""), parameters=parameters, sweep=sweep)
    for point in result.points():
        try:
            Settings(**{**parameters, **point})
        except SettingsError as error:
            where = f" (sweep point {point})" if point else ""
            raise SettingsError(f"{path}{where}: {error}") from None
    return result


class _DuplicateKey(ValueError):
    """A key given twice in one mapping of a YAML file (the message names it and both lines)."""


def _unique_key_loader():
    """PyYAML's safe loader, except that a key repeated in one mapping is an error instead of the last value winning."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            lines: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    if key in lines:
                        raise _DuplicateKey(
                            f"{key!r} is given twice, on line {lines[key] + 1} and line {key_node.start_mark.line + 1}; "
                            "keep one (YAML would silently use the last)")
                    lines[key] = key_node.start_mark.line
                except TypeError:  # an unhashable key: PyYAML's own error says so
                    break
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def grid_points(sweep: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of ``sweep["grid"]`` (or the base point), then each of ``sweep["variants"]``, without repeats."""
    import itertools

    grid = sweep.get("grid") or {}
    names = list(grid)
    points = [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))] if grid else [{}]
    for variant in sweep.get("variants") or []:
        if variant not in points:
            points.append(dict(variant))
    return points


# ---------------------------------------------------------------------------
# Documentation and notebooks


def _type_name(name: str) -> str:
    annotation = Settings.model_fields[name].annotation
    text = getattr(annotation, "__name__", None) if getattr(annotation, "__origin__", None) is None else None
    if text in ("int", "float", "bool", "str"):
        return text
    origin = getattr(annotation, "__origin__", None)
    if origin is Literal:
        return "str"
    if origin is list:
        (item,) = annotation.__args__
        return "list[str]" if getattr(item, "__origin__", None) is Literal else f"list[{item.__name__}]"
    return str(annotation)


def _allowed(name: str) -> str:
    annotation = Settings.model_fields[name].annotation
    if getattr(annotation, "__origin__", None) is Literal:
        return " | ".join(map(repr, annotation.__args__))
    return ""


def describe() -> list[dict[str, str]]:
    """One row per parameter: name, section, type, allowed values, default, description."""
    rows = []
    for name, spec in Settings.model_fields.items():
        rows.append({
            "name": name, "section": Settings.section_of(name), "type": _type_name(name),
            "allowed": _allowed(name), "default": repr(spec.default), "description": spec.description or "",
        })
    return rows


def _literal(value: Any) -> str:
    """Python source for a default (``True``, ``"esc10"``, ``[1, 2]``)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def parameters_cell(notebook: str) -> str:
    """The source of a notebook's ``parameters`` cell, generated from the schema.

    One annotated literal per line (``name: type = value  # description``),
    so papermill's ``--help-notebook`` shows each type and description.
    """
    stem = Path(notebook).stem
    if stem not in NOTEBOOK_SECTIONS:
        raise SettingsError(f"no parameters are defined for notebook {notebook!r}; known: {sorted(NOTEBOOK_SECTIONS)}")
    lines = []
    for section in NOTEBOOK_SECTIONS[stem]:
        names = Settings.names([section])
        lines.append(f"# {section}: {SECTIONS[section]}")
        width = max(len(f"{n}: {_type_name(n)} = {_literal(Settings.model_fields[n].default)}") for n in names)
        for name in names:
            spec = Settings.model_fields[name]
            code = f"{name}: {_type_name(name)} = {_literal(spec.default)}"
            lines.append(f"{code.ljust(width)}  # {spec.description}")
    return "\n".join(lines)


def _main(argv: list[str] | None = None) -> int:
    """``python -m esc_lib.settings``: every parameter as a table (``--markdown`` for the README)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m esc_lib.settings",
        description="List every parameter of the schema, or write a profile as a papermill parameter file.")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    parser.add_argument(
        "--papermill", metavar="PROFILE",
        help="print PROFILE's parameters (its 'extends' resolved, validated) as a flat YAML mapping for "
             "`papermill -f`; a profile file itself is not one (its parameters sit under 'parameters:')")
    args = parser.parse_args(argv)
    if args.papermill:
        import yaml

        try:
            profile = load_profile(args.papermill)
            Settings(**profile.parameters)
        except SettingsError as error:
            print(f"python -m esc_lib.settings: {error}", file=sys.stderr)
            return 2
        print(f"# papermill parameters of profile {profile.path} (python -m esc_lib.settings --papermill)")
        print(yaml.safe_dump(dict(profile.parameters), sort_keys=False, default_flow_style=None).rstrip())
        return 0
    rows = describe()
    if args.markdown:
        print("| parameter | section | type | default | description |\n|---|---|---|---|---|")
        for row in rows:
            allowed = f" ({row['allowed']})" if row["allowed"] else ""
            print(f"| `{row['name']}` | {row['section']} | {row['type']}{allowed} | `{row['default']}` | {row['description']} |")
        return 0
    for section in SECTIONS:
        print(f"{section}: {SECTIONS[section]}")
        for row in rows:
            if row["section"] == section:
                allowed = f" [{row['allowed']}]" if row["allowed"] else ""
                print(f"  {row['name']:24s} {row['type']:10s} = {row['default']:12s} {row['description']}{allowed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
