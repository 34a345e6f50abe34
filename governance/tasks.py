from celery import shared_task

from core.jobs import job_kind_register
from core.tasks import TASK_OPTIONS
from governance import analysis, notifications


@shared_task(**TASK_OPTIONS)
def promotion_notify_task(request_id: int, event: str, notification_ids: list[int]) -> dict:
    return notifications.notifications_deliver(request_id=request_id, event=event,
                                               notification_ids=notification_ids)


@shared_task(**TASK_OPTIONS)
def fairness_audit_task(job_id: int) -> None:
    analysis.fairness_compute(job_id=job_id)


job_kind_register(analysis.FAIRNESS_KIND, lambda job_id: fairness_audit_task.delay(job_id))


@shared_task(**TASK_OPTIONS)
def explanation_task(job_id: int) -> None:
    analysis.explanation_compute(job_id=job_id)


job_kind_register(analysis.EXPLANATION_KIND, lambda job_id: explanation_task.delay(job_id))
