"""A real Celery worker process runs jobs queued through the API.

The worker is started as a subprocess against the broker in CELERY_BROKER_URL
(Redis in CI) or, when none is set, the embedded filesystem broker, and
connects to this test run's database. Each test uses queues of its own so a
stale message, or someone else's worker on the same broker, cannot interfere.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from core import jobs
from core.models import Job, JobStatus
from experiments import services
from tests.factories import MembershipFactory, RunFactory, UserFactory
from tests.workers import wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def editor_api(transactional_db):
    user = UserFactory()
    run = RunFactory()
    MembershipFactory(project=run.project, user=user, role=Role.EDITOR)
    _, raw = account_services.api_token_create(user=user, name="e2e")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, run


def _log_metrics(run, keys: list[str], steps: int) -> None:
    services.metrics_log(run=run, points=[
        services.MetricPoint(key=key, value=float(step) / (k + 1), step=step,
                             timestamp=1_700_000_000_000 + step)
        for k, key in enumerate(keys)
        for step in range(steps)
    ])


def test_worker_runs_a_summary_job_queued_through_the_api(editor_api, queue, start_worker):
    client, run = editor_api
    _log_metrics(run, ["loss", "accuracy"], steps=50)
    worker = start_worker(queue)

    response = client.post(f"/api/v1/runs/{run.pk}/summary/")
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    job_id = response.json()["id"]

    job, seen = wait_for_job(job_id, lambda j: j.is_final, worker, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, worker.log())
    assert seen[-1] == "succeeded" and set(seen) <= {"queued", "running", "succeeded"}
    assert job.progress == 100
    assert job.attempts == 1
    assert job.started_at <= job.finished_at
    assert job.result["run_id"] == str(run.pk)
    assert job.result["metrics"]["loss"] == {
        "count": 50, "min": 0.0, "max": 49.0, "last": 49.0, "last_step": 49}
    assert job.result["metrics"]["accuracy"]["max"] == 24.5

    polled = client.get(f"/api/v1/jobs/{job_id}/").json()
    assert polled["status"] == "succeeded" and polled["result"] == job.result
    assert "run_summary_task" in worker.log()


def test_job_of_a_killed_worker_is_requeued_by_the_reaper_and_finished_by_another(
    editor_api, queues, start_worker
):
    client, run = editor_api
    # The summary reports progress once per metric key: with 500 keys it runs for a second
    # or more, long enough to see it running and kill its worker midway.
    keys = [f"m{i:04d}" for i in range(500)]
    _log_metrics(run, keys, steps=1)
    first_queue, second_queue = queues.new(), queues.new()
    queues.route(first_queue)
    first = start_worker(first_queue)
    # The second worker starts now too, but reads only the queue the retry will go to.
    second = start_worker(second_queue)

    job_id = client.post(f"/api/v1/runs/{run.pk}/summary/").json()["id"]
    job, seen = wait_for_job(job_id, lambda j: j.status != JobStatus.QUEUED and j.progress > 0,
                          first, "started")
    first.kill()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING, f"the job ended before the kill ({job.status})"
    assert 0 < job.progress < 100
    assert job.attempts == 1
    stuck_at = job.progress
    time.sleep(0.5)
    job.refresh_from_db()
    assert (job.status, job.progress) == (JobStatus.RUNNING, stuck_at)  # nobody works on it now

    # Nothing has happened for a while: the reaper (beat runs it every minute) sends it again.
    queues.route(second_queue)
    later = timezone.now() + dt.timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS + 5)
    assert jobs.jobs_reap_stale(now=later) == {"requeued": 1, "failed": 0}
    assert Job.objects.get(pk=job_id).status == JobStatus.QUEUED

    job, _ = wait_for_job(job_id, lambda j: j.is_final, second, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, second.log())
    assert job.attempts == 2
    assert job.progress == 100
    assert len(job.result["metrics"]) == len(keys)
    assert job.result["metrics"]["m0000"] == {
        "count": 1, "min": 0.0, "max": 0.0, "last": 0.0, "last_step": 0}
