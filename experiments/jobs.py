"""Background jobs as rows: create, claim, report progress, finish, cancel, reap.

Workers claim a job with a guarded UPDATE (status must still be queued), so two
workers that receive the same message never both run it. A running job sends a
heartbeat with every progress report; one whose heartbeat stops (its worker
died) is re-queued once by the reaper, then failed with the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from experiments.models import Job, JobStatus

MAX_ATTEMPTS = 2
LOG_TAIL_CHARS = 20_000

# kind -> function(job_id) that enqueues the job's Celery task; filled by each
# app's tasks module, so lower apps never import the higher ones' tasks.
_ENQUEUERS: dict[str, Callable[[int], None]] = {}


class JobCancelled(Exception):
    """Raised inside a running job when someone asked to cancel it."""


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
    updated = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)
    if cancellable and (updated != 1 or Job.objects.filter(pk=job.pk, cancel_requested=True).exists()):
        raise JobCancelled()


def job_succeed(*, job: Job, result: Any = None, message: str = "Done") -> bool:
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.SUCCEEDED, progress=100, result=result, message=message,
            finished_at=now, heartbeat_at=now,
        )
    )


def job_fail(*, job: Job, error: str, message: str = "Failed") -> bool:
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED, error=error[:20_000], message=message[:500],
            finished_at=now, heartbeat_at=now,
        )
    )


def job_cancel(*, job: Job) -> Job:
    """A queued job is cancelled at once; a running one stops at its next progress report.

    A training job's fit watches the flag while it runs and stops within moments
    (experiments.training), rather than after the fit.
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
    return bool(Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now(), message=message[:500]
    ))


def job_run(*, job_id: int, work: Callable[[Job], Any]) -> None:
    """Claim the job, run ``work(job)`` and record how it ended.

    ``work`` reports progress with ``job_progress``; what it returns is the
    job's result. A ValidationError is the input's fault and fails the job
    with its message; anything else fails it with the exception text.
    """
    job = job_claim(job_id=job_id)
    if job is None:
        return
    try:
        result = work(job)
    except JobCancelled as exc:
        job_mark_cancelled(job=job, message=str(exc) or "Cancelled")
    except ValidationError as exc:
        job_fail(job=job, error="; ".join(exc.messages), message="Invalid input")
    except Exception as exc:  # noqa: BLE001 - the job row must say why it failed
        job_fail(job=job, error=f"{type(exc).__name__}: {exc}")
        raise
    else:
        job_succeed(job=job, result=result)


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
