"""esc_lib: semi-supervised environmental sound classification.

A thin library behind the numbered notebooks: datasets and downloads
(:mod:`esc_lib.data`, :mod:`esc_lib.download`), audio loading
(:mod:`esc_lib.audio`), log-mel features and their cache
(:mod:`esc_lib.features`), Pescador streams (:mod:`esc_lib.streams`), the
switch-unpooling layer (:mod:`esc_lib.layers`), models built from the paper's
notation (:mod:`esc_lib.models`), training (:mod:`esc_lib.training`),
statistics (:mod:`esc_lib.stats`), result tables (:mod:`esc_lib.tables`) and
figures (:mod:`esc_lib.plots`).
Every file is written all-or-nothing through :mod:`esc_lib.atomic`.

Importing the package is cheap: TensorFlow is imported only by the modules
that need it.
"""

import warnings

__version__ = "0.1.0"

# librosa's downloader (pooch) imports tqdm.auto, which in a notebook without ipywidgets
# warns "IProgress not found" although no widget bar is ever shown (esc_lib's bars are text).
warnings.filterwarnings("ignore", message="IProgress not found")
