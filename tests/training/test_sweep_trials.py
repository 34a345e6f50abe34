"""Sweep trials come from scikit-learn's ParameterGrid / ParameterSampler."""

import pytest
from django.core.exceptions import ValidationError
from sklearn.model_selection import ParameterGrid

from training.sweeps import MAX_TRIALS, trials_generate


def test_a_grid_is_every_combination_once():
    space = {"C": [0.1, 1.0, 10.0], "penalty": ["l1", "l2"]}
    _, trials = trials_generate({"strategy": "grid", "space": space})
    assert len(trials) == 6
    assert sorted(map(repr, trials)) == sorted(map(repr, ParameterGrid(space)))


def test_a_grid_over_the_limit_names_its_size():
    space = {"a": list(range(20)), "b": list(range(20))}
    with pytest.raises(ValidationError) as exc:
        trials_generate({"strategy": "grid", "space": space})
    assert f"400 combinations; at most {MAX_TRIALS}" in str(exc.value)


def test_random_trials_are_reproducible_within_their_ranges_and_plain_json():
    search = {"strategy": "random", "n_trials": 30, "seed": 7, "space": {
        "C": {"low": 1e-3, "high": 10.0, "log": True},
        "max_depth": {"low": 2, "high": 12, "int": True},
        "criterion": ["gini", "entropy"],
    }}
    recorded, trials = trials_generate(search)
    assert recorded["seed"] == 7 and len(trials) == 30
    assert trials == trials_generate(search)[1]
    assert trials != trials_generate({**search, "seed": 8})[1]
    for trial in trials:
        assert type(trial["C"]) is float and 1e-3 <= trial["C"] <= 10.0
        assert type(trial["max_depth"]) is int and 2 <= trial["max_depth"] <= 12
        assert trial["criterion"] in ("gini", "entropy")
    # A log range puts as many draws below its geometric middle (0.1) as above it.
    below = sum(trial["C"] < 0.1 for trial in trials)
    assert 5 <= below <= 25


def test_random_choices_alone_give_the_trials_asked_for():
    _, trials = trials_generate({"strategy": "random", "n_trials": 10, "seed": 1,
                                 "space": {"criterion": ["gini", "entropy"]}})
    assert len(trials) == 10


def test_a_bad_range_names_the_parameter():
    with pytest.raises(ValidationError) as exc:
        trials_generate({"strategy": "random", "space": {"C": {"low": 0, "high": 1, "log": True}}})
    assert "search.space.C" in exc.value.message_dict
