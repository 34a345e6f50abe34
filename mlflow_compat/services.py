"""MLflow's writes, each made by Steward's own services (experiments.services, artifacts,
registry): this module only translates MLflow's arguments and adds MLflow's rules on top."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Project
from core import validation as v
from core.errors import Conflict, NotFound
from experiments import services as tracking
from experiments import trash
from experiments.api import serializers as inputs
from experiments.models import EXPERIMENT_NAME_MAX_LENGTH, Experiment, Lifecycle, Run, RunStatus
from experiments.selectors import RunDetails
from mlflow_compat import errors
from mlflow_compat.models import ExperimentState

# MLflow's own limits on this path (mlflow/utils/validation.py).
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_ENTITIES = 1000
MAX_EXPERIMENT_NAME = EXPERIMENT_NAME_MAX_LENGTH

TAG_RUN_NAME = "mlflow.runName"
TAG_NOTE = "mlflow.note.content"
TAG_PARENT = "mlflow.parentRunId"
TAG_SOURCE = {
    "mlflow.source.git.commit": ("git_commit", 64),
    "mlflow.source.git.branch": ("git_branch", 250),
    "mlflow.source.name": ("entry_point", 1000),
}


# --- experiments ------------------------------------------------------------------------------


def experiment_name_check(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise errors.invalid("Invalid experiment name: '' (give a name).")
    if len(name) > MAX_EXPERIMENT_NAME:
        raise errors.invalid(f"Experiment name exceeds the maximum length of {MAX_EXPERIMENT_NAME}.")
    return name


def experiment_create(*, project: Project, name: Any, tags: list | None, user) -> Experiment:
    name = experiment_name_check(name)
    pairs = _pairs(tags or [], "tags")
    description = dict(pairs).get(TAG_NOTE, "")
    try:
        with transaction.atomic():
            experiment = tracking.experiment_create(
                project=project, name=name, description=description, user=user
            )
            rest = {k: val for k, val in pairs if k != TAG_NOTE}
            if rest:
                ExperimentState.objects.create(experiment=experiment, tags=rest)
    except Conflict:
        # A deleted experiment keeps its name until the trash is purged, as in MLflow.
        deleted = Experiment.objects.filter(project=project, name=name, lifecycle=Lifecycle.DELETED).exists()
        raise errors.MlflowError(
            errors.RESOURCE_ALREADY_EXISTS,
            f"Experiment '{name}' already exists in deleted state. Restore it, or choose another name."
            if deleted else f"Experiment '{name}' already exists.",
        ) from None
    return experiment


def experiment_state(experiment: Experiment) -> ExperimentState | None:
    return ExperimentState.objects.filter(experiment=experiment).first()


def experiment_rename(*, experiment: Experiment, new_name: Any) -> Experiment:
    new_name = experiment_name_check(new_name)
    if Experiment.objects.filter(project_id=experiment.project_id, name=new_name).exclude(
        pk=experiment.pk
    ).exists():
        raise errors.invalid(f"An experiment named '{new_name}' already exists.")
    experiment.name = new_name
    experiment.save(update_fields=["name"])
    _state_touch(experiment)
    return experiment


def _state_touch(experiment: Experiment, **fields) -> ExperimentState:
    state, _ = ExperimentState.objects.get_or_create(experiment=experiment)
    for name, value in fields.items():
        setattr(state, name, value)
    state.updated_at = timezone.now()
    state.save()
    return state


def experiment_tag_set(*, experiment: Experiment, key: Any, value: Any) -> None:
    key = v.key_check(key, "key")
    value = v.tag_value(value, "value")
    with transaction.atomic():
        if key == TAG_NOTE:
            experiment.description = value
            experiment.save(update_fields=["description"])
            _state_touch(experiment)
            return
        state = ExperimentState.objects.select_for_update().filter(experiment=experiment).first()
        tags = dict(state.tags) if state else {}
        tags[key] = value
        _state_touch(experiment, tags=tags)


def experiment_tag_delete(*, experiment: Experiment, key: Any) -> None:
    key = v.key_check(key, "key")
    with transaction.atomic():
        if key == TAG_NOTE and experiment.description:
            experiment.description = ""
            experiment.save(update_fields=["description"])
            return
        state = ExperimentState.objects.select_for_update().filter(experiment=experiment).first()
        if state is None or key not in state.tags:
            raise errors.not_found(f"No tag with name: {key} in experiment {experiment.pk}.")
        tags = dict(state.tags)
        tags.pop(key)
        _state_touch(experiment, tags=tags)


def experiment_delete(*, experiment: Experiment, user) -> None:
    """MLflow's delete_experiment is Steward's trash: the experiment and its active runs."""
    trash.experiment_delete(experiment=experiment, user=user)


def experiment_restore(*, experiment: Experiment, user) -> None:
    trash.experiment_restore(experiment=experiment, user=user)


# --- runs -------------------------------------------------------------------------------------


def _pairs(items: Any, field: str) -> list[tuple[str, str]]:
    if not isinstance(items, list):
        raise errors.invalid(f"{field}: Must be a list of {{key, value}}.")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise errors.invalid(f"{field}[{i}]: Each entry is {{key, value}}.")
        out.append((v.key_check(item.get("key"), f"{field}[{i}].key"),
                    v.tag_value(item.get("value", ""), f"{field}[{i}].value")))
    return out


def _int(value: Any, field: str) -> int | None:
    """MLflow's JSON may carry int64 fields as strings (protobuf's JSON mapping)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise errors.invalid(f"{field}: Must be an integer.") from None
    return v.int64(value, field)


def run_create(*, project: Project, experiment: Experiment, user, run_name: Any, start_time: Any,
               tags: Any) -> Run:
    pairs = dict(_pairs(tags or [], "tags"))
    name = run_name if isinstance(run_name, str) and run_name else pairs.get(TAG_RUN_NAME, "")
    if name:
        pairs[TAG_RUN_NAME] = name
    source = {}
    for tag, (field, limit) in TAG_SOURCE.items():
        if pairs.get(tag):
            source[field] = pairs[tag][:limit]
    parent = pairs.get(TAG_PARENT) or None
    if parent is not None:
        parent = _parent_uuid(parent)
    created = tracking.run_create(
        project=project, experiment=experiment, user=user, name=name[:250],
        start_time=_time(start_time, "start_time"), tags=list(pairs.items()), source=source,
        notes=pairs.get(TAG_NOTE, ""), parent_run_id=parent,
    )
    # A run made a moment ago holds only the tags it was given: nothing to read back.
    created.run.details = RunDetails({}, {}, created.tags)
    return created.run


def _time(value: Any, field: str):
    ms = _int(value, field)
    return None if ms is None else inputs.epoch_ms(ms, field)


def _parent_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise errors.invalid(f"mlflow.parentRunId: '{value[:64]}' is not a run id.") from None


def run_update(*, run: Run, status: Any, end_time: Any, run_name: Any) -> Run:
    run_check_active(run)
    if status is not None and status not in RunStatus.values:
        if status == "SCHEDULED":
            status = None
        else:
            raise errors.invalid(f"status: Must be one of {', '.join(RunStatus.values)}.")
    if status == RunStatus.RUNNING and run.status == RunStatus.RUNNING:
        status = None
    with transaction.atomic():
        tracking.run_update(run=run, status=status, end_time=_time(end_time, "end_time"),
                            name=run_name if isinstance(run_name, str) and run_name else None)
        if isinstance(run_name, str) and run_name:
            tracking.tags_set(run=run, pairs=[(TAG_RUN_NAME, run_name)])
    return run


def run_delete(*, run: Run, user) -> None:
    trash.run_delete(run=run, user=user)


def run_restore(*, run: Run, user) -> None:
    try:
        trash.run_restore(run=run, user=user)
    except Conflict as exc:
        raise errors.invalid(exc.message) from None


def tags_set(*, run: Run, pairs: list[tuple[str, str]]) -> None:
    """Tags, with MLflow's own tags filling the run's fields they name."""
    run_check_active(run)
    tracking.tags_set(run=run, pairs=pairs)
    fields = dict(pairs)
    if TAG_RUN_NAME in fields:
        tracking.run_update(run=run, name=fields[TAG_RUN_NAME][:250])
    if TAG_NOTE in fields:
        tracking.run_update(run=run, notes=fields[TAG_NOTE])


def tag_delete(*, run: Run, key: Any) -> None:
    run_check_active(run)
    key = v.key_check(key, "key")
    try:
        tracking.tag_delete(run=run, key=key)
    except NotFound:
        raise errors.not_found(f"No tag with name: {key} in run with id {run.pk.hex}") from None


# --- metrics ----------------------------------------------------------------------------------


def metric_points(items: Any, field: str = "metrics") -> list[tracking.MetricPoint]:
    if not isinstance(items, list):
        raise errors.invalid(f"{field}: Must be a list.")
    fixed = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise errors.invalid(f"{field}[{i}]: Each metric is {{key, value, timestamp, step}}.")
        point = dict(item)
        for name in ("step", "timestamp"):
            if isinstance(point.get(name), str):
                point[name] = _int(point[name], f"{field}[{i}].{name}")
        if "timestamp" not in point or point["timestamp"] is None:
            raise errors.invalid(f"{field}[{i}].timestamp: Missing value for required parameter.")
        fixed.append(point)
    return inputs.metric_points_parse(fixed, field)


def metrics_log_once(*, run: Run, points: list[tracking.MetricPoint]) -> int:
    """Store the points that are not stored yet (``tracking.metrics_log_new``); returns how many
    were new.

    Called inside a transaction that holds the run's row lock, so two retries of one batch
    cannot both find their points missing.
    """
    return tracking.metrics_log_new(run=run, points=points)


def _run_locked(run: Run) -> None:
    Run.objects.select_for_update().filter(pk=run.pk).values_list("pk", flat=True).first()


def batch_log(*, run: Run, metrics: Any, params: Any, tags: Any) -> None:
    """MLflow's log-batch: params, then metrics, then tags, stored whole or not at all."""
    metrics = metrics or []
    params = params or []
    tags = tags or []
    for field, items, limit in (("metrics", metrics, MAX_BATCH_METRICS), ("params", params, MAX_BATCH_PARAMS),
                                ("tags", tags, MAX_BATCH_TAGS)):
        if not isinstance(items, list):
            raise errors.invalid(f"{field}: Must be a list.")
        if len(items) > limit:
            raise errors.invalid(
                f"A batch logging request can contain at most {limit} {field}. Got {len(items)} {field}."
            )
    if len(metrics) + len(params) + len(tags) > MAX_BATCH_ENTITIES:
        raise errors.invalid(
            f"A batch logging request can contain at most {MAX_BATCH_ENTITIES} metrics, params and tags "
            f"together. Got {len(metrics) + len(params) + len(tags)}."
        )
    points = metric_points(metrics)
    param_pairs = inputs.param_pairs_parse(_string_values(params), "params")
    tag_pairs = _pairs(tags, "tags")
    run_check_active(run)
    with transaction.atomic():
        _run_locked(run)
        if param_pairs:
            tracking.params_log(run=run, pairs=param_pairs)
        if points:
            metrics_log_once(run=run, points=points)
        if tag_pairs:
            tags_set(run=run, pairs=tag_pairs)


def _string_values(params: list) -> list:
    return [p if not isinstance(p, dict) or isinstance(p.get("value"), str) or p.get("value") is None
            else {**p, "value": str(p["value"])} for p in params]


def run_check_active(run: Run) -> None:
    """MLflow refuses every write to a deleted run; Steward's trash is read-only too."""
    if run.lifecycle == Lifecycle.DELETED:
        raise errors.invalid(f"The run {run.pk.hex} must be in the 'active' state. Current state is deleted.")


def param_log(*, run: Run, key: Any, value: Any) -> None:
    run_check_active(run)
    pairs = inputs.param_pairs_parse([{"key": key, "value": value if value is not None else ""}], "param")
    try:
        tracking.params_log(run=run, pairs=pairs)
    except Conflict as exc:
        raise errors.invalid(exc.message) from None


def metric_log(*, run: Run, item: dict) -> None:
    run_check_active(run)
    points = metric_points([item], "metric")
    with transaction.atomic():
        _run_locked(run)
        metrics_log_once(run=run, points=points)


def validation_message(exc: ValidationError) -> str:
    return "; ".join(exc.messages)
