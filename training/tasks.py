"""Celery tasks for training jobs.

The task keeps the name it had before training became an app of its own, so messages queued by an
older worker are still understood after an upgrade.
"""

from celery import shared_task
from celery.signals import worker_process_init

from core.jobs import job_kind_register
from core.tasks import TASK_OPTIONS

# The services are imported inside the task: they pull in scikit-learn and pandas,
# which the web process only needs once someone trains.


@shared_task(name="experiments.tasks_datasets.training_task", **TASK_OPTIONS)
def training_task(job_id: int) -> None:
    from training import services

    services.training_run(job_id=job_id)


@worker_process_init.connect
def _pool_process_started(**_) -> None:
    # Only prefork pool processes get here: one may end itself to stop a cancelled
    # fit stuck in C code, and the pool replaces it (never the solo pool's only process).
    from training import cancel

    cancel.allow_hard_stop()


job_kind_register("training", lambda job_id: training_task.delay(job_id))
