from celery import shared_task

from experiments.jobs import job_kind_register
from governance import analysis


@shared_task(acks_late=True)
def fairness_audit_task(job_id: int) -> None:
    analysis.fairness_compute(job_id=job_id)


job_kind_register(analysis.FAIRNESS_KIND, lambda job_id: fairness_audit_task.delay(job_id))


@shared_task(acks_late=True)
def explanation_task(job_id: int) -> None:
    analysis.explanation_compute(job_id=job_id)


job_kind_register(analysis.EXPLANATION_KIND, lambda job_id: explanation_task.delay(job_id))
