"""Cancelling a training job stops its fit on a real worker, which then takes the next job.

The worker is a subprocess reading a queue of this test's own (tests/workers.py),
against this test run's database, sharing the artifacts folder through ARTIFACT_ROOT.
A fit that would run for many minutes must end as `cancelled` well within the
harness's wait, with no run and no stored file, and the worker must stay usable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from core.models import Job, JobStatus
from experiments.models import Artifact, Run
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.training.test_training import breast_cancer_frame
from tests.workers import wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def api(transactional_db, artifact_root, queue):
    user = UserFactory()
    project = ProjectFactory()
    MembershipFactory(project=project, user=user, role=Role.EDITOR)
    _, raw = account_services.api_token_create(user=user, name="cancel")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, project


def upload(client, project, name: str, df: pd.DataFrame) -> dict:
    data = df.to_csv(index=False).encode()
    response = client.generic("POST", f"/api/v1/projects/{project.slug}/datasets/{name}/versions/", data,
                              content_type="text/csv", CONTENT_LENGTH=str(len(data)))
    assert response.status_code == 201, response.content
    return response.json()


def spec_for(version: dict, target: str, estimator: str, params: dict) -> dict:
    return {"dataset_version": version["id"], "target": target, "task": "classification",
            "estimator": estimator, "params": params, "split": {"test_size": 0.25, "seed": 7},
            "metrics": ["accuracy"]}


def submit(client, project, spec: dict) -> int:
    response = client.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                           {"experiment": "cancel", "spec": spec}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def cancel_mid_fit(client, job_id: int, worker) -> Job:
    wait_for_job(job_id, lambda j: j.status == JobStatus.RUNNING and j.message.startswith("Fitting"),
                 worker, "started fitting")
    response = client.post(f"/api/v1/jobs/{job_id}/cancel/")
    assert response.status_code == 200, response.content
    job, _ = wait_for_job(job_id, lambda j: j.is_final, worker, "ended after the cancel")
    return job


def assert_nothing_stored(artifact_root) -> None:
    assert not Run.objects.exists() and not Artifact.objects.exists()
    runs_dir = artifact_root / "runs"
    assert not runs_dir.exists() or not any(p.is_file() for p in runs_dir.rglob("*"))


def assert_takes_the_next_job(client, project, version: dict, worker) -> None:
    job_id = submit(client, project, spec_for(version, "malignant", "RandomForestClassifier",
                                              {"n_estimators": 10}))
    job, _ = wait_for_job(job_id, lambda j: j.is_final, worker, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, worker.log())
    assert Run.objects.filter(pk=job.result["run_id"]).exists()


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_cancel_stops_a_long_fit_and_the_worker_takes_the_next_job(api, start_worker, queue, artifact_root,
                                                                   pool):
    client, project = api
    worker = start_worker(queue, pool=pool)
    version = upload(client, project, "cancer", breast_cancer_frame())
    # A million boosting stages would take far longer than the harness waits for the job to end.
    job_id = submit(client, project, spec_for(version, "malignant", "GradientBoostingClassifier",
                                              {"n_estimators": 1_000_000, "max_depth": 3}))
    job = cancel_mid_fit(client, job_id, worker)

    assert job.status == JobStatus.CANCELLED, (job.status, job.error, worker.log())
    assert job.message == "Cancelled during the fit" and job.finished_at is not None
    assert job.error == ""
    assert_nothing_stored(artifact_root)
    assert worker.process.poll() is None
    assert_takes_the_next_job(client, project, version, worker)


def test_cancel_ends_a_fit_stuck_in_c_code_and_the_pool_replaces_the_process(api, start_worker, queue,
                                                                             artifact_root):
    client, project = api
    worker = start_worker(queue, pool="prefork")
    rng = np.random.default_rng(0)
    noise = pd.DataFrame(rng.normal(size=(4000, 10)), columns=[f"x{i}" for i in range(10)])
    noise["label"] = rng.integers(0, 2, len(noise))
    noisy = upload(client, project, "noise", noise)
    cancer = upload(client, project, "cancer", breast_cancer_frame())
    # Random labels, a huge C, a tiny tolerance and a 1 MB kernel cache: one libsvm call
    # that runs for minutes without returning to Python.
    job_id = submit(client, project, spec_for(noisy, "label", "SVC",
                                              {"C": 1e6, "tol": 1e-12, "cache_size": 1}))
    job = cancel_mid_fit(client, job_id, worker)

    assert job.status == JobStatus.CANCELLED, (job.status, job.error, worker.log())
    assert "ending its worker process" in job.message
    assert_nothing_stored(artifact_root)
    assert worker.process.poll() is None
    assert_takes_the_next_job(client, project, cancer, worker)
    # Its message goes back to the queue (acks_late) and the new pool process skips it.
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts) == (JobStatus.CANCELLED, 1)


def test_cancelling_a_sweep_stops_its_running_trial(api, start_worker, queue, artifact_root):
    client, project = api
    worker = start_worker(queue)
    version = upload(client, project, "cancer", breast_cancer_frame())
    spec = spec_for(version, "malignant", "GradientBoostingClassifier", {"max_depth": 3})
    response = client.post(f"/api/v1/projects/{project.slug}/sweeps/", {
        "experiment": "sweep", "spec": spec, "parallelism": 1,
        "search": {"strategy": "grid", "space": {"n_estimators": [1_000_000, 10]}}}, format="json")
    assert response.status_code == 201, response.content
    sweep_id = response.json()["id"]
    job_id = Job.objects.get(kind="training").pk
    wait_for_job(job_id, lambda j: j.status == JobStatus.RUNNING and j.message.startswith("Fitting"),
                 worker, "started fitting")
    assert client.post(f"/api/v1/sweeps/{sweep_id}/cancel/").status_code == 200

    job, _ = wait_for_job(job_id, lambda j: j.is_final, worker, "ended after the sweep was cancelled")
    assert job.status == JobStatus.CANCELLED, (job.status, job.error, worker.log())
    sweep = client.get(f"/api/v1/sweeps/{sweep_id}/").json()
    assert sweep["status"] == "cancelled"
    assert (sweep["progress"]["cancelled"], sweep["progress"]["pending"]) == (1, 1)
    assert_nothing_stored(artifact_root)
    assert_takes_the_next_job(client, project, version, worker)
