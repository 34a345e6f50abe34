"""A version that becomes ready gets its fairness audit and explanation; the API reads and re-runs them."""

import io

import numpy as np
import pytest
from django.test import Client
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.metrics import accuracy_score

from accounts.models import Role
from core.models import Job, JobStatus
from datasets.models import DatasetVersion
from governance import analysis
from governance.models import AnalysisStatus, Explanation, FairnessReport
from registry import services
from registry.loading import estimator_load
from registry.models import VersionStatus
from tests.factories import ExperimentFactory, RunFactory
from tests.governance.conftest import register_checked, train
from tests.registry.conftest import register, store_model
from training.models import TrainingRun
from training.services import training_split

pytestmark = pytest.mark.django_db


def url(project, version=1, model="credit", what="fairness"):
    return f"/api/v1/projects/{project.slug}/models/{model}/versions/{version}/{what}/"


@pytest.fixture
def trained(editor, project, eager):
    return train(editor, project, eager)


@pytest.fixture
def ready_version(project, editor, trained, eager):
    run, dataset = trained
    version = register_checked(project, run, editor.user, eager)
    assert version.status == VersionStatus.READY, version.status_message
    return version


def test_the_held_out_split_is_the_training_jobs_own(ready_version, trained):
    run, _ = trained
    record = TrainingRun.objects.get(run=run)
    dataset = DatasetVersion.objects.get(pk=record.spec["dataset_version"])
    split = training_split(spec=record.spec, version=dataset, features=record.resolved_features,
                           extra_columns=["sex"])
    model = estimator_load(ready_version)
    # The metric the job logged on its test rows is reproduced on the re-derived rows.
    assert accuracy_score(split.y_test, model.predict(split.X_test)) == pytest.approx(
        ready_version.metrics["test_accuracy"], abs=1e-12)
    assert len(split.X_test) == 100 and list(split.extra_test.index) == list(split.X_test.index)


def test_a_ready_version_gets_a_fairness_audit_on_its_held_out_split(ready_version, trained, viewer, project):
    report = FairnessReport.objects.get(version=ready_version)
    assert report.status == AnalysisStatus.SUCCEEDED, report.error
    assert report.job.kind == "fairness_audit" and report.job.status == JobStatus.SUCCEEDED
    assert report.data_source["kind"] == "training_split" and report.data_source["rows"] == 100
    assert report.sensitive_features == ["sex", "housing"]

    body = viewer.get(url(project)).json()
    assert body["status"] == "succeeded"
    assert set(body["summary"]) == {"sex", "housing", "sex & housing"}
    assert {g["group"] for g in body["groups"] if g["feature"] == "sex"} == {"F", "M"}
    # The same numbers fairlearn gives for the job's test rows and the model's predictions.
    run, _ = trained
    record = TrainingRun.objects.get(run=run)
    dataset = DatasetVersion.objects.get(pk=record.spec["dataset_version"])
    split = training_split(spec=record.spec, version=dataset, features=record.resolved_features,
                           extra_columns=["sex", "housing"])
    predicted = estimator_load(ready_version).predict(split.X_test)
    for feature in ("sex", "housing"):
        groups = split.extra_test[feature]
        assert body["summary"][feature]["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(split.y_test, predicted, sensitive_features=groups), abs=1e-9)
        assert body["summary"][feature]["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(split.y_test, predicted, sensitive_features=groups), abs=1e-9)
    metrics = {(v["feature"], v["metric"]) for v in body["verdicts"]}
    assert ("sex", "demographic_parity_ratio") in metrics and ("sex", "equalized_odds_difference") in metrics
    assert body["thresholds"]["demographic_parity_ratio_min"] == 0.8


def test_a_ready_version_gets_an_explanation_whose_values_add_up(ready_version, viewer, project):
    explanation = Explanation.objects.get(version=ready_version)
    assert explanation.status == AnalysisStatus.SUCCEEDED, explanation.error
    body = viewer.get(url(project, what="explanation")).json()
    assert (body["status"], body["explainer"], body["output"]) == ("succeeded", "linear", "log_odds")
    assert body["additivity_ok"] is True
    assert set(body["global_importance"]) == {"income", "age", "housing"}
    assert body["row_count"] == 100 and len(body["rows"]) == 20
    model = estimator_load(ready_version)
    import pandas as pd

    for row in body["rows"][:5]:
        assert set(row["shap_values"]) == {"income", "age", "housing"}
        total = body["base_value"] + sum(row["shap_values"].values())
        assert total == pytest.approx(row["prediction"], abs=1e-9)
        frame = pd.DataFrame([row["input"]])
        assert model.decision_function(frame)[0] == pytest.approx(row["prediction"], abs=1e-9)
    assert "beeswarm" not in body
    swarm = viewer.get(url(project, what="explanation") + "?include=beeswarm").json()["beeswarm"]
    assert len(swarm["age"]["shap"]) == 100 and len(swarm["age"]["value"]) == 100


def test_both_read_200_with_a_status_while_the_version_is_being_checked(project, editor, trained, viewer):
    run, _ = trained
    services.model_version_create(project=project, model_name="credit", run=run, artifact_path="model",
                                  user=editor.user)  # its check job is queued, not run
    for what in ("fairness", "explanation"):
        response = viewer.get(url(project, what=what))
        assert response.status_code == 200
        assert response.json()["status"] == "waiting_for_checks"


def test_outsiders_get_404_and_viewers_cannot_rerun(ready_version, project, viewer, outsider):
    for what in ("fairness", "explanation"):
        assert outsider.get(url(project, what=what)).status_code == 404
        assert outsider.post(url(project, what=what), {}, format="json").status_code == 404
        assert viewer.post(url(project, what=what), {}, format="json").status_code == 403
    assert viewer.get(url(project, version=9)).status_code == 404


def test_an_editor_reruns_and_reads_queued_at_once_never_404(ready_version, project, editor):
    before = FairnessReport.objects.get(version=ready_version).job_id
    response = editor.post(url(project), {}, format="json")
    assert response.status_code == 202
    assert response.json()["status"] == "queued" and response.json()["groups"] == []
    report = FairnessReport.objects.get(version=ready_version)
    assert report.job_id != before and report.job.status == JobStatus.QUEUED
    assert editor.get(url(project)).json()["status"] == "queued"
    response = editor.post(url(project, what="explanation"), format="json")
    assert response.status_code == 202 and response.json()["status"] == "queued"


def test_a_replaced_job_does_not_overwrite_the_rerun(ready_version, project, editor):
    first = analysis.fairness_start(version=ready_version, user=editor.user)
    old_job = first.job_id
    second = analysis.fairness_start(version=ready_version, user=editor.user)
    analysis.fairness_compute(job_id=old_job)
    assert Job.objects.get(pk=old_job).result == {
        "skipped": "A newer audit of this version replaced this job."}
    report = FairnessReport.objects.get(version=ready_version)
    assert report.job_id == second.job_id and report.status == AnalysisStatus.QUEUED
    analysis.fairness_compute(job_id=second.job_id)
    analysis.fairness_compute(job_id=second.job_id)  # a redelivered message changes nothing
    report.refresh_from_db()
    assert report.status == AnalysisStatus.SUCCEEDED and Job.objects.get(pk=second.job_id).attempts == 1


def test_a_rerun_on_a_chosen_dataset_is_checked_naming_the_field(ready_version, project, editor, trained,
                                                                 eager):
    _, dataset = trained
    cases = [({"dataset_version": 99999, "target": "default", "sensitive_features": ["sex"]},
              "dataset_version"),
             ({"dataset_version": dataset["id"], "target": "nope", "sensitive_features": ["sex"]}, "target"),
             ({"dataset_version": dataset["id"], "target": "default", "sensitive_features": ["x"]},
              "sensitive_features"),
             ({"dataset_version": dataset["id"], "target": "default", "sensitive_features": ["sex"],
               "positive_label": 7}, "positive_label"),
             ({"dataset_version": "1"}, "dataset_version"),
             ({"colour": 1}, "colour")]
    job_before = FairnessReport.objects.get(version=ready_version).job_id
    for body, field in cases:
        response = editor.post(url(project), body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json()["error"]["fields"], response.json()
    assert FairnessReport.objects.get(version=ready_version).job_id == job_before  # nothing written
    with eager():
        response = editor.post(url(project), {"dataset_version": dataset["id"], "target": "default",
                                              "sensitive_features": ["sex"], "positive_label": 0},
                               format="json")
    assert response.status_code == 202
    body = editor.get(url(project)).json()
    assert body["status"] == "succeeded", body["error"]
    assert body["data_source"]["kind"] == "dataset_version" and body["data_source"]["rows"] == 400
    assert body["data_source"]["positive_label"] == 0 and list(body["summary"]) == ["sex"]


def test_pii_sensitive_groups_are_masked_for_viewers(project, editor, owner, viewer, eager):
    run, _ = train(editor, project, eager, pii_sex=True, owner=owner)
    register_checked(project, run, editor.user, eager)
    seen_by_editor = editor.get(url(project)).json()
    seen_by_viewer = viewer.get(url(project)).json()
    assert seen_by_editor["status"] == "succeeded", seen_by_editor["error"]
    assert {g["group"] for g in seen_by_editor["groups"] if g["feature"] == "sex"} == {"F", "M"}
    assert {g["group"] for g in seen_by_viewer["groups"] if g["feature"] == "sex"} == {"group 1", "group 2"}
    text = str(seen_by_viewer["groups"]) + str(seen_by_viewer["verdicts"])
    assert "'F'" not in text and "'M'" not in text and "F &" not in text
    housing = {g["group"] for g in seen_by_viewer["groups"] if g["feature"] == "housing"}
    assert housing == {"own", "rent", "other"}


def test_per_prediction_explanation_of_a_served_version(ready_version, project, viewer):
    records = [{"income": 52000.0, "age": 40, "housing": "own"},
               {"income": None, "age": 22, "housing": "rent"}]
    response = viewer.post(url(project, what="explanation/rows"), {"records": records}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["explainer"] == "linear" and body["output"] == "log_odds"
    import pandas as pd

    expected = estimator_load(ready_version).decision_function(pd.DataFrame(records))
    for row, value in zip(body["rows"], expected, strict=True):
        assert row["prediction"] == pytest.approx(value, abs=1e-9)
        assert body["base_value"] + sum(row["shap_values"].values()) == pytest.approx(value, abs=1e-9)
    bad = viewer.post(url(project, what="explanation/rows"), {"records": [{"income": 1.0, "age": 3}]},
                      format="json")
    assert bad.status_code == 400 and "housing" in bad.json()["error"]["fields"]
    too_many = viewer.post(url(project, what="explanation/rows"), {"records": records * 11}, format="json")
    assert too_many.status_code == 413


def test_an_untrusted_pickle_is_not_analysed_until_trusted_and_ready(project, editor, eager, settings,
                                                                     diabetes_ridge_joblib):
    from accounts import services as account_services  # noqa: F401
    from registry.models import TrustedModelHash
    from tests.factories import UserFactory

    settings.ALLOW_PICKLE_MODELS = True
    run = RunFactory(experiment=ExperimentFactory(project=project))
    data, X = diabetes_ridge_joblib
    store_model(run, None, folder="legacy", file_name="model.joblib", data=data, example=X.head(30))
    with eager():
        version = register(project=project, run=run, user=editor.user, path="legacy", name="legacy",
                           check=False)
    version.refresh_from_db()
    assert version.status == VersionStatus.PENDING_CHECKS
    assert not FairnessReport.objects.exists() and not Explanation.objects.exists()
    waiting = editor.get(url(project, model="legacy", what="explanation")).json()
    assert waiting["status"] == "waiting_for_checks"

    admin = UserFactory(is_staff=True)
    TrustedModelHash.objects.create(project=project, sha256=version.sha256, trusted_by=admin)
    with eager():
        services.model_version_check(job_id=services._check_enqueue(version=version, user=admin).pk)
    version.refresh_from_db()
    assert version.status == VersionStatus.READY
    # Logged from a script with no dataset: the audit says what it needs; the explanation uses the example.
    fairness = editor.get(url(project, model="legacy")).json()
    assert fairness["status"] == "failed" and "dataset version" in fairness["error"]
    explanation = editor.get(url(project, model="legacy", what="explanation")).json()
    assert explanation["status"] == "succeeded", explanation["error"]
    assert (explanation["explainer"], explanation["output"]) == ("linear", "value")
    assert explanation["data_source"]["kind"] == "input_example" and explanation["additivity_ok"]


@pytest.fixture
def diabetes_ridge_joblib():
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    buffer = io.BytesIO()
    joblib.dump(Ridge().fit(X, y), buffer)
    return buffer.getvalue(), X


def test_the_version_page_shows_both_with_their_charts(ready_version, project, member_client):
    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.VIEWER)
    client = Client()
    client.force_login(user)
    page = client.get(f"/p/{project.slug}/models/credit/v/1/").content.decode()
    assert 'id="fairness"' in page and 'id="explanation"' in page
    assert 'id="fairness-chart-data"' in page and 'id="explanation-chart-data"' in page
    assert "js/governance.js" in page and "vendor/plotly/plotly.min.js" in page
    assert "demographic" in page.lower() or "DP difference" in page
    assert np.isfinite(Explanation.objects.get(version=ready_version).base_value)


def test_editors_rerun_from_the_version_page_and_viewers_cannot(ready_version, project):
    from tests.factories import MembershipFactory, UserFactory

    clients = {}
    for role in (Role.VIEWER, Role.EDITOR):
        user = UserFactory()
        MembershipFactory(project=project, user=user, role=role)
        clients[role] = Client()
        clients[role].force_login(user)
    page = f"/p/{project.slug}/models/credit/v/1/"
    assert 'data-rerun="fairness"' not in clients[Role.VIEWER].get(page).content.decode()
    assert 'data-rerun="fairness"' in clients[Role.EDITOR].get(page).content.decode()
    before = FairnessReport.objects.get(version=ready_version).job_id
    assert clients[Role.VIEWER].post(page + "fairness/rerun/").status_code == 403
    assert FairnessReport.objects.get(version=ready_version).job_id == before
    response = clients[Role.EDITOR].post(page + "fairness/rerun/")
    assert response.status_code == 302 and response["Location"].endswith("#fairness")
    report = FairnessReport.objects.get(version=ready_version)
    assert report.job_id != before and report.status == AnalysisStatus.QUEUED
    response = clients[Role.EDITOR].post(page + "explanation/rerun/")
    assert Explanation.objects.get(version=ready_version).status == AnalysisStatus.QUEUED
    assert clients[Role.EDITOR].get(page + "fairness/rerun/").status_code == 405


def test_a_regression_version_is_audited_by_error_and_mean_prediction(project, editor, eager):
    from tests.datasets import test_datasets as ds

    with eager():
        dataset = ds.upload(editor, project.slug, "credit", ds.csv_bytes(ds.credit_frame())).json()
    spec = {"dataset_version": dataset["id"], "target": "age", "features": ["income", "housing"],
            "sensitive_features": ["sex"], "task": "regression", "estimator": "Ridge", "params": {},
            "split": {"test_size": 0.25, "stratify": False, "seed": 1}, "metrics": ["mae"]}
    with eager():
        response = editor.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                               {"experiment": "age", "spec": spec}, format="json")
    run_id = Job.objects.get(pk=response.json()["id"]).result["run_id"]
    from experiments.models import Run

    version = register_checked(project, Run.objects.get(pk=run_id), editor.user, eager, name="age")
    body = editor.get(url(project, model="age")).json()
    assert body["status"] == "succeeded", body["error"]
    assert body["task"] == "regression" and list(body["summary"]) == ["sex"]
    assert {"mean_prediction_difference", "mean_absolute_error_difference"} <= set(body["summary"]["sex"])
    group = body["groups"][0]
    assert {"mean_prediction", "mean_absolute_error", "root_mean_squared_error"} <= set(group)
    assert all(v["metric"] == "small_groups" for v in body["verdicts"])  # parity thresholds judge classifiers
    explanation = editor.get(url(project, model="age", what="explanation")).json()
    assert (explanation["explainer"], explanation["output"]) == ("linear", "value")
    assert version.output_kind == "regression"


def test_an_analysis_that_crashes_fails_its_row_not_the_check_that_made_the_version_ready(
        project, editor, trained, eager, monkeypatch):
    from governance import explain

    def crash(**kwargs):
        raise RuntimeError("the explainer broke")

    monkeypatch.setattr(explain, "explain", crash)
    run, _ = trained
    version = register_checked(project, run, editor.user, eager)  # checks and analyses run inline here
    assert version.status == VersionStatus.READY
    explanation = Explanation.objects.get(version=version)
    assert explanation.status == AnalysisStatus.FAILED
    assert "RuntimeError: the explainer broke" in explanation.error
    assert explanation.job.status == JobStatus.FAILED
    assert FairnessReport.objects.get(version=version).status == AnalysisStatus.SUCCEEDED
