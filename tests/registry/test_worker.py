"""A real Celery worker checks a registered version and scores a dataset with it.

The worker is a subprocess on the broker in CELERY_BROKER_URL (the embedded
filesystem broker when unset), reading a queue of this test's own, against this
test run's database, with the artifacts folder shared through ARTIFACT_ROOT.
"""

import pickle

import numpy as np
import pytest
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from core.models import Job
from datasets.models import DatasetVersion
from registry.models import ModelVersion
from tests.datasets.test_datasets import csv_bytes, upload
from tests.factories import ExperimentFactory, MembershipFactory, ProjectFactory, RunFactory, UserFactory
from tests.registry.conftest import store_model
from tests.registry.test_safe_loading import Booby
from tests.workers import wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def setup(transactional_db, queue, start_worker):
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.OWNER)
    _, raw = account_services.api_token_create(user=user, name="worker")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    worker = start_worker(queue)
    run = RunFactory(experiment=ExperimentFactory(project=project))
    return project, client, worker, run


def _finished(job_id, worker):
    job, _ = wait_for_job(job_id, lambda j: j.is_final, worker, "finished")
    return job


def test_a_worker_checks_a_version_and_scores_a_dataset(setup, forest, cancer_data, tmp_path):
    project, client, worker, run = setup
    X, _ = cancer_data
    store_model(run, forest, example=X.head(100))
    response = client.post(f"/api/v1/projects/{project.slug}/models/scorer/versions/",
                           {"run_id": str(run.pk)}, format="json")
    assert response.status_code == 201
    check = _finished(response.json()["check_job_id"], worker)
    assert check.status == "succeeded", (check.error, worker.log())
    version = ModelVersion.objects.get(model__name="scorer", version=1)
    assert (version.status, version.runtime) == ("ready", "onnx")

    frame = X.head(300).copy()
    frame.insert(0, "patient", np.arange(300))
    dataset = upload(client, project.slug, "patients", csv_bytes(frame)).json()
    response = client.post(f"/api/v1/projects/{project.slug}/models/scorer/versions/1/batch-score/",
                           {"dataset_version_id": dataset["id"]}, format="json")
    assert response.status_code == 202
    job = _finished(response.json()["id"], worker)
    assert job.status == "succeeded", (job.error, worker.log())
    assert job.progress == 100 and job.result["rows"] == 300
    assert "batch_score_task" in worker.log()
    output = DatasetVersion.objects.get(pk=job.result["dataset_version_id"])
    assert output.row_count == 300

    # The worker never unpickles a pickle either: with pickles off (the default) its checks fail.
    trap = tmp_path / "pwned.txt"
    store_model(run, None, folder="evil", file_name="model.pkl", data=pickle.dumps(Booby(trap)),
                example=X.head(5))
    response = client.post(f"/api/v1/projects/{project.slug}/models/scorer/versions/",
                           {"run_id": str(run.pk), "artifact_path": "evil"}, format="json")
    check = _finished(response.json()["check_job_id"], worker)
    assert check.status == "failed" and "off on this server" in check.error
    version = ModelVersion.objects.get(model__name="scorer", version=2)
    assert version.status == "failed" and "skops" in version.status_message
    assert not trap.exists()
    assert Job.objects.filter(kind="model_version_check").count() == 2
