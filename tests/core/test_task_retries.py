"""Every Steward task retries a lost database connection with backoff, and nothing else."""

from django.core.exceptions import ValidationError
from django.db import OperationalError

from mlplatform.celery import app

OUR_APPS = ("experiments.", "registry.", "monitoring.", "governance.", "accounts.", "core.", "mlflow_compat.")


def our_tasks():
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if name.startswith(OUR_APPS)}


def test_every_task_retries_transient_database_errors_with_backoff():
    tasks = our_tasks()
    assert "registry.tasks.model_version_check_task" in tasks
    for name, task in tasks.items():
        assert OperationalError in tuple(getattr(task, "autoretry_for", ())), name
        assert task.retry_backoff and task.max_retries, name
        assert task.acks_late, name


def test_a_bad_input_is_not_retried():
    for name, task in our_tasks().items():
        assert not any(issubclass(ValidationError, kind) for kind in getattr(task, "autoretry_for", ())), name
