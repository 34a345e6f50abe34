"""Celery tasks for dataset profiles, validation and training; imported by experiments.tasks."""

from celery import shared_task
from celery.signals import worker_process_init

from core.tasks import TASK_OPTIONS
from experiments.jobs import job_kind_register

# The services are imported inside the tasks: they pull in pyarrow and numpy,
# which the web process only needs once someone uploads a dataset.


@shared_task(**TASK_OPTIONS)
def dataset_profile_task(job_id: int) -> None:
    from experiments import datasets

    datasets.dataset_profile_compute(job_id=job_id)


@shared_task(**TASK_OPTIONS)
def dataset_validate_task(job_id: int) -> None:
    from experiments import datasets

    datasets.dataset_validate_compute(job_id=job_id)


@shared_task(**TASK_OPTIONS)
def training_task(job_id: int) -> None:
    from experiments import training

    training.training_run(job_id=job_id)


@worker_process_init.connect
def _pool_process_started(**_) -> None:
    # Only prefork pool processes get here: one may end itself to stop a cancelled
    # fit stuck in C code, and the pool replaces it (never the solo pool's only process).
    from experiments import training

    training.allow_hard_stop()


job_kind_register("dataset_profile", lambda job_id: dataset_profile_task.delay(job_id))
job_kind_register("dataset_validate", lambda job_id: dataset_validate_task.delay(job_id))
job_kind_register("training", lambda job_id: training_task.delay(job_id))
