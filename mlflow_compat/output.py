"""Steward's objects in MLflow's JSON shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core import validation as v
from experiments.models import Experiment, Lifecycle, Run

ARTIFACT_SCHEME = "mlflow-artifacts:"


def ms(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def run_hex(run_id) -> str:
    return run_id.hex if hasattr(run_id, "hex") else str(run_id).replace("-", "")


def experiment_artifact_location(experiment_id: int) -> str:
    return f"{ARTIFACT_SCHEME}/{experiment_id}"


def run_artifact_uri(experiment_id: int, run_id) -> str:
    return f"{ARTIFACT_SCHEME}/{experiment_id}/{run_hex(run_id)}/artifacts"


def experiment_tags(experiment: Experiment, state=None) -> dict[str, str]:
    tags = dict(state.tags) if state is not None else {}
    if experiment.description:
        tags.setdefault("mlflow.note.content", experiment.description)
    return tags


def experiment_json(experiment: Experiment, state=None) -> dict[str, Any]:
    tags = experiment_tags(experiment, state)
    updated = max(t for t in (experiment.created_at, experiment.deleted_at,
                              state.updated_at if state is not None else None) if t is not None)
    return {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": experiment_artifact_location(experiment.pk),
        "lifecycle_stage": lifecycle_stage(experiment),
        "creation_time": ms(experiment.created_at),
        "last_update_time": ms(updated),
        "tags": [{"key": k, "value": val} for k, val in sorted(tags.items())],
    }


def lifecycle_stage(obj: Experiment | Run) -> str:
    """MLflow's lifecycle_stage is Steward's trash state: "deleted" while in the trash."""
    return "deleted" if obj.lifecycle == Lifecycle.DELETED else "active"


def run_info_json(run: Run, *, experiment_id=None, author: str | None = None) -> dict[str, Any]:
    rid = run_hex(run.pk)
    exp_id = experiment_id if experiment_id is not None else run.experiment_id
    info = {
        "run_id": rid,
        "run_uuid": rid,
        "run_name": run.name,
        "experiment_id": str(exp_id),
        "user_id": author if author is not None else (run.author.username if run.author_id else ""),
        "status": run.status,
        "start_time": ms(run.start_time),
        "artifact_uri": run_artifact_uri(exp_id, run.pk),
        "lifecycle_stage": lifecycle_stage(run),
    }
    if run.end_time is not None:
        info["end_time"] = ms(run.end_time)
    return info


def run_data_json(details) -> dict[str, Any]:
    return {
        "metrics": [
            {"key": key, "value": v.float_out(value), "timestamp": ts, "step": step}
            for key, (value, step, ts) in sorted(details.metrics.items())
        ],
        "params": [{"key": k, "value": val} for k, val in sorted(details.params.items())],
        "tags": [{"key": k, "value": val} for k, val in sorted(details.tags.items())],
    }


def run_json(run: Run) -> dict[str, Any]:
    return {
        "info": run_info_json(run),
        "data": run_data_json(run.details),
        "inputs": {},
    }
