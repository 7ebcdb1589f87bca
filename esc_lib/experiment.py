"""The cross-validation experiment: a thin orchestrator handed a dataset and a pool.

The notebooks hold no logic; they build an :class:`Experiment` from their
``parameters`` cell (:meth:`esc_lib.settings.Settings.from_namespace`) and call
its methods.  An experiment is *handed* its data -- a labelled dataset, its
features and an unlabeled pool -- or loads them from the configured paths
when none are given, so tests run the whole protocol on synthetic arrays.

The rules (which fold tests, which validates, what pre-training and the input
statistics may see, label budgets, member seeds) are pure functions in
:mod:`esc_lib.protocol`.  The experiment holds the protocol only -- splits,
budgets, pools, input statistics, pre-trained encoders, scoring and the results
files; how a classifier is trained is its method's (:mod:`esc_lib.methods`,
found by name: :meth:`Experiment.train_classifier` hands the method a
:class:`esc_lib.methods.SplitData` and scores what it gives back), on the
project's one training path (:func:`esc_lib.training.train_cae`,
:func:`esc_lib.training.train_classifier`).  Everything trained is kept in the run folder, named by the settings it
depends on (:meth:`esc_lib.settings.Settings.key`), and every step first looks
there, so re-running a notebook reuses what exists::

    <run_dir>/
      cae/<cae_id>/<fold1|...|shared>/                     CAE run (checkpoints, history.csv, model.keras, settings.json)
      contrastive/<contrastive_id>/<fold1|...|shared>/     contrastive encoder run (method "contrastive")
      classifiers/<classifier_id>/<method>/fold<k>[-lpc<n>][-m<member>][-refit]/   classifier runs
      classifiers/<classifier_id>/selftrain/fold<k>[-lpc<n>][-round<r>]/pseudo_labels.csv  a self-training round's targets
      results/<config_id>/metrics.csv                      one row per (method, fold, budget)
      results/<config_id>/predictions.csv                  one row per scored clip
      results/<config_id>/settings.json                    every parameter of the configuration
      logs/<config_id>/lpc<n>-fold<k>.log                   with ``jobs`` > 1: what each worker said, per budget and fold
      logs/<config_id>/pretrain[_contrastive]-fold<k>.log    ... and per encoder pre-trained side by side
      pool_report-<pool>.csv                               unlabeled files skipped, with reasons

With ``jobs`` other than 1 the (budget, fold) pairs train side by side, one worker process of one
thread each: on a CPU the small networks here do not keep two cores busy from one process
(``benchmarks/bench_processes.py``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as sklearn_metrics

from esc_lib import atomic, config, methods, protocol
from esc_lib.settings import METHODS, Settings

__all__ = ["Settings", "Experiment", "METHODS", "load_dataset", "held_out_reconstructions", "collect_results", "publish_dirs"]


def load_dataset(settings: Settings):
    """The labelled dataset the settings name, from the configured paths (ESC-50 downloaded when asked)."""
    from esc_lib.data import datasets

    if settings.dataset == "own":
        from esc_lib.data import audio, recordings

        report = audio.SkipReport()
        run_dir = Path(settings.run_dir or config.runs_dir() / "interactive")  # as Experiment.run_dir
        dataset = recordings.load_recordings(
            config.labelled_dir(), settings.labelled_layout, n_folds=settings.n_folds, seed=settings.seed,
            sr=settings.sample_rate, fold_file=run_dir / recordings.FOLDS_FILE, report=report,
            min_clip_seconds=settings.min_clip_seconds,
        )
        report.n_used = int(dataset.meta["file"].nunique())
        if report.n_skipped:
            print(f"labelled data: {report.summary()} (listed in {run_dir / 'labelled_report.csv'})", flush=True)
            report.to_csv(run_dir / "labelled_report.csv")
        return dataset
    if settings.dataset == "esc10":
        return datasets.load_esc10(config.esc10_dir())
    root = config.esc50_dir()
    if settings.download and not (root / "meta" / "esc50.csv").is_file():
        from esc_lib.data import download

        root = download.download_esc50(root, base_url=config.esc50_url(), verify_options=download.esc50_expectations())
    return datasets.load_labelled(root)


def _miniature(meta: pd.DataFrame, clips_per_class: int) -> np.ndarray:
    """Rows of the first ``clips_per_class`` clips (files, with all their windows) of each class in each fold, by file name."""
    meta = meta.reset_index(drop=True)
    files = meta.drop_duplicates("file") if "file" in meta.columns else meta
    keep = files.sort_values("filename").groupby(["fold", "label"], sort=False).head(clips_per_class)
    if "file" in meta.columns:
        return np.flatnonzero(meta["file"].isin(keep["file"]).to_numpy())
    return np.sort(keep.index.to_numpy())


def _windowed(dataset) -> bool:
    """Whether some file of the dataset gives several rows (5 s windows of a longer recording)."""
    return "window" in dataset.meta.columns and bool((dataset.meta["window"] > 0).any())


class _EmptyPool:
    """The pool of ``unlabeled="none"``: no windows, nothing skipped."""

    def __init__(self, shape):
        from esc_lib.data.audio import SkipReport

        self.X = np.zeros((0, *shape), dtype="float32")
        self.report = SkipReport()


class Experiment:
    """One configuration of the experiment over the chosen folds.

    Parameters
    ----------
    settings : Settings or dict
        The parameters (a dict is validated into :class:`Settings`).
    dataset : esc_lib.data.datasets.LabelledDataset, optional
        The labelled clips (``meta`` with ``filename``, ``fold``, ``label``,
        ``category``; ``classes``; ``root``).  Default: loaded as the settings say.
    features : np.ndarray [shape=(n_clips, n_mels, n_frames, n_channels)], optional
        Features of ``dataset``'s clips in row order.  Default: extracted (cached on disk).
    pool : object with ``X`` [n_windows, n_mels, n_frames, n_channels] and ``report``, optional
        The unlabeled pool (:class:`esc_lib.features.PoolFeatures`).  Default:
        the configured folder or ESC-US, leakage-filtered and extracted.
    verbose : int
        0 silent, 1 a line per step and one line per epoch.
    """

    def __init__(self, settings: Settings | dict, *, dataset=None, features=None, pool=None, verbose: int = 1):
        self.settings = settings if isinstance(settings, Settings) else Settings.from_mapping(settings)
        self.verbose = verbose
        self.run_dir = Path(self.settings.run_dir or config.runs_dir() / "interactive")
        self._dataset, self._features, self._pool = None, None, pool
        if dataset is not None:
            self._set_dataset(dataset, features)
        elif features is not None:
            raise ValueError("Experiment: features were given without their dataset; pass dataset= too")
        self._standardizers: dict = {}

    def _say(self, message: str) -> None:
        if self.verbose:
            print(message, flush=True)

    # ------------------------------------------------------------------ data
    def _set_dataset(self, dataset, features) -> None:
        s = self.settings
        if features is not None and len(features) != len(dataset):
            raise ValueError(f"Experiment: {len(features)} feature rows for {len(dataset)} clips; they must align")
        if s.clips_per_class:
            # A deterministic, fold-balanced miniature of the dataset.
            rows = _miniature(dataset.meta, s.clips_per_class)
            dataset = dataset.subset(rows)
            features = None if features is None else np.asarray(features)[rows]
        from esc_lib.data import datasets

        datasets.check_folds(s.folds, dataset.folds, dataset.root)  # before any work, naming the parameter set (folds)
        protocol.check_test_folds(dataset.folds, s.folds)
        if "src_file" in dataset.meta.columns:
            protocol.check_groups_within_folds(dataset.meta["src_file"].to_numpy(), dataset.folds)
        for column in ("file", "group"):  # one's own recordings: windows of a file, takes of a recording
            if column in dataset.meta.columns:
                protocol.check_groups_within_folds(dataset.meta[column].astype(str).to_numpy(), dataset.folds)
        self._dataset, self._features = dataset, features
        self._say(f"dataset: {len(dataset)} clips, {dataset.n_classes} classes, folds {sorted(int(f) for f in set(dataset.folds))}")

    @property
    def dataset(self):
        """The labelled dataset (handed in, or loaded as the settings say)."""
        if self._dataset is None:
            self._set_dataset(load_dataset(self.settings), None)
        return self._dataset

    @property
    def dataset_label(self) -> str:
        """The dataset in words for captions: ``ESC-10``, ``ESC-50``, or the folder and its class count."""
        dataset = self.dataset
        names = {("esc10", 10): "ESC-10", ("esc50", 50): "ESC-50"}
        label = names.get((self.settings.dataset, dataset.n_classes))
        if label:
            return label
        if self.settings.dataset == "own":
            files = dataset.meta["file"].nunique() if "file" in dataset.meta.columns else len(dataset)
            return f"{Path(dataset.root).name} ({dataset.n_classes} classes, {files} files)"
        return f"{Path(dataset.root).name} ({dataset.n_classes} classes, ESC-50 layout)"

    @property
    def feature_params(self):
        from esc_lib import features

        s = self.settings
        return features.FeatureParams(sr=s.sample_rate, n_mels=s.n_mels, n_fft=s.n_fft, hop_length=s.hop_length, deltas=s.deltas)

    @property
    def features(self) -> np.ndarray:
        """Log-mel features of every labelled clip [n_clips, n_mels, n_frames, n_channels] (cached on disk)."""
        if self._features is None:
            from esc_lib import features

            if _windowed(self.dataset):
                self._features = self._window_features()
            else:
                self._features = features.extract_clips(self.dataset.paths, self.feature_params, progress=bool(self.verbose))
        return self._features

    def _window_features(self) -> np.ndarray:
        """Features of every 5 s window of every labelled file, in row order (recordings longer than a clip)."""
        from esc_lib import features

        meta = self.dataset.meta
        files = meta.drop_duplicates("file")
        expected = meta.groupby("file", sort=False).size().to_numpy()
        long = expected > 1
        # A file of one window is a clip (padded or cut to 5 s, as an ESC clip); a longer one is cut into windows.
        clips = features.extract_clips(list(files["path"][~long]), self.feature_params, progress=bool(self.verbose))
        extracted = features.extract_pool(list(files["path"][long]), self.feature_params, progress=bool(self.verbose))
        counts = np.bincount(extracted.file_index, minlength=int(long.sum())) if len(extracted.X) else np.zeros(int(long.sum()), int)
        if extracted.report.n_skipped or not np.array_equal(counts, expected[long]):
            bad = files["path"][long].to_numpy()[counts != expected[long]][:3].tolist()
            raise ValueError(
                f"labelled files changed since they were listed ({extracted.report.summary()}; window counts differ for "
                f"{bad}); run again")
        X = np.empty((len(meta), *self.feature_params.shape), dtype=np.float32)
        starts = np.concatenate([[0], np.cumsum(expected)[:-1]])
        X[starts[~long]] = clips
        rows_of_long = np.concatenate([np.arange(s, s + n) for s, n in zip(starts[long], expected[long])]) if long.any() else []
        X[rows_of_long] = extracted.X
        return X

    def unlabeled_files(self) -> list[Path]:
        """The files of the unlabeled pool (empty with ``unlabeled="none"``)."""
        from esc_lib.data import datasets

        s = self.settings
        limit = s.max_unlabeled or None
        if s.unlabeled == "none":
            return []
        # Clips whose Freesound source is the source of a labelled clip never
        # reach pre-training; the labelled release's whole metadata file is
        # used, not this run's possibly reduced dataset (one's own recordings:
        # their file names, and the labelled files themselves are left out).
        metadata = Path(self.dataset.root) / "meta" / "esc50.csv"
        source = metadata if metadata.is_file() else self.dataset
        if s.unlabeled == "folder":
            banned = datasets.source_ids(source)
            found = datasets.unlabeled_pool(config.unlabeled_dir(), exclude_freesound_ids=banned, max_files=limit, seed=s.seed)
        else:
            root = config.escus_dir()
            if s.download:
                from esc_lib.data import download

                root = download.download_escus(root, n_parts=s.escus_parts, server=config.escus_server())
            found = datasets.escus_pool(root, esc50_meta=source, max_clips=limit, seed=s.seed)
        self._say(f"unlabeled files: {found.summary()}")
        self._unreadable_folders = list(found.unreadable)  # counted in the pool report
        files = found.files
        # By device and inode: a labelled clip hard-linked into the pool is the same recording.
        labelled = {datasets.file_identity(path) for path in self.dataset.meta["path"]}
        return [path for path in files if datasets.file_identity(path) not in labelled]

    @property
    def pool(self):
        """The unlabeled pool (handed in, or extracted from the configured files; skips are reported)."""
        if self._pool is None:
            if self.settings.unlabeled == "none":
                self._pool = _EmptyPool(self.features.shape[1:])
                return self._pool
            from esc_lib import features

            if self.settings.pool_store:
                self._pool = self._pool_store()
            else:
                self._pool = features.extract_pool(self.unlabeled_files(), self.feature_params, progress=bool(self.verbose))
            report = self._pool.report
            for folder, reason in getattr(self, "_unreadable_folders", []):
                report.skip(folder, reason)
            self._say(f"unlabeled pool: {len(self._pool.X)} windows from {report.summary()}")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            report.to_csv(self.run_dir / f"pool_report-{self.settings.pool_label}.csv")
        return self._pool

    def _pool_store(self):
        """The pool as an on-disk :class:`esc_lib.store.FeatureStore` (``pool_store``), built or resumed in the cache.

        The store's folder is named by the feature parameters and the list of
        files, so another pool or other features get another store.
        """
        import hashlib

        from esc_lib import store

        files = self.unlabeled_files()
        params = self.feature_params
        listing = hashlib.sha256("\0".join(str(f) for f in files).encode()).hexdigest()[:16]
        root = config.cache_dir() / "stores" / f"{params.key()}-{listing}"
        # ESC_DASK_SCHEDULER (run_all.sh --scheduler): "local" for a LocalCluster, or a scheduler's address.
        scheduler = os.environ.get("ESC_DASK_SCHEDULER", "").strip() or None
        where = f" on Dask ({scheduler})" if scheduler else ""
        self._say(f"unlabeled pool: {len(files)} files into the feature store {root}{where}")
        return store.build_store(files, root, params, progress=bool(self.verbose), scheduler=scheduler)

    def _has_pool(self) -> bool:
        return self.settings.unlabeled != "none"

    # ------------------------------------------------------------- protocol
    def split(self, test_fold: int) -> protocol.Split:
        """Indices of the training / validation / test clips for one test fold (:func:`esc_lib.protocol.split`;
        with ``protocol: sslh``, :func:`esc_lib.protocol.optimistic_split`)."""
        if self.settings.protocol == "sslh":
            return protocol.optimistic_split(self.dataset.folds, test_fold)
        return protocol.split(self.dataset.folds, test_fold)

    def _unlabeled_rows(self, test_fold: int, exclude=None) -> np.ndarray:
        """Labelled clips whose audio (labels dropped) is unlabeled data for this fold, less the rows ``exclude``."""
        s = self.settings
        fold = None if protocol.shared_pretraining(s.pretrain_on_train_folds) else test_fold
        rows = protocol.pretraining_clips(
            self.dataset.folds, fold, s.pretrain_on_train_folds, hold_out_validation=s.holds_out_validation)
        return rows if exclude is None else np.setdiff1d(rows, np.asarray(exclude, dtype=np.int64))

    def pretraining_data(self, test_fold: int, exclude=None) -> np.ndarray:
        """Un-normalised inputs the CAE of this fold trains on: the pool, plus the non-test folds' audio
        (in a search scored on the validation fold, the training folds' audio only), less the labelled
        rows ``exclude`` (self-training leaves out the clips it trains on with their labels)."""
        s = self.settings
        labelled = self._unlabeled_rows(test_fold, exclude)
        parts = ([self.pool.X] if self._has_pool() else []) + [self.features[labelled]]
        if s.pool_store:  # rows stay on disk until a batch reads them
            from esc_lib import store

            return store.LazyRows(parts)
        data = np.concatenate(parts)
        if len(data) == 0:
            raise ValueError(
                "pre-training has no data: set unlabeled to 'folder' or 'escus' (with files present) "
                "or pretrain_on_train_folds to true"
            )
        return data

    def standardizer(self, test_fold: int):
        """Per-band input statistics from this fold's training data only (:func:`esc_lib.protocol.statistics_clips`).

        The supervised and the pre-trained classifier of a fold use the same statistics.
        """
        s = self.settings
        use_pool, labelled = protocol.statistics_clips(
            self.dataset.folds, test_fold, has_pool=self._has_pool(), include_labelled_folds=s.pretrain_on_train_folds,
            hold_out_validation=s.holds_out_validation,
        )
        key = "shared" if (use_pool and len(labelled) == 0) else test_fold
        if key not in self._standardizers:
            from esc_lib import features

            parts = ([self.pool.X] if use_pool else []) + [self.features[labelled]]
            if s.pool_store and use_pool:  # shard by shard, never the whole pool in memory
                from esc_lib import store

                self._standardizers[key] = store.standardizer_from(store.LazyRows(parts))
            else:
                self._standardizers[key] = features.Standardizer().fit(np.concatenate(parts))
        return self._standardizers[key]

    # ----------------------------------------------------------- pre-training
    def cae_dir(self, test_fold: int, decoder: str | None = None) -> Path:
        where = "shared" if protocol.shared_pretraining(self.settings.pretrain_on_train_folds) else f"fold{test_fold}"
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
        from esc_lib import training

        s = self.settings
        run = self.cae_dir(test_fold, decoder)
        X = self.standardised_unlabeled(test_fold)
        self._say(f"CAE {s.cae_id(decoder)} for test fold {test_fold}: {len(X)} clips -> {run}")
        return training.train_cae(X, run, s, decoder=decoder, verbose=2 if self.verbose else 0)

    def standardised_unlabeled(self, test_fold: int, exclude=None):
        """:meth:`pretraining_data` through this fold's statistics: an array, or with ``pool_store`` a
        :class:`esc_lib.store.LazyRows` standardising the rows a batch reads (the pool stays on disk)."""
        data, scaler = self.pretraining_data(test_fold, exclude), self.standardizer(test_fold)
        if self.settings.pool_store:
            from esc_lib import store

            return store.LazyRows(data.parts, transform=scaler.transform)
        return scaler.transform(data)

    def contrastive_dir(self, test_fold: int) -> Path:
        where = "shared" if protocol.shared_pretraining(self.settings.pretrain_on_train_folds) else f"fold{test_fold}"
        return self.run_dir / "contrastive" / self.settings.contrastive_id() / where

    def pretrain_contrastive(self, test_fold: int):
        """Train (or load) the contrastively pre-trained encoder of one test fold, on the CAE's data.

        Returns ``(model, history)``: encoder + projection head, NT-Xent per epoch.
        """
        from esc_lib.methods.contrastive import train_contrastive

        run = self.contrastive_dir(test_fold)
        X = self.standardised_unlabeled(test_fold)
        self._say(f"contrastive encoder {self.settings.contrastive_id()} for test fold {test_fold}: {len(X)} clips -> {run}")
        return train_contrastive(X, run, self.settings, verbose=2 if self.verbose else 0)

    def pretrain_all(self) -> dict[str, pd.DataFrame]:
        """Every pre-trained encoder the methods need: the CAE (``pretrained``) and the contrastive one.

        One per test fold, or one shared by all folds; returns ``{label: history}``
        (empty when no method pre-trains, e.g. ``methods: [supervised, fixmatch]``).
        """
        s = self.settings
        shared = protocol.shared_pretraining(s.pretrain_on_train_folds)
        starts = {s.starts_from(method) for method in s.methods}
        used = [(name, trainer) for kind, (name, trainer) in self._encoders().items() if kind in starts]
        folds = s.folds[:1] if shared else s.folds
        self._pretrain_in_workers(used, folds)
        histories = {}
        for name, trainer in used:
            for fold in folds:
                label = "shared" if shared else f"fold {fold}"
                histories[f"{name}, {label}" if len(used) > 1 else label] = trainer(fold)[1]
        if not histories:
            self._say("no method among the settings' methods pre-trains an encoder")
        return histories

    def _pretrain_in_workers(self, used: list, folds: list[int]) -> None:
        """With ``jobs`` other than 1, train the unfinished encoders side by side first (one task per encoder and
        fold, :func:`_in_workers`); the caller then loads them here."""
        from esc_lib import training

        where = {self.pretrain: self.cae_dir, self.pretrain_contrastive: self.contrastive_dir}
        work = [(f"{name}, fold {fold}", f"{trainer.__name__}-fold{fold}", [(trainer.__name__, (fold,))])
                for name, trainer in used for fold in folds
                if not (where[trainer](fold) / training.DONE_FILE).is_file()]
        jobs = min(self.jobs, len(work))
        if jobs > 1:
            self._say(f"{len(work)} encoders to pre-train, in {jobs} processes of one thread")
            for _ in _in_workers(self, work, jobs):
                pass

    def _encoders(self) -> dict:
        """Encoder kind a method may start from -> (its name in captions, the pre-training stage giving it)."""
        return {"pretrained": ("CAE", self.pretrain), "contrastive": ("contrastive", self.pretrain_contrastive)}

    def encoder(self, kind: str, test_fold: int):
        """The pre-trained encoder of ``kind`` (``"pretrained"``: the CAE, ``"contrastive"``) for one test fold."""
        if kind not in self._encoders():
            raise ValueError(f"encoder kind must be one of {sorted(self._encoders())}, got {kind!r}")
        return self._encoders()[kind][1](test_fold)[0]

    # ------------------------------------------------------------ fine-tuning
    def classifier_dir(self, method: str, test_fold: int, labels_per_class: int = 0) -> Path:
        """Run folder of member 0 of one classifier; the other members and refits are derived from it
        (:func:`esc_lib.training.member_runs`)."""
        budget = f"-lpc{labels_per_class}" if labels_per_class else ""
        return self.run_dir / "classifiers" / self.settings.classifier_id(method) / method / f"fold{test_fold}{budget}"

    def scored_runs(self, method: str, test_fold: int, labels_per_class: int = 0) -> list[Path]:
        """The run folders whose models give the score: one per ensemble member, refit ones with a refit."""
        from esc_lib import training

        s = self.settings
        return training.member_runs(self.classifier_dir(method, test_fold, labels_per_class), s.ensemble, s.refit_on_validation)

    def history(self, method: str, test_fold: int, labels_per_class: int = 0) -> pd.DataFrame:
        """Per-epoch history of member 0: its run watched on the validation fold, else its only run."""
        from esc_lib import training

        history = training.load_history(self.classifier_dir(method, test_fold, labels_per_class))
        return history if len(history) else training.load_history(self.scored_runs(method, test_fold, labels_per_class)[0])

    def split_data(self, test_fold: int, labels_per_class: int = 0) -> methods.SplitData:
        """What a method trains on for one test fold and budget (:class:`esc_lib.methods.SplitData`).

        The training and validation clips are cut to ``labels_per_class`` (nested across budgets,
        :func:`esc_lib.protocol.label_budget`; 0 keeps all) and standardised with the fold's statistics;
        the scored clips are the test fold, or with ``score="validation"`` the validation clips.
        The unlabeled clips, encoders and run folders are reached through the protocol's own
        methods here (:meth:`standardised_unlabeled`, :meth:`encoder`, :meth:`classifier_dir`).
        """
        s = self.settings
        split = self.split(test_fold)
        labels, X = self.dataset.labels, self.features
        seed = protocol.budget_seed(s.seed, test_fold)
        train = self._label_budget(split.train, labels_per_class, seed)
        # SSLH's protocol watches the whole test fold (it is the fold scored); ours cuts the validation fold to the budget.
        validation = split.validation if split.watches_test else self._label_budget(split.validation, labels_per_class, seed)
        scored = split.test if s.score == "test" else validation
        scaler = self.standardizer(test_fold)
        return methods.SplitData(
            settings=s, test_fold=test_fold, labels_per_class=int(labels_per_class), classes=list(self.dataset.classes),
            train=(scaler.transform(X[train]), labels[train]),
            validation=(scaler.transform(X[validation]), labels[validation]),
            train_rows=train, validation_rows=validation, score_rows=scored, score=scaler.transform(X[scored]),
            seeds=[protocol.member_seed(s.seed, test_fold, m) for m in range(s.ensemble)],
            unlabeled=lambda exclude=None: self.standardised_unlabeled(test_fold, exclude=exclude),
            sources=lambda exclude=None: self.unlabeled_sources(test_fold, exclude=exclude),
            encoder=lambda kind: self.encoder(kind, test_fold),
            run_dir=lambda method: self.classifier_dir(method, test_fold, labels_per_class),
            say=self._say, verbose=self.verbose,
        )

    def train_classifier(self, test_fold: int, method: str, labels_per_class: int = 0) -> dict:
        """Train one classifier (or ensemble) of a method on one fold and score it.

        Parameters
        ----------
        method : str
            A registered method (:mod:`esc_lib.methods`): ``supervised``,
            ``pretrained`` (from this fold's CAE encoder), ``contrastive``,
            ``fixmatch``, ``selftrain``, ...
        labels_per_class : int >= 0
            Keep only this many labelled clips per class in the training and
            the validation fold (nested across budgets, :func:`esc_lib.protocol.label_budget`);
            0 keeps all.  Pre-training is unchanged.

        With ``score="test"`` the test fold is scored; with ``score="validation"``
        (searches) only the validation fold is, and the test fold is never touched.

        Returns
        -------
        dict with ``metrics`` (one row), ``predictions`` (DataFrame, one row per
        scored clip), ``history`` (DataFrame of member 0) and ``model``
        (member 0's scored model).
        """
        trainer = methods.get(method)
        s = self.settings
        split = self.split(test_fold)
        start = time.monotonic()
        self._say(
            f"{method} classifier {s.config_id}, test fold {test_fold} (validation fold {split.validation_fold})"
            + (f", {s.ensemble} members" if s.ensemble > 1 else "")
            + (f", {labels_per_class} labelled clips per class" if labels_per_class else "")
        )
        data = self.split_data(test_fold, labels_per_class)
        labels, train, validation, scored = self.dataset.labels, data.train_rows, data.validation_rows, data.score_rows
        outcome = trainer.train(data)
        if outcome.validation is None:
            validation_accuracy = float("nan")  # every labelled fold but the test fold trained
        else:
            validation_accuracy = float(np.mean(outcome.validation.argmax(axis=1) == labels[validation]))
        probabilities, scored = self._per_file(outcome.scored, scored)
        predicted, truth = probabilities.argmax(axis=1), labels[scored]
        metrics = {
            "config": s.config_id,
            "batch_size": s.batch_size,
            "filters": s.filters,
            "encoder": s.encoder,
            "decoder": s.decoder,
            "batch_norm": bool(s.batch_norm),
            "method": method,
            "seed": s.seed,
            "fold": test_fold,
            "validation_fold": split.validation_fold,
            "scored_on": s.score,
            "labels_per_class": int(labels_per_class),
            "pool": s.pool_label,
            "pool_size": len(self.pool.X) if (trainer.uses_unlabeled and self._has_pool()) else 0,
            "n_train": self._n_files(train) + (self._n_files(validation) if s.refit_on_validation else 0),
            "n_test": len(truth),
            "members": s.ensemble,
            "validation_accuracy": validation_accuracy,
            "accuracy": float(np.mean(predicted == truth)),
            # Beside accuracy for classes of unequal size (equal to it where every class has as many clips).
            "balanced_accuracy": float(sklearn_metrics.balanced_accuracy_score(truth, predicted)),
            "macro_f1": float(sklearn_metrics.f1_score(
                truth, predicted, average="macro", labels=np.unique(truth), zero_division=0)),
            "epochs": int(round(np.mean(outcome.epochs))),
            # Training time from the runs' histories (the same when a finished run is loaded), for
            # self-training the teachers' too; wall_seconds is this call's, with loading or training
            # the encoder it starts from.
            "seconds": round(outcome.seconds, 1),
            "wall_seconds": round(time.monotonic() - start, 1),
        }
        meta = self.dataset.meta.iloc[scored]
        predictions = pd.DataFrame({
            "config": s.config_id, "method": method, "fold": test_fold, "labels_per_class": int(labels_per_class),
            "filename": meta["filename"].to_numpy(), "y_true": truth, "y_pred": predicted,
            "confidence": probabilities.max(axis=1),
        })
        watched = "" if np.isnan(validation_accuracy) or s.score == "validation" else f" (validation {validation_accuracy:.3f})"
        self._say(f"  {s.score} accuracy {metrics['accuracy']:.3f}{watched} after {metrics['epochs']} epochs ({metrics['seconds']} s)")
        return {"metrics": metrics, "predictions": predictions, "history": outcome.histories[0], "model": outcome.models[0]}

    def unlabeled_sources(self, test_fold: int, exclude=None) -> list[str]:
        """Where each row of :meth:`pretraining_data` comes from: a pool file (or window) or a labelled clip's file name."""
        sources = []
        if self._has_pool():
            files, index = getattr(self.pool, "files", None), getattr(self.pool, "file_index", None)
            sources += ([str(files[i]) for i in index] if files is not None and index is not None
                        else [f"pool window {i}" for i in range(len(self.pool.X))])
        return sources + list(self.dataset.meta["filename"].to_numpy()[self._unlabeled_rows(test_fold, exclude)])

    def _label_budget(self, indices, labels_per_class: int, seed: int) -> np.ndarray:
        """:func:`esc_lib.protocol.label_budget` over files: a kept file keeps all its windows."""
        if not _windowed(self.dataset):
            return protocol.label_budget(self.dataset.labels, indices, labels_per_class, seed)
        indices = np.asarray(indices)
        file_of = self.dataset.meta["file"].to_numpy()
        first = indices[~pd.Series(file_of[indices]).duplicated().to_numpy()]  # one row per file
        kept = protocol.label_budget(self.dataset.labels, first, labels_per_class, seed)
        return np.sort(indices[np.isin(file_of[indices], file_of[kept])])

    def _n_files(self, rows) -> int:
        """Labelled files among ``rows`` (clips, or recordings cut into windows)."""
        if not _windowed(self.dataset):
            return len(rows)
        return int(pd.Series(self.dataset.meta["file"].to_numpy()[np.asarray(rows)]).nunique())

    def _per_file(self, probabilities: np.ndarray, rows) -> tuple[np.ndarray, np.ndarray]:
        """Window probabilities averaged per file (as :mod:`esc_lib.predict` scores a recording) and one row per file."""
        rows = np.asarray(rows)
        if not _windowed(self.dataset):
            return probabilities, rows
        file_of = pd.Series(self.dataset.meta["file"].to_numpy()[rows])
        averaged = pd.DataFrame(probabilities).groupby(file_of.to_numpy(), sort=False).mean().to_numpy()
        return averaged, rows[~file_of.duplicated().to_numpy()]

    def results_dir(self) -> Path:
        return self.run_dir / "results" / self.settings.config_id

    def cross_validate(self, methods=None, labels_per_class: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every method (default: the settings' ``methods``) on every test fold; writes ``metrics.csv`` and ``predictions.csv``.

        Rows of an earlier call with other methods or budgets are kept, so
        several calls (e.g. one per label budget) add up in the same files.
        With ``jobs`` other than 1 the folds train side by side (:meth:`_outcomes`).
        """
        methods = list(self.settings.methods if methods is None else methods)
        ((_, outcomes),) = self._outcomes(methods, [labels_per_class])
        return self._record(outcomes)

    def run(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """:meth:`cross_validate` at each of the settings' ``label_budgets`` (0: every labelled clip), in order.

        Each budget's rows are written as soon as its last fold is done, so a run cut short keeps whole
        budgets; with ``jobs`` other than 1 the next budget's folds start while a budget's last ones train.
        """
        for _, outcomes in self._outcomes(list(self.settings.methods), list(self.settings.label_budgets)):
            metrics, predictions = self._record(outcomes)
        return metrics, predictions

    def _record(self, outcomes: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Merge :meth:`train_classifier` outcomes into the results files; every row written so far."""
        metrics = pd.DataFrame([outcome["metrics"] for outcome in outcomes])
        predictions = pd.concat([outcome["predictions"] for outcome in outcomes], ignore_index=True)
        metrics = self._merge(metrics, "metrics.csv", ["method", "fold", "labels_per_class"])
        predictions = self._merge(predictions, "predictions.csv", ["method", "fold", "labels_per_class", "filename"])
        atomic.write_text(self.results_dir() / "settings.json", self.settings.to_json())
        return metrics, predictions

    @property
    def jobs(self) -> int:
        """Processes training folds side by side: the ``jobs`` setting (0: one per CPU core)."""
        return self.settings.jobs or os.cpu_count() or 1

    def _outcomes(self, methods: list[str], budgets: list[int]):
        """``(budget, [outcome of each fold and method])`` for each budget in order, folds in order.

        With one job, :meth:`train_classifier` in this process, fold by fold and method by method.  With
        more, each (budget, fold) is a task of its own -- every method of that fold, in order, so a
        self-trained student finds its teacher and no two processes write one classifier's folder --
        in a pool of ``jobs`` worker processes of one thread each (joblib's loky: a failing task stops
        the others, a worker whose parent dies exits).  Tasks run in (budget, fold) order; their lines
        are relayed here, prefixed with the fold and budget.  The encoders the methods start from are
        made first (:meth:`pretrain_all`, side by side too), so the workers only read them; pairs whose
        runs are all finished are loaded here, without a worker.
        """
        tasks = [(budget, fold) for budget in budgets for fold in self.settings.folds]
        jobs = min(self.jobs, len(tasks))
        if jobs == 1:
            for budget in budgets:
                yield budget, [self.train_classifier(fold, method, budget) for fold in self.settings.folds for method in methods]
            return
        if any(self.settings.starts_from(method) for method in methods):
            self.pretrain_all()
        from esc_lib import training

        def finished(task) -> bool:  # every method's run done (member 0): loaded here, no worker needed
            return all((self.classifier_dir(method, task[1], task[0]) / training.DONE_FILE).is_file() for method in methods)

        results = {task: [self.train_classifier(task[1], method, task[0]) for method in methods]
                   for task in tasks if finished(task)}
        todo = [task for task in tasks if task not in results]
        jobs = min(jobs, len(todo))
        if todo:
            self._say(f"{len(todo)} of {len(tasks)} (budget, fold) pairs to train, {len(methods)} method(s) each, "
                      f"in {jobs} process(es) of one thread")
        work = [(f"fold {fold}, " + (f"{budget} per class" if budget else "all labels"), f"lpc{budget}-fold{fold}",
                 [("train_classifier", (fold, method, budget)) for method in methods]) for budget, fold in todo]
        done = zip(todo, _in_workers(self, work, jobs)) if todo else iter(())
        for budget in budgets:
            for task in [(budget, fold) for fold in self.settings.folds]:
                while task not in results:
                    finished_task, outcomes = next(done)
                    results[finished_task] = outcomes
            yield budget, [outcome for fold in self.settings.folds for outcome in results[(budget, fold)]]

    def _merge(self, new: pd.DataFrame, name: str, keys: list[str]) -> pd.DataFrame:
        path = self.results_dir() / name
        if path.is_file():
            old = pd.read_csv(path)
            new = pd.concat([old, new], ignore_index=True).drop_duplicates(subset=keys, keep="last").reset_index(drop=True)
        atomic.write_text(path, new.to_csv(index=False))
        return new


def _in_workers(experiment: Experiment, tasks: list[tuple[str, str, list[tuple[str, tuple]]]], jobs: int):
    """Each task's return values, task by task in order, from ``jobs`` worker processes of one thread each.

    A task is ``(tag, log name, calls)``: :class:`Experiment` methods called in order, ``[(name, args), ...]``,
    on an experiment made in the worker from this one's settings, dataset, features and (unless kept in an
    on-disk store, which the worker re-opens) pool.  What a task says goes to
    ``<run_dir>/logs/<config_id>/<log name>.log`` and is relayed here, each line prefixed with its tag.
    joblib's loky runs the tasks: one failing stops the others, and the error is raised here.
    """
    import threading

    from joblib import Parallel, delayed, parallel_config

    s = experiment.settings
    logs = experiment.run_dir / "logs" / s.config_id
    logs.mkdir(parents=True, exist_ok=True)
    paths = {tag: logs / f"{name}.log" for tag, name, _ in tasks}
    dataset, features = experiment.dataset, experiment.features  # loaded once here, handed to every task
    pool = experiment.pool if experiment._has_pool() and not s.pool_store else None
    stop = threading.Event()
    relay = threading.Thread(target=_relay, args=(paths, stop, experiment.verbose), daemon=True)
    relay.start()
    try:
        # One thread per worker (OpenMP and BLAS through joblib; TensorFlow's pools in the task); the
        # arrays are pickled, not memory-mapped read-only, so the training code sees ordinary arrays.
        with parallel_config(backend="loky", inner_max_num_threads=1):
            yield from Parallel(n_jobs=jobs, batch_size=1, pre_dispatch="n_jobs", max_nbytes=None, return_as="generator")(
                delayed(_work)(s, dataset, features, pool, calls, paths[tag], experiment.verbose) for tag, _, calls in tasks)
    finally:
        stop.set()
        relay.join()


def _relay(paths: dict, stop, verbose: int) -> None:
    """Print the new complete lines of each task's log, prefixed with its tag, until ``stop`` (then once more)."""
    offsets = dict.fromkeys(paths, 0)
    while True:
        last = stop.wait(1.0)
        for tag, path in paths.items():
            if not path.is_file():
                continue
            with open(path, "rb") as handle:
                handle.seek(offsets[tag])
                data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]
            offsets[tag] += len(complete)
            if verbose:
                for line in complete.decode("utf-8", errors="replace").splitlines():
                    print(f"[{tag}] {line}", flush=True)
        if last:
            return


def _work(settings: Settings, dataset, features, pool, calls: list[tuple[str, tuple]], log: Path, verbose: int) -> list:
    """One worker's task (:func:`_in_workers`), with one thread; its lines go to ``log``.

    Returns what each call returned that can travel back: a classifier's ``metrics`` and ``predictions``
    (not its model), nothing for a pre-training (its model is in the run folder).
    """
    import contextlib

    _exit_with_parent()
    _one_thread()
    with open(log, "a", encoding="utf-8", buffering=1) as handle, contextlib.redirect_stdout(handle), \
            contextlib.redirect_stderr(handle):
        if verbose:
            said = "; ".join(f"{name}{args}" for name, args in calls)
            print(f"worker process {os.getpid()}, one thread: {said}", flush=True)
        experiment = Experiment(settings, pool=pool, verbose=verbose)
        experiment._dataset, experiment._features = dataset, features  # as the parent made them (miniature, checks)
        results = [getattr(experiment, name)(*args) for name, args in calls]
    return [{"metrics": r["metrics"], "predictions": r["predictions"]} if isinstance(r, dict) else None for r in results]


def _one_thread() -> None:
    """TensorFlow's intra- and inter-op pools at one thread each (unless this worker already made them)."""
    import tensorflow as tf

    threading = tf.config.threading
    for get, set_ in ((threading.get_intra_op_parallelism_threads, threading.set_intra_op_parallelism_threads),
                      (threading.get_inter_op_parallelism_threads, threading.set_inter_op_parallelism_threads)):
        if get() != 1:
            try:
                set_(1)
            except RuntimeError:  # TensorFlow already initialised in this (reused) worker: its pools stay
                pass


def _exit_with_parent() -> None:
    """End this worker when the process that started it dies (a killed kernel must not leave training behind)."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(2.0)
        os._exit(1)

    if not getattr(_exit_with_parent, "watching", False):
        _exit_with_parent.watching = True
        threading.Thread(target=watch, daemon=True).start()


def held_out_reconstructions(experiment: Experiment, test_fold: int, decoders=("unpool", "upsample"), n_clips: int = 6):
    """Reconstructions of clips of the test fold, which no CAE has seen (the paper's Figure 1).

    Returns
    -------
    result : dict
        ``ground_truth`` [n_clips, n_mels, n_frames, n_channels], one array per
        decoder under its name, ``mse`` {decoder: mean squared error over the
        whole test fold} and ``titles`` (category of each clip).
    """
    test = experiment.split(test_fold).test
    scaler = experiment.standardizer(test_fold)
    X_test = scaler.transform(experiment.features[test])
    meta = experiment.dataset.meta.iloc[test].reset_index(drop=True)
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
    and ``<run_dir>/tables``, so the published folders hold one set.  Neither
    is made here: the first figure or table written makes its folder, so a run
    stopped before notebook 04 leaves no empty ``results/<profile>/`` (which the
    results index would refuse for lacking its ``run.json``).
    """
    if publish:
        return config.figures_dir() / profile, config.results_dir() / profile
    base = Path(run_dir) if run_dir else config.runs_dir() / "interactive"
    return base / "figures", base / "tables"
