"""``fixmatch``: consistency training on labelled and unlabeled batches together (Sohn et al. 2020), as SSLH
ran it on ESC-10 (Cances, Labbé & Pellegrini 2022).

Each unlabeled clip is seen twice, weakly and strongly augmented
(``fixmatch_weak`` / ``fixmatch_strong``; by default SSLH's views: occlusion,
speed change and cutout, gentle and sometimes for the weak view, large and always
for the strong one); where the classifier is confident (max probability >=
``fixmatch_threshold``) about the weak view, its arg-max becomes the target of
the strong view.  Loss = supervised cross-entropy + ``fixmatch_weight`` x the
masked cross-entropy on the strong views.

A run is ``fixmatch_steps`` optimiser steps of ``fixmatch_batch_size`` labelled
and ``fixmatch_ratio`` times as many unlabeled clips, however many clips are
labelled (SSLH: about 2 700 steps of 30 + 30); an epoch -- one validation pass
and one checkpoint -- is a pass over the unlabeled clips (:meth:`Consistency.schedule`).
With ``fixmatch_ema`` the model validated, saved and scored is an exponential
moving average of the trained weights (:func:`ema_decay`), and with
``fixmatch_labels_from: average`` that average also labels the weak views.
``fixmatch_mixup`` is SSLH's FixMatch + mixup; ``fixmatch_align`` aligns the weak
views' predictions to the labelled clips' class shares (ReMixMatch); with
``fixmatch_init: supervised`` the classifier starts from the fold's supervised run.

The Keras pieces (:class:`ConsistencyTrainer`, :func:`pseudo_labels`,
:func:`align_distribution`) are built on first use, so importing the method
registry imports no TensorFlow.
"""

from __future__ import annotations

import functools
import math

from esc_lib.methods.base import Method, SplitData, Trained, refuse_warm_start_on_refit
from esc_lib.methods.supervised import train_from

__all__ = ["FixMatch", "BuiltOnFixMatch", "METHOD", "Consistency", "ConsistencyTrainer", "ema_decay", "pseudo_labels", "align_distribution"]


class Consistency:
    """FixMatch's part of :func:`esc_lib.training.train_classifier`: the batches and the trainer of each member.

    Parameters
    ----------
    settings : esc_lib.settings.Settings
    unlabeled : np.ndarray [shape=(m, n_mels, n_frames, channels)] or esc_lib.store.LazyRows
        Standardised unlabeled clips (a ``LazyRows`` is read a batch at a time).
    """

    def __init__(self, settings, unlabeled):
        self.settings, self.unlabeled = settings, unlabeled

    @property
    def batch_size(self) -> int:
        """Labelled clips in a step."""
        return self.settings.fixmatch_batch_size or self.settings.batch_size

    def schedule(self, n_labelled: int) -> tuple[int, int | None]:
        """``(epochs, steps_per_epoch)`` of a run on ``n_labelled`` labelled clips.

        With ``fixmatch_steps`` an epoch (one validation pass and one checkpoint) is one pass over the
        unlabeled clips, as in SSLH, at most 100 steps, and the epochs make up ``fixmatch_steps`` (rounded
        up to whole epochs); else ``fixmatch_epochs`` (``max_epochs`` when 0) passes over the labelled clips
        (``steps_per_epoch`` None).
        """
        s = self.settings
        if not s.fixmatch_steps:
            return s.fixmatch_epochs or s.max_epochs, None
        one_pass = math.ceil(len(self.unlabeled) / (s.fixmatch_ratio * self.batch_size))
        epochs = math.ceil(s.fixmatch_steps / min(one_pass, 100, s.fixmatch_steps))
        return epochs, math.ceil(s.fixmatch_steps / epochs)

    def stream(self, X, Y, seed: int, augment):
        """Labelled batches and ``fixmatch_ratio`` times as many unlabeled clips, each in a weak and a strong view."""
        from esc_lib import augment as augmentations
        from esc_lib import semi

        s = self.settings
        return semi.SemiSupervisedStream(
            X, Y, self.unlabeled, self.batch_size, s.fixmatch_ratio, seed, augment=augment,
            weak=augmentations.from_spec(s.augmentation("fixmatch_weak")),
            strong=augmentations.from_spec(s.augmentation("fixmatch_strong")),
            steps_per_epoch=self.schedule(len(X))[1], mix=s.fixmatch_mixup,
        )

    def trainer(self, model, Y):
        return _trainer_class()(model, **self.trainer_arguments(Y))

    def trainer_arguments(self, Y) -> dict:
        """The :class:`ConsistencyTrainer`'s keywords from the settings (a method built on it adds its own)."""
        s = self.settings
        return dict(
            threshold=s.fixmatch_threshold, weight=s.fixmatch_weight, ema=s.fixmatch_ema,
            labels_from=s.fixmatch_labels_from,
            # The labelled clips' class shares (before mixing) are what the pseudo-labels are aligned to.
            align=Y.mean(axis=0) if s.fixmatch_align else None)


class FixMatch(Method):
    def check(self, settings) -> None:
        refuse_warm_start_on_refit(settings, "fixmatch_init", "supervised", "scratch", "FixMatch from a supervised classifier")
        if settings.fixmatch_steps and settings.fixmatch_epochs:
            raise ValueError(
                f"fixmatch_steps {settings.fixmatch_steps} and fixmatch_epochs {settings.fixmatch_epochs} both set the "
                "length of a FixMatch run: set fixmatch_steps to 0 to count epochs, or fixmatch_epochs to 0")

    def consistency(self, settings, unlabeled) -> Consistency:
        """The batches and trainer of its runs (a method built on FixMatch, ``freematch`` or ``mixmatch``, gives its own)."""
        return Consistency(settings, unlabeled)

    def train(self, split: SplitData) -> Trained:
        """Consistency training of the split's classifier on its unlabeled clips (the pool and/or the non-test
        folds, labels dropped), for ``fixmatch_steps`` optimiser steps (:meth:`Consistency.schedule`)."""
        from esc_lib import training

        s = split.settings
        unlabeled = split.unlabeled()
        initial, start_seconds = None, 0.0
        if s.fixmatch_init == "supervised":
            # Warm FixMatch: the supervised classifier of this fold and budget (its own run, loaded
            # when it exists) is fine-tuned with consistency, member i from its member i.
            split.say("  start: the supervised classifier of this fold and budget")
            start = train_from(split, "supervised")
            initial, start_seconds = start.models, start.seconds
        consistency = self.consistency(s, unlabeled)
        run = training.train_classifier(
            split.train, split.validation, split.n_classes, split.run_dir(self.name), s,
            consistency=consistency, stage=self.name, initial=initial,
            max_epochs=consistency.schedule(len(split.train[0]))[0], **split.common())
        return Trained.of(run, start_seconds)



class BuiltOnFixMatch(FixMatch):
    """A method on FixMatch's batches, schedule, views and average (``freematch``, ``mixmatch``): its run folders
    depend on FixMatch's section and its own, and FixMatch's non-default settings name its configuration unless
    a method in ``named_by`` runs beside it and names them already."""

    #: Methods whose configuration tag already carries FixMatch's settings when they run.
    named_by: tuple[str, ...] = ("fixmatch",)

    def key_sections(self, settings) -> tuple:
        return super().key_sections(settings) + ("semisupervised",)

    def config_tag(self, settings) -> str:
        tag = super().config_tag(settings)
        if not set(self.named_by) & set(settings.methods):
            tag = METHOD.config_tag(settings) + tag
        return tag


METHOD = FixMatch(
    name="fixmatch", summary="consistency between weak and strong views of unlabeled clips (FixMatch)",
    section="semisupervised", folder_tag="-fixmatch", tag_prefix="fm",
    tag_letters={"fixmatch_threshold": "t", "fixmatch_ratio": "u", "fixmatch_epochs": "e", "fixmatch_weight": "w",
                 "fixmatch_init": "i", "fixmatch_align": "a", "fixmatch_steps": "s", "fixmatch_batch_size": "b",
                 "fixmatch_ema": "m", "fixmatch_mixup": "x", "fixmatch_labels_from": "l"})


# ---------------------------------------------------------------------------
# The Keras pieces, built on first use


def ema_decay(step: float, ema: float) -> float:
    """The decay of the weights' moving average after ``step`` optimiser steps: ``min(ema, (1 + step) / (10 + step))``.

    Early on the average follows the trained weights (decay 0.1 at the first step), so the random start
    does not linger in it; later it averages about the last tenth of the run, up to ``1 / (1 - ema)`` steps.
    """
    return min(float(ema), (1.0 + step) / (10.0 + step))


def pseudo_labels(probabilities, threshold: float):
    """FixMatch's targets from the weak views' class probabilities.

    Parameters
    ----------
    probabilities : tensor or array [shape=(n, n_classes)]
    threshold : float in [0, 1]
        Only predictions at least this confident count.

    Returns
    -------
    targets : int tensor [shape=(n,)]
        The arg-max class of each clip.
    mask : float tensor [shape=(n,)]
        1.0 where ``max(probabilities) >= threshold``, else 0.0.
    """
    import tensorflow as tf

    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    probabilities = tf.convert_to_tensor(probabilities)
    confidence = tf.reduce_max(probabilities, axis=-1)
    return tf.argmax(probabilities, axis=-1, output_type=tf.int32), tf.cast(confidence >= threshold, probabilities.dtype)


def align_distribution(probabilities, marginal, target):
    """ReMixMatch's distribution alignment: scale each clip's class probabilities by ``target / marginal``, renormalised.

    Parameters
    ----------
    probabilities : tensor or array [shape=(n, n_classes)]
        The weak views' predictions.
    marginal : tensor or array [shape=(n_classes,)]
        The running mean of the model's predictions on unlabeled clips.
    target : tensor or array [shape=(n_classes,)]
        The class distribution the predictions should have (the labelled clips').

    Returns
    -------
    tensor [shape=(n, n_classes)]
        Rows that sum to 1; classes the model over-predicts are pulled down, the others up,
        so the pseudo-labels do not pile onto the classes the model already favours.
    """
    import tensorflow as tf

    probabilities = tf.convert_to_tensor(probabilities)
    marginal = tf.cast(tf.convert_to_tensor(marginal), probabilities.dtype)
    target = tf.cast(tf.convert_to_tensor(target), probabilities.dtype)
    aligned = probabilities * target / tf.maximum(marginal, 1e-6)
    return aligned / tf.maximum(tf.reduce_sum(aligned, axis=-1, keepdims=True), 1e-12)


@functools.cache
def _trainer_class():
    import keras
    import numpy as np
    import tensorflow as tf

    from esc_lib import semi

    class ConsistencyTrainer(semi.Trainer):
        """FixMatch-style training of a classifier on ``SemiSupervisedStream`` batches.

        Parameters
        ----------
        classifier : keras.Model
            Softmax outputs; compiled on this wrapper with the classifier's loss
            (:func:`esc_lib.training.compile_classifier`).
        threshold : float in [0, 1]
            Confidence a weak view's prediction needs to become a target.
        weight : float >= 0
            Weight of the unlabeled loss.
        align : array [shape=(n_classes,)], optional
            The labelled clips' class distribution: the weak views' predictions are
            aligned to it (:func:`align_distribution`, ReMixMatch) through a running
            mean of the predictions on unlabeled batches (momentum ``ALIGN_MOMENTUM``),
            a variable of this trainer, so a resumed run continues it.  None: no alignment.
        ema : float in [0, 1)
            0: the classifier is trained, validated and saved.  Otherwise the classifier
            becomes the **moving average** of the weights (decay :func:`ema_decay`), which is
            validated, saved and scored, and a copy of it (``student``) is what the optimiser trains.
        labels_from : {"trained", "average"}
            Which of the two predicts the weak views' targets ("average" needs ``ema``).

        Logs ``loss`` (total), ``accuracy`` (labelled batch), ``unlabeled_loss``
        and ``mask_rate`` (share of unlabeled clips above the threshold).
        """

        TRAINING_ONLY = ("unlabeled_loss", "mask_rate")
        #: The running mean's momentum: about the last 10 unlabeled batches (a 4-label budget gives
        #: ESC-10 2 steps an epoch, so ReMixMatch's 128-batch window would barely move in a run).
        ALIGN_MOMENTUM = 0.9

        def __init__(self, classifier: keras.Model, threshold: float = 0.95, weight: float = 1.0, align=None,
                     ema: float = 0.0, labels_from: str = "trained", **kwargs):
            super().__init__(classifier, **kwargs)
            if not 0.0 <= float(threshold) <= 1.0:
                raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
            if float(weight) < 0:
                raise ValueError(f"weight must be >= 0, got {weight!r}")
            if not 0.0 <= float(ema) < 1.0:
                raise ValueError(f"ema must be in [0, 1), got {ema!r}")
            if labels_from not in ("trained", "average"):
                raise ValueError(f"labels_from must be 'trained' or 'average', got {labels_from!r}")
            if labels_from == "average" and not ema:
                raise ValueError("labels_from 'average' needs an average of the weights: ema > 0")
            self.threshold, self.weight, self.ema, self.labels_from = float(threshold), float(weight), float(ema), labels_from
            if self.ema:
                # The network (validated, saved, scored) becomes the average; a copy is what the optimiser trains.
                self.student = keras.models.clone_model(classifier)
                self.student.set_weights(classifier.get_weights())
                classifier.trainable = False
            else:
                self.student = classifier
            self.target = None
            if align is not None:
                target = np.asarray(align, dtype="float32")
                n_classes = int(classifier.output_shape[-1])
                if target.shape != (n_classes,) or (target < 0).any() or not np.isclose(target.sum(), 1.0, atol=1e-4):
                    raise ValueError(f"align must be a class distribution of {n_classes} non-negative shares summing "
                                     f"to 1, got {target.tolist()}")
                self.target = tf.constant(target)
                self.marginal = self.add_weight(
                    name="unlabeled_marginal", shape=(n_classes,), trainable=False, aggregation="mean",
                    initializer=keras.initializers.Constant(target))
            self.unlabeled_loss = keras.metrics.Mean(name="unlabeled_loss")
            self.mask_rate = keras.metrics.Mean(name="mask_rate")

        def train_step(self, data):
            (x_labelled, x_weak, x_strong), y = data
            n_labelled, n_unlabeled = tf.shape(x_labelled)[0], tf.shape(x_weak)[0]
            if self.labels_from == "average":
                # The average of the weights labels the weak views (as mean teacher's teacher): it moves
                # slowly, so one step's confident mistakes do not at once become the next step's targets.
                p_average = tf.stop_gradient(tf.cast(self.network(x_weak, training=False), "float32"))
            with tf.GradientTape() as tape:
                # One forward pass over all three parts, so batch norm sees them together.
                probabilities = self.student(tf.concat([x_labelled, x_weak, x_strong], axis=0), training=True)
                p_labelled = probabilities[:n_labelled]
                p_weak = tf.stop_gradient(tf.cast(probabilities[n_labelled:n_labelled + n_unlabeled], "float32"))
                if self.labels_from == "average":
                    p_weak = p_average
                p_weak = self.aligned(p_weak)
                p_strong = tf.cast(probabilities[n_labelled + n_unlabeled:], "float32")
                supervised = self.compute_loss(x=x_labelled, y=y, y_pred=p_labelled)  # already divided among replicas
                targets, mask, logged = self.make_targets(p_weak)
                unlabeled = tf.reduce_mean(mask * keras.losses.sparse_categorical_crossentropy(targets, p_strong))
                loss = supervised + tf.cast(self.weight * semi.for_replicas(unlabeled), supervised.dtype)
                extra, extra_logged = self.extra_loss(mask, p_strong)
                if extra is not None:
                    loss = loss + tf.cast(semi.for_replicas(extra), supervised.dtype)
                scaled = self.optimizer.scale_loss(loss)
            gradients = tape.gradient(scaled, self.student.trainable_variables)
            self.optimizer.apply_gradients(zip(gradients, self.student.trainable_variables))
            self.update_average()
            logs = {"unlabeled_loss": unlabeled, "mask_rate": tf.reduce_mean(mask), **logged, **extra_logged}
            return self.step_metrics(loss, logs, y, p_labelled)

        def aligned(self, p_unlabeled):
            """With ``align``: move the running mean of the unlabeled predictions towards this batch's and return
            ``p_unlabeled`` aligned to the labelled clips' class shares (:func:`align_distribution`); else unchanged."""
            if self.target is None:
                return p_unlabeled
            momentum = self.ALIGN_MOMENTUM
            self.marginal.assign(momentum * self.marginal + (1.0 - momentum) * tf.reduce_mean(p_unlabeled, axis=0))
            return align_distribution(p_unlabeled, self.marginal, self.target)

        def update_average(self):
            """After an optimiser step: with ``ema``, move the average (the network) towards the trained weights."""
            if self.ema:
                # An exponential moving average of every weight (batch norm's statistics too), its decay warmed
                # up as TensorFlow's ExponentialMovingAverage with num_updates does (:func:`ema_decay`): the
                # average spans about the last tenth of the steps so far until that reaches 1 / (1 - ema).
                step = tf.cast(self.optimizer.iterations, "float32")
                decay = tf.minimum((1.0 + step) / (10.0 + step), self.ema)
                for average, weight in zip(self.network.weights, self.student.weights):
                    if "float" in str(average.dtype):
                        kept = tf.cast(decay, average.dtype)
                        average.assign(kept * average + (1 - kept) * weight)

        def make_targets(self, p_weak):
            """``(targets, mask, logged)`` of the weak views' probabilities: FixMatch's arg-max where the prediction
            is at least ``threshold`` confident (:func:`pseudo_labels`), nothing more to log.  A method with other
            thresholds (``freematch``) overrides it."""
            targets, mask = pseudo_labels(p_weak, self.threshold)
            return targets, mask, {}

        def extra_loss(self, mask, p_strong):
            """``(loss or None, logged)``: a method's further unlabeled loss, already weighted (FixMatch has none)."""
            return None, {}

    return ConsistencyTrainer


def __getattr__(name: str):
    # PEP 562: the Keras class is made on first access, so the registry imports without TensorFlow.
    if name == "ConsistencyTrainer":
        return _trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
