"""esc_lib: semi-supervised environmental sound classification.

A thin library behind the numbered notebooks; every module, with one line each,
from the foundations up.  The import graph has no cycles (``tests/test_package.py``),
and importing the package is cheap: TensorFlow is imported only by the modules
that train or predict.

Foundations
    :mod:`esc_lib.config`      every path and environment variable, derived from the project root
    :mod:`esc_lib.atomic`      every file written all-or-nothing (temporary file, then rename)
    :mod:`esc_lib.locks`       one process per run folder or download: an OS lock naming its holder, dropped if it dies
    :mod:`esc_lib.settings`    the one schema of parameters: profiles, notebooks and the runner read it
    :mod:`esc_lib.protocol`    the cross-validation rules as pure functions: folds, budgets, what may be seen
Data (:mod:`esc_lib.data`)
    :mod:`esc_lib.data.audio`       reading a clip, and counted skips of files that cannot be read
    :mod:`esc_lib.data.datasets`    ESC-50 / ESC-10 metadata and folds, unlabeled pools, the leakage filter
    :mod:`esc_lib.data.download`    ESC-50 and ESC-US downloads, with hashes, all-or-nothing
    :mod:`esc_lib.data.recordings`  one's own labelled recordings, with folds made for them
Features and batches
    :mod:`esc_lib.features`    log-mel features, their cache and input statistics
    :mod:`esc_lib.store`       the on-disk feature store of a large pool (Dask), read a batch at a time
    :mod:`esc_lib.augment`     augmentations of feature batches from a text spec (shift, masks, mixup, ...)
    :mod:`esc_lib.streams`     Pescador streams of seeded, resumable batches for Keras
Networks and training
    :mod:`esc_lib.layers`      the switch-unpooling layer
    :mod:`esc_lib.models`      the CAE and the classifier built from the paper's notation
    :mod:`esc_lib.training`    the one training path: fit with checkpoints and resume, the CAE, a classifier
    :mod:`esc_lib.semi`        what the semi-supervised methods share: labelled + unlabeled streams, the trainer base
Methods (:mod:`esc_lib.methods`, a registry by name)
    :mod:`esc_lib.methods.base`         the interface: ``SplitData`` in, ``Trained`` out, a method's description
    :mod:`esc_lib.methods.supervised`   from random initialisation (the baseline)
    :mod:`esc_lib.methods.pretrained`   from the CAE's encoder (the paper's method)
    :mod:`esc_lib.methods.contrastive`  from a contrastively pre-trained encoder (SimCLR), and its pre-training
    :mod:`esc_lib.methods.fixmatch`     consistency between weak and strong views (FixMatch)
    :mod:`esc_lib.methods.selftrain`    a student on a teacher's confident pseudo-labels
    :mod:`esc_lib.methods.meanteacher`  agreement with an average of its own weights (mean teacher)
    :mod:`esc_lib.methods.freematch`    FixMatch with self-adaptive thresholds and fairness (FreeMatch)
    :mod:`esc_lib.methods.mixmatch`     sharpened guesses on two weak views, mixup of everything (MixMatch)
Orchestration
    :mod:`esc_lib.experiment`  one configuration over the folds: splits, budgets, pools, scoring, results files
    :mod:`esc_lib.predict`     a trained classifier as a bundle, and predictions on new files
Analysis
    :mod:`esc_lib.stats`       intervals, paired tests, seed pooling (no file I/O)
    :mod:`esc_lib.tables`      the paper's tables and every other table, written from those statistics
    :mod:`esc_lib.plots`       figures
    :mod:`esc_lib.report`      what notebook 04 shows and publishes, from a run folder
    :mod:`esc_lib.runs`        each published folder's run.json, the results index, figures published once
    :mod:`esc_lib.guidance`    a budgets study read as advice: one method per label budget, the README's table
Running
    :mod:`esc_lib.notebook`    the notebooks' settings cell: the parameters cell's names, quick mode (``ESC_QUICK``)
    :mod:`esc_lib.reproduce`   the runner behind ``./run_all.sh``: the notebooks through papermill
    :mod:`esc_lib.__main__`    ``python -m esc_lib predict`` / ``compare`` / ``recommend`` / ``results-index``
"""

import warnings

__version__ = "0.1.0"

# librosa's downloader (pooch) imports tqdm.auto, which in a notebook without ipywidgets
# warns "IProgress not found" although no widget bar is ever shown (esc_lib's bars are text).
warnings.filterwarnings("ignore", message="IProgress not found")
