"""Datasets and training jobs through the SDK against a real server (jobs run eagerly there)."""

from __future__ import annotations

import hashlib

import pytest
import steward

from datasets.models import RunDataset
from tests.training.test_training import breast_cancer_frame

pytestmark = pytest.mark.live


def test_dataset_upload_training_job_and_wait(steward_server, account, tmp_path):
    client = steward.Client(url=steward_server.url, token=account.token)
    df = breast_cancer_frame()
    path = tmp_path / "cancer.csv"
    df.to_csv(path, index=False)
    dv = client.create_dataset_version(account.project, "cancer", path)
    assert dv.version == 1 and dv.row_count == len(df)
    assert dv.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert client.create_dataset_version(account.project, "cancer", path).id == dv.id  # same content
    from_frame = client.create_dataset_version(account.project, "cancer-frame", df)
    assert from_frame.format == "parquet" and from_frame.column_count == df.shape[1]
    client.set_dataset_columns(dv.id, {"patient_id": {"role": "id"}, "sex": {"role": "sensitive"}})

    spec = {"dataset_version": dv.id, "target": "malignant", "features": None, "sensitive_features": ["sex"],
            "task": "classification", "estimator": "RandomForestClassifier", "params": {"n_estimators": 30},
            "split": {"test_size": 0.25, "stratify": True, "seed": 7}, "metrics": ["accuracy", "roc_auc"]}
    job = client.submit_training_job(account.project, "sdk", spec)
    job = client.get_job(job.id)
    job = client.wait_job(job.id, timeout=120)
    assert job.status == "succeeded", job.error
    run = client.get_run(job.result["run_id"])
    assert run.metrics["test_accuracy"] > 0.9

    again = client.wait_job(client.rerun(run.id).id, timeout=120)
    rerun = client.get_run(again.result["run_id"])
    assert rerun.metrics["test_roc_auc"] == run.metrics["test_roc_auc"]

    with pytest.raises(steward.InvalidRequestError) as err:
        client.submit_training_job(account.project, "sdk", {**spec, "estimator": "os.system"})
    assert "estimator" in str(err.value)
    client.close()


def test_run_log_dataset_records_the_input(steward_server, account):
    steward.configure(url=steward_server.url, token=account.token, project=account.project)
    df = breast_cancer_frame().head(100)
    with steward.start_run(experiment="manual", capture=False) as run:
        dv = run.log_dataset(df, "cancer-sample", role="train")
    assert dv.row_count == 100
    link = RunDataset.objects.get(run_id=run.id)
    assert (link.dataset_version_id, link.direction, link.role) == (dv.id, "input", "train")
