from celery import shared_task

from core.jobs import job_kind_register
from core.tasks import TASK_OPTIONS
from registry import batch_scoring, registration


@shared_task(**TASK_OPTIONS)
def model_version_check_task(job_id: int) -> None:
    registration.model_version_check(job_id=job_id)


job_kind_register(registration.CHECK_JOB_KIND, lambda job_id: model_version_check_task.delay(job_id))


@shared_task(**TASK_OPTIONS)
def batch_score_task(job_id: int) -> None:
    batch_scoring.batch_score_compute(job_id=job_id)


job_kind_register(batch_scoring.BATCH_JOB_KIND, lambda job_id: batch_score_task.delay(job_id))
