"""The cross-validation protocol (:mod:`esc_lib.protocol`) on synthetic metadata: no audio, no TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from esc_lib import protocol

FOLD_SETS = {"five": [1, 2, 3, 4, 5], "sparse": [2, 4, 6, 8]}


def make_meta(fold_numbers, n_classes: int = 4, clips: int = 3, seed: int = 0):
    """Per-clip (folds, labels, groups) of ``len(fold_numbers)`` folds x ``n_classes`` x ``clips``, shuffled.

    Each group (a "recording") holds the takes of one class in one fold: ``clips`` takes split into two groups.
    """
    rows = [(f, c, f"rec{f}-{c}-{t // 2}") for f in fold_numbers for c in range(n_classes) for t in range(clips)]
    order = np.random.default_rng(seed).permutation(len(rows))
    rows = [rows[i] for i in order]
    folds = np.array([r[0] for r in rows], dtype=np.int64)
    labels = np.array([r[1] for r in rows], dtype=np.int64)
    groups = np.array([r[2] for r in rows], dtype=object)
    return folds, labels, groups


@pytest.fixture(params=list(FOLD_SETS), ids=list(FOLD_SETS))
def meta(request):
    return make_meta(FOLD_SETS[request.param])


def all_cases():
    return [(name, k) for name, folds in FOLD_SETS.items() for k in folds]


# --------------------------------------------------------------------------- references: today's Experiment code, verbatim
def reference_split(folds, test_fold):
    available = sorted(set(int(f) for f in folds))
    validation_fold = available[(available.index(test_fold) + 1) % len(available)]
    return {
        "train": np.flatnonzero((folds != test_fold) & (folds != validation_fold)),
        "validation": np.flatnonzero(folds == validation_fold),
        "test": np.flatnonzero(folds == test_fold),
        "validation_fold": validation_fold,
    }


def reference_budget(all_labels, indices, labels_per_class, seed):
    labels = all_labels[indices]
    order = np.random.default_rng(seed).permutation(len(indices))
    chosen = [indices[order][labels[order] == label][:labels_per_class] for label in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def reference_holdout(n, fraction, seed):
    order = np.random.default_rng(seed).permutation(n)
    n_validation = max(1, int(round(n * fraction)))
    return order[n_validation:], order[:n_validation]


# --------------------------------------------------------------------------- folds
@pytest.mark.parametrize("name,test_fold", all_cases())
def test_split_partitions_the_clips(name, test_fold):
    folds, _, _ = make_meta(FOLD_SETS[name])
    s = protocol.split(folds, test_fold)
    parts = [s.train, s.validation, s.test]
    assert sum(len(p) for p in parts) == len(folds)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(folds)))
    for p in parts:
        assert np.array_equal(p, np.sort(p))
        assert p.dtype == np.int64
    assert set(folds[s.test]) == {test_fold}
    assert np.array_equal(s.test, np.flatnonzero(folds == test_fold))
    assert set(folds[s.validation]) == {s.validation_fold}
    assert s.test_fold == test_fold
    assert test_fold not in set(folds[s.train]) and s.validation_fold not in set(folds[s.train])


@pytest.mark.parametrize("name,test_fold", all_cases())
def test_split_matches_todays_experiment(name, test_fold):
    folds, _, _ = make_meta(FOLD_SETS[name])
    s, ref = protocol.split(folds, test_fold), reference_split(folds, test_fold)
    assert s.validation_fold == ref["validation_fold"]
    for part in ("train", "validation", "test"):
        assert np.array_equal(getattr(s, part), ref[part])
    assert np.array_equal(s.train_and_validation, np.concatenate([ref["train"], ref["validation"]]))


@pytest.mark.parametrize(
    "available,test_fold,expected",
    [([1, 2, 3, 4, 5], 1, 2), ([1, 2, 3, 4, 5], 4, 5), ([1, 2, 3, 4, 5], 5, 1),
     ([2, 4, 6, 8], 2, 4), ([2, 4, 6, 8], 8, 2), ([8, 2, 6, 4], 6, 8), ([3, 3, 1, 2, 1], 3, 1)],
)
def test_validation_fold_is_the_next_fold_wrapping(available, test_fold, expected):
    assert protocol.validation_fold(available, test_fold) == expected
    assert protocol.validation_fold(np.array(available), np.int64(test_fold)) == expected


def test_validation_fold_errors():
    with pytest.raises(ValueError, match=r"test_fold=7 .*\[1, 2, 3\]"):
        protocol.validation_fold([1, 2, 3], 7)
    with pytest.raises(ValueError, match="at least 3 folds"):
        protocol.validation_fold([1, 2], 1)
    with pytest.raises(ValueError, match="test_fold must be an integer"):
        protocol.validation_fold([1, 2, 3], 1.0)
    with pytest.raises(ValueError, match="available_folds"):
        protocol.validation_fold([], 1)


def test_split_errors():
    folds, _, _ = make_meta([1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match=r"test_fold=6 .*\[1, 2, 3, 4, 5\]"):
        protocol.split(folds, 6)
    with pytest.raises(ValueError, match="at least 3 folds"):
        protocol.split(np.array([1, 1, 2, 2]), 1)
    with pytest.raises(ValueError, match="folds must be a 1-D"):
        protocol.split(folds.reshape(2, -1), 1)
    with pytest.raises(ValueError, match="integer fold numbers"):
        protocol.split(np.array(["1", "2", "3"]), 1)


def test_split_is_frozen_and_read_only():
    folds, _, _ = make_meta([1, 2, 3, 4, 5])
    s = protocol.split(folds, 2)
    with pytest.raises(AttributeError):
        s.test_fold = 3
    with pytest.raises(ValueError):
        s.train[0] = 0
    assert s == protocol.split(folds, 2) and s != protocol.split(folds, 3)
    first = int(s.train[0])
    both = s.train_and_validation
    both[0] = -1  # a fresh array: the split is untouched
    assert s.train[0] == first
    caller = np.array([3, 1, 2])
    protocol.Split(test_fold=1, validation_fold=2, train=caller, validation=[], test=[])
    caller[0] = 0  # the caller's array is copied, not frozen
    with pytest.raises(ValueError, match="validation_fold must differ"):
        protocol.Split(test_fold=1, validation_fold=1, train=[], validation=[], test=[])


def test_check_test_folds():
    folds, _, _ = make_meta([2, 4, 6, 8])
    protocol.check_test_folds(folds, [2, 4, 6, 8])
    protocol.check_test_folds(folds, 4)
    with pytest.raises(ValueError, match=r"\[1, 3\] not among .*\[2, 4, 6, 8\]"):
        protocol.check_test_folds(folds, [1, 2, 3])
    with pytest.raises(ValueError, match="at least one"):
        protocol.check_test_folds(folds, [])
    with pytest.raises(ValueError, match="at least 3 folds"):
        protocol.check_test_folds(np.array([1, 2, 1, 2]), [1])


# --------------------------------------------------------------------------- leakage
@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize("has_pool", [True, False])
@pytest.mark.parametrize("name,test_fold", all_cases())
def test_test_fold_never_leaks(name, test_fold, include, has_pool):
    folds, _, _ = make_meta(FOLD_SETS[name])
    s = protocol.split(folds, test_fold)
    watched = np.concatenate([s.train, s.validation])  # what training and early stopping see
    assert test_fold not in set(folds[watched])
    assert test_fold not in set(folds[s.train_and_validation])
    pre = protocol.pretraining_clips(folds, test_fold, include)
    assert test_fold not in set(folds[pre])
    use_pool, stats = protocol.statistics_clips(folds, test_fold, has_pool=has_pool, include_labelled_folds=include)
    assert test_fold not in set(folds[stats])
    assert use_pool == has_pool


@pytest.mark.parametrize("name,test_fold", all_cases())
def test_pretraining_clips(name, test_fold):
    folds, _, _ = make_meta(FOLD_SETS[name])
    pre = protocol.pretraining_clips(folds, test_fold, True)
    assert np.array_equal(pre, np.flatnonzero(folds != test_fold))  # today's boolean mask, clip order
    assert len(protocol.pretraining_clips(folds, test_fold, False)) == 0
    assert protocol.pretraining_clips(folds, test_fold, False).dtype == np.int64
    # A search scored on the validation fold leaves that fold's audio out too.
    scored = protocol.validation_fold(folds, test_fold)
    held = protocol.pretraining_clips(folds, test_fold, True, hold_out_validation=True)
    assert np.array_equal(held, np.flatnonzero(~np.isin(folds, [test_fold, scored])))
    assert np.array_equal(held, protocol.split(folds, test_fold).train)
    assert len(protocol.pretraining_clips(folds, test_fold, False, hold_out_validation=True)) == 0
    _, stats = protocol.statistics_clips(folds, test_fold, has_pool=True, include_labelled_folds=True, hold_out_validation=True)
    assert np.array_equal(stats, held)


def test_shared_cae_cannot_see_labelled_folds():
    folds, _, _ = make_meta([1, 2, 3, 4, 5])
    assert protocol.shared_pretraining(False) is True
    assert protocol.shared_pretraining(True) is False
    assert len(protocol.pretraining_clips(folds, None, False)) == 0
    with pytest.raises(ValueError, match="include_labelled_folds"):
        protocol.pretraining_clips(folds, None, True)
    with pytest.raises(ValueError, match=r"test_fold=9 .*\[1, 2, 3, 4, 5\]"):
        protocol.pretraining_clips(folds, 9, True)
    with pytest.raises(ValueError, match="include_labelled_folds must be True or False"):
        protocol.pretraining_clips(folds, 1, "yes")
    with pytest.raises(ValueError, match="include_labelled_folds must be True or False"):
        protocol.shared_pretraining(1)


@pytest.mark.parametrize("name,test_fold", all_cases())
def test_statistics_clips_follow_todays_standardizer(name, test_fold):
    folds, _, _ = make_meta(FOLD_SETS[name])
    not_test = np.flatnonzero(folds != test_fold)
    cases = {  # (has_pool, include) -> (use_pool, labelled clips)
        (True, True): (True, not_test),
        (True, False): (True, np.zeros(0, dtype=np.int64)),
        (False, True): (False, not_test),
        (False, False): (False, reference_split(folds, test_fold)["train"]),
    }
    for (has_pool, include), (use_pool, expected) in cases.items():
        got_pool, got = protocol.statistics_clips(folds, test_fold, has_pool=has_pool, include_labelled_folds=include)
        assert got_pool is use_pool
        assert np.array_equal(got, expected)


# --------------------------------------------------------------------------- budgets and seeds
@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("name,test_fold", all_cases())
def test_budgets_are_nested_and_per_class(name, test_fold, seed):
    # 6 clips per class per fold, so the training folds hold 12-18 per class: budgets 2, 4, 8 and one over.
    folds, labels, _ = make_meta(FOLD_SETS[name], clips=6)
    train = protocol.split(folds, test_fold).train
    available = np.bincount(labels[train], minlength=4)
    previous = np.zeros(0, dtype=np.int64)
    for budget in (2, 4, 8, 100):
        chosen = protocol.label_budget(labels, train, budget, seed)
        assert np.array_equal(chosen, np.sort(chosen)) and len(np.unique(chosen)) == len(chosen)
        assert set(chosen) <= set(train)
        assert set(previous) <= set(chosen)
        assert np.array_equal(np.bincount(labels[chosen], minlength=4), np.minimum(budget, available))
        assert np.array_equal(chosen, reference_budget(labels, train, budget, seed))
        previous = chosen
    assert np.array_equal(previous, train)  # a budget over every class's size keeps everything


def test_budget_zero_means_all_and_is_a_sorted_copy():
    _, labels, _ = make_meta([1, 2, 3, 4, 5])
    indices = np.array([9, 3, 5, 0])
    got = protocol.label_budget(labels, indices, 0, seed=3)
    assert np.array_equal(got, [0, 3, 5, 9])
    got[0] = 42
    assert indices.tolist() == [9, 3, 5, 0]


def test_budget_unsorted_indices_follow_todays_rule():
    folds, labels, _ = make_meta([1, 2, 3, 4, 5], clips=5)
    indices = np.random.default_rng(5).permutation(len(folds))[:40]
    for budget in (1, 3):
        assert np.array_equal(protocol.label_budget(labels, indices, budget, 11), reference_budget(labels, indices, budget, 11))


def test_budget_small_class_keeps_what_it_has_and_absent_class_gets_none():
    labels = np.array([0, 0, 0, 0, 1, 2, 2])
    chosen = protocol.label_budget(labels, np.array([0, 1, 2, 3, 4]), 2, seed=0)  # class 2 not among the indices
    assert np.bincount(labels[chosen], minlength=3).tolist() == [2, 1, 0]
    assert len(protocol.label_budget(labels, np.array([], dtype=int), 2, seed=0)) == 0


def test_budget_seeds_differ():
    folds, labels, _ = make_meta([1, 2, 3, 4, 5], clips=6)
    train = protocol.split(folds, 1).train
    draws = {tuple(protocol.label_budget(labels, train, 2, seed)) for seed in range(5)}
    assert len(draws) > 1
    assert np.array_equal(protocol.label_budget(labels, train, 2, 3), protocol.label_budget(labels, train, 2, 3))


@pytest.mark.parametrize(
    "kwargs,match",
    [({"labels_per_class": -1}, "labels_per_class must be >= 0"),
     ({"labels_per_class": 2.5}, "labels_per_class must be an integer"),
     ({"labels_per_class": True}, "labels_per_class must be an integer"),
     ({"indices": np.array([0, 99])}, "indices must lie in"),
     ({"indices": np.array([1, 1])}, "indices repeats"),
     ({"indices": np.array([0.0, 1.0])}, "indices must hold integer"),
     ({"seed": "0"}, "seed must be an integer")],
)
def test_budget_errors(kwargs, match):
    _, labels, _ = make_meta([1, 2, 3])
    arguments = {"labels": labels, "indices": np.arange(5), "labels_per_class": 2, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        protocol.label_budget(**arguments)


@pytest.mark.parametrize("seed,test_fold", [(0, 1), (0, 5), (3, 2), (10, 8)])
def test_seeds(seed, test_fold):
    assert protocol.budget_seed(seed, test_fold) == seed + test_fold
    assert protocol.member_seed(seed, test_fold, 0) == seed + test_fold  # member 0 is the single run
    assert protocol.member_seed(seed, test_fold, 0) == protocol.budget_seed(seed, test_fold)
    assert protocol.member_seed(seed, test_fold, 2) == seed + test_fold + 2000
    seeds = {protocol.member_seed(seed, test_fold, m) for m in range(5)}
    assert len(seeds) == 5
    assert isinstance(protocol.member_seed(np.int64(seed), np.int64(test_fold), 1), int)


def test_seed_errors():
    with pytest.raises(ValueError, match="member must be >= 0"):
        protocol.member_seed(0, 1, -1)
    with pytest.raises(ValueError, match="test_fold must be an integer"):
        protocol.budget_seed(0, "1")


# --------------------------------------------------------------------------- CAE hold-out
@pytest.mark.parametrize("n,fraction,seed", [(2, 0.1, 0), (10, 0.1, 0), (25, 0.1, 3), (100, 0.25, 1), (7, 0.5, 2), (1000, 0.1, 0)])
def test_holdout(n, fraction, seed):
    train, validation = protocol.holdout(n, fraction, seed)
    assert len(validation) == max(1, int(round(n * fraction)))
    assert len(train) + len(validation) == n
    assert not set(train) & set(validation)
    assert np.array_equal(np.sort(np.concatenate([train, validation])), np.arange(n))
    ref_train, ref_validation = reference_holdout(n, fraction, seed)
    assert np.array_equal(train, ref_train) and np.array_equal(validation, ref_validation)
    again = protocol.holdout(n, fraction, seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], validation)


def test_holdout_seeds_differ():
    assert not np.array_equal(protocol.holdout(50, 0.2, 0)[1], protocol.holdout(50, 0.2, 1)[1])


@pytest.mark.parametrize(
    "n,fraction,match",
    [(1, 0.1, "n=1.*at least 2 clips"), (0, 0.1, "n=0.*at least 2 clips"), (2, 0.9, "n=2.*at least 2 clips"),
     (10, 0.0, "fraction must be a number in \\(0, 1\\)"), (10, 1.0, "fraction"), (10, float("nan"), "fraction"),
     (-1, 0.1, "n must be >= 0"), (10.0, 0.1, "n must be an integer")],
)
def test_holdout_errors(n, fraction, match):
    with pytest.raises(ValueError, match=match):
        protocol.holdout(n, fraction, 0)


# --------------------------------------------------------------------------- groups
def test_groups_within_folds_pass(meta):
    folds, _, groups = meta
    protocol.check_groups_within_folds(groups, folds)
    protocol.check_groups_within_folds(np.arange(len(folds)), folds)  # every clip its own group


def test_group_straddling_folds_is_named():
    folds, _, groups = make_meta([2, 4, 6, 8])
    groups = groups.copy()
    victim = groups[0]
    other = np.flatnonzero(folds != folds[0])[0]
    groups[other] = victim
    expected = sorted({int(folds[0]), int(folds[other])})
    with pytest.raises(ValueError, match=rf"clips of one Freesound recording must stay in one fold.*'{victim}'.*{expected}"):
        protocol.check_groups_within_folds(groups, folds)
    with pytest.raises(ValueError, match="one source file"):
        protocol.check_groups_within_folds(groups, folds, what="source file")


def test_group_errors():
    folds = np.array([1, 2, 3])
    with pytest.raises(ValueError, match="groups must be 1-D with one group per clip"):
        protocol.check_groups_within_folds(["a", "b"], folds)
    with pytest.raises(ValueError, match="clip 1"):
        protocol.check_groups_within_folds(["a", None, "c"], folds)
    with pytest.raises(ValueError, match=r"'a' has clips in folds \[1, 3\] \(1 other"):
        protocol.check_groups_within_folds(["a", "b", "a", "b"], np.array([1, 2, 3, 1]))


def test_no_tensorflow():
    import subprocess
    import sys

    code = "import sys, esc_lib.protocol; sys.exit(int(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_all_is_the_public_api():
    assert set(protocol.__all__) == {
        "Split", "validation_fold", "split", "optimistic_split", "check_test_folds", "label_budget", "budget_seed",
        "member_seed",
        "pretraining_clips", "shared_pretraining", "statistics_clips", "holdout", "check_groups_within_folds",
    }
    for name in protocol.__all__:
        assert getattr(protocol, name).__doc__


def test_the_optimistic_split_watches_the_test_fold_and_trains_on_all_the_others():
    folds = np.repeat([1, 2, 3, 4, 5], 4)
    split = protocol.optimistic_split(folds, 3)
    assert split.watches_test and split.test_fold == split.validation_fold == 3
    assert np.array_equal(split.validation, split.test) and set(folds[split.test]) == {3}
    assert set(folds[split.train]) == {1, 2, 4, 5} and len(split.train) == 16
    assert not protocol.split(folds, 3).watches_test
    with pytest.raises(ValueError, match="not among"):
        protocol.optimistic_split(folds, 6)
    # Outside that shape a split still refuses one fold for both roles.
    with pytest.raises(ValueError, match="must differ"):
        protocol.Split(test_fold=1, validation_fold=1, train=[0], validation=[1], test=[2])
