"""Fairness reports and explanations through the SDK against a real server (jobs run eagerly there)."""

from __future__ import annotations

import pytest
import steward

from tests.datasets.test_datasets import credit_frame
from tests.sdk.conftest import account, sdk_sandbox, steward_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.live


def test_get_fairness_report_and_explanation_of_a_logged_model(steward_server, account):  # noqa: F811
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = credit_frame()
    X = frame[["income", "age"]].fillna(0)
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=10, random_state=0))
    model.fit(X, frame["default"])
    steward.configure(url=steward_server.url, token=account.token, project=account.project)
    with steward.start_run(experiment="models") as run:
        version = run.log_model(model, registered_model="credit", input_example=X.head(200))
    assert version.ready

    client = steward.Client(url=steward_server.url, token=account.token)
    explanation = client.get_explanation(account.project, "credit", 1, wait=True)
    assert {"status", "explainer", "output", "base_value", "global_importance", "rows",
            "additivity_ok"} <= set(explanation)
    assert (explanation["status"], explanation["explainer"], explanation["output"]) == (
        "succeeded", "tree", "probability")
    row = explanation["rows"][0]
    assert set(row) == {"input", "shap_values", "prediction"}
    assert explanation["base_value"] + sum(row["shap_values"].values()) == pytest.approx(row["prediction"])
    importance = list(explanation["global_importance"].values())
    assert importance == sorted(importance, reverse=True)
    import pandas as pd

    inputs = pd.DataFrame([row["input"]])[["income", "age"]]
    assert row["prediction"] == pytest.approx(model.predict_proba(inputs)[0, 1])

    # Logged from a script with no dataset: the audit says what it needs, then runs on one.
    report = client.get_fairness_report(account.project, "credit", 1, wait=True)
    assert report["status"] == "failed" and "dataset version" in report["error"]
    dataset = client.create_dataset_version(account.project, "credit", frame)
    client.rerun_fairness_report(account.project, "credit", 1, dataset_version=dataset.id,
                                 target="default", sensitive_features=["sex", "housing"])
    report = client.get_fairness_report(account.project, "credit", 1, wait=True)
    assert report["status"] == "succeeded", report["error"]
    assert {"status", "groups", "summary", "verdicts"} <= set(report)
    assert set(report["summary"]) == {"sex", "housing", "sex & housing"}
    assert {"demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
            "equalized_odds_ratio"} <= set(report["summary"]["sex"])
    group = report["groups"][0]
    assert {"feature", "group", "count", "selection_rate"} <= set(group)

    one = client.explain_records(account.project, "credit", 1, X.head(2))
    assert len(one["rows"]) == 2 and one["output"] == "probability"
    client.close()
