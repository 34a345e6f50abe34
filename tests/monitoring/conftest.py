"""A served model trained by a training job on an uploaded dataset, and helpers to send it traffic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.models import Run
from monitoring import health
from registry import prediction_log, serving
from registry import services as registry_services
from registry.models import ModelVersion
from tests.datasets.test_datasets import csv_bytes, upload
from training import services as training

FEATURES = ["income", "age", "debt", "region"]


@pytest.fixture(autouse=True)
def _artifacts_of_its_own(artifact_root):
    return artifact_root


@pytest.fixture(autouse=True)
def serving_state(settings):
    """Tests flush the prediction log themselves, and start with no models loaded."""
    settings.PREDICTION_LOG_BACKGROUND = False
    prediction_log._drain()
    serving.predictor_cache_clear()
    health._counts.clear()
    yield
    health._counts.clear()
    prediction_log._drain()
    serving.predictor_cache_clear()


def credit_frame(rows: int = 1500, seed: int = 0, shift: dict | None = None) -> pd.DataFrame:
    """Three numbers, one category and a binary target; ``shift`` moves some features."""
    shift = shift or {}
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000 + shift.get("income", 0), 12_000, rows).round(2)
    age = rng.integers(20, 70, rows).astype(float) + shift.get("age", 0)
    debt = rng.gamma(2.0, 3_000, rows).round(2)
    regions = ["north", "south", "east", "west"]
    p = shift.get("region") or [0.4, 0.3, 0.2, 0.1]
    region = rng.choice(regions, rows, p=p)
    score = income / 20_000 + age / 40 - debt / 8_000 + (region == "north") + rng.normal(0, 0.5, rows)
    default = (score < 3.4).astype(int)
    return pd.DataFrame({"income": income, "age": age, "debt": debt, "region": region, "default": default})


def spec(dataset_version_id: int) -> dict:
    return {
        "dataset_version": dataset_version_id,
        "target": "default",
        "features": FEATURES,
        "task": "classification",
        "estimator": "LogisticRegression",
        "params": {"max_iter": 300},
        "split": {"test_size": 0.25, "stratify": True, "seed": 1},
        "metrics": ["accuracy", "f1"],
    }


@pytest.fixture
def eager(django_capture_on_commit_callbacks, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def reference(editor, project, eager):
    with eager():
        body = upload(editor, project.slug, "credit", csv_bytes(credit_frame())).json()
    return body["id"]


@pytest.fixture
def served(editor, project, reference, eager) -> ModelVersion:
    """Version 1 of 'scorer', trained by a training job, behind the alias 'live'."""
    job = training.training_job_submit(
        project=project, experiment="credit", spec=spec(reference), user=editor.user
    )
    training.training_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    run = Run.objects.get(pk=job.result["run_id"])
    version = registry_services.model_version_create(
        project=project, model_name="scorer", run=run, artifact_path="model", user=editor.user
    )
    registry_services.model_version_check(job_id=version.check_job_id)
    version.refresh_from_db()
    assert version.status == "ready", version.status_message
    registry_services.alias_set(model=version.model, alias="live", version=version, user=editor.user)
    return version


def predict(client, project, frame: pd.DataFrame, alias: str = "live", request_id: str | None = None) -> dict:
    records = frame[FEATURES].to_dict("records")
    headers = {"HTTP_X_REQUEST_ID": request_id} if request_id else {}
    response = client.post(
        f"/api/v1/serve/{project.slug}/scorer/{alias}/predict", {"records": records}, format="json", **headers
    )
    assert response.status_code == 200, response.json()
    return response.json()


def send_traffic(client, project, frame: pd.DataFrame, batch: int = 100) -> list[dict]:
    answers = [predict(client, project, frame.iloc[i : i + batch]) for i in range(0, len(frame), batch)]
    prediction_log.prediction_log_flush()
    return answers
