"""The bias audit's numbers are fairlearn's own, per sensitive feature and for their intersection."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)
from sklearn.metrics import accuracy_score, mean_absolute_error, precision_score, recall_score

from governance.fairness import fairness_audit, groups_masked

TOL = 1e-9


def random_case(seed: int, n: int = 3000):
    rng = np.random.default_rng(seed)
    sensitive = pd.DataFrame({
        "sex": rng.choice(["F", "M"], n),
        "race": rng.choice(["a", "b", "c", "d"], n, p=[0.5, 0.3, 0.15, 0.05]),
        "age_band": rng.choice(["young", "middle", "old"], n),
    })
    y_true = rng.integers(0, 2, n)
    # Predictions that depend on the groups, so the parity numbers are not all near zero.
    bias = (sensitive["race"] == "d").to_numpy() * 0.3 + (sensitive["sex"] == "F").to_numpy() * 0.1
    y_pred = (rng.random(n) < 0.35 + bias).astype(int)
    return sensitive, y_true, y_pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_numbers_equal_fairlearns_for_each_feature_and_the_intersection(seed):
    sensitive, y_true, y_pred = random_case(seed)
    result = fairness_audit(task="classification", y_true=y_true, y_pred=y_pred, sensitive=sensitive,
                            positive=1, bootstrap=20, seed=seed)
    summary = result["summary"]
    assert list(summary) == ["sex", "race", "age_band", "sex & race & age_band"]
    for feature, columns in [("sex", "sex"), ("race", "race"), ("age_band", "age_band"),
                             ("sex & race & age_band", ["sex", "race", "age_band"])]:
        sf = sensitive[columns]
        numbers = summary[feature]
        assert numbers["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(y_true, y_pred, sensitive_features=sf), abs=TOL)
        assert numbers["demographic_parity_ratio"] == pytest.approx(
            demographic_parity_ratio(y_true, y_pred, sensitive_features=sf), abs=TOL)
        assert numbers["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(y_true, y_pred, sensitive_features=sf), abs=TOL)
        assert numbers["equalized_odds_ratio"] == pytest.approx(
            equalized_odds_ratio(y_true, y_pred, sensitive_features=sf), abs=TOL)


def test_group_metrics_equal_a_metricframe_of_the_same_data():
    sensitive, y_true, y_pred = random_case(5)
    result = fairness_audit(task="classification", y_true=y_true, y_pred=y_pred, sensitive=sensitive,
                            positive=1, bootstrap=0)
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "accuracy": accuracy_score,
                 "precision": lambda t, p: precision_score(t, p, zero_division=0),
                 "recall": lambda t, p: recall_score(t, p, zero_division=0),
                 "false_positive_rate": false_positive_rate, "false_negative_rate": false_negative_rate},
        y_true=y_true, y_pred=y_pred, sensitive_features=sensitive["race"])
    rows = {g["group"]: g for g in result["groups"] if g["feature"] == "race"}
    assert set(rows) == {"a", "b", "c", "d"}
    for group, expected in frame.by_group.iterrows():
        assert rows[group]["count"] == int((sensitive["race"] == group).sum())
        for metric, value in expected.items():
            assert rows[group][metric] == pytest.approx(value, abs=TOL), (group, metric)
    intersection = [g for g in result["groups"] if g["feature"] == "sex & race & age_band"]
    assert len(intersection) == 2 * 4 * 3
    assert sum(g["count"] for g in intersection) == len(y_true)
    assert intersection[0]["values"] == intersection[0]["group"].split(" & ")


def test_one_sensitive_feature_has_no_separate_intersection_rows():
    sensitive, y_true, y_pred = random_case(1)
    result = fairness_audit(task="classification", y_true=y_true, y_pred=y_pred,
                            sensitive=sensitive[["sex"]], positive=1, bootstrap=0)
    assert list(result["summary"]) == ["sex"]
    assert [g["group"] for g in result["groups"]] == ["F", "M"]


def test_small_groups_are_flagged_and_text_labels_are_compared_to_the_positive_label():
    sensitive, y_true, y_pred = random_case(3, n=400)
    labels = np.array(["no", "yes"])
    result = fairness_audit(task="classification", y_true=labels[y_true], y_pred=labels[y_pred],
                            sensitive=sensitive[["race"]], positive="yes", min_group_size=30, bootstrap=0)
    counts = {g["group"]: (g["count"], g["small"]) for g in result["groups"]}
    assert all(small == (count < 30) for count, small in counts.values())
    assert counts["d"][1] is True  # ~5% of 400 rows
    assert result["summary"]["race"]["small_groups"] == sum(small for _, small in counts.values())
    assert result["summary"]["race"]["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=sensitive["race"]), abs=TOL)


def test_bootstrap_intervals_are_seeded_bounded_and_bracket_plausible_values():
    sensitive, y_true, y_pred = random_case(4)
    kwargs = dict(task="classification", y_true=y_true, y_pred=y_pred, sensitive=sensitive, positive=1,
                  bootstrap=50)
    first = fairness_audit(seed=7, **kwargs)["summary"]["race"]
    again = fairness_audit(seed=7, **kwargs)["summary"]["race"]
    other = fairness_audit(seed=8, **kwargs)["summary"]["race"]
    assert first["ci"] == again["ci"] and first["ci"] != other["ci"]
    assert first["bootstrap_samples"] == 50 and first["ci_level"] == 0.95
    low, high = first["ci"]["demographic_parity_difference"]
    assert low < first["demographic_parity_difference"] < high


def test_regression_groups_have_error_and_mean_prediction():
    rng = np.random.default_rng(0)
    n = 1000
    sensitive = pd.DataFrame({"region": rng.choice(["north", "south"], n), "sex": rng.choice(["F", "M"], n)})
    y_true = rng.normal(10, 2, n)
    y_pred = y_true + rng.normal(0, 1, n) + (sensitive["region"] == "south").to_numpy() * 0.5
    result = fairness_audit(task="regression", y_true=y_true, y_pred=y_pred, sensitive=sensitive,
                            bootstrap=10)
    south = next(g for g in result["groups"] if g["feature"] == "region" and g["group"] == "south")
    mask = (sensitive["region"] == "south").to_numpy()
    assert south["mean_prediction"] == pytest.approx(y_pred[mask].mean(), abs=TOL)
    assert south["mean_absolute_error"] == pytest.approx(
        mean_absolute_error(y_true[mask], y_pred[mask]), abs=TOL)
    means = [y_pred[(sensitive["region"] == r).to_numpy()].mean() for r in ("north", "south")]
    assert result["summary"]["region"]["mean_prediction_difference"] == pytest.approx(
        max(means) - min(means), abs=TOL)
    assert "region & sex" in result["summary"]


def test_masking_replaces_pii_group_values_also_inside_intersections():
    sensitive, y_true, y_pred = random_case(2, n=600)
    result = fairness_audit(task="classification", y_true=y_true, y_pred=y_pred,
                            sensitive=sensitive[["sex", "race"]], positive=1, bootstrap=0)
    masked = groups_masked(result["groups"], result["summary"], {"race"})
    race = [g["group"] for g in masked if g["feature"] == "race"]
    assert race == ["group 1", "group 2", "group 3", "group 4"]
    both = [g["group"] for g in masked if g["feature"] == "sex & race"]
    assert "F & group 1" in both and not any(v in g for g in both for v in (" a", " b", " c", " d"))
    sex = [g["group"] for g in masked if g["feature"] == "sex"]
    assert sex == ["F", "M"]
    # The numbers are unchanged; only the labels are hidden.
    assert [g["count"] for g in masked] == [g["count"] for g in result["groups"]]
