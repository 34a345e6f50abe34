import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from core import jobs
from core.jobs import job_kind_register
from core.tasks import TASK_OPTIONS
from experiments import artifacts, services, trash

logger = logging.getLogger(__name__)


@shared_task(**TASK_OPTIONS)
def run_summary_task(job_id: int) -> None:
    services.run_summary_compute(job_id=job_id)


@shared_task(**TASK_OPTIONS)
def artifacts_verify_task(job_id: int) -> None:
    artifacts.artifacts_verify(job_id=job_id)


@shared_task(**TASK_OPTIONS)
def jobs_reap_stale_task() -> dict:
    return jobs.jobs_reap_stale()


@shared_task(**TASK_OPTIONS)
def idempotent_requests_prune_task() -> int:
    return services.idempotent_requests_prune()


@shared_task(**TASK_OPTIONS)
def trash_purge_task(job_id: int) -> None:
    trash.trash_purge(job_id=job_id)


@shared_task(**TASK_OPTIONS)
def trash_purge_schedule_task() -> None:
    trash.trash_purge_enqueue()


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


job_kind_register("run_summary", lambda job_id: run_summary_task.delay(job_id))
job_kind_register("artifact_verify", lambda job_id: artifacts_verify_task.delay(job_id))
job_kind_register(trash.PURGE_JOB_KIND, lambda job_id: trash_purge_task.delay(job_id))

