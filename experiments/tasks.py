from celery import shared_task

from core.jobs import job_kind_register
from core.tasks import TASK_OPTIONS
from experiments import artifacts, services, trash


@shared_task(**TASK_OPTIONS)
def run_summary_task(job_id: int) -> None:
    services.run_summary_compute(job_id=job_id)


@shared_task(**TASK_OPTIONS)
def artifacts_verify_task(job_id: int) -> None:
    artifacts.artifacts_verify(job_id=job_id)


@shared_task(**TASK_OPTIONS)
def trash_purge_task(job_id: int) -> None:
    trash.trash_purge(job_id=job_id)


@shared_task(**TASK_OPTIONS)
def trash_purge_schedule_task() -> None:
    trash.trash_purge_enqueue()


job_kind_register("run_summary", lambda job_id: run_summary_task.delay(job_id))
job_kind_register("artifact_verify", lambda job_id: artifacts_verify_task.delay(job_id))
job_kind_register(trash.PURGE_JOB_KIND, lambda job_id: trash_purge_task.delay(job_id))

