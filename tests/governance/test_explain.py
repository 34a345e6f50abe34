"""SHAP values of whole pipelines, by input column: the base value plus the values is the named output."""

import numpy as np
import pandas as pd
import pytest

from governance.explain import explain, global_importance, named_output
from training.services import build_pipeline


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 500
    X = pd.DataFrame({"income": rng.normal(50, 10, n), "age": rng.integers(18, 80, n),
                      "housing": rng.choice(["rent", "own", "other"], n)})
    X.loc[:9, "income"] = np.nan
    score = X["income"].fillna(50) / 10 + X["age"] / 40 + (X["housing"] == "own") + rng.normal(0, 0.5, n)
    return X, (score > np.median(score)).astype(int), score


CASES = [
    ("HistGradientBoostingClassifier", "tree", "log_odds"),
    ("RandomForestClassifier", "tree", "probability"),
    ("LogisticRegression", "linear", "log_odds"),
    ("KNeighborsClassifier", "permutation", "probability"),
    ("GradientBoostingRegressor", "tree", "value"),
    ("Ridge", "linear", "value"),
    ("KNeighborsRegressor", "permutation", "value"),
]


@pytest.mark.parametrize(("estimator", "explainer", "output"), CASES)
def test_base_value_plus_shap_values_is_the_named_output(frame, estimator, explainer, output):
    X, label, score = frame
    regression = estimator.endswith("Regressor") or estimator == "Ridge"
    pipeline = build_pipeline(estimator=estimator, params={}, seed=0, numeric=["income", "age"],
                              categorical=["housing"]).fit(X, score if regression else label)
    rows = X.head(40)
    classes = [] if regression else [0, 1]
    explained = explain(estimator=pipeline, X=rows, background=X.sample(30, random_state=1), classes=classes)
    assert (explained.explainer, explained.output) == (explainer, output)
    # One value per input column: the one-hot outputs of "housing" are summed back into it.
    assert explained.columns == ["income", "age", "housing"]
    assert explained.values.shape == (40, 3)
    # The prediction is the named output of the whole pipeline, computed independently here.
    if output == "probability":
        expected = pipeline.predict_proba(rows)[:, 1]
    elif output == "log_odds":
        expected = pipeline.decision_function(rows)
    else:
        expected = pipeline.predict(rows)
    np.testing.assert_allclose(explained.predictions, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(explained.base_value + explained.values.sum(axis=1), expected, atol=1e-6)
    assert explained.additivity_ok
    if output == "log_odds":
        # Log-odds, not probabilities: the sums leave [0, 1].
        assert (np.abs(expected) > 1).any()


def test_linear_shap_values_are_the_coefficient_times_the_distance_from_the_background_mean(frame):
    X, label, _ = frame
    numeric = X[["income", "age"]].fillna(50)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=1000).fit(numeric, label)
    background = numeric.sample(100, random_state=0)
    explained = explain(estimator=model, X=numeric.head(5), background=background, classes=[0, 1])
    assert explained.explainer == "linear"
    expected = (numeric.head(5).to_numpy() - background.to_numpy().mean(axis=0)) * model.coef_[0]
    np.testing.assert_allclose(explained.values, expected, atol=1e-9)


def test_importance_ranks_the_column_the_model_uses(frame):
    X, _, _ = frame
    rng = np.random.default_rng(1)
    target = X["age"] * 3 + rng.normal(0, 0.1, len(X))
    pipeline = build_pipeline(estimator="RandomForestRegressor", params={"n_estimators": 20}, seed=0,
                              numeric=["income", "age"], categorical=["housing"]).fit(X, target)
    explained = explain(estimator=pipeline, X=X.head(100), background=None, classes=[])
    assert list(global_importance(explained))[0] == "age"


def test_named_output_of_a_multiclass_model_is_one_class_probability(frame):
    X, _, score = frame
    labels = pd.cut(score, 3, labels=["low", "mid", "high"]).astype(str)
    pipeline = build_pipeline(estimator="HistGradientBoostingClassifier", params={"max_iter": 20}, seed=0,
                              numeric=["income", "age"], categorical=["housing"]).fit(X, labels)
    classes = list(pipeline.classes_)
    explained = explain(estimator=pipeline, X=X.head(20), background=X.sample(20, random_state=0),
                        classes=classes, explained_class="mid")
    assert explained.output == "probability" and explained.explained_class == "mid"
    expected = named_output(pipeline, X.head(20), "probability", classes.index("mid"), True)
    np.testing.assert_allclose(explained.base_value + explained.values.sum(axis=1), expected, atol=1e-6)
