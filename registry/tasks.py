from celery import shared_task

from core.jobs import job_kind_register
from core.tasks import TASK_OPTIONS
from registry import services


@shared_task(**TASK_OPTIONS)
def model_version_check_task(job_id: int) -> None:
    services.model_version_check(job_id=job_id)


job_kind_register(services.CHECK_JOB_KIND, lambda job_id: model_version_check_task.delay(job_id))


@shared_task(**TASK_OPTIONS)
def batch_score_task(job_id: int) -> None:
    services.batch_score_compute(job_id=job_id)


job_kind_register(services.BATCH_JOB_KIND, lambda job_id: batch_score_task.delay(job_id))
