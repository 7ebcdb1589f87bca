"""esc_lib.guidance and ``python -m esc_lib recommend``: a budgets study read as a method per budget."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from esc_lib import guidance
from esc_lib.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def _folds(accuracies: dict, seed: int = 0, seconds: dict | None = None) -> pd.DataFrame:
    """Fold accuracies: {(method, budget): [fold 1, fold 2, ...]}."""
    rows = [{"config": "c", "method": method, "seed": seed, "labels_per_class": budget, "fold": fold,
             "accuracy": accuracy, "seconds": (seconds or {}).get(method, 10.0)}
            for (method, budget), values in accuracies.items() for fold, accuracy in enumerate(values, start=1)]
    return pd.DataFrame(rows)


SUPERVISED_4 = [0.60, 0.70, 0.65, 0.75, 0.55]
SUPERVISED_ALL = [0.85, 0.90, 0.88, 0.92, 0.80]
STUDY = {
    ("supervised", 4): SUPERVISED_4,
    # ahead on every fold by about 8 points: significant
    ("fixmatch", 4): [a + d for a, d in zip(SUPERVISED_4, [0.08, 0.09, 0.07, 0.08, 0.10])],
    # ahead by more on average but erratic: not significant
    ("mixmatch", 4): [a + d for a, d in zip(SUPERVISED_4, [0.40, -0.10, 0.30, -0.15, 0.05])],
    ("supervised", 0): SUPERVISED_ALL,
    ("fixmatch", 0): [a + d for a, d in zip(SUPERVISED_ALL, [0.02, -0.03, 0.01, 0.0, 0.01])],
    ("mixmatch", 0): [a + d for a, d in zip(SUPERVISED_ALL, [0.03, -0.01, 0.0, 0.02, -0.02])],
}


def test_the_recommendation_is_the_significant_gain_and_supervised_where_none_paid():
    table = guidance.study(_folds(STUDY, seconds={"supervised": 30.0, "fixmatch": 500.0, "mixmatch": 450.0}))
    assert list(zip(table["labels_per_class"], table["method"])) == [(4, "fixmatch"), (4, "mixmatch"),
                                                                     (0, "fixmatch"), (0, "mixmatch")]
    assert table.loc[0, "difference"] == pytest.approx(8.4)  # points
    assert table.loc[0, "seconds"] == 500.0 and table.loc[0, "supervised_seconds"] == 30.0
    at4, at_all = guidance.recommend(table)
    # mixmatch's mean gain (+10) is larger, but only fixmatch's is shown (p < 0.05)
    assert (at4.labels_per_class, at4.method) == (4, "fixmatch") and at4.p < 0.05
    assert at4.difference == pytest.approx(8.4) and at4.accuracy == pytest.approx(0.734)
    assert (at_all.budget, at_all.method, at_all.difference) == ("all", "supervised", 0.0) and math.isnan(at_all.p)
    assert re.search(r"no method was ahead of supervised with p < 0.05; the largest gain: mixmatch \+0.4", at_all.reason)
    # a stricter level leaves no method at 4 either
    assert guidance.recommend(table, alpha=1e-6)[0].method == "supervised"
    with pytest.raises(ValueError, match="alpha must lie in"):
        guidance.recommend(table, alpha=5)


def test_of_two_equal_gains_the_cheaper_method_is_recommended():
    gain = [a + 0.1 for a in SUPERVISED_4[:4]] + [SUPERVISED_4[4] + 0.12]
    folds = _folds({("supervised", 4): SUPERVISED_4, ("fixmatch", 4): gain, ("selftrain", 4): gain},
                   seconds={"fixmatch": 500.0, "selftrain": 80.0})
    best = guidance.recommend(guidance.study(folds))[0]
    assert best.method == "selftrain" and "also ahead with p < 0.05: fixmatch" in best.reason


def test_a_users_budget_is_read_at_the_largest_measured_budget_not_above_it():
    folds = _folds({**STUDY, ("supervised", 8): SUPERVISED_4, ("fixmatch", 8): SUPERVISED_4})
    advice = guidance.recommend(guidance.study(folds))
    assert [r.budget for r in advice] == ["4", "8", "all"]
    assert guidance.for_budget(advice, 8)[0].labels_per_class == 8
    chosen, note = guidance.for_budget(advice, 6)
    assert chosen.labels_per_class == 4 and "read at 4, the largest not above 6" in note
    assert guidance.for_budget(advice, 100)[0].labels_per_class == 8
    assert guidance.for_budget(advice, 0)[0].budget == "all"
    chosen, note = guidance.for_budget(advice, 2)
    assert chosen.labels_per_class == 4 and "fewer than any" in note
    with pytest.raises(ValueError, match="labels_per_class must be >= 0"):
        guidance.for_budget(advice, -1)


def test_the_headline_marks_the_recommended_cells_and_lists_cost():
    table = guidance.study(_folds(STUDY, seconds={"supervised": 30.0, "fixmatch": 500.0, "mixmatch": 450.0}))
    text = guidance.headline(table, guidance.recommend(table), sources=["results/budgets"])
    assert "| method | 4 | all |" in text
    assert "| supervised | 65.0 | **87.0** |" in text
    assert re.search(r"\| fixmatch \| \*\*73\.4 \(\+8\.4, p [0-9.e-]+\)\*\* \| 87\.2 \(\+0\.2, p", text)
    assert "| **recommended** | fixmatch | supervised |" in text
    assert "| fixmatch | 500 | 500 |" in text and "From `results/budgets`." in text


def test_replace_block_rewrites_between_the_markers_only_and_names_the_file_when_they_are_missing():
    text = f"# Title\n\nbefore\n{guidance.BEGIN}\nold table\n{guidance.END}\nafter\n"
    new = guidance.replace_block(text, "new table\n")
    assert new == f"# Title\n\nbefore\n{guidance.BEGIN}\nnew table\n{guidance.END}\nafter\n"
    assert guidance.replace_block(new, "new table") == new
    with pytest.raises(ValueError, match=r"README.md must hold the line .* \(found 0 and 1\)"):
        guidance.replace_block(f"x\n{guidance.END}\n", "t", name="README.md")
    with pytest.raises(ValueError, match=r"found 1 and 1"):
        guidance.replace_block(f"{guidance.END}\n{guidance.BEGIN}\n", "t")


def test_the_command_writes_checks_and_refuses_bad_input(tmp_path, capsys):
    run = tmp_path / "budgets"
    run.mkdir()
    _folds(STUDY).to_csv(run / "fold_accuracies.csv", index=False)
    assert main(["recommend", str(run), "--labels-per-class", "5"]) == 0
    out = capsys.readouterr().out
    assert "| **recommended** | fixmatch | supervised |" in out
    assert "At 5 labelled clips per class (the study measured 4, all labelled clips per class; read at 4" in out
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{guidance.BEGIN}\n{guidance.END}\nrest\n")
    assert main(["recommend", str(run), "--readme", str(readme), "--check"]) == 1
    assert main(["recommend", str(run), "--readme", str(readme)]) == 0
    assert "| **recommended** | fixmatch | supervised |" in readme.read_text()
    assert readme.read_text().startswith("intro\n") and readme.read_text().endswith(f"{guidance.END}\nrest\n")
    assert main(["recommend", str(run), "--readme", str(readme), "--check"]) == 0
    capsys.readouterr()
    assert main(["recommend", str(run), "--check"]) == 2
    assert "--check needs --readme" in capsys.readouterr().err
    assert main(["recommend", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err
    assert main(["recommend", str(run), "--readme", str(tmp_path / "plain.md")]) == 2
    (tmp_path / "plain.md").write_text("no markers\n")
    assert main(["recommend", str(run), "--readme", str(tmp_path / "plain.md")]) == 2
    assert "must hold the line" in capsys.readouterr().err


def test_the_readme_study_table_is_what_its_folders_give(monkeypatch):
    """The README's headline table is generated: hand edits or a republished folder show here."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split(guidance.BEGIN)[1].split(guidance.END)[0]
    sources = re.findall(r"`([^`]+)`", block.strip().splitlines()[-1])
    assert sources and all((ROOT / s / "fold_accuracies.csv").is_file() for s in sources), sources
    monkeypatch.chdir(ROOT)
    assert main(["recommend", *sources, "--readme", "README.md", "--check"]) == 0, \
        f"run: python -m esc_lib recommend {' '.join(sources)} --readme README.md"
