"""All four notebooks, run headless through the runner with the smoke profile.

This is what ``./run_all.sh --profile smoke --sweep`` does; the test then
reads back what the notebooks wrote and checks it.  It runs on the real
ESC-10 and pool where present (required in CI), else on the synthetic ESC-10
of conftest (same layout, classes and folds), so the pipeline is checked
without the data too.
"""

import pandas as pd
import pytest

from conftest import preserved_environ
from esc_lib import reproduce
from esc_lib.settings import load_profile

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def smoke_run(esc10_or_synthetic, tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    settings = {
        **esc10_or_synthetic.environment(),
        "ESC_RUNS_DIR": out / "runs",
        "ESC_CACHE_DIR": out / "cache",
        "ESC_FIGURES_DIR": out / "figures",
        "ESC_RESULTS_DIR": out / "results",
    }
    with pytest.MonkeyPatch.context() as patch, preserved_environ():
        for name, value in settings.items():
            patch.setenv(name, str(value))
        status = reproduce.main(["--profile", "smoke", "--sweep", "--run-name", "test"])
    assert status == 0
    return out


def test_every_notebook_was_executed(smoke_run):
    executed = sorted(p.name for p in (smoke_run / "runs" / "test" / "notebooks").glob("*.ipynb"))
    assert executed == sorted(
        [
            "01_preprocessing.ipynb",
            "02_cae_pretraining__bs16-f8-unpool-bn0-pool12.ipynb",
            "02_cae_pretraining__bs16-f8-upsample-bn0-pool12.ipynb",
            "02_cae_pretraining__bs16-f8-unpool-bn0-pool6.ipynb",
            "03_finetuning__bs16-f8-unpool-bn0-pool12.ipynb",
            "03_finetuning__bs16-f8-upsample-bn0-pool12.ipynb",
            "03_finetuning__bs16-f8-unpool-bn0-pool6.ipynb",
            "04_results.ipynb",
        ]
    )


def test_metrics_cover_every_fold_and_method(smoke_run):
    parameters = load_profile("smoke").parameters
    for config in ("bs16-f8-unpool-bn0-pool12", "bs16-f8-upsample-bn0-pool12", "bs16-f8-unpool-bn0-pool6"):
        metrics = pd.read_csv(smoke_run / "runs" / "test" / "results" / config / "metrics.csv")
        # Label-budget runs belong to the profile's own point only.
        budgets = {0, 1} if config == "bs16-f8-unpool-bn0-pool12" else {0}  # 0 = every labelled clip
        assert set(metrics["labels_per_class"]) == budgets
        budget = metrics[metrics["labels_per_class"] == 1]
        assert (budget["n_train"] == 10).all()  # one clip per class
        metrics = metrics[metrics["labels_per_class"] == 0]
        assert set(metrics["method"]) == {"supervised", "pretrained"}
        for method, rows in metrics.groupby("method"):
            assert sorted(rows["fold"]) == parameters["folds"], method
        assert metrics["accuracy"].between(0, 1).all()
        assert (metrics["n_test"] == 10).all()  # 1 clip per class and fold, 10 classes
        predictions = pd.read_csv(smoke_run / "runs" / "test" / "results" / config / "predictions.csv")
        predictions = predictions[predictions["labels_per_class"] == 0]
        assert len(predictions) == metrics["n_test"].sum()
        assert predictions["y_pred"].between(0, 9).all()
        # The accuracy column is what the predictions say.
        recomputed = predictions.assign(hit=predictions.y_true == predictions.y_pred).groupby(["method", "fold"])["hit"].mean()
        merged = metrics.set_index(["method", "fold"])["accuracy"]
        assert (recomputed.sort_index() - merged.sort_index()).abs().max() < 1e-9


def test_tables_and_figures_are_published(smoke_run):
    results = smoke_run / "results" / "smoke"
    for stem in ("table1", "table2", "summary", "paired_test", "per_class_accuracy", "label_budget", "pool_size"):
        assert (results / f"{stem}.csv").stat().st_size > 0
        assert (results / f"{stem}.md").stat().st_size > 0
    table1 = pd.read_csv(results / "table1.csv")
    assert len(table1) == 2  # the two decoders of the smoke sweep at the profile's pool
    pool_curve = pd.read_csv(results / "pool_size.csv")
    assert set(pool_curve["pool_size"]) >= {6, 12}
    figures = {p.name for p in (smoke_run / "figures" / "smoke").glob("*.png")}
    for name in ("01_waveforms_logmels.png", "02_reconstructions_f8.png", "04_confusion_matrix.png", "04_embedding.png", "04_learning_curves.png", "04_label_budget.png", "04_pool_size.png"):
        assert name in figures
    bundles = list((smoke_run / "runs" / "test" / "bundles").iterdir())
    assert len(bundles) == 1 and (bundles[0] / "bundle.json").is_file()
    # The non-default sweep point keeps its figures in the run folder.
    assert not any("upsample" in name for name in figures if name.startswith("03_"))


def test_executed_notebooks_show_no_reprs_escape_codes_or_tensorflow_noise(smoke_run):
    """What a reader sees: no PosixPath(...)/np.int64(...) reprs, no ANSI escapes, no C++ log lines or widget warnings."""
    import json

    unwanted = ("PosixPath(", "np.int64(", "\\u001b[", "IProgress not found", "E0000 ", "I0000 ", "cpu_feature_guard",
                "triggered tf.function retracing", "{'data_root'")
    for path in sorted((smoke_run / "runs" / "test" / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        outputs = json.dumps([cell.get("outputs", []) for cell in cells])  # escapes stay \\u001b
        found = [text for text in unwanted if text in outputs]
        assert not found, f"{path.name} shows {found}"
        # Progress bars (a cold cache: the features are extracted here) on standard output, which JupyterLab
        # redraws in place, not in standard error's error boxes.
        errors = ["".join(o["text"]) for c in cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
        assert not [text for text in errors if "file/s]" in text or not text.strip()], f"{path.name}: {errors}"
    first = json.loads((smoke_run / "runs" / "test" / "notebooks" / "01_preprocessing.ipynb").read_text())["cells"]
    printed = "".join("".join(o.get("text", "")) for c in first for o in c.get("outputs", []))
    assert "data locations:\n  data_root " in printed  # one line per location, not a dict's repr
    log = (smoke_run / "runs" / "test" / "kernels.log").read_text()  # where the C++ lines went
    assert "without encryption" not in log and "KeyboardInterrupt" not in log


def test_the_runners_kernels_talk_encrypted_and_are_not_interrupted_to_shut_down(tmp_path):
    """A successful run's kernels.log says neither "Kernel is running over TCP without encryption" nor
    "ERROR | KeyboardInterrupt caught in kernel" (jupyter_client interrupts a kernel before shutting it down)."""
    import asyncio
    import signal

    log = tmp_path / "kernels.log"
    manager = reproduce._kernel_manager(log)(kernel_name=reproduce.KERNEL_NAME)
    signals = []

    async def run():
        await manager.start_kernel(extra_arguments=["--IPKernelApp.capture_fd_output=False"])
        send = manager._async_signal_kernel

        async def recorded(signum):
            signals.append(signum)
            await send(signum)

        manager._async_signal_kernel = recorded
        client = manager.client()
        client.start_channels()
        await client.wait_for_ready(timeout=120)
        reply = await client.execute_interactive("print(6 * 7)", timeout=120)
        client.stop_channels()
        await manager.shutdown_kernel()
        return reply

    assert asyncio.run(run())["content"]["status"] == "ok"  # the code ran over the encrypted channels
    assert manager.transport_encryption == "auto"  # CurveZMQ keys, the kernel spec supporting them (ipykernel's does)
    assert signal.SIGINT not in signals
    text = log.read_text()
    assert "without encryption" not in text and "KeyboardInterrupt" not in text
