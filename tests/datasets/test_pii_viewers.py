"""A viewer reads everything a PII-trained model left behind and never meets a PII value.

Real uploads, profile and validation jobs, training, registration and checks
(run eagerly in this process): a dataset with an email-like PII column whose
values are distinctive, a run trained on it with the opt-in, the model version
registered from that run, and a validation report over the column. Then every
page and API answer a viewer can reach about them is read whole and searched
for the values, while an editor's answers show the values are really there.
"""

import json
from urllib.parse import quote

import pytest

from core.models import Job, JobStatus
from experiments.models import Run
from registry import prediction_log, serving
from registry.models import ModelVersion, VersionStatus
from tests.datasets import test_datasets as ds
from tests.datasets.test_datasets import csv_bytes, upload
from tests.datasets.test_pii_validation import PII_MARK, browser_for, people_frame

eager = ds.eager
VALUE_PREFIX = "zq0"  # every email of people_frame starts with it: zq000.secret@corp.example, ...


def leaks(body: bytes) -> bool:
    text = body.decode("utf-8", errors="replace")
    return PII_MARK in text or VALUE_PREFIX in text or quote(PII_MARK) in text


@pytest.fixture(autouse=True)
def serving_state(settings):
    """No model loaded before, none left after; the viewer's prediction is logged and flushed here."""
    settings.PREDICTION_LOG_BACKGROUND = False
    serving.predictor_cache_clear()
    prediction_log._drain()
    yield
    serving.predictor_cache_clear()
    prediction_log._drain()


@pytest.fixture
def pii_world(editor, project, eager):
    """A dataset version with a PII email column, a run trained on it, its model version, a report."""
    frame = people_frame()
    with eager():
        version = upload(editor, project.slug, "people", csv_bytes(frame)).json()
    base = f"/api/v1/dataset-versions/{version['id']}/"
    assert editor.patch(base + "columns/", {"columns": {"email": {"pii": True}, "churn": {"role": "target"}}},
                        format="json").status_code == 200
    rules = f"/api/v1/projects/{project.slug}/datasets/people/rules/"
    # A rule whose allowed values are the column's own values, and one that they fail.
    for rule in ({"kind": "allowed_values", "column": "email", "config": {"values": list(frame.email[:3])}},
                 {"kind": "unique", "column": "email"}, {"kind": "not_null", "column": "email"}):
        assert editor.post(rules, rule, format="json").status_code == 201
    with eager():
        assert editor.post(base + "profile/").status_code == 202
        assert editor.post(base + "validate/").status_code == 202

    spec = {"dataset_version": version["id"], "target": "churn", "task": "classification",
            "estimator": "LogisticRegression", "params": {"max_iter": 500},
            "split": {"test_size": 0.25, "stratify": True, "seed": 1}, "metrics": ["accuracy", "roc_auc"],
            "allow_pii_features": True}
    with eager():
        response = editor.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                               {"experiment": "churn", "spec": spec}, format="json")
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    run = Run.objects.get(pk=job.result["run_id"])
    with eager():
        response = editor.post(f"/api/v1/projects/{project.slug}/models/churn/versions/",
                               {"run_id": str(run.pk), "artifact_path": "model"}, format="json")
    assert response.status_code == 201, response.content
    model_version = ModelVersion.objects.get()
    assert model_version.status == VersionStatus.READY, model_version.status_message
    return {"dataset_version": version["id"], "job": job, "run": run, "model_version": model_version,
            "frame": frame}


def viewer_reads(project, world, api, browser) -> dict[str, object]:
    """Every answer a member reaches about the world: API bodies and pages, keyed by URL."""
    run, job, dv = world["run"], world["job"], world["dataset_version"]
    slug, model = project.slug, f"/api/v1/projects/{project.slug}/models/churn/"
    api_urls = [
        f"/api/v1/runs/{run.pk}/", f"/api/v1/runs/{run.pk}/artifacts/?recursive=true",
        f"/api/v1/runs/{run.pk}/training/", f"/api/v1/runs/{run.pk}/datasets/",
        f"/api/v1/jobs/{job.pk}/", f"/api/v1/projects/{slug}/jobs/",
        f"/api/v1/projects/{slug}/runs/search/",
        f"/api/v1/dataset-versions/{dv}/", f"/api/v1/dataset-versions/{dv}/preview/?rows=100",
        f"/api/v1/dataset-versions/{dv}/download/",
        f"/api/v1/projects/{slug}/datasets/", f"/api/v1/projects/{slug}/datasets/people/",
        f"/api/v1/projects/{slug}/datasets/people/rules/",
        model, model + "versions/", model + "versions/1/", model + "versions/1/check-job/",
        model + "aliases/",
    ]
    for artifact in run.artifacts.all():
        api_urls.append(f"/api/v1/runs/{run.pk}/artifacts/{artifact.path}")
    for key in run.latest_metrics.values_list("key", flat=True):
        api_urls.append(f"/api/v1/runs/{run.pk}/metrics/history/?key={key}")
    pages = [
        f"/runs/{run.pk}/", f"/runs/{run.pk}/datasets-panel/", f"/runs/{run.pk}/artifacts/",
        f"/runs/{run.pk}/artifacts/?prefix=model", f"/runs/{run.pk}/artifacts/?prefix=plots",
        f"/training/jobs/{job.pk}/", f"/jobs/{job.pk}/", f"/p/{slug}/", f"/p/{slug}/e/{run.experiment_id}/",
        f"/datasets/v/{dv}/", f"/p/{slug}/datasets/", f"/p/{slug}/datasets/people/",
        f"/p/{slug}/models/", f"/p/{slug}/models/churn/", f"/p/{slug}/models/churn/v/1/",
        f"/p/{slug}/models/churn/v/1/lineage/",
    ]
    for artifact in run.artifacts.all():
        pages.append(f"/runs/{run.pk}/artifacts/preview/?path={quote(artifact.path)}")
    answers = {url: api.get(url) for url in api_urls}
    answers |= {url: browser.get(url) for url in pages}
    record = {c: ("zq999.unseen@" + PII_MARK if c == "email" else 1) for c in ("email", "income", "age")}
    record["dept"] = "ops"
    answers["predict"] = api.post(f"/api/v1/serve/{slug}/churn/1/predict", {"records": [record]},
                                  format="json")
    return answers


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def test_a_viewer_meets_no_pii_value_anywhere(project, viewer, editor, pii_world):
    answers = viewer_reads(project, pii_world, viewer, browser_for(viewer))
    statuses = {url: r.status_code for url, r in answers.items()}
    run = pii_world["run"]
    locked = {f"/api/v1/runs/{run.pk}/artifacts/model/model.skops",
              f"/runs/{run.pk}/artifacts/preview/?path=model/model.skops",
              f"/api/v1/dataset-versions/{pii_world['dataset_version']}/download/"}
    assert {url for url, code in statuses.items() if code == 403} == locked, statuses
    assert all(code == 200 for url, code in statuses.items() if url not in locked), statuses
    leaked = [url for url, response in answers.items() if leaks(body_of(response))]
    assert leaked == [], f"PII values reached a viewer at: {leaked}"

    # The values are really there: an editor's answers show them.
    seen = viewer_reads(project, pii_world, editor, browser_for(editor))
    for url in (f"/api/v1/runs/{run.pk}/artifacts/model/model.skops",
                f"/api/v1/dataset-versions/{pii_world['dataset_version']}/preview/?rows=100",
                f"/api/v1/dataset-versions/{pii_world['dataset_version']}/",
                f"/api/v1/projects/{project.slug}/datasets/people/rules/"):
        assert seen[url].status_code == 200 and leaks(body_of(seen[url])), url
    assert "email" in json.loads(body_of(seen[f"/api/v1/projects/{project.slug}/models/churn/versions/1/"]))[
        "signature"]["onnx_fills"]


def test_what_the_viewer_sees_says_why_values_are_missing(project, viewer, pii_world):
    body = viewer.get(f"/api/v1/projects/{project.slug}/models/churn/versions/1/").json()
    assert body["pii"] is True
    assert [c["name"] for c in body["signature"]["columns"] if c["pii"]] == ["email"]
    page = browser_for(viewer).get(f"/p/{project.slug}/models/churn/v/1/").content.decode()
    assert 'id="holds-pii"' in page
    report = viewer.get(f"/api/v1/dataset-versions/{pii_world['dataset_version']}/").json()["validation"]
    by_kind = {r["kind"]: r for r in report["rules"]}
    failing = by_kind["allowed_values"]["failed_count"]
    assert failing > 0 and by_kind["allowed_values"]["message"] == f"{failing} value(s) not allowed"
    assert by_kind["allowed_values"]["config"] == {"values_count": 3, "hidden": True}
