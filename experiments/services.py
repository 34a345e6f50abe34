"""Write paths for experiments, runs, params, metrics and tags."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from accounts.models import Project
from core import validation as v
from core.errors import Conflict, NotFound
from experiments.metric_store import MetricPoint, metric_store
from experiments.models import (
    EXPERIMENT_NAME_MAX_LENGTH,
    Experiment,
    Lifecycle,
    Metric,
    Param,
    Run,
    RunStatus,
    Tag,
)


def now_ms() -> int:
    return int(time.time() * 1000)


def experiment_get_or_create(*, project: Project, name: str, user=None) -> Experiment:
    try:
        with transaction.atomic():
            experiment, _ = Experiment.objects.get_or_create(
                project=project, name=name, defaults={"created_by": user}
            )
    except IntegrityError:
        experiment = Experiment.objects.get(project=project, name=name)
    return experiment


def experiment_create(*, project: Project, name: str, description: str = "", user=None) -> Experiment:
    name = (name or "").strip()
    if not name or len(name) > EXPERIMENT_NAME_MAX_LENGTH:
        raise ValidationError(
            {"name": f"Give an experiment name of 1-{EXPERIMENT_NAME_MAX_LENGTH} characters."})
    try:
        with transaction.atomic():
            return Experiment.objects.create(
                project=project, name=name, description=description, created_by=user
            )
    except IntegrityError:
        if Experiment.objects.filter(project=project, name=name, lifecycle=Lifecycle.DELETED).exists():
            raise Conflict(f"An experiment named '{name}' is in the trash: restore it, or choose "
                           "another name.") from None
        raise Conflict(f"An experiment named '{name}' already exists.") from None


@dataclass(frozen=True)
class RunCreated:
    run: Run
    created: bool
    # What a new run holds after creation, so the caller need not read it back.
    tags: dict[str, str] = dataclasses.field(default_factory=dict)


def run_create(
    *,
    project: Project,
    experiment: str | Experiment,
    user,
    run_id: uuid.UUID | None = None,
    name: str = "",
    start_time: dt.datetime | None = None,
    tags: Sequence[tuple[str, str]] = (),
    source: dict[str, Any] | None = None,
    seed: int | None = None,
    notes: str = "",
    parent_run_id: uuid.UUID | None = None,
) -> RunCreated:
    """Create a run; a client-chosen id makes creation safe to retry (offline SDK runs).

    The values come checked (experiments.api.serializers.RunCreateIn parses a request's body
    into these arguments). ``experiment`` is a name (the experiment is made if it does not
    exist), or the project's experiment of that name as the caller already read it.
    ``parent_run_id`` nests the run under another run of the same project.

    Short runs are created by the hundred (sweeps, notebooks), so the common
    case is two inserts in one transaction (and a read of the experiment when
    given its name): a retry is noticed by the primary key refusing the
    insert, not by a lookup before every one.
    """
    found = experiment if isinstance(experiment, Experiment) else None
    exp_name = found.name if found is not None else experiment
    run_uuid = run_id if run_id is not None else uuid.uuid4()
    fields: dict[str, Any] = dict(source or {})
    if seed is not None:
        fields["seed"] = seed
    if parent_run_id is not None:
        try:
            fields["parent"] = _parent_run(project=project, parent_run_id=parent_run_id, run_id=run_uuid)
        except ValidationError:
            # A retry of a run that exists is answered with that run, whatever else its body says.
            existing = _run_retried(run_uuid, project, exp_name) if run_id is not None else None
            if existing is None:
                raise
            return existing
    tag_rows = list(tags)
    try:
        with transaction.atomic():
            exp = found
            if exp is None:
                try:
                    exp = Experiment.objects.get(project=project, name=exp_name)
                except Experiment.DoesNotExist:
                    exp = experiment_get_or_create(project=project, name=exp_name, user=user)
            if exp.lifecycle == Lifecycle.DELETED:
                raise Conflict(f"Experiment '{exp_name}' is in the trash: restore it, or log to another "
                               "experiment.")
            run = Run(
                id=run_uuid, experiment=exp, project=project, name=name,
                start_time=start_time or timezone.now(), author=user, notes=notes, **fields,
            )
            _run_insert(run, tag_rows)
    except IntegrityError:
        # The id is taken: a retry of this run (its first try won), or a run elsewhere.
        existing = _run_retried(run_uuid, project, exp_name) if run_id is not None else None
        if existing is None:
            raise
        return existing
    return RunCreated(run, True, dict(tag_rows))


def _run_insert(run: Run, tags: list[tuple[str, str]]) -> None:
    """INSERT a new run and its tags, each statement written once per process.

    Django's insert compiler costs several times what the database spends
    storing the rows. No model signal is sent (as bulk_create sends none):
    nothing listens for a new run.
    """
    fields = Run._meta.local_concrete_fields
    values = [f.get_db_prep_save(f.pre_save(run, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(Run, tuple(f.column for f in fields), 1), values)
        run_id = values[0]
        per_statement = (connection.features.max_query_params or 3000) // 3
        for start in range(0, len(tags), per_statement):
            chunk = tags[start:start + per_statement]
            cursor.execute(_insert_sql(Tag, ("run_id", "key", "value"), len(chunk)),
                           [x for key, value in chunk for x in (run_id, key, value)])
    run._state.adding = False
    run._state.db = connection.alias


@functools.lru_cache(maxsize=64)
def _insert_sql(model, columns: tuple[str, ...], rows: int) -> str:
    quote = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    return (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) "
            f"VALUES {', '.join([row] * rows)}")


def run_create_retried(*, project: Project, body: Any) -> RunCreated | None:
    """The run that a refused creation body names by id, if it exists: a retry is answered
    with its run whatever else the body says (an SDK that resends after a lost answer)."""
    if not isinstance(body, dict) or not isinstance(body.get("experiment"), str):
        return None
    try:
        run_uuid = uuid.UUID(str(body.get("id")))
    except ValueError:
        return None
    return _run_retried(run_uuid, project, body["experiment"])


def _run_retried(run_uuid: uuid.UUID, project: Project, experiment: str) -> RunCreated | None:
    existing = Run.objects.filter(pk=run_uuid).select_related("experiment").first()
    if existing is None:
        return None
    if existing.project_id != project.pk or existing.experiment.name != experiment:
        raise Conflict("A run with this id already exists elsewhere.")
    return RunCreated(existing, False)


def _parent_run(*, project: Project, parent_run_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    if parent_run_id == run_id:
        raise ValidationError({"parent_run_id": "A run cannot be its own parent."})
    parent = Run.objects.filter(pk=parent_run_id, project=project).first()
    if parent is None:
        raise ValidationError({"parent_run_id": "No such run in this project."})
    return parent


def run_update(
    *,
    run: Run,
    status: str | None = None,
    end_time: dt.datetime | None = None,
    name: str | None = None,
    notes: str | None = None,
    error: str | None = None,
    seed: int | None = None,
) -> Run:
    """Change what is given (checked values, as RunUpdateIn parses them); a status moves only
    forward: an ended run's metrics and end time stay what they were."""
    changed: list[str] = []
    if seed is not None:
        run.seed = seed
        changed.append("seed")
    if status is not None:
        if status == RunStatus.RUNNING and run.status != RunStatus.RUNNING:
            raise ValidationError(
                {"status": f"The run is {run.status}; a run that ended cannot go back to RUNNING."}
            )
        run.status = status
        changed.append("status")
        if status != RunStatus.RUNNING and end_time is None and run.end_time is None:
            run.end_time = timezone.now()
            changed.append("end_time")
    if end_time is not None:
        run.end_time = end_time
        changed.append("end_time")
    if name is not None:
        run.name = name
        changed.append("name")
    if notes is not None:
        run.notes = notes
        changed.append("notes")
    if error is not None:
        run.error = error[:20_000]
        changed.append("error")
    if changed:
        run.save(update_fields=sorted(set(changed)))
    return run


def params_log(*, run: Run, pairs: list[tuple[str, str]]) -> None:
    """Params are write-once: the same value again is fine, a different value is a 409."""
    if not pairs:
        return
    keys = [k for k, _ in pairs]
    existing = dict(Param.objects.filter(run=run, key__in=keys).values_list("key", "value"))
    for key, value in pairs:
        if key in existing and existing[key] != value:
            raise Conflict(
                f"Param '{key}' is already logged as {existing[key][:100]!r}; "
                f"params cannot be changed (got {value[:100]!r})."
            )
    new = [Param(run=run, key=k, value=val) for k, val in pairs if k not in existing]
    try:
        with transaction.atomic():
            Param.objects.bulk_create(new)
    except IntegrityError:
        # A concurrent writer logged one of these keys first: check it again.
        params_log(run=run, pairs=pairs)


def tags_set(*, run: Run, pairs: list[tuple[str, str]]) -> None:
    for key, value in pairs:
        Tag.objects.update_or_create(run=run, key=key, defaults={"value": value})


def tag_delete(*, run: Run, key: str) -> None:
    deleted, _ = Tag.objects.filter(run=run, key=key).delete()
    if not deleted:
        raise NotFound(f"No tag '{key}' on this run.")


def metrics_log(*, run: Run, points: list[MetricPoint]) -> None:
    """Append points and move each key's latest value and rollups forward; one transaction."""
    metric_store().points_append(run_id=run.pk, points=points)


def metrics_log_new(*, run: Run, points: list[MetricPoint]) -> int:
    """Store the points not stored yet: the same key, step, timestamp and value (NaN equal to
    NaN) is one point, however often a retrying client sends it. Returns how many were new.

    Call it inside a transaction that holds the run's row lock, so two retries of one batch
    cannot both find their points missing.
    """
    return metric_store().points_add_new(run_id=run.pk, points=points)


@dataclass(frozen=True)
class BatchInput:
    params: list[tuple[str, str]]
    metrics: list[MetricPoint]
    tags: list[tuple[str, str]]


def batch_log(*, run: Run, batch: BatchInput) -> dict[str, int]:
    """Everything in one transaction: a batch is stored whole or not at all.

    Inside a caller's transaction (idempotent()'s) that transaction is the
    unit: no savepoint of its own (two round trips per batch), and an error
    here leaves the caller's block, which rolls back whole.
    """
    with contextlib.nullcontext() if connection.in_atomic_block else transaction.atomic():
        params_log(run=run, pairs=batch.params)
        metrics_log(run=run, points=batch.metrics)
        tags_set(run=run, pairs=batch.tags)
    return {"params": len(batch.params), "metrics": len(batch.metrics), "tags": len(batch.tags)}


def run_summary_compute(*, job_id: int) -> None:
    """Job body: per metric key of a run, its point count, min, max and last value."""
    from core import jobs
    from core.models import Job

    def work(job: Job) -> dict:
        run = Run.objects.filter(pk=job.params.get("run_id")).first()
        if run is None:
            raise ValidationError({"run_id": "The run no longer exists."})
        keys = list(run.latest_metrics.order_by("key").values_list("key", flat=True))
        summary: dict[str, dict] = {}
        for i, key in enumerate(keys, start=1):
            agg = Metric.objects.filter(run=run, key=key).aggregate(
                count=Count("id"), min=Min("value"), max=Max("value")
            )
            last = run.latest_metrics.get(key=key)
            summary[key] = {
                "count": agg["count"],
                "min": v.float_out(agg["min"]),
                "max": v.float_out(agg["max"]),
                "last": v.float_out(last.value),
                "last_step": last.step,
            }
            jobs.job_progress(job=job, progress=100 * i // max(1, len(keys)),
                              message=f"Summarised {i} of {len(keys)} metrics")
        return {"run_id": str(run.pk), "metrics": summary}

    jobs.job_run(job_id=job_id, work=work)
