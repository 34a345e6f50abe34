"""Real Celery workers: jobs beat in every phase, a re-queued attempt that lives on stops
writing, and a worker recovers the jobs of a dead one as it starts (no beat needed).

Training with a k-nearest-neighbours model makes the phase after the fit long:
its fit only stores the rows, and computing its metrics (predicting every
training row with a ball tree) takes seconds with no progress report.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from core import jobs
from core.models import Job, JobStatus
from experiments import services
from experiments.models import Run
from tests.factories import MembershipFactory, ProjectFactory, RunFactory, UserFactory
from tests.workers import wait_for_job
from training.models import TrainingRun

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STALE_SECONDS = 4  # a beat a second


@pytest.fixture
def api(transactional_db, artifact_root):
    user = UserFactory()
    project = ProjectFactory()
    MembershipFactory(project=project, user=user, role=Role.EDITOR)
    _, raw = account_services.api_token_create(user=user, name="e2e")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    rng = np.random.default_rng(0)
    features = rng.normal(size=(12_000, 32))
    frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(32)])
    frame["label"] = np.where(features[:, 0] + rng.normal(0, 0.5, len(frame)) > 0, "yes", "no")
    data = frame.to_csv(index=False).encode()
    version = client.generic("POST", f"/api/v1/projects/{project.slug}/datasets/points/versions/", data,
                             content_type="text/csv", CONTENT_LENGTH=str(len(data)))
    assert version.status_code == 201, version.content
    return client, project, version.json()["id"]


def _submit_knn(client, project, version_id) -> int:
    spec = {"dataset_version": version_id, "target": "label", "task": "classification",
            "estimator": "KNeighborsClassifier", "params": {"algorithm": "ball_tree", "n_neighbors": 15},
            "split": {"test_size": 0.25, "stratify": False, "seed": 1}, "metrics": ["accuracy"]}
    response = client.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                           {"experiment": "knn", "spec": spec}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _in_metrics_phase(job: Job) -> bool:
    return job.status == JobStatus.RUNNING and job.message.startswith("Computing metrics")


def test_a_job_beats_through_a_long_phase_without_progress_and_is_never_reaped(
        api, queue, start_worker, settings):
    settings.JOB_STALE_AFTER_SECONDS = STALE_SECONDS
    client, project, version_id = api
    worker = start_worker(queue, env={"JOB_STALE_AFTER_SECONDS": str(STALE_SECONDS)})
    job_id = _submit_knn(client, project, version_id)
    wait_for_job(job_id, _in_metrics_phase, worker, "reached its metrics")

    beats, phase_started = set(), time.monotonic()
    while True:
        job = Job.objects.get(pk=job_id)
        if not _in_metrics_phase(job):
            break
        assert job.progress == 70  # no progress report in this phase...
        beats.add(job.heartbeat_at)
        # ...yet the reaper (as beat runs it, every few seconds here) never takes it for dead.
        assert jobs.jobs_reap_stale() == {"requeued": 0, "failed": 0}
        time.sleep(0.2)
    phase_seconds = time.monotonic() - phase_started

    job, _ = wait_for_job(job_id, lambda j: j.is_final, worker, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, worker.log())
    assert job.attempts == 1 and Run.objects.count() == 1
    assert phase_seconds > 2, f"the metrics phase took {phase_seconds:.1f} s, too short to show beats"
    assert len(beats) >= 2, f"no heartbeat in {phase_seconds:.1f} s of computing metrics"


def test_a_reaped_attempt_that_lives_on_stops_and_only_the_new_one_stores_a_run(
        api, queues, start_worker):
    client, project, version_id = api
    first_queue, second_queue = queues.new(), queues.new()
    queues.route(first_queue)
    first = start_worker(first_queue)
    second = start_worker(second_queue)
    job_id = _submit_knn(client, project, version_id)
    wait_for_job(job_id, _in_metrics_phase, first, "reached its metrics")

    # The reaper takes attempt 1 for dead (as after a long network partition) while it works on.
    queues.route(second_queue)
    later = timezone.now() + dt.timedelta(seconds=django_settings.JOB_STALE_AFTER_SECONDS + 5)
    assert jobs.jobs_reap_stale(now=later) == {"requeued": 1, "failed": 0}

    job, _ = wait_for_job(job_id, lambda j: j.is_final, second, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, second.log())
    assert job.attempts == 2
    # One run, made by attempt 2: it started after attempt 2 claimed the job.
    run = Run.objects.get()
    assert TrainingRun.objects.get().job_id == job_id
    assert run.start_time >= job.started_at - dt.timedelta(milliseconds=1)
    assert job.result["run_id"] == str(run.pk)
    deadline = time.monotonic() + 30
    while "no longer runs this job" not in first.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "no longer runs this job" in first.log(), first.log()
    assert first.process.poll() is None  # attempt 1's worker lives on, and takes other jobs


def test_a_starting_worker_recovers_the_jobs_of_a_dead_one(transactional_db, queue, start_worker):
    run = RunFactory()
    services.metrics_log(run=run, points=[services.MetricPoint("loss", 0.5, 0, 1_700_000_000_000)])
    long_ago = timezone.now() - dt.timedelta(hours=1)
    running = {"kind": "run_summary", "project": run.project, "params": {"run_id": str(run.pk)},
               "status": JobStatus.RUNNING, "attempts": 1, "started_at": long_ago}
    # As a worker killed mid-job leaves it: running, attempt 1, heartbeat stopped long ago.
    stale = Job.objects.create(**running, heartbeat_at=long_ago)
    # Another worker's job, beating a moment ago: not the starting worker's to take.
    fresh = Job.objects.create(**running, heartbeat_at=timezone.now())
    worker = start_worker(queue)  # no beat anywhere

    job, seen = wait_for_job(stale.pk, lambda j: j.is_final, worker, "recovered")
    assert job.status == JobStatus.SUCCEEDED, (job.error, worker.log())
    assert job.attempts == 2
    assert job.result["metrics"]["loss"]["count"] == 1
    fresh.refresh_from_db()
    assert (fresh.status, fresh.attempts) == (JobStatus.RUNNING, 1)
