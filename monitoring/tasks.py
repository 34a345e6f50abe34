"""Monitoring's Celery tasks: thin, each calls one service."""

from celery import shared_task

from core.jobs import job_kind_register
from core.tasks import TASK_OPTIONS
from monitoring import services

WEBHOOK_MAX_RETRIES = 5


@shared_task(**TASK_OPTIONS)
def drift_report_task(job_id: int) -> None:
    services.drift_report_compute(job_id=job_id)


@shared_task(**TASK_OPTIONS)
def retraining_task(job_id: int) -> None:
    services.retraining_compute(job_id=job_id)


@shared_task(**TASK_OPTIONS)
def monitor_scheduled_run_task(monitor_id: int) -> int | None:
    """What django-celery-beat runs for a scheduled monitor: a drift report job."""
    from monitoring.models import Monitor

    monitor = Monitor.objects.select_related("project").filter(pk=monitor_id).first()
    if monitor is None:
        return None
    return services.monitor_run_start(monitor=monitor, user=monitor.created_by).pk


@shared_task(**TASK_OPTIONS)
def alert_notify_task(alert_id: int) -> None:
    services.alert_notify(alert_id=alert_id)


@shared_task(bind=True, **{**TASK_OPTIONS, "max_retries": WEBHOOK_MAX_RETRIES})
def alert_webhook_task(self, delivery_id: int) -> None:
    # A receiver that is down or answers an error is tried again after 2, 4, 8, 16, 32 s.
    if (
        not services.alert_webhook_attempt(delivery_id=delivery_id)
        and self.request.retries < self.max_retries
    ):
        raise self.retry(countdown=2 ** (self.request.retries + 1))


job_kind_register("drift_report", lambda job_id: drift_report_task.delay(job_id))
job_kind_register("retraining", lambda job_id: retraining_task.delay(job_id))
