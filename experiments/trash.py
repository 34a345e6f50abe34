"""Delete, restore and purge, as MLflow has them: runs and experiments go to a trash first.

Deleting a run or an experiment only marks it (lifecycle ``deleted`` and the
time): tables, search and the compare page no longer show it, its page says it
is in the trash, and an editor can restore it. The purge job removes what has
been in the trash longer than ``TRASH_RETENTION_DAYS``: the rows and the
artifact files. A run that a model version was registered from is kept (the
version needs its artifact) until that version is deleted.

Deleting an experiment moves its active runs to the trash with it, stamped with
the experiment's own deletion time, so restoring the experiment brings back
exactly those runs and not ones deleted on their own before.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from core import jobs
from core.audit import audit_record
from core.errors import Conflict
from core.models import Job, JobStatus
from experiments import artifacts
from experiments.models import Artifact, Experiment, Lifecycle, Run

logger = logging.getLogger(__name__)

PURGE_JOB_KIND = "trash_purge"


def _lifecycle(obj) -> dict[str, Any]:
    return {"lifecycle": obj.lifecycle, "deleted_at": obj.deleted_at.isoformat() if obj.deleted_at else None}


def run_delete(*, run: Run, user) -> Run:
    """Move a run to the trash. Deleting a run that is already there changes nothing."""
    if run.lifecycle == Lifecycle.DELETED:
        return run
    with transaction.atomic():
        before = _lifecycle(run)
        run.lifecycle, run.deleted_at = Lifecycle.DELETED, timezone.now()
        run.save(update_fields=["lifecycle", "deleted_at"])
        audit_record(action="run.delete", actor=user, object_type="run", object_id=str(run.pk),
                     project_id=run.project_id, before=before, after=_lifecycle(run))
    return run


def run_restore(*, run: Run, user) -> Run:
    """Take a run out of the trash; its experiment must not be in the trash itself."""
    if run.lifecycle == Lifecycle.ACTIVE:
        return run
    if run.experiment.lifecycle == Lifecycle.DELETED:
        raise Conflict(f"The run's experiment '{run.experiment.name}' is in the trash: restore the "
                       "experiment first.")
    with transaction.atomic():
        before = _lifecycle(run)
        run.lifecycle, run.deleted_at = Lifecycle.ACTIVE, None
        run.save(update_fields=["lifecycle", "deleted_at"])
        audit_record(action="run.restore", actor=user, object_type="run", object_id=str(run.pk),
                     project_id=run.project_id, before=before, after=_lifecycle(run))
    return run


def experiment_delete(*, experiment: Experiment, user) -> Experiment:
    """Move an experiment and its active runs to the trash, all stamped with one time."""
    if experiment.lifecycle == Lifecycle.DELETED:
        return experiment
    with transaction.atomic():
        before = _lifecycle(experiment)
        now = timezone.now()
        experiment.lifecycle, experiment.deleted_at = Lifecycle.DELETED, now
        experiment.save(update_fields=["lifecycle", "deleted_at"])
        moved = Run.objects.filter(experiment=experiment, lifecycle=Lifecycle.ACTIVE).update(
            lifecycle=Lifecycle.DELETED, deleted_at=now)
        audit_record(action="experiment.delete", actor=user, object_type="experiment",
                     object_id=experiment.pk, project_id=experiment.project_id, before=before,
                     after={**_lifecycle(experiment), "runs": moved})
    return experiment


def experiment_restore(*, experiment: Experiment, user) -> Experiment:
    """Restore an experiment and the runs that went to the trash with it."""
    if experiment.lifecycle == Lifecycle.ACTIVE:
        return experiment
    with transaction.atomic():
        before = _lifecycle(experiment)
        restored = Run.objects.filter(experiment=experiment, lifecycle=Lifecycle.DELETED,
                                      deleted_at=experiment.deleted_at).update(
            lifecycle=Lifecycle.ACTIVE, deleted_at=None)
        experiment.lifecycle, experiment.deleted_at = Lifecycle.ACTIVE, None
        experiment.save(update_fields=["lifecycle", "deleted_at"])
        audit_record(action="experiment.restore", actor=user, object_type="experiment",
                     object_id=experiment.pk, project_id=experiment.project_id, before=before,
                     after={**_lifecycle(experiment), "runs": restored})
    return experiment


def trash_cutoff(now: dt.datetime | None = None) -> dt.datetime:
    """What went to the trash before this moment is due for purging."""
    return (now or timezone.now()) - dt.timedelta(days=settings.TRASH_RETENTION_DAYS)


def _run_purge(run: Run) -> bool:
    """Delete one run and, once that commits, its artifact files; False if something still needs it."""
    names = list(Artifact.objects.filter(run=run).values_list("storage_name", flat=True))
    try:
        with transaction.atomic():
            run.delete()
    except ProtectedError:
        return False  # a model version was registered from it
    storage = artifacts.artifact_storage()
    transaction.on_commit(lambda: [artifacts.blob_delete(storage, name) for name in names])
    return True


def trash_purge_due(*, now: dt.datetime | None = None, job: Job | None = None) -> dict[str, Any]:
    """Remove the runs and experiments that have been in the trash longer than the retention."""
    cutoff = trash_cutoff(now)
    due = list(Run.objects.filter(lifecycle=Lifecycle.DELETED, deleted_at__lte=cutoff).order_by("deleted_at"))
    purged, kept = [], []
    for i, run in enumerate(due, start=1):
        run_id = str(run.pk)  # delete() clears the pk
        (purged if _run_purge(run) else kept).append(run_id)
        if job is not None:
            jobs.job_progress(job=job, progress=90 * i // len(due), message=f"Purged {len(purged)} runs")
    experiments = []
    for experiment in Experiment.objects.filter(lifecycle=Lifecycle.DELETED, deleted_at__lte=cutoff):
        if not Run.objects.filter(experiment=experiment).exists():
            experiments.append(experiment.name)
            experiment.delete()
    if kept:
        logger.info("Trash purge kept %d runs that model versions were registered from", len(kept))
    return {"runs_purged": purged, "runs_kept": kept, "experiments_purged": experiments,
            "cutoff": cutoff.isoformat()}


def trash_purge(*, job_id: int) -> None:
    """Job body of ``trash_purge``."""
    jobs.job_run(job_id=job_id, work=lambda job: trash_purge_due(job=job))


def trash_purge_enqueue() -> Job | None:
    """Queue a purge job unless one is already queued or running (beat calls this hourly)."""
    with transaction.atomic():
        if Job.objects.filter(kind=PURGE_JOB_KIND, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).exists():
            return None
        return jobs.job_create(kind=PURGE_JOB_KIND)
