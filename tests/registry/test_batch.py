import pickle

import numpy as np
import pandas as pd
import pytest

from core.models import Job, JobStatus
from datasets.models import DatasetVersion
from registry.models import ModelVersion
from tests.datasets import test_datasets as ds
from tests.factories import ProjectFactory
from tests.registry.conftest import register, store_model

pytestmark = pytest.mark.django_db
eager = ds.eager


def patients(cancer_data, rows=120):
    X, _ = cancer_data
    frame = X.iloc[:rows].copy()
    frame.insert(0, "patient", np.arange(1000, 1000 + rows))
    return frame


@pytest.fixture
def scoring_setup(project, run, editor, owner, forest, cancer_data, eager):
    store_model(run, forest, example=cancer_data[0].head(50))
    register(project=project, run=run, user=editor.user)
    with eager():
        body = ds.upload(editor, project.slug, "patients", ds.csv_bytes(patients(cancer_data))).json()
    owner.patch(f"/api/v1/dataset-versions/{body['id']}/columns/",
                {"columns": {"patient": {"role": "id"}}}, format="json")
    return body


def score_url(project, ref="1"):
    return f"/api/v1/projects/{project.slug}/models/credit-scorer/versions/{ref}/batch-score/"


def test_a_dataset_version_is_scored_into_a_new_dataset_version(project, editor, scoring_setup, forest,
                                                                cancer_data, eager):
    with eager():
        response = editor.post(score_url(project), {"dataset_version_id": scoring_setup["id"]}, format="json")
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress == 100
    assert job.result["rows"] == 120 and job.result["runtime"] == "onnx"
    output = DatasetVersion.objects.get(pk=job.result["dataset_version_id"])
    assert output.dataset.name == "credit-scorer-scores"
    assert [c["name"] for c in output.columns] == ["patient", "prediction", "probability_0", "probability_1"]
    from datasets.services import version_read_frame

    scored = version_read_frame(output)
    source = patients(cancer_data)
    assert scored["patient"].tolist() == source["patient"].tolist()
    assert scored["prediction"].tolist() == forest.predict(source.drop(columns="patient")).tolist()
    expected = forest.predict_proba(source.drop(columns="patient"))[:, 1]
    assert np.abs(scored["probability_1"].to_numpy() - expected).max() <= 1e-5


def test_a_dataset_of_another_project_is_not_found(project, editor, scoring_setup, cancer_data):
    other = DatasetVersion.objects.get(pk=scoring_setup["id"])
    elsewhere = ProjectFactory()
    other.dataset.project = elsewhere
    other.dataset.save()
    response = editor.post(score_url(project), {"dataset_version_id": other.pk}, format="json")
    assert response.status_code == 404
    assert not Job.objects.filter(kind="batch_score").exists()


def test_a_batch_over_the_configured_size_is_a_413(project, editor, scoring_setup, settings):
    settings.BATCH_SCORE_MAX_ROWS = 100
    response = editor.post(score_url(project), {"dataset_version_id": scoring_setup["id"]}, format="json")
    assert response.status_code == 413
    assert not Job.objects.filter(kind="batch_score").exists()


def test_a_dataset_without_the_model_columns_is_a_400(project, editor, scoring_setup, eager):
    with eager():
        body = ds.upload(editor, project.slug, "other", ds.csv_bytes(pd.DataFrame({"a": [1, 2]}))).json()
    response = editor.post(score_url(project), {"dataset_version_id": body["id"]}, format="json")
    assert response.status_code == 400
    assert "dataset_version" in response.json()["error"]["fields"]


def test_viewers_cannot_score(project, viewer, scoring_setup):
    response = viewer.post(score_url(project), {"dataset_version_id": scoring_setup["id"]}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize("allow_pickles", [False, True])
def test_a_malicious_pickle_is_never_scored(project, run, editor, scoring_setup, tmp_path, eager, settings,
                                            allow_pickles):
    from tests.registry.test_safe_loading import Booby

    settings.ALLOW_PICKLE_MODELS = allow_pickles
    trap = tmp_path / "pwned.txt"
    store_model(run, None, folder="evil", file_name="model.pkl", data=pickle.dumps(Booby(trap)))
    version = register(project=project, run=run, user=editor.user, path="evil")
    response = editor.post(score_url(project, version.version), {"dataset_version_id": scoring_setup["id"]},
                           format="json")
    assert response.status_code == 409
    assert not trap.exists()
    # Even a job queued by hand for it refuses to load the file.
    params = {"model_version_id": version.pk, "dataset_version_id": scoring_setup["id"]}
    from core import jobs
    from registry import services

    with eager():
        job = jobs.job_create(kind="batch_score", project=project, user=editor.user, params=params)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert not trap.exists()
    ModelVersion.objects.filter(pk=version.pk).update(status="ready", runtime="sklearn")
    with eager():
        job = jobs.job_create(kind="batch_score", project=project, user=editor.user, params=params)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert ("not trusted" if allow_pickles else "off on this server") in job.error
    assert not trap.exists()
    assert services.BATCH_JOB_KIND == "batch_score"


def test_scoring_from_the_page(project, editor, scoring_setup, eager):
    from django.test import Client

    browser = Client()
    browser.force_login(editor.user)
    page = f"/p/{project.slug}/models/credit-scorer/v/1/"
    assert b'id="batch"' in browser.get(page).content
    with eager():
        response = browser.post(page + "batch-score/", {"dataset_version": scoring_setup["id"]}, follow=True)
    assert "Scoring patients v1" in response.content.decode()
    job = Job.objects.get(kind="batch_score")
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert f"credit-scorer-scores v{job.result['version']}" in browser.get(page).content.decode()


def test_a_pii_id_column_stays_pii_in_the_scores(project, editor, viewer, owner, scoring_setup, eager):
    owner.patch(f"/api/v1/dataset-versions/{scoring_setup['id']}/columns/",
                {"columns": {"patient": {"pii": True}}}, format="json")
    with eager():
        response = editor.post(score_url(project), {"dataset_version_id": scoring_setup["id"]}, format="json")
    output = Job.objects.get(pk=response.json()["id"]).result["dataset_version_id"]
    assert [c["name"] for c in DatasetVersion.objects.get(pk=output).columns if c["pii"]] == ["patient"]
    preview = viewer.get(f"/api/v1/dataset-versions/{output}/preview/?rows=5").json()
    assert preview["hidden_columns"] == ["patient"] and {r[0] for r in preview["rows"]} == {"***"}
    assert viewer.get(f"/api/v1/dataset-versions/{output}/download/").status_code == 403
