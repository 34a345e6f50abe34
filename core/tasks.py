"""What every Celery task shares: retry what is transient, never a bad input.

A lost or refused database connection (a failover, a restart, a full pool) is worth retrying
with backoff; a ValidationError is the job's own failure, recorded on its row, and retrying it
would only fail again.
"""

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError

from core import idempotency, jobs

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError)

TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}


# --- Jobs and idempotency records: every app's ---------------------------------------------------
# (The beat schedule in settings names these tasks.)

@shared_task(**TASK_OPTIONS)
def jobs_reap_stale_task() -> dict:
    return jobs.jobs_reap_stale()


@shared_task(**TASK_OPTIONS)
def idempotent_requests_prune_task() -> int:
    return idempotency.idempotent_requests_prune()


@worker_ready.connect
def _reap_on_start(**_) -> None:
    """A starting worker recovers the jobs of workers that died, so a deployment
    without beat does not leave them running forever.

    A job whose heartbeat is still fresh may be a live worker's, or one that died a
    moment ago (a restarted container): the reaper looks again once it would be stale.
    """
    try:
        reaped = jobs.jobs_reap_stale()
        if jobs.jobs_running_exist():
            jobs_reap_stale_task.apply_async(countdown=settings.JOB_STALE_AFTER_SECONDS + 5)
    except Exception:  # noqa: BLE001 - a worker that cannot reap still runs jobs
        logger.exception("Could not reap stale jobs at start-up")
        return
    if reaped["requeued"] or reaped["failed"]:
        logger.warning("Reaped stale jobs at start-up: %s", reaped)
