"""The one schema (esc_lib.settings): validation, profiles, run identity, notebooks' parameters cells."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from esc_lib import config
from esc_lib.settings import (METHODS, NOTEBOOK_SECTIONS, PRETRAINING_SECTIONS, SECTIONS, Settings, SettingsError, describe,
                              parameters_cell)


def test_importing_the_schema_does_not_import_tensorflow():
    code = "import sys, esc_lib.settings, esc_lib.protocol; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_every_parameter_has_a_section_type_default_and_description():
    rows = describe()
    assert {row["section"] for row in rows} == set(SECTIONS)
    for row in rows:
        assert row["description"] and row["type"] and row["default"], row


@pytest.mark.parametrize(
    "values, message",
    [
        ({"filterz": 16}, "unknown parameter 'filterz'; did you mean 'filters'"),
        ({"clips_per_clas": 1}, "did you mean 'clips_per_class'"),
        ({"batch_size": "abc"}, "batch_size"),
        ({"batch_norm": "false"}, "batch_norm"),
        ({"folds": []}, "folds"),
        ({"dataset": "esc20"}, "dataset='esc20': expected 'esc10', 'esc50' or 'own'"),
        ({"dropout": 1.5}, "dropout"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"ensemble": 0}, "ensemble"),
        ({"methods": ["pretraind"]}, "methods"),
        ({"label_budgets": [-1]}, "label_budgets"),
        ({"augment": "shfit"}, "augment.*unknown augmentation 'shfit'"),
        ({"score": "validation", "refit_on_validation": True}, "score='validation'"),
        ({"unlabeled": "none", "pretrain_on_train_folds": False}, r"\['pretrained'\] need unlabeled audio"),
    ],
)
def test_bad_settings_name_the_parameter_in_one_line(values, message):
    with pytest.raises(SettingsError, match=message) as raised:
        Settings.from_mapping(values)
    assert "\n" not in str(raised.value)


def test_safe_coercions_only():
    settings = Settings(folds=2, learning_rate=1, dropout=0)
    assert settings.folds == [2] and settings.learning_rate == 1.0 and isinstance(settings.dropout, float)
    assert Settings(methods=("supervised",)).methods == ["supervised"]


def test_settings_are_frozen_and_replace_validates():
    settings = Settings()
    with pytest.raises(Exception):
        settings.filters = 3
    assert settings.replace(filters=16).filters == 16
    with pytest.raises(SettingsError, match="filters"):
        settings.replace(filters=0)


def test_from_namespace_takes_a_notebooks_globals_and_rejects_unknown_names():
    import math

    namespace = {"filters": 16, "__name__": "__main__", "In": [], "math": math, "Settings": Settings, "_": 1}
    assert Settings.from_namespace(namespace).filters == 16
    with pytest.raises(SettingsError, match="clips_per_clas"):
        Settings.from_namespace({**namespace, "clips_per_clas": 1})


def test_profiles_load_with_overrides():
    settings = Settings.from_profile("smoke", {"filters": 4})
    assert settings.filters == 4 and settings.clips_per_class == 1
    with pytest.raises(SettingsError, match="did you mean 'filters'"):
        Settings.from_profile("smoke", {"filterz": 4})


# ---------------------------------------------------------------- run identity


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_each_stage_key_changes_exactly_with_the_sections_it_depends_on(name):
    """No hand-kept lists: a parameter changes a stage's key iff its section is one the stage depends on."""
    # A search (score: validation) on the labelled folds' audio holds its validation fold out, which
    # changes what is trained on (tested on its own): start from a pool-only base.  The settings of
    # one's own recordings matter with dataset "own" only.
    base = Settings(pretrain_on_train_folds=False) if name == "score" else Settings()
    if name in ("labelled_layout", "n_folds"):
        base = Settings(dataset="own")
    if name == "selftrain_cap_growth":  # grows a cap: needs one
        base = Settings(selftrain_per_class=12)
    default = Settings.model_fields[name].default
    changed = {
        bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v / 2 if v else 0.25,
        str: lambda v: {"esc10": "esc50", "folder": "escus", "unpool": "upsample", "constant": "cosine", "test": "validation",
                        "tsne": "pca", "": "(8)3c-2p", "128fc": "64fc", "auto": "table", "float32": "mixed_bfloat16",
                        "none": "mirrored", "scratch": "pretrained", "classifier": "propagation", "trained": "average",
                        "strict": "sslh"}.get(v, v + "x"),
        list: lambda v: v[:1] if len(v) > 1 else [4],
    }[type(default)](default)
    from esc_lib.settings import DEFAULT_AUGMENTATIONS

    if name == "augment" or name in DEFAULT_AUGMENTATIONS:
        changed = "mixup"
    if name == "selftrain_student":
        changed = "teacher"
    if name == "fixmatch_init":
        changed = "supervised"
    other = base.replace(**{name: changed})
    section = Settings.section_of(name)
    for stage in [*PRETRAINING_SECTIONS, *METHODS]:
        matters = section in base.stage_sections(stage)
        assert (base.key(stage) != other.key(stage)) == matters, (name, stage)


def test_filters_stop_mattering_once_an_encoder_is_given():
    a = Settings(encoder="(8)3c-2p", filters=16)
    b = Settings(encoder="(8)3c-2p", filters=64)
    assert a.key("cae") == b.key("cae") and a.config_id == b.config_id
    assert "f16" not in a.config_id and a.architecture == "(8)3c-2p"
    assert Settings().architecture.startswith("(f)5c-2p-(f)3c-2p-(f)3c-2p")


def test_names_are_readable_and_end_in_the_key():
    settings = Settings()
    assert settings.config_id == "bs32-f64-unpool-bn0"
    assert settings.cae_id() == f"f64-unpool-bn0-cbs32-{settings.key('cae')}"
    assert settings.classifier_id("supervised") == f"bs32-f64-bn0-{settings.key('supervised')}"
    assert settings.classifier_id("pretrained").endswith(settings.key("pretrained"))
    assert settings.cae_id("upsample") == settings.replace(decoder="upsample").cae_id()
    assert Settings(refit_on_validation=True, ensemble=3).config_id == "bs32-f64-unpool-bn0-refit-ens3"


def test_settings_json_holds_what_the_stage_depends_on():
    payload = json.loads(Settings().to_json("supervised"))
    assert payload["stage"] == "supervised" and payload["key"] == Settings().key("supervised")
    assert set(payload) - {"stage", "key"} == set(Settings().stage_sections("supervised"))
    everything = json.loads(Settings().to_json())
    assert set(everything) == set(SECTIONS)


# ---------------------------------------------------------------- notebooks


@pytest.mark.parametrize("stem", sorted(NOTEBOOK_SECTIONS))
def test_notebook_parameters_cells_are_generated_from_the_schema(stem):
    """Names, defaults and types of each parameters cell are the schema's (scripts/sync_parameters.py writes them)."""
    notebook = nbformat.read(config.notebooks_dir() / f"{stem}.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if c.cell_type == "code")
    assert "parameters" in cell.metadata.get("tags", [])
    assert cell.source == parameters_cell(stem), f"run .venv/bin/python scripts/sync_parameters.py ({stem})"


def test_papermill_shows_real_types():
    papermill = pytest.importorskip("papermill")
    declared = papermill.inspect_notebook(str(config.notebooks_dir() / "03_finetuning.ipynb"))
    assert declared["filters"]["inferred_type_name"] == "int"
    assert declared["folds"]["inferred_type_name"] == "list[int]"
    assert all(spec["inferred_type_name"] != "None" and spec["help"] for spec in declared.values())


def test_the_schema_lists_itself():
    result = subprocess.run([sys.executable, "-m", "esc_lib.settings", "--markdown"], capture_output=True, text=True,
                            timeout=120, cwd=config.PROJECT_ROOT)
    assert result.returncode == 0 and "| `filters` | network | int |" in result.stdout


def test_profiles_extend_others_and_a_circle_is_an_error(tmp_path):
    from esc_lib.settings import load_profile

    (tmp_path / "a.yaml").write_text("extends: b.yaml\nparameters: {filters: 16}\n")
    (tmp_path / "b.yaml").write_text("extends: smoke\nparameters: {batch_size: 8}\n")
    profile = load_profile(tmp_path / "a.yaml")
    assert profile.parameters["filters"] == 16 and profile.parameters["batch_size"] == 8
    assert profile.parameters["clips_per_class"] == 1  # from smoke
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nparameters: {}\n")
    with pytest.raises(SettingsError, match="circle"):
        load_profile(tmp_path / "a.yaml")


@pytest.mark.parametrize("text, key, lines", [
    ("parameters:\n  seed: 1\n  filters: 16\n  seed: 2\n", "seed", (2, 4)),
    ("parameters: {seed: 1, seed: 2}\n", "seed", (1, 1)),
    ("parameters: {}\nparameters: {seed: 2}\n", "parameters", (1, 2)),
    ("parameters: {}\nsweep:\n  variants:\n    - {decoder: upsample, decoder: unpool}\n", "decoder", (4, 4)),
])
def test_a_key_given_twice_in_a_profile_is_an_error_naming_it_and_both_lines(tmp_path, text, key, lines):
    """YAML keeps the last of two equal keys without a word; a profile that says ``seed`` twice is a mistake."""
    from esc_lib.settings import load_profile

    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as error:
        load_profile(path)
    message = str(error.value)
    assert str(path) in message and f"'{key}' is given twice, on line {lines[0]} and line {lines[1]}" in message
    assert "\n" not in message


def test_a_search_on_the_training_folds_audio_holds_the_scored_validation_fold_out():
    search = Settings(score="validation", pretrain_on_train_folds=True, methods=["supervised", "fixmatch"])
    assert search.holds_out_validation
    assert not search.replace(score="test").holds_out_validation
    assert not search.replace(pretrain_on_train_folds=False, unlabeled="folder").holds_out_validation
    # Its models are other models than the test-scored study's (other unlabeled clips and statistics).
    for stage in ("cae", "supervised", "fixmatch"):
        assert search.key(stage) != search.replace(score="test").key(stage)
    # Scoring does not change a stage's identity otherwise.
    pool = Settings(unlabeled="folder", pretrain_on_train_folds=False)
    assert pool.key("cae") == pool.replace(score="validation").key("cae")


def test_keys_hash_the_augmentation_actually_used():
    """An empty fixmatch/contrastive augmentation stands for its default spec, and the key says which spec ran."""
    from esc_lib.settings import DEFAULT_AUGMENTATIONS

    for name, stage in (("fixmatch_weak", "fixmatch"), ("fixmatch_strong", "fixmatch"), ("contrastive_augment", "contrastive")):
        assert Settings().key(stage) == Settings(**{name: DEFAULT_AUGMENTATIONS[name]}).key(stage)
        assert Settings().key(stage) != Settings(**{name: "shift:max_shift=2"}).key(stage)


def test_the_configuration_name_shows_the_settings_of_the_methods_run():
    base = Settings(methods=["supervised", "fixmatch"])
    assert base.config_id == Settings().config_id  # defaults add nothing
    lower = base.replace(fixmatch_threshold=0.7)
    richer = lower.replace(fixmatch_ratio=3)
    assert lower.config_id.endswith("-fm-t0.7") and richer.config_id.endswith("-fm-t0.7-u3")
    assert len({base.config_id, lower.config_id, richer.config_id}) == 3
    # An augmentation spec is named by a hash; a method not run names nothing.
    strong = base.replace(fixmatch_strong="shift:max_shift=3")
    assert strong.config_id != base.config_id and "-fm-" in strong.config_id
    assert Settings(fixmatch_threshold=0.7).config_id == Settings().config_id
    assert Settings(methods=["contrastive"], pretrain_on_train_folds=True, contrastive_temperature=0.5).config_id.endswith("-cl-t0.5")


@pytest.mark.slow
def test_a_profile_exported_for_papermill_f_reaches_the_notebook(tmp_path):
    """`papermill -f` wants a flat mapping; `python -m esc_lib.settings --papermill PROFILE` writes one."""
    import json
    import subprocess
    import sys

    from esc_lib import config

    exported = subprocess.run([sys.executable, "-m", "esc_lib.settings", "--papermill", "smoke"],
                              capture_output=True, text=True, check=True).stdout
    (tmp_path / "smoke-parameters.yaml").write_text(exported)
    out = tmp_path / "prepared.ipynb"
    subprocess.run([sys.executable, "-m", "papermill", str(config.PROJECT_ROOT / "notebooks" / "03_finetuning.ipynb"), str(out),
                    "-f", str(tmp_path / "smoke-parameters.yaml"), "--prepare-only", "-k", "esc-lib"],
                   capture_output=True, text=True, check=True)
    cells = json.loads(out.read_text())["cells"]
    namespace: dict = {}
    for cell in cells:
        tags = cell["metadata"].get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags:
            exec("".join(cell["source"]), namespace)
    namespace.pop("__builtins__", None)
    settings = Settings.from_namespace(namespace)
    from esc_lib.settings import load_profile

    assert settings == Settings(**load_profile("smoke").parameters)
    assert settings.clips_per_class == 1 and settings.label_budgets == [0, 1]
