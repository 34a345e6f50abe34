"""The trash purge runs as a job on a real Celery worker."""

import datetime as dt
import io

import pytest
from django.utils import timezone

from core.models import JobStatus
from experiments import artifacts, trash
from experiments.models import Run
from tests.factories import RunFactory
from tests.workers import wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_purges_runs_past_the_retention_and_their_files(settings, queue, start_worker):
    settings.TRASH_RETENTION_DAYS = 30
    old, recent = RunFactory(), RunFactory()
    names = []
    for run in (old, recent):
        artifacts.artifact_upload(run=run, path="data.bin", stream=io.BytesIO(b"x" * 100), content_length=100)
        names.append(run.artifacts.get().storage_name)
        trash.run_delete(run=run, user=None)
    Run.objects.filter(pk=old.pk).update(deleted_at=timezone.now() - dt.timedelta(days=31))
    worker = start_worker(queue, env={"TRASH_RETENTION_DAYS": "30"})

    job = trash.trash_purge_enqueue()
    job, _ = wait_for_job(job.pk, lambda j: j.is_final, worker, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, worker.log())
    assert job.result["runs_purged"] == [str(old.pk)]
    storage = artifacts.artifact_storage()
    assert not Run.objects.filter(pk=old.pk).exists() and not storage.exists(names[0])
    assert Run.objects.filter(pk=recent.pk).exists() and storage.exists(names[1])
    assert "trash_purge_task" in worker.log()
