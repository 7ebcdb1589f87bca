"""``freematch``: FixMatch with self-adaptive thresholds and fairness (Wang et al. 2023, FreeMatch).

FixMatch's fixed threshold (``fixmatch_threshold``) is either too high early -- few
pseudo-labels while the classifier is poor -- or too low late -- confident mistakes
become targets and are confirmed.  FreeMatch makes the threshold follow the
classifier instead.  Every optimiser step, from the weak views' class probabilities
``p`` of the unlabeled batch, it updates three running means (momentum
``freematch_momentum``; each starts at ``1 / C`` for ``C`` classes):

* the **global confidence** ``tau <- m tau + (1 - m) mean(max p)``,
* each class's **mean probability** ``p~ <- m p~ + (1 - m) mean(p, axis=0)``,
* the **histogram** of the arg-max classes ``h~`` (used by the fairness loss),

and a weak view's arg-max ``c`` becomes the target of its strong view where
``max p >= tau * p~_c / max(p~)``: the threshold rises as the classifier grows
confident, and is lower for the classes it predicts less.  The **self-adaptive
fairness** loss (weight ``freematch_fairness``; USB's configurations 0.001) is
``sum_c a_c log b_c`` with ``a = SumNorm(p~ / h~)`` and ``b = SumNorm(mean of the
masked strong views' probabilities / their arg-max histogram)``, as USB computes it
(``semilearn/algorithms/freematch``): it pushes the masked strong views' mean
prediction away from the classes already favoured.

Everything else is the ``fixmatch`` method's: the ``semisupervised`` settings
(the views, ``fixmatch_steps``, batch sizes, the weights' average, alignment,
the start; ``fixmatch_threshold`` is not used) and its :class:`esc_lib.methods.fixmatch.ConsistencyTrainer`,
of which :class:`FreeMatchTrainer` changes only how the targets are masked and
adds the fairness loss.  The running means are variables of the trainer, so a
killed run resumes them from its checkpoint.  Logs ``mask_rate`` and ``threshold``
(the mean of the classes' thresholds) per epoch, with ``fairness_loss``.
"""

from __future__ import annotations

import functools

from esc_lib.methods import fixmatch

__all__ = ["FreeMatch", "METHOD", "FreeConsistency", "FreeMatchTrainer", "update_state", "adaptive_targets",
           "fairness_loss"]


class FreeConsistency(fixmatch.Consistency):
    """FixMatch's batches and schedule (:class:`esc_lib.methods.fixmatch.Consistency`) with FreeMatch's trainer."""

    def trainer(self, model, Y):
        s = self.settings
        return _trainer_class()(model, momentum=s.freematch_momentum, fairness=s.freematch_fairness,
                                **self.trainer_arguments(Y))


class FreeMatch(fixmatch.BuiltOnFixMatch):
    def consistency(self, settings, unlabeled):
        return FreeConsistency(settings, unlabeled)


METHOD = FreeMatch(
    name="freematch", summary="FixMatch with self-adaptive thresholds and a fairness loss (FreeMatch)",
    section="freematch", folder_tag="-freematch", tag_prefix="frm",
    tag_letters={"freematch_momentum": "m", "freematch_fairness": "f"})


# ---------------------------------------------------------------------------
# The Keras pieces, built on first use


def update_state(probabilities, confidence, class_confidence, histogram, momentum: float):
    """One step of FreeMatch's running means from the weak views' ``probabilities`` [shape=(n, C)].

    Returns ``(confidence, class_confidence, histogram)``: ``m x + (1 - m) new`` with ``new`` the mean of the
    rows' maximum, the mean row, and the share of rows whose arg-max is each class.
    """
    import tensorflow as tf

    probabilities = tf.convert_to_tensor(probabilities, "float32")
    m = tf.constant(float(momentum), "float32")
    confidence, class_confidence, histogram = (tf.cast(v, "float32") for v in (confidence, class_confidence, histogram))
    n_classes = tf.shape(probabilities)[-1]
    counts = tf.reduce_sum(tf.one_hot(tf.argmax(probabilities, axis=-1), n_classes, dtype="float32"), axis=0)
    return (m * confidence + (1 - m) * tf.reduce_mean(tf.reduce_max(probabilities, axis=-1)),
            m * class_confidence + (1 - m) * tf.reduce_mean(probabilities, axis=0),
            m * histogram + (1 - m) * counts / tf.maximum(tf.reduce_sum(counts), 1.0))


def adaptive_targets(probabilities, confidence, class_confidence):
    """FreeMatch's targets: ``(targets, mask, thresholds)`` with ``thresholds = confidence * class_confidence /
    max(class_confidence)`` (one per class) and ``mask`` 1.0 where a row's maximum is at least its arg-max class's."""
    import tensorflow as tf

    probabilities = tf.convert_to_tensor(probabilities, "float32")
    confidence, class_confidence = tf.cast(confidence, "float32"), tf.cast(class_confidence, "float32")
    thresholds = confidence * class_confidence / tf.reduce_max(class_confidence)
    targets = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    confident = tf.reduce_max(probabilities, axis=-1) >= tf.gather(thresholds, targets)
    return targets, tf.cast(confident, "float32"), thresholds


def fairness_loss(mask, p_strong, class_confidence, histogram):
    """The self-adaptive fairness loss (USB's ``entropy_loss``); 0 when no strong view is masked in.

    ``sum_c a_c log b_c`` with ``a = SumNorm(class_confidence / histogram)`` and ``b = SumNorm(mean of the
    masked strong views' probabilities / the histogram of their arg-max)``; a class absent from a histogram
    gets scale 0.  Only ``b``'s mean probabilities carry a gradient.
    """
    import tensorflow as tf

    mask = tf.convert_to_tensor(mask, "float32")
    p_strong = tf.convert_to_tensor(p_strong, "float32")
    class_confidence, histogram = tf.cast(class_confidence, "float32"), tf.cast(histogram, "float32")
    n_classes = tf.shape(p_strong)[-1]
    kept = tf.reduce_sum(mask)
    counts = tf.reduce_sum(mask[:, None] * tf.one_hot(tf.argmax(p_strong, axis=-1), n_classes, dtype="float32"), axis=0)
    hist_strong = counts / tf.maximum(kept, 1.0)
    mean_strong = tf.reduce_sum(mask[:, None] * p_strong, axis=0) / tf.maximum(kept, 1.0)

    def scaled(values, by):
        values = values * tf.stop_gradient(tf.math.divide_no_nan(tf.ones_like(by), by))
        return values / tf.maximum(tf.reduce_sum(values), 1e-12)

    target = scaled(tf.stop_gradient(class_confidence), histogram)
    loss = tf.reduce_sum(target * tf.math.log(scaled(mean_strong, hist_strong) + 1e-12))
    return tf.where(kept > 0, loss, 0.0)


@functools.cache
def _trainer_class():
    import keras
    import tensorflow as tf

    class FreeMatchTrainer(fixmatch.ConsistencyTrainer):
        """:class:`esc_lib.methods.fixmatch.ConsistencyTrainer` with FreeMatch's self-adaptive thresholds
        (``threshold`` is not used) and fairness loss.

        Parameters
        ----------
        classifier : keras.Model
        momentum : float in [0, 1)
            Of the running means (:func:`update_state`), variables of this trainer, so a resumed run continues them.
        fairness : float >= 0
            Weight of :func:`fairness_loss` (0: none).
        **kwargs
            The :class:`ConsistencyTrainer`'s (``weight``, ``ema``, ``labels_from``, ``align``).
        """

        TRAINING_ONLY = (*fixmatch.ConsistencyTrainer.TRAINING_ONLY, "threshold", "fairness_loss")

        def __init__(self, classifier: keras.Model, momentum: float = 0.999, fairness: float = 0.0, **kwargs):
            super().__init__(classifier, **kwargs)
            if not 0.0 <= float(momentum) < 1.0:
                raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
            if float(fairness) < 0:
                raise ValueError(f"fairness must be >= 0, got {fairness!r}")
            self.momentum, self.fairness = float(momentum), float(fairness)
            n_classes = int(classifier.output_shape[-1])
            uniform = keras.initializers.Constant(1.0 / n_classes)
            self.confidence = self.add_weight(name="freematch_confidence", shape=(), trainable=False, dtype="float32",
                                              aggregation="mean", initializer=uniform)
            self.class_confidence = self.add_weight(name="freematch_class_confidence", shape=(n_classes,),
                                                    trainable=False, dtype="float32", aggregation="mean",
                                                    initializer=uniform)
            self.histogram = self.add_weight(name="freematch_histogram", shape=(n_classes,), trainable=False,
                                             dtype="float32", aggregation="mean", initializer=uniform)
            self.mean_threshold = keras.metrics.Mean(name="threshold")
            self.mean_fairness = keras.metrics.Mean(name="fairness_loss")

        def make_targets(self, p_weak):
            confidence, class_confidence, histogram = update_state(
                p_weak, self.confidence, self.class_confidence, self.histogram, self.momentum)
            self.confidence.assign(confidence)
            self.class_confidence.assign(class_confidence)
            self.histogram.assign(histogram)
            targets, mask, thresholds = adaptive_targets(p_weak, self.confidence, self.class_confidence)
            return targets, mask, {"threshold": tf.reduce_mean(thresholds)}

        def extra_loss(self, mask, p_strong):
            loss = fairness_loss(mask, p_strong, self.class_confidence, self.histogram)
            return (self.fairness * loss if self.fairness else None), {"fairness_loss": loss}

    return FreeMatchTrainer


def __getattr__(name: str):
    # PEP 562: the Keras class is made on first access, so the registry imports without TensorFlow.
    if name == "FreeMatchTrainer":
        return _trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
