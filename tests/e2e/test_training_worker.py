"""A real Celery worker trains from a submitted spec; a worker killed mid-fit loses nothing.

The worker is a subprocess on the broker in CELERY_BROKER_URL (the embedded
filesystem broker when unset), reading a queue of this test's own, against
this test run's database, with the artifacts folder shared through ARTIFACT_ROOT.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from experiments import jobs
from experiments.models import Job, JobStatus, Run, TrainingRun
from mlplatform.celery import app as celery_app
from tests.experiments.test_training import breast_cancer_frame
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT = 120  # the machine is shared; a fit can take a while under load


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        if db["NAME"] == ":memory:" or "mode=memory" in str(db["NAME"]):
            pytest.skip("A worker process cannot open an in-memory SQLite test database.")
        return f"sqlite:///{db['NAME']}"
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return urlunsplit(urlsplit(configured)._replace(path="/" + quote(db["NAME"])))
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{quote(db['USER'] or '')}@{host}/{db['NAME']}"


class Worker:
    def __init__(self, queue: str, log_path):
        self.queue, self.log_path, self.process = queue, log_path, None

    def start(self) -> Worker:
        env = {**os.environ, "DATABASE_URL": _database_url(), "SECRET_KEY": settings.SECRET_KEY,
               "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "celery", "-A", "mlplatform", "worker", "--pool=solo",
                "--queues", self.queue, "--hostname", f"{self.queue}@%h", "--loglevel=INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat"]
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text()[-4000:] if self.log_path.exists() else ""


@pytest.fixture
def queue():
    name = f"test-training-{uuid.uuid4().hex[:10]}"
    before = celery_app.conf.task_routes
    celery_app.conf.update(task_routes={"*": {"queue": name}})
    yield name
    celery_app.conf.update(task_routes=before)
    with suppress(Exception), celery_app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


@pytest.fixture
def start_worker(queue, tmp_path, transactional_db):
    started: list[Worker] = []

    def start() -> Worker:
        started.append(Worker(queue, tmp_path / f"worker-{len(started)}.log").start())
        return started[-1]

    yield start
    for worker in started:
        worker.kill()


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
    pytest.fail(f"Job {job_id} never {what} in {JOB_TIMEOUT} s (statuses {seen}); log:\n{worker.log()}")


@pytest.fixture
def shared_artifacts(tmp_path, settings, monkeypatch):
    root = tmp_path / "artifacts"
    settings.STORAGES = {**settings.STORAGES, "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    monkeypatch.setenv("ARTIFACT_ROOT", str(root))  # the worker subprocess inherits it
    return root


@pytest.fixture
def api(transactional_db, settings, shared_artifacts, queue):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
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
    job, seen = _wait_for(response.json()["id"], lambda j: j.is_final, worker, "finished")
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
    assert spec == json.loads(json.dumps(_spec(version, n_estimators=50)))

    # The profile job queued by the upload ran on the same worker.
    profile_job = Job.objects.get(kind="dataset_profile")
    assert profile_job.status == JobStatus.SUCCEEDED, profile_job.error


def test_training_killed_mid_fit_is_requeued_and_finished_once(api, start_worker):
    client, project, version = api
    first = start_worker()
    response = client.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                           {"experiment": "e2e", "spec": _spec(version, n_estimators=300)}, format="json")
    job_id = response.json()["id"]
    _wait_for(job_id, lambda j: j.status == JobStatus.RUNNING and j.message.startswith("Fitting"),
              first, "started fitting")
    first.kill()
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.RUNNING and job.attempts == 1
    assert not Run.objects.exists()  # nothing half-made: the run is written only after training

    later = timezone.now() + dt.timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS + 5)
    assert jobs.jobs_reap_stale(now=later) == {"requeued": 1, "failed": 0}
    second = start_worker()
    job, _ = _wait_for(job_id, lambda j: j.is_final, second, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, second.log())
    assert job.attempts == 2
    assert Run.objects.count() == 1 and TrainingRun.objects.get().job_id == job_id
