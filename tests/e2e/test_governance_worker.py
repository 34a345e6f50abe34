"""A real Celery worker audits and explains a version registered from a training job, on its own.

Nothing but the API is driven here: the worker trains, checks the registered version, and the
version becoming ready queues the fairness audit and the explanation, which the same worker runs.
"""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from governance.models import AnalysisStatus, Explanation, FairnessReport
from tests.datasets.test_datasets import credit_frame, csv_bytes
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.workers import JOB_TIMEOUT, wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_registered_version_gets_both_reports_from_a_real_worker(artifact_root, queue, start_worker):
    user = UserFactory()
    project = ProjectFactory()
    MembershipFactory(project=project, user=user, role=Role.EDITOR)
    _, raw = account_services.api_token_create(user=user, name="e2e")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    data = csv_bytes(credit_frame())
    dataset = client.generic("POST", f"/api/v1/projects/{project.slug}/datasets/credit/versions/", data,
                             content_type="text/csv", CONTENT_LENGTH=str(len(data))).json()
    worker = start_worker(queue)
    spec = {"dataset_version": dataset["id"], "target": "default", "features": ["income", "age", "housing"],
            "sensitive_features": ["sex"], "task": "classification",
            "estimator": "HistGradientBoostingClassifier", "params": {"max_iter": 30},
            "split": {"test_size": 0.25, "stratify": True, "seed": 3}, "metrics": ["accuracy"]}
    response = client.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                           {"experiment": "credit", "spec": spec}, format="json")
    job, _ = wait_for_job(response.json()["id"], lambda j: j.is_final, worker, "trained")
    assert job.status == "succeeded", (job.error, worker.log())

    base = f"/api/v1/projects/{project.slug}/models/credit/versions/"
    response = client.post(base, {"run_id": job.result["run_id"]}, format="json")
    assert response.status_code == 201, response.content
    # Readable at once, whatever the worker is doing: never a 404.
    assert client.get(base + "1/fairness/").status_code == 200

    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        states = set(FairnessReport.objects.values_list("status", flat=True)) | set(
            Explanation.objects.values_list("status", flat=True))
        if FairnessReport.objects.exists() and Explanation.objects.exists() and \
                states <= {AnalysisStatus.SUCCEEDED, AnalysisStatus.FAILED}:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"The analyses never finished; worker log:\n{worker.log()}")

    fairness = client.get(base + "1/fairness/").json()
    assert fairness["status"] == "succeeded", (fairness["error"], worker.log())
    assert fairness["job"]["status"] == "succeeded" and fairness["job"]["progress"] == 100
    assert fairness["data_source"]["kind"] == "training_split" and fairness["data_source"]["rows"] == 100
    assert {g["group"] for g in fairness["groups"]} == {"F", "M"}
    explanation = client.get(base + "1/explanation/").json()
    assert explanation["status"] == "succeeded", (explanation["error"], worker.log())
    assert (explanation["explainer"], explanation["output"]) == ("tree", "log_odds")
    assert explanation["additivity_ok"] is True
    row = explanation["rows"][0]
    assert explanation["base_value"] + sum(row["shap_values"].values()) == pytest.approx(row["prediction"],
                                                                                        abs=1e-6)
    log = worker.log()
    assert "fairness_audit_task" in log and "explanation_task" in log
