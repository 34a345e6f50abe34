"""Models trained by Steward's own training jobs: registered from the run, served, logged."""

import pytest

from accounts.models import Role
from core.models import Job, JobStatus
from experiments.models import Run
from registry import prediction_log, services
from registry.loading import estimator_load
from registry.models import PredictionLog, VersionStatus
from tests.datasets import test_datasets as ds

pytestmark = pytest.mark.django_db
eager = ds.eager


@pytest.fixture
def trained_run(editor, owner, project, eager):
    frame = ds.credit_frame()
    with eager():
        version = ds.upload(editor, project.slug, "credit", ds.csv_bytes(frame)).json()
    response = owner.patch(f"/api/v1/dataset-versions/{version['id']}/columns/",
                           {"columns": {"customer_id": {"role": "id", "pii": True}}}, format="json")
    assert response.status_code == 200, response.content
    spec = {"dataset_version": version["id"], "target": "default", "features": ["income", "age", "housing"],
            "sensitive_features": [], "task": "classification", "estimator": "LogisticRegression",
            "params": {}, "split": {"test_size": 0.25, "stratify": True, "seed": 7}, "metrics": ["accuracy"]}
    with eager():
        response = editor.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                               {"experiment": "credit", "spec": spec}, format="json")
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    return Run.objects.get(pk=job.result["run_id"]), version, frame


def test_a_trained_pipeline_is_registered_verified_and_served(project, editor, trained_run):
    run, dataset, frame = trained_run
    version = services.model_version_create(project=project, model_name="credit", run=run,
                                            artifact_path="model", user=editor.user)
    services.model_version_check(job_id=version.check_job_id)
    version.refresh_from_db()
    assert version.status == VersionStatus.READY, version.status_message
    assert version.training_dataset_version_id == dataset["id"]
    columns = {c["name"]: c for c in version.columns}
    assert list(columns) == ["income", "age", "housing"]
    assert (columns["income"]["dtype"], columns["income"]["nullable"]) == ("double", True)
    assert (columns["age"]["dtype"], columns["age"]["nullable"]) == ("long", False)
    assert columns["housing"]["dtype"] == "string"
    assert version.verification.get("rows") == 400, (version.runtime_reason, version.verification)
    assert version.runtime in ("onnx", "sklearn") and version.runtime_reason
    assert version.metrics["test_accuracy"] > 0.5

    rows = frame[["income", "age", "housing"]].head(5)
    records = [{"income": None if r.income != r.income else float(r.income), "age": int(r.age),
                "housing": r.housing} for r in rows.itertuples()]
    response = editor.post(f"/api/v1/serve/{project.slug}/credit/1/predict", {"records": records},
                           format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    pipeline = estimator_load(version)
    assert body["predictions"] == pipeline.predict(rows).tolist()
    assert body["classes"] == [0, 1]

    bad = dict(records[0], age=30.5)
    response = editor.post(f"/api/v1/serve/{project.slug}/credit/1/predict", {"records": [bad]},
                           format="json")
    assert response.status_code == 400
    assert "age" in response.json()["error"]["fields"]


def test_pii_flags_of_the_training_data_keep_columns_out_of_the_log(project, editor, trained_run, eager):
    run, dataset, frame = trained_run
    # A model whose input includes the PII-flagged customer_id, which the spec must opt in to.
    spec = {"dataset_version": dataset["id"], "target": "default", "allow_pii_features": True,
            "features": ["customer_id", "income", "age"], "sensitive_features": [],
            "task": "classification", "estimator": "LogisticRegression", "params": {},
            "split": {"test_size": 0.25, "stratify": True, "seed": 7}, "metrics": ["accuracy"]}
    with eager():
        response = editor.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                               {"experiment": "credit", "spec": spec}, format="json")
    run = Run.objects.get(pk=Job.objects.get(pk=response.json()["id"]).result["run_id"])
    version = services.model_version_create(project=project, model_name="with-id", run=run,
                                            artifact_path="model", user=editor.user)
    services.model_version_check(job_id=version.check_job_id)
    version.refresh_from_db()
    assert [c["name"] for c in version.columns if c["pii"]] == ["customer_id"]
    # Example rows kept for the page never show a PII value.
    assert all(row[0] is None for row in version.example["data"])
    record = {"customer_id": 17, "income": 52000.0, "age": 40}
    response = editor.post(f"/api/v1/serve/{project.slug}/with-id/1/predict", {"records": [record]},
                           format="json")
    assert response.status_code == 200, response.json()
    prediction_log.prediction_log_flush()
    assert PredictionLog.objects.get().row_get(0)["inputs"] == {"income": 52000.0, "age": 40}


def test_viewers_cannot_register(project, member_client, trained_run):
    run, _, _ = trained_run
    viewer = member_client(Role.VIEWER)
    response = viewer.post(f"/api/v1/projects/{project.slug}/models/credit/versions/",
                           {"run_id": str(run.pk)}, format="json")
    assert response.status_code == 403


def test_a_trained_pipeline_with_text_columns_is_served_by_onnx(project, editor, trained_run):
    run, _, frame = trained_run
    version = services.model_version_create(project=project, model_name="credit", run=run,
                                            artifact_path="model", user=editor.user)
    services.model_version_check(job_id=version.check_job_id)
    version.refresh_from_db()
    # The imputers are done outside the graph; the rest runs in ONNX Runtime, numbers in double.
    assert version.runtime == "onnx", version.runtime_reason
    assert version.signature["input_mode"] == "columns"
    fills = version.signature["onnx_fills"]
    assert set(fills) == {"housing", "income", "age"} and fills["housing"] == "rent"
    assert fills["income"] == pytest.approx(frame["income"].median(), rel=0.05)
    pipeline = estimator_load(version)
    rows = [{"income": None, "age": 33, "housing": "other"}, {"income": 61000.5, "age": 58, "housing": "own"},
            {"income": 20000.0, "age": 19, "housing": "castle"}]
    body = editor.post(f"/api/v1/serve/{project.slug}/credit/1/predict", {"records": rows},
                       format="json").json()
    import numpy as np
    import pandas as pd

    expected = pd.DataFrame(rows).replace({None: np.nan}).astype({"housing": object})
    assert body.get("runtime") == "onnx", body
    assert body["predictions"] == pipeline.predict(expected).tolist()
    assert np.abs(np.array(body["probabilities"]) - pipeline.predict_proba(expected)).max() <= 1e-5
