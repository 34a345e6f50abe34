from celery import shared_task

from core.tasks import TASK_OPTIONS
from governance import notifications


@shared_task(**TASK_OPTIONS)
def promotion_notify_task(request_id: int, event: str, notification_ids: list[int]) -> dict:
    return notifications.notifications_deliver(request_id=request_id, event=event,
                                               notification_ids=notification_ids)
