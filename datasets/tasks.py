"""Celery tasks for dataset profiles and validation.

Task names keep the module path they had before datasets became an app of their own, so messages
queued by an older worker are still understood after an upgrade.
"""

from celery import shared_task

from core.jobs import job_kind_register
from core.tasks import TASK_OPTIONS

# The services are imported inside the tasks: they pull in pyarrow and numpy,
# which the web process only needs once someone uploads a dataset.


@shared_task(name="experiments.tasks_datasets.dataset_profile_task", **TASK_OPTIONS)
def dataset_profile_task(job_id: int) -> None:
    from datasets import services

    services.dataset_profile_compute(job_id=job_id)


@shared_task(name="experiments.tasks_datasets.dataset_validate_task", **TASK_OPTIONS)
def dataset_validate_task(job_id: int) -> None:
    from datasets import services

    services.dataset_validate_compute(job_id=job_id)


job_kind_register("dataset_profile", lambda job_id: dataset_profile_task.delay(job_id))
job_kind_register("dataset_validate", lambda job_id: dataset_validate_task.delay(job_id))
