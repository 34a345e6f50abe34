"""Background jobs as rows: create, claim, report progress, finish, cancel, reap.

Workers claim a job with a guarded UPDATE (status must still be queued), so two
workers that receive the same message never both run it. While a job runs, a
thread of its worker keeps its heartbeat fresh, whatever phase the work is in;
one whose heartbeat stops (its worker died) is re-queued once by the reaper,
then failed with the reason. The beat and the workers' start-up both reap.

Each claim is an attempt (``Job.attempts``), and every write an attempt makes
to its job, and to the results it stores (``job_guard``), requires that the job
is still running *that* attempt: an attempt the reaper gave up on, which turns
out to be alive after all, stops at its next write instead of running beside
the new one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core.models import Job, JobStatus

MAX_ATTEMPTS = 2
LOG_TAIL_CHARS = 20_000

# kind -> function(job_id) that enqueues the job's Celery task; filled by each
# app's tasks module, so lower apps never import the higher ones' tasks.
_ENQUEUERS: dict[str, Callable[[int], None]] = {}


logger = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a running job when someone asked to cancel it."""


class JobSuperseded(JobCancelled):
    """Raised inside an attempt that no longer runs its job: the reaper re-queued it
    (and maybe another worker runs it now), or it ended meanwhile."""


def job_kind_register(kind: str, enqueue: Callable[[int], None]) -> None:
    _ENQUEUERS[kind] = enqueue


def job_create(*, kind: str, project=None, user=None, params: dict[str, Any] | None = None) -> Job:
    """Create a queued job and enqueue its task once the transaction commits."""
    if kind not in _ENQUEUERS:
        raise ValidationError({"kind": f"Unknown job kind '{kind}'."})
    job = Job.objects.create(kind=kind, project=project, created_by=user, params=params or {})
    enqueue = _ENQUEUERS[kind]
    transaction.on_commit(lambda: enqueue(job.pk))
    return job


def heartbeat_seconds() -> float:
    """How often a running job beats: well inside JOB_STALE_AFTER_SECONDS."""
    return max(1.0, min(30.0, settings.JOB_STALE_AFTER_SECONDS / 4))


def _current(job: Job):
    """The rows of ``job`` while this attempt of it runs."""
    return Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts)


def _stop_reason(job: Job) -> JobCancelled | None:
    """Why this attempt must stop, read from the row; None while it may go on."""
    row = Job.objects.filter(pk=job.pk).values_list("status", "attempts", "cancel_requested").first()
    if row is None:
        return None  # not visible to this connection (not committed yet): nothing says stop
    status, attempts, cancel_requested = row
    if status != JobStatus.RUNNING or attempts != job.attempts:
        return JobSuperseded(f"Attempt {job.attempts} no longer runs this job "
                             f"(it is {status}, attempt {attempts}).")
    if cancel_requested:
        return JobCancelled()
    return None


def job_claim(*, job_id: int) -> Job | None:
    """Move a queued job to running; None if another worker has it or it has ended."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now,
        attempts=F("attempts") + 1, message="Started",
    )
    if claimed != 1:
        return None
    return Job.objects.get(pk=job_id)


def job_progress(*, job: Job, progress: int, message: str = "", log: str = "",
                 cancellable: bool = True) -> None:
    """Record progress and a heartbeat; raise JobCancelled if a cancel was requested.

    ``cancellable=False`` once the work's result is committed: a cancel that
    arrives then is too late, and the job ends as succeeded.
    """
    progress = max(0, min(100, int(progress)))
    fields: dict[str, Any] = {"progress": progress, "heartbeat_at": timezone.now()}
    if message:
        fields["message"] = message[:500]
    if log:
        job.log = (job.log + log)[-LOG_TAIL_CHARS:]
        fields["log"] = job.log
    updated = _current(job).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)
    if updated != 1:
        reason = _stop_reason(job) or JobSuperseded("The job no longer exists.")
        if isinstance(reason, JobSuperseded) or cancellable:
            raise reason
    elif cancellable and Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
        raise JobCancelled()


def job_guard(*, job: Job) -> None:
    """Inside a transaction, before storing what a job made: lock the job's row and
    raise JobCancelled (JobSuperseded) unless this attempt still runs it, uncancelled.

    What is written in the same transaction is then this attempt's alone: a
    cancel or a re-queue either came before (nothing is stored) or waits until
    the transaction commits.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("job_guard() holds its lock only inside transaction.atomic().")
    locked = Job.objects.select_for_update().filter(pk=job.pk).values_list(
        "status", "attempts", "cancel_requested").first()
    if locked is None or locked[0] != JobStatus.RUNNING or locked[1] != job.attempts:
        raise JobSuperseded(f"Attempt {job.attempts} no longer runs this job; its result is not stored.")
    if locked[2]:
        raise JobCancelled()


def job_succeed(*, job: Job, result: Any = None, message: str = "Done") -> bool:
    now = timezone.now()
    return bool(
        _current(job).update(
            status=JobStatus.SUCCEEDED, progress=100, result=result, message=message,
            finished_at=now, heartbeat_at=now,
        )
    )


def job_fail(*, job: Job, error: str, message: str = "Failed") -> bool:
    now = timezone.now()
    return bool(
        _current(job).update(
            status=JobStatus.FAILED, error=error[:20_000], message=message[:500],
            finished_at=now, heartbeat_at=now,
        )
    )


def job_cancel(*, job: Job) -> Job:
    """A queued job is cancelled at once; a running one stops at its next progress report.

    A training job's fit watches the flag while it runs and stops within moments
    (training.services), rather than after the fit.
    """
    now = timezone.now()
    if job.is_final:
        raise ValidationError({"status": f"The job has already ended ({job.status})."})
    Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, cancel_requested=True, finished_at=now, message="Cancelled"
    )
    Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        cancel_requested=True, message="Cancelling"
    )
    job.refresh_from_db()
    return job


def job_mark_cancelled(*, job: Job, message: str = "Cancelled") -> bool:
    return bool(_current(job).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now(), message=message[:500]
    ))


class _Heartbeat:
    """A thread that keeps a running job's heartbeat fresh from its claim to its end,
    through every phase of the work (a long read, a model dump, a scoring chunk),
    until the row says this attempt no longer runs the job."""

    def __init__(self, job: Job):
        self.job = Job(pk=job.pk, attempts=job.attempts)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-job-{job.pk}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join()

    def _beat(self) -> None:
        try:
            while not self.stop.wait(heartbeat_seconds()):
                try:
                    if not _current(self.job).update(heartbeat_at=timezone.now()) \
                            and isinstance(_stop_reason(self.job), JobSuperseded):
                        logger.warning("Job %s: attempt %s was re-queued or ended elsewhere; it stops at "
                                       "its next write.", self.job.pk, self.job.attempts)
                        return
                except DatabaseError:
                    # A lost connection must not end the job; the next beat reconnects.
                    logger.warning("Job %s: could not send a heartbeat", self.job.pk, exc_info=True)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection


def job_run(*, job_id: int, work: Callable[[Job], Any]) -> None:
    """Claim the job, run ``work(job)`` and record how it ended.

    ``work`` reports progress with ``job_progress`` and stores what it makes
    after ``job_guard``; what it returns is the job's result. A ValidationError
    is the input's fault and fails the job with its message; anything else
    fails it with the exception text. The job beats while ``work`` runs.
    """
    job = job_claim(job_id=job_id)
    if job is None:
        return
    try:
        with _Heartbeat(job):
            result = work(job)
    except JobSuperseded as exc:
        logger.warning("Job %s: %s", job.pk, exc)  # the attempt that runs it now records the end
    except JobCancelled as exc:
        job_mark_cancelled(job=job, message=str(exc) or "Cancelled")
    except ValidationError as exc:
        job_fail(job=job, error="; ".join(exc.messages), message="Invalid input")
    except Exception as exc:  # noqa: BLE001 - the job row must say why it failed
        job_fail(job=job, error=f"{type(exc).__name__}: {exc}")
        raise
    else:
        job_succeed(job=job, result=result)


def jobs_running_exist() -> bool:
    return Job.objects.filter(status=JobStatus.RUNNING).exists()


def jobs_reap_stale(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Running jobs whose worker stopped sending heartbeats: re-queue once, then fail."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    requeued = failed = 0
    stale = Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff)
    for job in stale:
        if job.attempts < MAX_ATTEMPTS and job.kind in _ENQUEUERS and not job.cancel_requested:
            if Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
                status=JobStatus.QUEUED, message="Re-queued: its worker stopped responding"
            ):
                requeued += 1
                enqueue = _ENQUEUERS[job.kind]
                transaction.on_commit(lambda pk=job.pk, fn=enqueue: fn(pk))
        elif Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
            status=JobStatus.FAILED, finished_at=now, message="Failed: its worker stopped responding",
            error=f"No heartbeat for over {settings.JOB_STALE_AFTER_SECONDS} s "
            f"after {job.attempts} attempt(s); the worker was probably killed.",
        ):
            failed += 1
    return {"requeued": requeued, "failed": failed}
