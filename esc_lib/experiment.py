"""The paper's experiment as reusable steps: data, folds, pre-training, fine-tuning.

The notebooks hold no logic; they build an :class:`Experiment` from their
``parameters`` cell and call its methods.  Everything an experiment trains is
kept in its run folder, and every step first looks there, so re-running a
notebook (or running notebook 03 without 02) reuses what already exists::

    <run_dir>/
      cae/<cae_id>/<fold1|...|shared>/       CAE training run (checkpoints, history.csv, model.keras)
      classifiers/<config_id>/<method>/fold<k>[-<budget>]/   classifier runs
      results/<config_id>/metrics.csv        one row per (method, fold[, budget])
      results/<config_id>/predictions.csv    one row per test clip
      pool_report.csv                        unlabeled files skipped, with reasons

Cross-validation protocol (official ESC folds): for test fold *k*, the
validation fold (early stopping, the only choice made during training) is the
next fold after *k*; the remaining folds train.  The test fold is used for
nothing but the final score.  With ``refit_on_validation`` the classifier is
then trained again from the same start on the training *and* validation folds
(both are training folds) for the number of epochs early stopping chose, and
that model is scored.  Pre-training sees the unlabeled pool and, when
``pretrain_on_train_folds`` is set, the audio of the training and validation
folds with labels dropped, never the test fold.  Input statistics
(:class:`esc_lib.features.Standardizer`) come from the same training data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from esc_lib import atomic, audio, config

__all__ = ["Settings", "Experiment", "METHODS", "held_out_reconstructions", "collect_results", "publish_dirs"]

#: The two ways of initialising the classifier that the paper compares.
METHODS = ("supervised", "pretrained")


@dataclass
class Settings:
    """Every parameter of an experiment; the notebooks' ``parameters`` cells use the same names.

    See ``profiles/*.yaml`` for the values of each profile.
    """

    dataset: str = "esc10"
    download: bool = False
    unlabeled: str = "folder"
    escus_parts: int = 1
    max_unlabeled: int = 0
    pretrain_on_train_folds: bool = True
    clips_per_class: int = 0
    folds: list = field(default_factory=lambda: [1, 2, 3, 4, 5])
    sample_rate: int = audio.SAMPLE_RATE
    n_mels: int = 28
    n_fft: int = 12288
    hop_length: int = 6144
    deltas: bool = False
    filters: int = 64
    encoder: str = ""
    head: str = "128fc"
    batch_size: int = 32
    cae_batch_size: int = 32
    decoder: str = "unpool"
    batch_norm: bool = False
    dropout: float = 0.0
    augment: str = ""
    max_epochs: int = 100
    cae_max_epochs: int = 30
    patience: int = 5
    learning_rate: float = 0.001
    lr_schedule: str = "constant"
    cae_validation_fraction: float = 0.1
    refit_on_validation: bool = False
    ensemble: int = 1
    seed: int = 0
    run_dir: str = ""

    def __post_init__(self) -> None:
        self._check_types()
        choices = {
            "dataset": ("esc10", "esc50"),
            "unlabeled": ("folder", "escus", "none"),
            "decoder": ("unpool", "upsample"),
            "lr_schedule": LR_SCHEDULES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"parameter {name}={getattr(self, name)!r}: expected one of {allowed}")
        positive = ("n_mels", "n_fft", "hop_length", "filters", "batch_size", "cae_batch_size", "patience", "sample_rate", "ensemble")
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"parameter {name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("max_epochs", "cae_max_epochs", "clips_per_class", "max_unlabeled", "escus_parts"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"parameter {name} must be >= 0, got {getattr(self, name)!r}")
        if not self.folds:
            raise ValueError("parameter folds must list at least one test fold")
        if not 0.0 < self.cae_validation_fraction < 1.0:
            raise ValueError("parameter cae_validation_fraction must be between 0 and 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"parameter dropout must be in [0, 1), got {self.dropout!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"parameter learning_rate must be positive, got {self.learning_rate!r}")

    def _check_types(self) -> None:
        """Coerce what is safe (int -> float, a single fold -> [fold]) and name any other mismatch."""
        if isinstance(self.folds, int) and not isinstance(self.folds, bool):
            self.folds = [self.folds]
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            expected = spec.type if isinstance(spec.type, str) else spec.type.__name__
            if expected == "float" and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, spec.name, float(value))
                continue
            kinds = {"int": int, "float": float, "bool": bool, "str": str, "list": list}
            kind = kinds[expected]
            wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
            if kind is list and not wrong:
                wrong = not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            if wrong:
                raise ValueError(
                    f"parameter {spec.name}={value!r} must be {'a list of fold numbers' if kind is list else 'a ' + expected}"
                )

    @classmethod
    def pick(cls, namespace: dict) -> "Settings":
        """The settings among ``namespace``'s names (e.g. a notebook's ``globals()``); others are ignored."""
        return cls(**{f.name: namespace[f.name] for f in dataclasses.fields(cls) if f.name in namespace})

    def digest(self, *, exclude: tuple = ()) -> str:
        """Short hash of every setting that changes what is trained, minus ``exclude``.

        Run folders carry it, so a changed setting (clips per class, learning
        rate, ...) never silently reuses a model trained with the old value.
        """
        ignored = {"run_dir", "folds", *_EVALUATION_ONLY, *exclude}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k not in ignored}
        # Settings added after runs were published count only when changed,
        # so those runs keep their folders.
        values = {k: v for k, v in values.items() if not (k in _LATER_DEFAULTS and v == _LATER_DEFAULTS[k])}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def pool_label(self) -> str:
        """The unlabeled pool in words: ``all``, ``none`` or the number of files."""
        if self.unlabeled == "none":
            return "none"
        return str(self.max_unlabeled) if self.max_unlabeled else "all"

    @classmethod
    def from_mapping(cls, values: dict) -> "Settings":
        """Build from a dict (e.g. a notebook's parameters); unknown names are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown experiment parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    @property
    def encoder_notation(self) -> str:
        from esc_lib import models

        return self.encoder or models.encoder_notation(self.filters)

    def _pool_tag(self) -> str:
        if self.unlabeled == "none":
            return "-nopool"
        return f"-pool{self.max_unlabeled}" if self.max_unlabeled else ""

    @property
    def config_id(self) -> str:
        """Name of this grid point, e.g. ``bs32-f64-unpool-bn0`` (the runner names notebooks with it).

        Non-default encoders, pool sizes and augmentations are appended, so
        sweep points never share a name.
        """
        name = f"bs{self.batch_size}-f{self.filters}-{self.decoder}-bn{int(self.batch_norm)}" + self._classifier_tags()
        if self.refit_on_validation:
            name += "-refit"
        if self.ensemble > 1:
            name += f"-ens{self.ensemble}"
        return name

    def classifier_id(self, method: str) -> str:
        """Name of a classifier run folder, ending in the settings' digest.

        The supervised baseline ignores the CAE's decoder, so the decoder
        variants of a sweep share it; it keeps the pool tag because its input
        statistics come from the pre-training data.
        """
        if method != "supervised":
            # A refit or an ensemble reuses the single early-stopped run: same folder with or without them.
            single = dataclasses.replace(self, refit_on_validation=False, ensemble=1)
            return f"{single.config_id}-{self.digest()}"
        name = f"bs{self.batch_size}-f{self.filters}-bn{int(self.batch_norm)}" + self._classifier_tags()
        return f"{name}-{self.digest(exclude=_CAE_ONLY)}"

    def _classifier_tags(self) -> str:
        """The name parts of non-default encoder, pool, augmentation and schedule (empty for the paper's)."""
        tags = ("-" + _encoder_tag(self.encoder)) if self.encoder else ""
        tags += self._pool_tag()
        if self.augment:
            tags += "-aug-" + _augment_tag(self.augment)
        if self.lr_schedule != "constant":
            tags += f"-{self.lr_schedule}{self.max_epochs}"
        return tags

    def cae_id(self, decoder: str | None = None) -> str:
        """Name of the CAE this configuration fine-tunes from (shared across batch sizes)."""
        decoder = decoder or self.decoder
        name = f"f{self.filters}-{decoder}-bn{int(self.batch_norm)}-cbs{self.cae_batch_size}"
        if self.encoder:
            name += "-" + _encoder_tag(self.encoder)
        # The digest covers what shapes the CAE; classifier-only settings are left out so grid points share it.
        return name + self._pool_tag() + "-" + dataclasses.replace(self, decoder=decoder).digest(exclude=_CLASSIFIER_ONLY)


#: Settings that only the CAE uses, and settings that only the classifier uses (for the run-folder digests).
_CAE_ONLY = ("decoder", "cae_batch_size", "cae_max_epochs", "cae_validation_fraction")
_CLASSIFIER_ONLY = ("head", "batch_size", "dropout", "augment", "max_epochs", "lr_schedule")
#: Settings that change what is scored, not the single early-stopped run: left
#: out of every digest, so a refit reuses the early-stopped run it takes its
#: epochs from, and ensemble member 0 is that run (members 1.. get their own folders).
_EVALUATION_ONLY = ("refit_on_validation", "ensemble")
#: Settings added after results were published, with the value they had then.
_LATER_DEFAULTS = {"lr_schedule": "constant"}
#: ``constant``: the paper's Adam rate and early stopping on the validation fold.
#: ``cosine``: the rate falls along a cosine to 0 over ``max_epochs``, always
#: trained to the end (no early stopping; the validation fold is only scored).
LR_SCHEDULES = ("constant", "cosine")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:4]


def _encoder_tag(notation: str) -> str:
    """A short name for an encoder: its convolutions' filters and a hash of the notation.

    ``(16)3c-2p-(32)3c-2p`` -> ``c16-32.1a2b`` (the hash keeps kernel and
    pooling sizes apart, which the filters alone do not show).
    """
    # A regular expression rather than models.parse_notation: naming a run must not import TensorFlow.
    filters = re.findall(r"\((\d+)\)\s*\d+(?:x\d+)?c", notation)
    return f"c{'-'.join(filters)}.{_hash(notation.replace(' ', ''))}"


def _augment_tag(spec: str) -> str:
    """A short name for an augmentation: the names of its steps and a hash of the whole text."""
    names = [item.split(":")[0] for item in spec.replace(" ", "").split("+") if item]
    return f"{'_'.join(names)}.{_hash(spec.replace(' ', ''))}"


class Experiment:
    """One configuration of the paper's experiment over the chosen folds.

    Parameters
    ----------
    settings : Settings or dict
        The notebook parameters.
    verbose : int
        0 silent, 1 a line per step and Keras progress bars per epoch.
    """

    def __init__(self, settings: Settings | dict, verbose: int = 1):
        self.settings = settings if isinstance(settings, Settings) else Settings.from_mapping(settings)
        self.verbose = verbose
        run_dir = self.settings.run_dir or str(config.runs_dir() / "interactive")
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._dataset = None
        self._features = None
        self._pool = None
        self._standardizers: dict = {}

    # ------------------------------------------------------------------ data
    def _say(self, message: str) -> None:
        if self.verbose:
            print(message, flush=True)

    @property
    def feature_params(self):
        from esc_lib import features

        s = self.settings
        return features.FeatureParams(
            sr=s.sample_rate, n_mels=s.n_mels, n_fft=s.n_fft, hop_length=s.hop_length, deltas=s.deltas
        )

    @property
    def dataset(self):
        """The labelled dataset (downloaded first for ESC-50 when ``download`` is set)."""
        if self._dataset is None:
            from esc_lib import data

            s = self.settings
            if s.dataset == "esc10":
                dataset = data.load_esc10(config.esc10_dir())
            else:
                root = config.esc50_dir()
                if s.download and not (root / "meta" / "esc50.csv").is_file():
                    from esc_lib import download

                    root = download.download_esc50(root)
                dataset = data.load_labelled(root)
            if s.clips_per_class:
                # The first clips of each class in each fold, by file name: a
                # deterministic, fold-balanced miniature of the dataset.
                meta = dataset.meta.reset_index(drop=True)
                keep = meta.sort_values("filename").groupby(["fold", "label"], sort=False).head(s.clips_per_class)
                dataset = dataset.subset(np.sort(keep.index.to_numpy()))
            self._dataset = dataset
            self._say(f"dataset: {len(dataset)} clips, {dataset.n_classes} classes, folds {sorted(set(dataset.folds))}")
        return self._dataset

    @property
    def features(self) -> np.ndarray:
        """Log-mel features of every labelled clip [n_clips, n_mels, n_frames, n_channels] (cached on disk)."""
        if self._features is None:
            from esc_lib import features

            self._features = features.extract_clips(self.dataset.paths, self.feature_params, progress=bool(self.verbose))
        return self._features

    def unlabeled_files(self) -> list[Path]:
        """The files of the unlabeled pool (empty with ``unlabeled="none"``)."""
        from esc_lib import data

        s = self.settings
        limit = s.max_unlabeled or None
        if s.unlabeled == "none":
            return []
        # Clips whose Freesound source is the source of a labelled clip never
        # reach pre-training; the labelled release's whole metadata file is
        # used, not this run's possibly reduced dataset.
        metadata = self.dataset.root / "meta" / "esc50.csv"
        if s.unlabeled == "folder":
            banned = data.source_ids(metadata)
            return data.unlabeled_pool(config.unlabeled_dir(), exclude_freesound_ids=banned, max_files=limit, seed=s.seed).files
        root = config.escus_dir()
        if s.download:
            from esc_lib import download

            root = download.download_escus(root, n_parts=s.escus_parts)
        return data.escus_pool(root, esc50_meta=metadata, max_clips=limit, seed=s.seed).files

    @property
    def pool(self):
        """Features of the unlabeled pool (:class:`esc_lib.features.PoolFeatures`); skips are reported."""
        if self._pool is None:
            from esc_lib import features

            files = self.unlabeled_files()
            self._pool = features.extract_pool(files, self.feature_params, progress=bool(self.verbose))
            report = self._pool.report
            self._say(f"unlabeled pool: {len(self._pool.X)} windows from {report.summary()}")
            report.to_csv(self.run_dir / f"pool_report-{self.settings.pool_label}.csv")
        return self._pool

    # ----------------------------------------------------------------- folds
    def split(self, test_fold: int) -> dict[str, np.ndarray]:
        """Indices of the train / validation / test clips for one test fold."""
        folds = self.dataset.folds
        available = sorted(set(int(f) for f in folds))
        if test_fold not in available:
            raise ValueError(f"test fold {test_fold} is not in the dataset's folds {available}")
        if len(available) < 3:
            raise ValueError(f"cross-validation needs at least 3 folds, the dataset has {available}")
        validation_fold = available[(available.index(test_fold) + 1) % len(available)]
        return {
            "train": np.flatnonzero((folds != test_fold) & (folds != validation_fold)),
            "validation": np.flatnonzero(folds == validation_fold),
            "test": np.flatnonzero(folds == test_fold),
            "validation_fold": validation_fold,
        }

    def _shared_cae(self) -> bool:
        return not self.settings.pretrain_on_train_folds

    def pretraining_data(self, test_fold: int) -> np.ndarray:
        """Un-normalised inputs the CAE of this fold trains on: the pool, plus the non-test folds' audio."""
        parts = []
        if self.settings.unlabeled != "none":
            parts.append(self.pool.X)
        if self.settings.pretrain_on_train_folds:
            parts.append(self.features[self.dataset.folds != test_fold])
        if not parts or sum(len(p) for p in parts) == 0:
            raise ValueError(
                "pre-training has no data: set unlabeled to 'folder' or 'escus' (with files present) "
                "or pretrain_on_train_folds to true"
            )
        return np.concatenate(parts)

    def standardizer(self, test_fold: int):
        """Per-band input statistics from this fold's training data only.

        They come from the pre-training data (the unlabeled pool, plus the
        non-test folds when those join it), or from the labelled training
        folds when there is no pool; the supervised and the pre-trained
        classifier of a fold use the same statistics.
        """
        key = "shared" if (self._shared_cae() and self.settings.unlabeled != "none") else test_fold
        if key not in self._standardizers:
            from esc_lib import features

            if self.settings.unlabeled == "none" and not self.settings.pretrain_on_train_folds:
                fit_on = self.features[self.split(test_fold)["train"]]
            else:
                fit_on = self.pretraining_data(test_fold)
            self._standardizers[key] = features.Standardizer().fit(fit_on)
        return self._standardizers[key]

    # ----------------------------------------------------------- pre-training
    def cae_dir(self, test_fold: int, decoder: str | None = None) -> Path:
        where = "shared" if self._shared_cae() else f"fold{test_fold}"
        return self.run_dir / "cae" / self.settings.cae_id(decoder) / where

    def pretrain(self, test_fold: int, decoder: str | None = None):
        """Train (or load, when finished before) the CAE used for one test fold.

        Returns
        -------
        model : keras.Model
            The trained autoencoder.
        history : pd.DataFrame
            Per-epoch ``loss`` and ``val_loss`` (MSE).
        """
        from esc_lib import models, streams, training

        s = self.settings
        decoder = decoder or s.decoder
        run = self.cae_dir(test_fold, decoder)
        scaler = self.standardizer(test_fold)
        X = scaler.transform(self.pretraining_data(test_fold))
        rng = np.random.default_rng(s.seed)
        order = rng.permutation(len(X))
        n_validation = max(1, int(round(len(X) * s.cae_validation_fraction)))
        validation, train = order[:n_validation], order[n_validation:]
        if len(train) == 0:
            raise ValueError(f"pre-training data has only {len(X)} clip(s); need at least 2")
        self._say(f"CAE {s.cae_id(decoder)} for test fold {test_fold}: {len(train)} training / {len(validation)} validation clips -> {run}")
        training.set_seed(s.seed)
        model = models.build_cae(X.shape[1:], encoder=s.encoder_notation, decoder=decoder, batch_norm=s.batch_norm)
        training.compile_autoencoder(model, learning_rate=s.learning_rate)
        history = training.fit(
            model,
            streams.BatchStream(X[train], batch_size=s.cae_batch_size, seed=s.seed, target="input"),
            streams.BatchStream(X[validation], batch_size=256, shuffle=False, target="input"),
            run_dir=run,
            max_epochs=s.cae_max_epochs,
            patience=s.patience,
            seed=s.seed,
            verbose=2 if self.verbose else 0,  # one line per epoch: readable in notebooks and in run_all's log
        )
        return model, history

    # ------------------------------------------------------------ fine-tuning
    def classifier_dir(self, method: str, test_fold: int, labels_per_class: int | None = None, member: int = 0) -> Path:
        """Run folder of one classifier; ensemble members after the first get ``-m<member>``."""
        budget = f"-lpc{labels_per_class}" if labels_per_class else ""
        suffix = f"-m{member}" if member else ""
        # The supervised baseline does not depend on the CAE, so the decoder
        # and pool variants of a sweep share (and reuse) one run of it.
        name = self.settings.classifier_id(method)
        return self.run_dir / "classifiers" / name / method / f"fold{test_fold}{budget}{suffix}"

    def history(self, method: str, test_fold: int, labels_per_class: int | None = None) -> pd.DataFrame:
        """Per-epoch history of member 0: its run watched on the validation fold, else its only run.

        (A cosine schedule with a refit has only the run on train + validation,
        whose history has no validation columns.)  Empty before training.
        """
        from esc_lib import training

        history = training.load_history(self.classifier_dir(method, test_fold, labels_per_class))
        return history if len(history) else training.load_history(self.scored_runs(method, test_fold, labels_per_class)[0])

    def scored_runs(self, method: str, test_fold: int, labels_per_class: int | None = None) -> list[Path]:
        """The run folders whose models give the test score: one per ensemble member, refit ones with a refit."""
        runs = [self.classifier_dir(method, test_fold, labels_per_class, m) for m in range(self.settings.ensemble)]
        return [run.with_name(run.name + "-refit") for run in runs] if self.settings.refit_on_validation else runs

    def train_classifier(self, test_fold: int, method: str, labels_per_class: int | None = None) -> dict:
        """Train one classifier (or ensemble) on one fold and score it on the test fold.

        Parameters
        ----------
        method : {"supervised", "pretrained"}
            From random initialisation, or with the encoder of this fold's CAE.
        labels_per_class : int > 0, optional
            Keep only this many labelled training clips per class (seeded),
            for label-budget curves; pre-training is unchanged.

        With ``ensemble`` > 1 that many classifiers are trained with
        different seeds (member 0 is the single classifier's run) and their
        class probabilities are averaged.

        Returns
        -------
        dict with ``metrics`` (one row; ``validation_accuracy`` is scored on
        the validation fold by the models trained without it, the number to
        compare configurations on; NaN for a cosine schedule with a refit,
        which trains on the validation fold from the start), ``predictions``
        (DataFrame), ``history`` (DataFrame of member 0) and ``model``
        (member 0's scored model).
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        s = self.settings
        split = self.split(test_fold)
        train, validation = split["train"], split["validation"]
        if labels_per_class:
            # The validation fold gets the same budget: early stopping may not
            # lean on more labels than training has.
            train = self._budget(train, labels_per_class, seed=s.seed + test_fold)
            validation = self._budget(validation, labels_per_class, seed=s.seed + test_fold)
        start = time.monotonic()
        self._say(
            f"{method} classifier {s.config_id}, test fold {test_fold} (validation fold {split['validation_fold']})"
            + (f", {s.ensemble} members" if s.ensemble > 1 else "")
        )
        # The CAE is loaded (or trained) once; every member starts from its encoder.
        cae = self.pretrain(test_fold)[0] if method == "pretrained" else None
        members = [
            self._train_member(member, test_fold, method, cae, train, validation, split["test"], labels_per_class)
            for member in range(s.ensemble)
        ]
        y = self.dataset.labels
        probabilities = np.mean([m["test"] for m in members], axis=0)
        if members[0]["validation"] is None:
            validation_accuracy = float("nan")  # every labelled fold but the test fold trained
        else:
            validation_probabilities = np.mean([m["validation"] for m in members], axis=0)
            validation_accuracy = float(np.mean(validation_probabilities.argmax(axis=1) == y[validation]))
        predicted = probabilities.argmax(axis=1)
        truth = y[split["test"]]
        metrics = {
            "config": s.config_id,
            "batch_size": s.batch_size,
            "filters": s.filters,
            "decoder": s.decoder,
            "batch_norm": bool(s.batch_norm),
            "method": method,
            "fold": test_fold,
            "validation_fold": split["validation_fold"],
            "labels_per_class": labels_per_class or "all",
            "pool": s.pool_label,
            "pool_size": len(self.pool.X) if (method == "pretrained" and s.unlabeled != "none") else 0,
            "n_train": len(train) + (len(validation) if s.refit_on_validation else 0),
            "n_test": len(truth),
            "members": s.ensemble,
            "validation_accuracy": validation_accuracy,
            "accuracy": float(np.mean(predicted == truth)),
            "epochs": int(round(np.mean([m["epochs"] for m in members]))),
            "seconds": round(time.monotonic() - start, 1),
        }
        meta = self.dataset.meta.iloc[split["test"]]
        predictions = pd.DataFrame(
            {
                "config": s.config_id,
                "method": method,
                "fold": test_fold,
                "labels_per_class": labels_per_class or "all",
                "filename": meta["filename"].to_numpy(),
                "y_true": truth,
                "y_pred": predicted,
                "confidence": probabilities.max(axis=1),
            }
        )
        watched = "" if np.isnan(validation_accuracy) else f" (validation {validation_accuracy:.3f})"
        self._say(f"  test accuracy {metrics['accuracy']:.3f}{watched} after {metrics['epochs']} epochs ({metrics['seconds']} s)")
        return {"metrics": metrics, "predictions": predictions, "history": members[0]["history"], "model": members[0]["model"]}

    def _train_member(self, member: int, test_fold: int, method: str, cae, train: np.ndarray, validation: np.ndarray,
                      test: np.ndarray, labels_per_class: int | None) -> dict:
        """One classifier: trained on ``train`` with ``validation`` watched, then refit on both if set.

        ``cae`` is the pre-trained autoencoder whose encoder initialises it, or None (from scratch).

        Returns its class probabilities on the validation and test clips,
        its history, the epochs of the scored model and the model.
        """
        from esc_lib import models, streams, training
        from esc_lib import augment as augmentations

        s = self.settings
        # Member 0 uses the single classifier's seed, so it is that run.
        seed = s.seed + test_fold + 1000 * member
        k = self.dataset.n_classes
        X, y = self.features, self.dataset.labels
        scaler = self.standardizer(test_fold)
        augment = augmentations.from_spec(s.augment, n_classes=k) if s.augment else None
        cosine = s.lr_schedule == "cosine"

        def build_and_fit(indices: np.ndarray, run: Path, epochs: int, watch, patience, restore_best: bool):
            training.set_seed(seed)
            model = models.build_classifier(
                X.shape[1:], k, encoder=s.encoder_notation, head=s.head, batch_norm=s.batch_norm, dropout=s.dropout
            )
            if cae is not None:
                models.transfer_encoder(cae, model)
            # One-hot targets for training and validation alike, so soft targets
            # from mixing and plain ones go through the same loss and metric.
            stream = streams.BatchStream(
                scaler.transform(X[indices]), training.one_hot(y[indices], k), batch_size=s.batch_size, seed=seed,
                augment=augment,
            )
            decay_steps = epochs * stream.steps_per_epoch if cosine else None
            training.compile_classifier(model, learning_rate=s.learning_rate, decay_steps=decay_steps)
            history = training.fit(
                model, stream, watch, run_dir=run, max_epochs=epochs, patience=patience, restore_best=restore_best,
                seed=seed, verbose=2 if self.verbose else 0,  # one line per epoch: readable in notebooks and run_all's log
            )
            return model, history

        run = self.classifier_dir(method, test_fold, labels_per_class, member)
        refit_run = run.with_name(run.name + "-refit")
        both = np.concatenate([train, validation])
        self._say(f"  member {member} (seed {seed})" if member else "  member 0")
        if cosine and s.refit_on_validation:
            # A cosine schedule has nothing to choose on the validation fold
            # (it always trains max_epochs), so there is no first run: train
            # once on train + validation, both training folds.
            self._say(f"  train on {len(both)} train + validation clips for {s.max_epochs} epochs -> {refit_run}")
            model, history = build_and_fit(both, refit_run, s.max_epochs, None, None, restore_best=False)
            return {"validation": None, "test": training.predict_proba(model, scaler.transform(X[test])),
                    "history": history, "epochs": s.max_epochs, "model": model}
        X_validation = scaler.transform(X[validation])
        self._say(f"  train on {len(train)} clips, watch {len(validation)} validation clips -> {run}")
        # A cosine schedule is trained to its end; the constant rate stops early on the validation loss.
        model, history = build_and_fit(
            train, run, s.max_epochs, (X_validation, training.one_hot(y[validation], k)),
            None if cosine else s.patience, restore_best=not cosine,
        )
        validation_probabilities = training.predict_proba(model, X_validation)
        epochs = len(history)
        if s.refit_on_validation:
            # Both folds are training folds: retrain from the same start on
            # train + validation for the epochs early stopping chose, with
            # nothing left to monitor, keeping the last weights.
            epochs = int(history.loc[history["val_loss"].idxmin(), "epoch"])
            self._say(f"  refit on {len(both)} train + validation clips for {epochs} epochs -> {refit_run}")
            model, _ = build_and_fit(both, refit_run, epochs, None, None, restore_best=False)
        return {
            "validation": validation_probabilities,
            "test": training.predict_proba(model, scaler.transform(X[test])),
            "history": history,
            "epochs": epochs,
            "model": model,
        }

    def _budget(self, indices: np.ndarray, labels_per_class: int, seed: int) -> np.ndarray:
        """The first ``labels_per_class`` clips of each class in one seeded order.

        The order does not depend on the budget, so the subsets are nested
        (the 4 clips of a class are among its 8), which keeps the curve smooth.
        """
        labels = self.dataset.labels[indices]
        order = np.random.default_rng(seed).permutation(len(indices))
        chosen = [indices[order][labels[order] == label][:labels_per_class] for label in np.unique(labels)]
        return np.sort(np.concatenate(chosen))

    def results_dir(self) -> Path:
        return self.run_dir / "results" / self.settings.config_id

    def cross_validate(self, methods=METHODS, labels_per_class: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every method on every test fold; writes ``metrics.csv`` and ``predictions.csv``.

        Rows of an earlier call with other methods or budgets are kept, so
        several calls (e.g. one per label budget) add up in the same files.
        """
        rows, predictions = [], []
        for test_fold in self.settings.folds:
            for method in methods:
                outcome = self.train_classifier(test_fold, method, labels_per_class)
                rows.append(outcome["metrics"])
                predictions.append(outcome["predictions"])
        metrics, predictions = pd.DataFrame(rows), pd.concat(predictions, ignore_index=True)
        metrics = self._merge(metrics, "metrics.csv", ["method", "fold", "labels_per_class"])
        predictions = self._merge(predictions, "predictions.csv", ["method", "fold", "labels_per_class", "filename"])
        atomic.write_text(self.results_dir() / "settings.json", json.dumps(dataclasses.asdict(self.settings), indent=2))
        return metrics, predictions

    def _merge(self, new: pd.DataFrame, name: str, keys: list[str]) -> pd.DataFrame:
        path = self.results_dir() / name
        if path.is_file():
            old = pd.read_csv(path)
            old["labels_per_class"] = old["labels_per_class"].astype(str)
            new = new.astype({"labels_per_class": str})
            merged = pd.concat([old, new], ignore_index=True).drop_duplicates(subset=keys, keep="last")
        else:
            merged = new.astype({"labels_per_class": str})
        atomic.write_text(path, merged.to_csv(index=False))
        return merged


def held_out_reconstructions(experiment: Experiment, test_fold: int, decoders=("unpool", "upsample"), n_clips: int = 6):
    """Reconstructions of clips of the test fold, which no CAE has seen (the paper's Figure 1).

    Returns
    -------
    result : dict
        ``ground_truth`` [n_clips, n_mels, n_frames, n_channels], one array per
        decoder under its name, ``mse`` {decoder: mean squared error over the
        whole test fold} and ``titles`` (category of each clip).
    """
    split = experiment.split(test_fold)
    scaler = experiment.standardizer(test_fold)
    X_test = scaler.transform(experiment.features[split["test"]])
    meta = experiment.dataset.meta.iloc[split["test"]].reset_index(drop=True)
    # One clip of each of the first n_clips classes present, so the figure shows variety.
    chosen = meta.drop_duplicates("label").sort_values("label").index[:n_clips].to_numpy()
    result = {"ground_truth": X_test[chosen], "titles": list(meta.loc[chosen, "category"]), "mse": {}}
    for decoder in decoders:
        model, _ = experiment.pretrain(test_fold, decoder)
        reconstruction = model.predict(X_test, batch_size=256, verbose=0)
        result[decoder] = reconstruction[chosen]
        result["mse"][decoder] = float(np.mean((reconstruction - X_test) ** 2))
    return result


def collect_results(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every configuration's ``metrics.csv`` and ``predictions.csv`` in a run folder, concatenated."""
    run_dir = Path(run_dir)
    metric_files = sorted((run_dir / "results").glob("*/metrics.csv"))
    if not metric_files:
        raise FileNotFoundError(
            f"no results/*/metrics.csv under {run_dir}; run notebooks/03_finetuning.ipynb with run_dir={str(run_dir)!r} first"
        )
    metrics = pd.concat([pd.read_csv(p) for p in metric_files], ignore_index=True)
    prediction_files = sorted((run_dir / "results").glob("*/predictions.csv"))
    predictions = pd.concat([pd.read_csv(p) for p in prediction_files], ignore_index=True) if prediction_files else pd.DataFrame()
    return metrics, predictions


def publish_dirs(profile: str, run_dir: str | Path = "", publish: bool = True) -> tuple[Path, Path]:
    """Where a notebook's figures and tables go.

    ``figures/<profile>/`` and ``results/<profile>/`` when ``publish`` is set;
    otherwise (e.g. the non-default points of a sweep) ``<run_dir>/figures``
    and ``<run_dir>/tables``, so the published folders hold one set.
    """
    if publish:
        figures, results = config.figures_dir() / profile, config.results_dir() / profile
    else:
        base = Path(run_dir) if run_dir else config.runs_dir() / "interactive"
        figures, results = base / "figures", base / "tables"
    figures.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    return figures, results
