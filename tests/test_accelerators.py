"""GPU-facing settings that must also hold on a CPU: mixed precision, MirroredStrategy, the device line.

On a machine without a GPU these run on the CPU (MirroredStrategy over two
logical CPU devices, in a child process: logical devices are fixed before
TensorFlow starts).  The tests marked ``gpu`` need one and say so when skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from esc_lib import training
from esc_lib.methods import contrastive, fixmatch
from esc_lib.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
GPUS = tf.config.list_physical_devices("GPU")
needs_gpu = pytest.mark.skipif(not GPUS, reason="no GPU visible to TensorFlow on this machine")


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8, 12, 1)).astype("float32")
    return X, (X.mean(axis=(1, 2, 3)) > 0).astype("int64")


def _settings(**changes):
    values = dict(encoder="(4)3c-2p", head="8fc", batch_size=8, max_epochs=3, fixmatch_epochs=2, fixmatch_steps=0, fixmatch_ratio=2,
                  cae_batch_size=8, cae_max_epochs=2, contrastive_epochs=2, contrastive_batch_size=8,
                  methods=["supervised", "fixmatch"])
    values.update(changes)
    return Settings(**values)


def test_the_device_line_names_what_trains():
    line = training.device_summary()
    assert f"TensorFlow {tf.__version__}" in line and "precision float32" in line
    assert ("GPU" in line) if GPUS else ("the CPU" in line and "no GPU" in line)


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_every_stage_with_float32_weights_and_outputs(precision, tmp_path):
    X, y = _data()
    settings = _settings(precision=precision, batch_norm=True)
    lines = []
    for method in ("supervised", "fixmatch"):
        run = training.train_classifier(
            (X[:16], y[:16]), (X[16:], y[16:]), 2, tmp_path / method, settings, seeds=[1], score=X[16:], stage=method,
            consistency=fixmatch.Consistency(settings, X[16:]) if method == "fixmatch" else None, say=lines.append,
            max_epochs=settings.fixmatch_epochs if method == "fixmatch" else None)
        model = run.models[0]
        assert model.dtype_policy.name == precision and model.output.dtype == "float32"
        assert {v.dtype for v in model.trainable_variables} == {"float32"}
        assert run.scored.dtype == np.float32 and np.allclose(run.scored.sum(axis=1), 1, atol=1e-3)
        assert np.isfinite(run.histories[0]["loss"]).all()
    for train in (training.train_cae, contrastive.train_contrastive):
        model, history = train(X, tmp_path / train.__name__, settings)
        assert model.output.dtype == "float32" and np.isfinite(history["loss"]).all()
    # The policy is the run's only: nothing built afterwards inherits it.
    assert keras.config.dtype_policy().name == "float32"
    assert settings.key("supervised") != settings.replace(precision="float32").key("supervised")


def test_mixed_float16_scales_the_loss():
    X, y = _data(16)
    model = None
    with training.numerics(_settings(precision="mixed_float16"), say=lambda line: None):
        from esc_lib import models

        model = models.build_classifier(X.shape[1:], 2, encoder="(4)3c-2p", head="8fc")
        training.compile_classifier(model)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_default_numerics_leave_the_keys_of_earlier_runs_alone():
    settings = Settings.from_profile("budgets")
    # The supervised classifiers of runs made before these settings existed (runs/budgets2, results/budgets2).
    assert settings.classifier_id("supervised").endswith("-4e5aeb18")
    assert "precision" not in settings.to_json("supervised") and "distribute" not in settings.to_json("cae")
    assert "mixed_float16" in settings.replace(precision="mixed_float16").to_json("cae")


def test_bad_numerics_settings_are_one_line_errors():
    with pytest.raises(SettingsError, match="precision"):
        Settings(precision="float16")
    with pytest.raises(SettingsError, match="distribute"):
        Settings(distribute="multiworker")


_MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from esc_lib import training
    from esc_lib.methods import contrastive, fixmatch
    from esc_lib.settings import Settings
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 8, 12, 1)).astype("float32")
    y = (X.mean(axis=(1, 2, 3)) > 0).astype("int64")
    out, lines = {}, []
    for distribute in ("none", "mirrored"):
        s = Settings(encoder="(4)3c-2p", head="8fc", batch_size=8, max_epochs=2, fixmatch_epochs=2, fixmatch_steps=0, fixmatch_ratio=2,
                     fixmatch_threshold=0.0, fixmatch_weak="shift:max_shift=1", fixmatch_strong="shift:max_shift=3",
                     cae_batch_size=8, cae_max_epochs=2, decoder="unpool", cae_validation_fraction=0.25, contrastive_epochs=1,
                     contrastive_batch_size=8, distribute=distribute, methods=["supervised", "fixmatch"])
        for method in ("supervised", "fixmatch"):
            run = training.train_classifier((X[:16], y[:16]), (X[16:], y[16:]), 2, f"{sys.argv[1]}/{distribute}-{method}",
                                            s, seeds=[1], stage=method, say=lines.append,
                                            consistency=fixmatch.Consistency(s, X[16:]) if method == "fixmatch" else None,
                                            max_epochs=s.fixmatch_epochs if method == "fixmatch" else None)
            out[f"{distribute}-{method}"] = [w.tolist() for w in run.models[0].get_weights()]
        cae, history = training.train_cae(X, f"{sys.argv[1]}/{distribute}-cae", s)
        out[f"{distribute}-cae-loss"] = history[["loss", "val_loss"]].to_numpy().tolist()
        network, history = contrastive.train_contrastive(X, f"{sys.argv[1]}/{distribute}-contrastive", s)
        out[f"{distribute}-contrastive-loss"] = history["loss"].tolist()
    out["lines"] = lines
    print(json.dumps(out))
""")


def test_mirrored_strategy_over_two_devices_trains_as_one_device(tmp_path):
    """Two logical CPUs: the batch is split between them and the gradients summed; the weights equal one device's.

    (Keras' own build-before-fit under a strategy would have eaten a batch and shifted every epoch's order,
    and FixMatch's unlabeled loss must be divided among the replicas as Keras divides its own; both are checked.)
    Every batch here splits evenly (a last batch of odd size is weighted per replica, as Keras does).
    """
    done = subprocess.run([sys.executable, "-c", _MIRRORED, str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for stage in ("supervised", "fixmatch"):
        for single, mirrored in zip(out[f"none-{stage}"], out[f"mirrored-{stage}"]):
            np.testing.assert_allclose(np.array(mirrored), np.array(single), atol=1e-5, err_msg=stage)
    # The CAE's switch unpooling leaves weights whose gradient is ~0, where Adam's first steps (about
    # lr x the gradient's sign) magnify the last bit that summing two halves changes: its weights drift
    # apart by up to ~1e-3 and its losses agree to ~0.2% (the exact checks above are the classifier's).
    np.testing.assert_allclose(out["mirrored-cae-loss"], out["none-cae-loss"], rtol=1e-2)
    # Contrastive negatives come from each replica's half of the batch: it trains, to another loss.
    assert np.isfinite(out["mirrored-contrastive-loss"]).all()
    assert any("MirroredStrategy over 2 replica(s)" in line for line in out["lines"])


@needs_gpu
def test_a_classifier_trains_on_the_gpu_in_mixed_float16(tmp_path):
    X, y = _data()
    lines = []
    training._DEVICES_SAID.clear()
    run = training.train_classifier((X[:16], y[:16]), (X[16:], y[16:]), 2, tmp_path / "gpu", _settings(precision="mixed_float16"),
                                    seeds=[1], score=X[16:], say=lines.append)
    assert any("GPU" in line for line in lines)
    assert np.allclose(run.scored.sum(axis=1), 1, atol=1e-3)


@needs_gpu
def test_mirrored_strategy_uses_every_gpu(tmp_path):
    X, y = _data()
    lines = []
    training._DEVICES_SAID.clear()
    training.train_classifier((X[:16], y[:16]), (X[16:], y[16:]), 2, tmp_path / "mirrored", _settings(distribute="mirrored"),
                              seeds=[1], say=lines.append)
    assert any(f"MirroredStrategy over {len(GPUS)} replica(s)" in line for line in lines)
