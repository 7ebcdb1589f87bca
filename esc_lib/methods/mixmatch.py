"""``mixmatch``: guessed, sharpened targets for unlabeled clips and mixup of everything (Berthelot et al. 2019,
MixMatch), SSLH's best method on UrbanSound8K and Speech Commands (Cances, Labbé & Pellegrini 2022).

Each optimiser step takes a labelled batch (through the classifier's ``augment``, one-hot targets) and
``fixmatch_ratio`` times as many unlabeled clips, each in **two** views of the weak augmentation
(``fixmatch_weak``; the stream's weak and strong slots both get it, ``fixmatch_strong`` is not used):

1. **Guess** (no gradient): the classifier's class probabilities on the two views are averaged, with
   ``mixmatch_align`` (the default) **aligned** to the labelled clips' class shares (ReMixMatch's
   distribution alignment, :func:`esc_lib.methods.fixmatch.align_distribution`, through a running mean of
   the guesses), and **sharpened**, ``q = p^(1/T) / sum p^(1/T)`` at temperature ``mixmatch_temperature``
   (0.5); ``q`` becomes the target of both views (:func:`guess_targets`).
2. **Mix**: the labelled batch and both unlabeled views are concatenated with their targets, shuffled,
   and each row is mixed with its shuffled partner at ``lam' = max(lam, 1 - lam)``,
   ``lam ~ Beta(mixmatch_alpha, mixmatch_alpha)`` (one per step, as the paper and USB draw it), so each row
   dominates its mixture (:func:`mix`).
3. **Loss** = cross-entropy on the mixed labelled rows + ``lambda_u`` x the mean squared error between
   the mixed unlabeled rows' probabilities and their mixed targets; ``lambda_u`` rises linearly from 0 to
   ``mixmatch_weight`` over the first ``mixmatch_rampup`` share of the run's optimiser steps (:func:`rampup`).

The defaults: ``T`` 0.5 and ``alpha`` 0.75 are the paper's; the weight 10 and the ramp-up over 40% of the
steps are USB's audio configurations (``config/usb_audio/mixmatch/*.yaml``: ``ulb_loss_ratio: 10``,
``unsup_warm_up: 0.4``; the paper's CIFAR-10 weight, 75 to 100, is for images and long runs).  The alignment
is not the paper's MixMatch: without it the synthetic task's seed 1 collapses onto one class (47%, chance),
with it MixMatch recovers the few-label gap on all three seeds (docs/methods.md).

The draws of the mixing (``lam`` and the shuffle) are stateless, seeded by the member's seed and the
optimiser's step, so a killed run resumes to the same weights.  Everything else is the ``fixmatch``
method's: the ``semisupervised`` settings for the run's length (``fixmatch_steps``), its batch sizes, the
weights' average (``fixmatch_ema``, ``fixmatch_labels_from``), ``fixmatch_weak`` and ``fixmatch_init``
(``fixmatch_threshold``, ``fixmatch_weight``, ``fixmatch_strong``, ``fixmatch_mixup`` and
``fixmatch_align`` are not used: ``mixmatch_align`` is its own).  Logs ``unlabeled_loss`` (the MSE, unweighted), ``unlabeled_weight``
(``lambda_u``) and ``mask_rate`` (always 1: every unlabeled clip has a target).
"""

from __future__ import annotations

import functools
import math

from esc_lib.methods import fixmatch

__all__ = ["MixMatch", "METHOD", "MixConsistency", "MixMatchTrainer", "sharpen", "guess_targets", "mix", "rampup"]


class MixConsistency(fixmatch.Consistency):
    """FixMatch's batches and schedule (:class:`esc_lib.methods.fixmatch.Consistency`) with two weak views of each
    unlabeled clip, no mixing in the stream, and MixMatch's trainer."""

    def stream(self, X, Y, seed: int, augment):
        """Labelled batches and ``fixmatch_ratio`` times as many unlabeled clips, each in two weak views."""
        from esc_lib import augment as augmentations
        from esc_lib import semi

        s = self.settings
        # The member's seed also seeds the trainer's mixing draws (train_classifier makes a member's stream,
        # then its trainer).
        self.seed = int(seed)
        weak = augmentations.from_spec(s.augmentation("fixmatch_weak"))
        return semi.SemiSupervisedStream(
            X, Y, self.unlabeled, self.batch_size, s.fixmatch_ratio, seed, augment=augment, weak=weak, strong=weak,
            steps_per_epoch=self.schedule(len(X))[1], mix=0.0)

    def total_steps(self, n_labelled: int) -> int:
        """Optimiser steps of a run on ``n_labelled`` labelled clips (what the ramp-up is a share of)."""
        epochs, steps = self.schedule(n_labelled)
        return epochs * (steps or math.ceil(n_labelled / self.batch_size))

    def trainer(self, model, Y):
        s = self.settings
        return _trainer_class()(
            model, temperature=s.mixmatch_temperature, alpha=s.mixmatch_alpha, weight=s.mixmatch_weight,
            rampup_steps=s.mixmatch_rampup * self.total_steps(len(Y)), seed=getattr(self, "seed", 0),
            ema=s.fixmatch_ema, labels_from=s.fixmatch_labels_from, align=Y.mean(axis=0) if s.mixmatch_align else None)


class MixMatch(fixmatch.BuiltOnFixMatch):
    named_by = ("fixmatch", "freematch")

    def consistency(self, settings, unlabeled):
        return MixConsistency(settings, unlabeled)


METHOD = MixMatch(
    name="mixmatch", summary="sharpened guesses on two weak views, aligned to the labelled class shares, mixup of labelled and unlabeled clips (MixMatch)",
    section="mixmatch", folder_tag="-mixmatch", tag_prefix="mm",
    tag_letters={"mixmatch_temperature": "t", "mixmatch_alpha": "a", "mixmatch_weight": "w", "mixmatch_rampup": "r",
                 "mixmatch_align": "d"})


# ---------------------------------------------------------------------------
# The pieces, TensorFlow imported on first use


def rampup(step: float, rampup_steps: float, weight: float) -> float:
    """``lambda_u`` at ``step``: ``weight * min(step / rampup_steps, 1)``; ``rampup_steps`` <= 0: ``weight``."""
    if rampup_steps <= 0:
        return float(weight)
    return float(weight) * min(max(step / rampup_steps, 0.0), 1.0)


def sharpen(probabilities, temperature: float):
    """Each row ``p^(1/T) / sum(p^(1/T))``: lower the entropy of the class probabilities (``T`` 1: unchanged)."""
    import tensorflow as tf

    if not float(temperature) > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    powered = tf.pow(tf.convert_to_tensor(probabilities, "float32"), 1.0 / float(temperature))
    return powered / tf.maximum(tf.reduce_sum(powered, axis=-1, keepdims=True), 1e-12)


def guess_targets(views, temperature: float, align=None):
    """MixMatch's targets of unlabeled clips: the mean of their ``views``' probabilities (a sequence of
    [shape=(n, C)]), passed through ``align`` (a function of the mean, e.g. a distribution alignment) when
    given, then sharpened (:func:`sharpen`)."""
    import tensorflow as tf

    mean = tf.add_n([tf.convert_to_tensor(v, "float32") for v in views]) / len(views)
    return sharpen(align(mean) if align is not None else mean, temperature)


def mix(x, targets, lam, order):
    """MixUp of every row with a shuffled partner: ``(l x + (1 - l) x[order], l t + (1 - l) t[order])`` with
    ``l = max(lam, 1 - lam)``, so each row dominates its mixture.

    Parameters
    ----------
    x : tensor [shape=(n, ...)]
    targets : tensor [shape=(n, C)]
    lam : float in [0, 1]
    order : int tensor [shape=(n,)]
        A permutation of the rows.
    """
    import tensorflow as tf

    x, targets = tf.convert_to_tensor(x, "float32"), tf.convert_to_tensor(targets, "float32")
    lam = tf.cast(lam, "float32")
    lam = tf.maximum(lam, 1.0 - lam)
    return (lam * x + (1.0 - lam) * tf.gather(x, order),
            lam * targets + (1.0 - lam) * tf.gather(targets, order))


@functools.cache
def _trainer_class():
    import keras
    import tensorflow as tf

    from esc_lib import semi

    class MixMatchTrainer(fixmatch.ConsistencyTrainer):
        """MixMatch's training step on batches of a :class:`esc_lib.semi.SemiSupervisedStream` whose two
        unlabeled views are both weak.

        Parameters
        ----------
        classifier : keras.Model
        temperature : float > 0
            Of the sharpening (:func:`sharpen`).
        alpha : float > 0
            Of ``lam ~ Beta(alpha, alpha)``.
        weight : float >= 0
            ``lambda_u`` after the ramp-up.
        rampup_steps : float >= 0
            Optimiser steps over which ``lambda_u`` rises linearly from 0 (:func:`rampup`; 0: none).
        seed : int
            Seeds the mixing draws with the optimiser's step (stateless, so a resumed run draws the same).
        ema, labels_from, align
            As :class:`esc_lib.methods.fixmatch.ConsistencyTrainer`'s (``labels_from="average"``: the average of
            the weights guesses the targets; ``align``: the labelled class shares the guesses are aligned to).
        """

        TRAINING_ONLY = (*fixmatch.ConsistencyTrainer.TRAINING_ONLY, "unlabeled_weight")

        def __init__(self, classifier: keras.Model, temperature: float = 0.5, alpha: float = 0.75,
                     weight: float = 10.0, rampup_steps: float = 0.0, seed: int = 0, **kwargs):
            super().__init__(classifier, weight=weight, **kwargs)
            if not float(temperature) > 0:
                raise ValueError(f"temperature must be > 0, got {temperature!r}")
            if not float(alpha) > 0:
                raise ValueError(f"alpha must be > 0, got {alpha!r}")
            if not float(rampup_steps) >= 0:
                raise ValueError(f"rampup_steps must be >= 0, got {rampup_steps!r}")
            self.temperature, self.alpha, self.rampup_steps = float(temperature), float(alpha), float(rampup_steps)
            self.seed = int(seed)
            self.unlabeled_weight = keras.metrics.Mean(name="unlabeled_weight")

        def draws(self, n):
            """``(lam, order)`` of this step: ``lam ~ Beta(alpha, alpha)`` and a permutation of ``n`` rows."""
            step = tf.cast(self.optimizer.iterations, "int64")
            seeds = [tf.stack([tf.constant(self.seed * 3 + k, "int64"), step]) for k in range(3)]
            shape = tf.constant([1], "int32")
            a = tf.random.stateless_gamma(shape, seeds[0], alpha=self.alpha)[0]
            b = tf.random.stateless_gamma(shape, seeds[1], alpha=self.alpha)[0]
            lam = a / tf.maximum(a + b, 1e-12)
            order = tf.argsort(tf.random.stateless_uniform(tf.reshape(n, [1]), seeds[2]))
            return lam, order

        def current_weight(self):
            if self.rampup_steps <= 0:
                return tf.constant(self.weight, "float32")
            step = tf.cast(self.optimizer.iterations, "float32")
            return self.weight * tf.clip_by_value(step / self.rampup_steps, 0.0, 1.0)

        def train_step(self, data):
            (x_labelled, x_one, x_two), y = data
            n_labelled, n_unlabeled = tf.shape(x_labelled)[0], tf.shape(x_one)[0]
            views = tf.concat([x_one, x_two], axis=0)
            guesser = self.network if self.labels_from == "average" else self.student
            p_views = tf.stop_gradient(tf.cast(guesser(views, training=self.labels_from != "average"), "float32"))
            q = tf.stop_gradient(guess_targets([p_views[:n_unlabeled], p_views[n_unlabeled:]], self.temperature,
                                               align=self.aligned))
            x_all = tf.concat([tf.cast(x_labelled, "float32"), tf.cast(views, "float32")], axis=0)
            t_all = tf.concat([tf.cast(y, "float32"), q, q], axis=0)
            lam, order = self.draws(tf.shape(x_all)[0])
            mixed_x, mixed_t = mix(x_all, t_all, lam, order)
            mixed_t = tf.stop_gradient(mixed_t)
            weight = self.current_weight()
            with tf.GradientTape() as tape:
                probabilities = self.student(mixed_x, training=True)
                p_labelled = probabilities[:n_labelled]
                p_unlabeled = tf.cast(probabilities[n_labelled:], "float32")
                supervised = self.compute_loss(x=mixed_x[:n_labelled], y=mixed_t[:n_labelled], y_pred=p_labelled)
                unlabeled = tf.reduce_mean(tf.square(p_unlabeled - mixed_t[n_labelled:]))
                loss = supervised + tf.cast(weight * semi.for_replicas(unlabeled), supervised.dtype)
                scaled = self.optimizer.scale_loss(loss)
            gradients = tape.gradient(scaled, self.student.trainable_variables)
            self.optimizer.apply_gradients(zip(gradients, self.student.trainable_variables))
            self.update_average()
            logs = {"unlabeled_loss": unlabeled, "mask_rate": tf.ones(()), "unlabeled_weight": weight}
            return self.step_metrics(loss, logs, mixed_t[:n_labelled], p_labelled)

    return MixMatchTrainer


def __getattr__(name: str):
    # PEP 562: the Keras class is made on first access, so the registry imports without TensorFlow.
    if name == "MixMatchTrainer":
        return _trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
