from celery import shared_task

from experiments import artifacts, jobs, services
from experiments.jobs import job_kind_register


@shared_task(acks_late=True)
def run_summary_task(job_id: int) -> None:
    services.run_summary_compute(job_id=job_id)


@shared_task(acks_late=True)
def artifacts_verify_task(job_id: int) -> None:
    artifacts.artifacts_verify(job_id=job_id)


@shared_task(acks_late=True)
def jobs_reap_stale_task() -> dict:
    return jobs.jobs_reap_stale()


job_kind_register("run_summary", lambda job_id: run_summary_task.delay(job_id))
job_kind_register("artifact_verify", lambda job_id: artifacts_verify_task.delay(job_id))

from experiments import tasks_datasets  # noqa: E402,F401 - registers the dataset and training job kinds
