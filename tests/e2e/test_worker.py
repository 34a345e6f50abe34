"""A real Celery worker process runs jobs queued through the API.

The worker is started as a subprocess against the broker in CELERY_BROKER_URL
(Redis in CI) or, when none is set, the embedded filesystem broker, and
connects to this test run's database. Each test uses queues of its own so a
stale message, or someone else's worker on the same broker, cannot interfere.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from kombu import Exchange, Queue
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from experiments import jobs, services
from experiments.models import Job, JobStatus
from mlplatform.celery import app as celery_app
from tests.factories import MembershipFactory, RunFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Generous for a loaded machine; on an idle one each test takes seconds.
JOB_TIMEOUT = 90


def _test_database_url() -> str:
    """DATABASE_URL naming the database this test run uses (test_<name>), for the worker."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            pytest.skip("The test database is SQLite in memory, which a worker process cannot open; "
                        "set DATABASE_URL to PostgreSQL to run the worker tests.")
        return f"sqlite:///{name}"
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return urlunsplit(urlsplit(configured)._replace(path="/" + quote(db["NAME"])))
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{quote(db['NAME'])}"


class Worker:
    def __init__(self, queue: str, log_path: Path):
        self.queue = queue
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": _test_database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            "PYTHONUNBUFFERED": "1",
        }
        argv = [
            sys.executable, "-m", "celery", "-A", "mlplatform", "worker", "--pool=solo",
            "--queues", self.queue, "--hostname", f"{self.queue}@%h", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                argv, env=env, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text()[-4000:] if self.log_path.exists() else ""


class Queues:
    """Queues only this test's workers read; ``route`` sends this process's tasks to one."""

    def __init__(self):
        self.names: list[str] = []

    def new(self) -> str:
        self.names.append(f"test-worker-{uuid.uuid4().hex[:10]}")
        return self.names[-1]

    def route(self, name: str) -> None:
        celery_app.conf.update(task_routes={"*": {"queue": name}})


@pytest.fixture
def queues():
    before = celery_app.conf.task_routes
    made = Queues()
    yield made
    celery_app.conf.update(task_routes=before)  # rebuilds the router
    # Drop the override so the app reads CELERY_TASK_ROUTES from Django's settings again.
    celery_app.conf.changes.pop("task_routes", None)
    # Best effort: drop the (empty) queues so the broker keeps no trace of the test.
    with suppress(Exception), celery_app.connection_for_write() as conn:
        for name in made.names:
            queue = Queue(name, Exchange(name, type="direct"), routing_key=name)(conn.default_channel)
            queue.declare()  # so the channel knows the binding it must remove
            queue.delete()


@pytest.fixture
def start_worker(tmp_path, transactional_db):
    started: list[Worker] = []

    def start(queue: str) -> Worker:
        worker = Worker(queue, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        worker.start()
        return worker

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture
def editor_api(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
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


def _wait_for(job_id: int, done, worker: Worker, what: str) -> tuple[Job, list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if not seen or seen[-1] != job.status:
            seen.append(job.status)
        if done(job):
            return job, seen
        if worker.process.poll() is not None:
            pytest.fail(f"The worker exited (code {worker.process.returncode}):\n{worker.log()}")
        time.sleep(0.02)
    pytest.fail(f"Job {job_id} never {what} in {JOB_TIMEOUT} s (statuses {seen}); "
                f"worker log:\n{worker.log()}")


def test_worker_runs_a_summary_job_queued_through_the_api(editor_api, queues, start_worker):
    client, run = editor_api
    _log_metrics(run, ["loss", "accuracy"], steps=50)
    queue = queues.new()
    queues.route(queue)
    worker = start_worker(queue)

    response = client.post(f"/api/v1/runs/{run.pk}/summary/")
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    job_id = response.json()["id"]

    job, seen = _wait_for(job_id, lambda j: j.is_final, worker, "finished")
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
    job, seen = _wait_for(job_id, lambda j: j.status != JobStatus.QUEUED and j.progress > 0,
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

    job, _ = _wait_for(job_id, lambda j: j.is_final, second, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, second.log())
    assert job.attempts == 2
    assert job.progress == 100
    assert len(job.result["metrics"]) == len(keys)
    assert job.result["metrics"]["m0000"] == {
        "count": 1, "min": 0.0, "max": 0.0, "last": 0.0, "last_step": 0}
