"""``meanteacher``: the student learns to agree with an exponential moving average of itself (Tarvainen & Valpola 2017).

Each step the student (the classifier being trained) sees a labelled batch and
``meanteacher_ratio`` times as many unlabeled clips in one augmented view
(``meanteacher_student_view``); the teacher -- a copy of the network whose
weights are an exponential moving average of the student's
(``meanteacher_ema``) -- sees the same clips in another view
(``meanteacher_teacher_view``) and its class probabilities are the student's
targets.  Loss = supervised cross-entropy + w(t) x the squared difference of
the two probability vectors (averaged over classes and clips), where w(t)
rises from 0 to ``meanteacher_weight`` over the first ``meanteacher_rampup``
share of the steps along exp(-5 (1 - t)^2), the paper's sigmoid ramp-up.
The teacher's decay warms up as FixMatch's average does
(:func:`esc_lib.methods.fixmatch.ema_decay`: it spans about the last tenth of
the steps until that reaches 1 / (1 - ema)).  The paper's warm-up,
min(1 - 1 / (step + 1), ema), makes the teacher the plain mean of every
weight since the first step until 1 / (1 - ema) steps: harmless over the
paper's tens of thousands of steps, but over this project's few hundred the
teacher stayed an average of near-random networks
(docs/experiments/2026-12-07-meanteacher.md).  The teacher gives its targets with
batch norm on the batch's statistics, as the reference implementations run it
(its moving statistics, averaged from the student's like every other weight,
are left as they were).  The teacher is the model validated, saved and scored:
averaged weights are usually the better classifier.

Unlike FixMatch nothing is thresholded: every unlabeled clip pulls, by how
much the two disagree, so the method does not wait for confident predictions.

The Keras piece (:class:`MeanTeacherTrainer`) is built on first use, so
importing the method registry imports no TensorFlow.
"""

from __future__ import annotations

import functools
import math

from esc_lib.methods.base import Method, SplitData, Trained
from esc_lib.methods.fixmatch import ema_decay

__all__ = ["MeanTeacher", "METHOD", "Consistency", "MeanTeacherTrainer", "rampup_weight", "ema_decay"]


def rampup_weight(step: float, rampup_steps: float, weight: float) -> float:
    """The consistency weight at ``step``: ``weight * exp(-5 (1 - t)^2)``, t = step / rampup_steps clipped to [0, 1].

    ``rampup_steps`` <= 0 means no ramp-up (the full weight from the first step).
    """
    if rampup_steps <= 0:
        return float(weight)
    t = min(max(step / rampup_steps, 0.0), 1.0)
    return float(weight) * math.exp(-5.0 * (1.0 - t) ** 2)


class Consistency:
    """Mean teacher's part of :func:`esc_lib.training.train_classifier`: each member's batches and trainer.

    Parameters
    ----------
    settings : esc_lib.settings.Settings
    unlabeled : np.ndarray [shape=(m, n_mels, n_frames, channels)] or esc_lib.store.LazyRows
        Standardised unlabeled clips.
    epochs : int > 0
        Epochs of the run (the ramp-up is a share of its steps).
    """

    def __init__(self, settings, unlabeled, epochs: int):
        self.settings, self.unlabeled, self.epochs = settings, unlabeled, int(epochs)
        self.steps_per_epoch = None

    def stream(self, X, Y, seed: int, augment):
        """Labelled batches and ``meanteacher_ratio`` times as many unlabeled clips, in the teacher's and the student's view."""
        from esc_lib import augment as augmentations
        from esc_lib import semi

        s = self.settings
        stream = semi.SemiSupervisedStream(
            X, Y, self.unlabeled, s.batch_size, s.meanteacher_ratio, seed, augment=augment,
            weak=augmentations.from_spec(s.augmentation("meanteacher_teacher_view")),
            strong=augmentations.from_spec(s.augmentation("meanteacher_student_view")),
        )
        self.steps_per_epoch = stream.steps_per_epoch
        return stream

    def trainer(self, model, Y):
        s = self.settings
        rampup_steps = s.meanteacher_rampup * self.epochs * (self.steps_per_epoch or 1)
        return _trainer_class()(model, weight=s.meanteacher_weight, ema=s.meanteacher_ema, rampup_steps=rampup_steps)


class MeanTeacher(Method):
    def check(self, settings) -> None:
        if settings.meanteacher_steps and settings.meanteacher_epochs:
            raise ValueError(
                f"meanteacher_steps {settings.meanteacher_steps} and meanteacher_epochs {settings.meanteacher_epochs} both "
                "set the length of a mean-teacher run: set meanteacher_steps to 0 to count passes, or meanteacher_epochs to 0")

    @staticmethod
    def epochs(settings, n_labelled: int) -> int:
        """Passes over ``n_labelled`` labelled clips of a run: ``meanteacher_steps`` in whole passes of
        ``ceil(n_labelled / batch_size)`` steps (at least one), else ``meanteacher_epochs`` (``max_epochs`` when 0)."""
        if settings.meanteacher_steps:
            per_pass = math.ceil(n_labelled / settings.batch_size)
            return max(1, round(settings.meanteacher_steps / per_pass))
        return settings.meanteacher_epochs or settings.max_epochs

    def train(self, split: SplitData) -> Trained:
        """Mean-teacher training of the split's classifier on its unlabeled clips (the pool and/or the non-test
        folds, labels dropped) for :meth:`epochs` passes over the labelled clips."""
        from esc_lib import training

        s = split.settings
        epochs = self.epochs(s, len(split.train[0]))
        run = training.train_classifier(
            split.train, split.validation, split.n_classes, split.run_dir(self.name), s,
            consistency=Consistency(s, split.unlabeled(), epochs), stage=self.name, max_epochs=epochs,
            **split.common())
        return Trained.of(run)


METHOD = MeanTeacher(
    name="meanteacher", summary="agreement with an exponential moving average of its own weights (mean teacher)",
    section="meanteacher", folder_tag="-meanteacher", tag_prefix="mt",
    tag_letters={"meanteacher_weight": "w", "meanteacher_ema": "m", "meanteacher_rampup": "r",
                 "meanteacher_ratio": "u", "meanteacher_epochs": "e", "meanteacher_steps": "s"},
    keyed_unless_default=("meanteacher_steps",))


@functools.cache
def _trainer_class():
    import keras
    import tensorflow as tf

    from esc_lib import semi

    class MeanTeacherTrainer(semi.Trainer):
        """Mean-teacher training on ``SemiSupervisedStream`` batches ``((labelled, teacher_view, student_view), y)``.

        Parameters
        ----------
        classifier : keras.Model
            The network; it becomes the **teacher** (validated, saved and scored), and a
            copy of it with the same weights is the student that the optimiser trains.
        weight : float >= 0
            The consistency weight after the ramp-up.
        ema : float in [0, 1)
            The teacher's decay once the warm-up of :func:`ema_decay` is over.
        rampup_steps : float >= 0
            Steps over which the weight rises (:func:`rampup_weight`).

        Logs ``loss`` (total), ``accuracy`` (the student's, labelled batch), ``consistency_loss``
        and ``consistency_weight``.
        """

        TRAINING_ONLY = ("consistency_loss", "consistency_weight")

        def __init__(self, classifier: keras.Model, weight: float = 50.0, ema: float = 0.99, rampup_steps: float = 0.0,
                     **kwargs):
            super().__init__(classifier, **kwargs)
            if float(weight) < 0:
                raise ValueError(f"weight must be >= 0, got {weight!r}")
            if not 0.0 <= float(ema) < 1.0:
                raise ValueError(f"ema must be in [0, 1), got {ema!r}")
            self.weight, self.ema, self.rampup_steps = float(weight), float(ema), float(rampup_steps)
            self.student = keras.models.clone_model(classifier)
            self.student.set_weights(classifier.get_weights())
            # The teacher moves by averaging, never by gradients (only the student's variables get them). It stays
            # trainable: a Keras batch norm layer that is not runs in inference mode even when called in training,
            # and the teacher's targets need the batch's statistics (below).
            self.teacher_statistics = [v for layer in classifier.layers if isinstance(layer, keras.layers.BatchNormalization)
                                       for v in (layer.moving_mean, layer.moving_variance)]
            self.consistency_loss = keras.metrics.Mean(name="consistency_loss")
            self.consistency_weight = keras.metrics.Mean(name="consistency_weight")

        def train_step(self, data):
            (x_labelled, x_teacher, x_student), y = data
            n_labelled = tf.shape(x_labelled)[0]
            step = tf.cast(self.optimizer.iterations, "float32")
            if self.rampup_steps > 0:
                t = tf.clip_by_value(step / self.rampup_steps, 0.0, 1.0)
                weight = self.weight * tf.exp(-5.0 * tf.square(1.0 - t))
            else:
                weight = tf.constant(self.weight)
            # The teacher's targets with batch norm on the batch's statistics, as the reference implementations run
            # it (Tarvainen & Valpola's teacher in train mode; USB's freeze_bn): its moving statistics lag the
            # weights early on, and targets from them made every split collapse to near-uniform predictions
            # (docs/experiments/2026-12-07-meanteacher.md). Its moving statistics are put back afterwards:
            # they are the average of the student's, as every other teacher weight.
            kept_statistics = [tf.identity(v) for v in self.teacher_statistics]
            targets = tf.stop_gradient(tf.cast(self.network(x_teacher, training=True), "float32"))
            for variable, value in zip(self.teacher_statistics, kept_statistics):
                variable.assign(value)
            with tf.GradientTape() as tape:
                # One forward pass over the labelled batch and the student's views, so batch norm sees both.
                probabilities = self.student(tf.concat([x_labelled, x_student], axis=0), training=True)
                p_labelled = probabilities[:n_labelled]
                p_student = tf.cast(probabilities[n_labelled:], "float32")
                supervised = self.compute_loss(x=x_labelled, y=y, y_pred=p_labelled)
                consistency = tf.reduce_mean(tf.square(p_student - targets))
                loss = supervised + tf.cast(weight, supervised.dtype) * tf.cast(semi.for_replicas(consistency), supervised.dtype)
                scaled = self.optimizer.scale_loss(loss)
            gradients = tape.gradient(scaled, self.student.trainable_variables)
            self.optimizer.apply_gradients(zip(gradients, self.student.trainable_variables))
            # The teacher: an exponential moving average of every student weight (batch norm's statistics too).
            decay = tf.minimum((1.0 + step) / (10.0 + step), self.ema)  # ema_decay
            for teacher_weight, student_weight in zip(self.network.weights, self.student.weights):
                if "float" in str(teacher_weight.dtype):
                    kept = tf.cast(decay, teacher_weight.dtype)
                    teacher_weight.assign(kept * teacher_weight + (1 - kept) * student_weight)
            return self.step_metrics(loss, {"consistency_loss": consistency, "consistency_weight": weight}, y, p_labelled)

    return MeanTeacherTrainer


def __getattr__(name: str):
    # PEP 562: the Keras class is made on first access, so the registry imports without TensorFlow.
    if name == "MeanTeacherTrainer":
        return _trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
