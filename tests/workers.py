"""Start real Celery worker processes for a test, on queues of the test's own.

A worker is a subprocess on the broker in CELERY_BROKER_URL (the embedded
filesystem broker when unset), connected to this test run's database, so the
tests need a database a second process can open (PostgreSQL or an SQLite file).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from core.models import Job
from mlplatform.celery import app as celery_app

# Generous for a loaded machine (a training fit included); on an idle one jobs take seconds.
JOB_TIMEOUT = 120


def worker_database_url() -> str:
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
    def __init__(self, queue: str, log_path: Path, pool: str = "solo", env: dict[str, str] | None = None):
        self.queue = queue
        self.log_path = log_path
        self.pool = pool
        self.env = env or {}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": worker_database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            "PYTHONUNBUFFERED": "1",
            # What the worker itself enqueues (a re-queued job, a sweep's next trial) stays on its queue.
            "CELERY_QUEUE": self.queue,
            **self.env,
        }
        argv = [
            sys.executable, "-m", "celery", "-A", "mlplatform", "worker", f"--pool={self.pool}",
            *(["--concurrency=1"] if self.pool == "prefork" else []),
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


def wait_for_job(job_id: int, done, worker: Worker, what: str) -> tuple[Job, list[str]]:
    """Poll the Job row until ``done(job)``; fail with the worker's log if it dies or time runs out."""
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
