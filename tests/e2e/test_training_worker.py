"""A real Celery worker trains from a submitted spec; a worker killed mid-fit loses nothing.

The worker is a subprocess on the broker in CELERY_BROKER_URL (the embedded
filesystem broker when unset), reading a queue of this test's own, against
this test run's database, with the artifacts folder shared through ARTIFACT_ROOT.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from core import jobs
from core.models import Job, JobStatus
from experiments.models import Run
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.training.test_training import breast_cancer_frame
from tests.workers import wait_for_job
from training.models import TrainingRun

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

@pytest.fixture
def start_worker(start_worker, queue):
    """Workers reading this test's queue (overrides the shared fixture, which takes a queue)."""
    return lambda: start_worker(queue)


@pytest.fixture
def api(transactional_db, artifact_root, queue):
    user = UserFactory()
    project = ProjectFactory()
    MembershipFactory(project=project, user=user, role=Role.EDITOR)
    _, raw = account_services.api_token_create(user=user, name="e2e")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    data = breast_cancer_frame().to_csv(index=False).encode()
    version = client.generic("POST", f"/api/v1/projects/{project.slug}/datasets/cancer/versions/", data,
                             content_type="text/csv", CONTENT_LENGTH=str(len(data)))
    assert version.status_code == 201, version.content
    return client, project, version.json()


def _spec(version, **params):
    return {"dataset_version": version["id"], "target": "malignant", "features": None,
            "sensitive_features": ["sex"], "task": "classification", "estimator": "RandomForestClassifier",
            "params": params, "split": {"test_size": 0.25, "stratify": True, "seed": 7},
            "metrics": ["accuracy", "roc_auc"]}


def test_worker_trains_from_a_submitted_spec(api, start_worker):
    client, project, version = api
    worker = start_worker()
    response = client.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                           {"experiment": "e2e", "spec": _spec(version, n_estimators=50)}, format="json")
    assert response.status_code == 202, response.content
    job, seen = wait_for_job(response.json()["id"], lambda j: j.is_final, worker, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, worker.log())
    assert "running" in seen and job.progress == 100
    assert "Fitted" in job.log and "test_accuracy=" in job.log

    run = client.get(f"/api/v1/runs/{job.result['run_id']}/").json()
    assert run["status"] == "FINISHED"
    assert run["metrics"]["test_accuracy"]["value"] > 0.9
    assert run["params"]["n_estimators"] == "50"
    stored = set(Run.objects.get(pk=run["id"]).artifacts.values_list("path", flat=True))
    assert {"model/model.skops", "plots/confusion_matrix.json", "plots/roc_curve.json"} <= stored
    model = client.get(f"/api/v1/runs/{run['id']}/artifacts/model/model.skops")
    assert model.status_code == 200 and b"".join(model.streaming_content)[:2] == b"PK"  # a skops zip
    spec = client.get(f"/api/v1/runs/{run['id']}/training/").json()["spec"]
    # The record states the PII opt-in even when the spec left it out.
    assert spec == json.loads(json.dumps(_spec(version, n_estimators=50) | {"allow_pii_features": False}))

    # The profile job queued by the upload ran on the same worker.
    profile_job = Job.objects.get(kind="dataset_profile")
    assert profile_job.status == JobStatus.SUCCEEDED, profile_job.error


def test_training_killed_mid_fit_is_requeued_and_finished_once(api, start_worker):
    client, project, version = api
    first = start_worker()
    response = client.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                           {"experiment": "e2e", "spec": _spec(version, n_estimators=300)}, format="json")
    job_id = response.json()["id"]
    wait_for_job(job_id, lambda j: j.status == JobStatus.RUNNING and j.message.startswith("Fitting"),
              first, "started fitting")
    first.kill()
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.RUNNING and job.attempts == 1
    assert not Run.objects.exists()  # nothing half-made: the run is written only after training

    later = timezone.now() + dt.timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS + 5)
    assert jobs.jobs_reap_stale(now=later) == {"requeued": 1, "failed": 0}
    second = start_worker()
    job, _ = wait_for_job(job_id, lambda j: j.is_final, second, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, second.log())
    assert job.attempts == 2
    assert Run.objects.count() == 1 and TrainingRun.objects.get().job_id == job_id
