"""Every estimator of the training catalogue: trained by a job, registered, checked and served.

On a binary, a multiclass and a regression target (where the estimator
applies), with a number column, a text column and a column whose name holds a
``/``. Each version reaches ``ready`` and serves its own pipeline's predictions,
by ONNX Runtime after verification or by scikit-learn with one plain sentence
saying why ONNX is not used.
"""

import re

import numpy as np
import pandas as pd
import pytest
from django.test import Client

from accounts.models import Role
from core.models import Job, JobStatus
from experiments.models import Run
from registry.loading import estimator_load
from registry.models import ModelVersion, VersionStatus
from tests.datasets import test_datasets as ds
from tests.factories import MembershipFactory, UserFactory
from training.services import CLASSIFICATION, ESTIMATORS, REGRESSION

pytestmark = pytest.mark.django_db
eager = ds.eager

ROWS = 200
SLASHED = "od280/od315_of_diluted_wines"
FEATURES = ["alcohol", "region", SLASHED]
TARGETS = {"binary": "premium", "multiclass": "cultivar", "regression": "colour_intensity"}
# Small settings so 40 fits stay quick; everything else is the catalogue's default.
QUICK = {"n_estimators": 10, "max_iter": 20}

# Served by ONNX Runtime on this data: a text column filled outside the graph, a column
# named with "/" fed by position, numbers kept in double up to the trees' float32 cast.
# The others say why not: the converter cannot translate HistGradientBoosting, and ONNX
# Runtime breaks ties (rows whose extra-trees class probabilities are 0.5/0.5, equally
# distant neighbours) differently from scikit-learn.
SERVED_BY_ONNX = set(ESTIMATORS) - {"HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
                                    "ExtraTreesClassifier", "KNeighborsRegressor"}

CASES = [(name, kind) for name, (_, task) in ESTIMATORS.items()
         for kind in (("binary", "multiclass") if task == CLASSIFICATION else ("regression",))]


def wine_frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    alcohol = rng.normal(13.0, 0.8, ROWS).round(2)
    ratio = rng.normal(2.6, 0.7, ROWS).round(2)
    region = rng.choice(["piemonte", "toscana", "veneto"], ROWS, p=[0.5, 0.3, 0.2])
    score = (alcohol - 13.0) + (ratio - 2.6) + (region == "piemonte") * 0.8 + rng.normal(0, 0.5, ROWS)
    cultivar = np.where(score < -0.4, "barbera", np.where(score < 0.6, "grignolino", "barolo"))
    return pd.DataFrame({
        "alcohol": alcohol, "region": region, SLASHED: ratio,
        "premium": (score > 0.2).astype(int), "cultivar": cultivar,
        "colour_intensity": (5 + 2 * score + rng.normal(0, 0.3, ROWS)).round(3),
    })


def _params(estimator: str) -> dict:
    from training.services import estimator_class

    known = estimator_class(estimator)().get_params(deep=False)
    return {k: v for k, v in QUICK.items() if k in known}


def _browser(project):
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.VIEWER)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(("estimator", "kind"), CASES, ids=[f"{e}-{k}" for e, k in CASES])
def test_every_catalogue_estimator_trains_registers_and_serves(project, editor, eager, estimator, kind):
    frame = wine_frame()
    with eager():
        dataset = ds.upload(editor, project.slug, "wine", ds.csv_bytes(frame)).json()
    target = TARGETS[kind]
    task = REGRESSION if kind == "regression" else CLASSIFICATION
    spec = {"dataset_version": dataset["id"], "target": target, "features": FEATURES,
            "sensitive_features": [], "task": task, "estimator": estimator, "params": _params(estimator),
            "split": {"test_size": 0.25, "seed": 7}}
    with eager():
        response = editor.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                               {"experiment": "wine", "spec": spec}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    run = Run.objects.get(pk=job.result["run_id"])

    with eager():
        response = editor.post(f"/api/v1/projects/{project.slug}/models/wine/versions/",
                               {"run_id": str(run.pk)}, format="json")
    assert response.status_code == 201, response.content
    version = ModelVersion.objects.get(model__name="wine", version=response.json()["version"])
    assert version.status == VersionStatus.READY, version.status_message
    assert [c["name"] for c in version.columns] == FEATURES

    # One plain sentence, never a runtime's raw message.
    reason = version.runtime_reason
    assert version.runtime in ("onnx", "sklearn")
    assert reason.endswith(".") and "\n" not in reason and len(reason) < 300, reason
    assert not re.search(r"Error\b|Exception|ONNXRuntime|\[|Traceback|skl2onnx|tensor\(", reason), reason
    if version.runtime == "onnx":
        assert version.verification["passed"] is True
    if estimator in SERVED_BY_ONNX:
        assert version.runtime == "onnx", reason

    detail = editor.get(f"/api/v1/projects/{project.slug}/models/wine/versions/{version.version}/").json()
    assert (detail["runtime"], detail["runtime_reason"]) == (version.runtime, reason)
    page = _browser(project).get(f"/p/{project.slug}/models/wine/v/{version.version}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert reason.replace("'", "&#x27;").replace('"', "&quot;") in text
    assert "ONNXRuntimeError" not in text and "Traceback" not in text

    rows = frame[FEATURES].sample(25, random_state=1)
    records = [{"alcohol": float(r[0]), "region": str(r[1]), SLASHED: float(r[2])}
               for r in rows.itertuples(index=False)]
    response = editor.post(f"/api/v1/serve/{project.slug}/wine/{version.version}/predict",
                           {"records": records}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["runtime"] == version.runtime
    pipeline = estimator_load(version)
    expected = pipeline.predict(rows)
    if task == CLASSIFICATION:
        assert body["predictions"] == expected.tolist()
        if hasattr(pipeline, "predict_proba"):
            assert np.abs(np.array(body["probabilities"]) - pipeline.predict_proba(rows)).max() <= 1e-5
    else:
        got = np.array(body["predictions"], dtype=float)
        assert np.all(np.abs(got - expected) <= 1e-5 * np.maximum(1.0, np.abs(expected))), (got, expected)
