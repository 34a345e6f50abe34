import json

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from experiments.models import Job, JobStatus, Run, RunDataset, TrainingRun
from tests.experiments.test_datasets import (  # noqa: F401 - fixtures
    artifact_root,
    csv_bytes,
    eager,
    error_of,
    fast_password_hashing,
    upload,
)


def breast_cancer_frame() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    df = data.frame.rename(columns={"target": "malignant"})
    rng = np.random.default_rng(3)
    df.insert(0, "sex", rng.choice(["F", "M"], len(df)))
    df.insert(0, "patient_id", np.arange(len(df)))
    return df


@pytest.fixture
def version(editor, project, eager):
    with eager():
        body = upload(editor, project.slug, "cancer", csv_bytes(breast_cancer_frame())).json()
    editor.patch(f"/api/v1/dataset-versions/{body['id']}/columns/",
                 {"columns": {"patient_id": {"role": "id"}, "sex": {"role": "sensitive"}}}, format="json")
    return body


def spec_for(version, **changes):
    spec = {"dataset_version": version["id"], "target": "malignant", "features": None,
            "sensitive_features": ["sex"], "task": "classification", "estimator": "RandomForestClassifier",
            "params": {"n_estimators": 20, "max_depth": 4},
            "split": {"test_size": 0.25, "stratify": True, "seed": 7}, "metrics": ["accuracy", "roc_auc"]}
    spec.update(changes)
    return spec


def submit(client, project, spec, eager, experiment="cancer"):
    with eager():
        response = client.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                               {"experiment": experiment, "spec": spec}, format="json")
    return response


def test_training_job_logs_a_complete_run(editor, project, version, eager):
    response = submit(editor, project, spec_for(version), eager)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert "Fitted" in job.log
    run = Run.objects.get(pk=job.result["run_id"])
    body = editor.get(f"/api/v1/runs/{run.pk}/").json()
    assert body["status"] == "FINISHED" and body["experiment"] == "cancer"
    for key in ("train_accuracy", "test_accuracy", "train_roc_auc", "test_roc_auc"):
        assert 0.8 < body["metrics"][key]["value"] <= 1.0
    assert body["params"]["n_estimators"] == "20" and body["params"]["estimator"] == "RandomForestClassifier"
    assert body["params"]["random_state"] == "7"
    assert json.loads(body["tags"]["steward.sensitive_features"]) == ["sex"]

    paths = {a.path for a in run.artifacts.all()}
    assert {"model/model.skops", "model/signature.json", "plots/confusion_matrix.json", "plots/roc_curve.json",
            "feature_importances.json", "spec.json"} <= paths
    _, blob = _artifact(run, "model/signature.json")
    signature = json.loads(blob)
    assert [i["name"] for i in signature["inputs"]][:2] == ["sex", "mean radius"]
    assert "patient_id" not in [i["name"] for i in signature["inputs"]]
    _, model_bytes = _artifact(run, "model/model.skops")
    model = sio.loads(model_bytes, trusted=signature["trusted_types"])
    df = breast_cancer_frame()
    assert model.predict(df[[i["name"] for i in signature["inputs"]]].head(5)).shape == (5,)

    record = TrainingRun.objects.get(run=run)
    assert record.spec["estimator"] == "RandomForestClassifier" and record.spec["features"] is None
    link = RunDataset.objects.get(run=run)
    assert (link.dataset_version_id, link.direction) == (version["id"], "input")
    lineage = editor.get(f"/api/v1/dataset-versions/{version['id']}/").json()["lineage"]
    assert lineage["inputs_of"][0]["run_id"] == str(run.pk)


def _artifact(run, path):
    from experiments.artifacts import artifact_open

    artifact, fh = artifact_open(run=run, path=path)
    with fh:
        return artifact, fh.read()


def test_rerun_gives_identical_metrics(editor, project, version, eager):
    first = submit(editor, project, spec_for(version, estimator="GradientBoostingClassifier",
                                             params={"n_estimators": 30, "subsample": 0.8}), eager)
    run_id = Job.objects.get(pk=first.json()["id"]).result["run_id"]
    with eager():
        again = editor.post(f"/api/v1/runs/{run_id}/rerun/")
    assert again.status_code == 202
    job = Job.objects.get(pk=again.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    a = editor.get(f"/api/v1/runs/{run_id}/").json()["metrics"]
    b = editor.get(f"/api/v1/runs/{job.result['run_id']}/").json()["metrics"]
    assert job.result["run_id"] != run_id
    assert {k: v["value"] for k, v in a.items() if k != "fit_seconds"} == \
        {k: v["value"] for k, v in b.items() if k != "fit_seconds"}
    assert TrainingRun.objects.get(run_id=job.result["run_id"]).rerun_of_id is not None
