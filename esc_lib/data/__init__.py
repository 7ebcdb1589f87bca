"""The data layer: audio files in, labelled datasets and unlabeled pools out.

* :mod:`esc_lib.data.audio` -- reading a clip (decode, resample, pad or cut to 5 s) and the
  counted skips of files that cannot be read.
* :mod:`esc_lib.data.datasets` -- ESC-50 / ESC-10 metadata and folds, unlabeled pools (a folder,
  ESC-US), the leakage filter by Freesound source.
* :mod:`esc_lib.data.download` -- ESC-50 and ESC-US downloads with hashes, verified and extracted
  all-or-nothing; ESC-10 and a pool of ESC-50's other classes linked from the ESC-50 download.
* :mod:`esc_lib.data.recordings` -- one's own labelled recordings (a folder per class or a table),
  with folds made for them.

Nothing here imports TensorFlow or anything of esc_lib above it: the features
(:mod:`esc_lib.features`) are the next layer up and read clips through
:mod:`esc_lib.data.audio`, and the on-disk feature store (:mod:`esc_lib.store`)
stands on the features.
"""
