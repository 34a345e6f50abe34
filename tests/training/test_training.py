import json
import threading

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from django.db import connection

from core.models import Job, JobStatus
from datasets.models import RunDataset
from experiments.models import Run
from tests.datasets import test_datasets as ds
from tests.datasets.test_datasets import csv_bytes, error_of, upload
from training.models import TrainingRun

# Fixtures shared with the dataset tests.
eager = ds.eager


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
    # One text per value: str() of the plain Python value, as the SDK and autolog store it.
    assert (body["params"]["stratify"], body["params"]["test_size"]) == ("True", "0.25")
    assert body["params"]["max_features"] == "sqrt" and body["params"]["max_leaf_nodes"] == "None"
    assert json.loads(body["tags"]["steward.sensitive_features"]) == ["sex"]

    paths = {a.path for a in run.artifacts.all()}
    assert {"model/model.skops", "model/signature.json", "plots/confusion_matrix.json",
            "plots/roc_curve.json", "feature_importances.json", "spec.json"} <= paths
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

    artifact, fh = artifact_open(run=run, path=path, user=run.author)
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
    # The fit time is the machine's, under system/; every other metric is the same.
    assert "system/fit_seconds" in a and not any(k.endswith("seconds") for k in a if "/" not in k)
    assert {k: v["value"] for k, v in a.items() if not k.startswith("system/")} == \
        {k: v["value"] for k, v in b.items() if not k.startswith("system/")}
    assert TrainingRun.objects.get(run_id=job.result["run_id"]).rerun_of_id is not None


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"target": "nope"}, "target", "no column 'nope'"),
        ({"target": "constant"}, "target", "single value"),
        ({"task": "regression", "estimator": "Ridge", "target": "sex", "sensitive_features": [],
          "split": {"stratify": False}, "metrics": ["r2"]}, "target", "numeric target"),
        ({"estimator": "os.system"}, "estimator", "not an allowed estimator"),
        ({"estimator": "sklearn.ensemble.RandomForestClassifier"}, "estimator", "not an allowed"),
        ({"estimator": "Ridge"}, "estimator", "for regression"),
        ({"params": {"n_estimatorz": 10}}, "params.n_estimatorz", "no parameter"),
        ({"params": {"n_estimators": "many"}}, "params.n_estimators", "n_estimators"),
        ({"params": {"max_depth": -3}}, "params.max_depth", "max_depth"),
        ({"params": {"criterion": {"evil": 1}}}, "params.criterion", "number, string"),
        ({"features": ["mean radius", "ghost"]}, "features", "ghost"),
        ({"features": ["malignant"]}, "features", "target"),
        ({"split": {"test_size": 1.5}}, "split.test_size", "fraction"),
        ({"metrics": ["r2"]}, "metrics", "not a classification metric"),
        ({"dataset_version": 999999}, "dataset_version", "no dataset version"),
        ({"surprise": 1}, "spec.surprise", "unknown"),
    ],
)
def test_bad_specs_are_refused_before_anything_is_queued(editor, project, eager, changes, field,
                                                         words):
    with eager():
        body = upload(editor, project.slug, "cancer", csv_bytes(breast_cancer_frame().assign(constant=1)))
    spec = spec_for(body.json(), **changes)
    jobs_before = Job.objects.filter(kind="training").count()
    response = submit(editor, project, spec, eager)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert field in error["fields"], error
    assert words.lower() in error["fields"][field].lower()
    assert Job.objects.filter(kind="training").count() == jobs_before
    assert not Run.objects.exists()


def test_a_problem_only_the_data_shows_fails_the_job_with_a_reason_and_no_run(editor, project, eager):
    df = breast_cancer_frame()
    df["grade"] = ["a"] * (len(df) - 1) + ["b"]  # class 'b' has one row: no stratified split
    with eager():
        body = upload(editor, project.slug, "graded", csv_bytes(df)).json()
    response = submit(editor, project, spec_for(body, target="grade", features=["mean radius"]), eager)
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.FAILED
    assert job.message == "Invalid input" and "'b' has one row" in job.error
    assert not Run.objects.exists()


def test_regression_logs_residual_plots_and_errors(editor, project, eager):
    from sklearn.datasets import load_diabetes

    with eager():
        body = upload(editor, project.slug, "diabetes", csv_bytes(load_diabetes(as_frame=True).frame)).json()
    spec = {"dataset_version": body["id"], "target": "target", "task": "regression", "estimator": "Ridge",
            "params": {"alpha": 0.5}, "split": {"test_size": 0.2, "seed": 1}}
    job = Job.objects.get(pk=submit(editor, project, spec, eager).json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    run = Run.objects.get(pk=job.result["run_id"])
    metrics = editor.get(f"/api/v1/runs/{run.pk}/").json()["metrics"]
    assert 0.2 < metrics["test_r2"]["value"] < 0.8 and metrics["test_rmse"]["value"] > 0
    paths = set(run.artifacts.values_list("path", flat=True))
    assert {"plots/residuals.json", "feature_importances.json", "model/model.skops"} <= paths
    assert "plots/confusion_matrix.json" not in paths


def test_cancelled_training_job_makes_no_run(editor, project, version, eager):
    response = editor.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                           {"experiment": "x", "spec": spec_for(version)}, format="json")
    job_id = response.json()["id"]
    with eager():
        cancelled = editor.post(f"/api/v1/jobs/{job_id}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    assert not Run.objects.exists()


def test_sweep_runs_every_trial_within_the_parallelism_and_marks_the_best(editor, project, version, eager):
    search = {"strategy": "grid", "space": {"max_depth": [1, 3], "n_estimators": [5, 15]}}
    with eager():
        response = editor.post(f"/api/v1/projects/{project.slug}/sweeps/",
                               {"experiment": "sweep", "spec": spec_for(version), "search": search,
                                "parallelism": 2, "objective": "test_roc_auc"}, format="json")
    assert response.status_code == 201, response.content
    sweep = editor.get(f"/api/v1/sweeps/{response.json()['id']}/").json()
    assert sweep["status"] == "finished"
    assert sweep["progress"]["succeeded"] == 4 and sweep["progress"]["percent"] == 100
    board = sweep["leaderboard"]
    assert [row["objective"] for row in board] == sorted((r["objective"] for r in board), reverse=True)
    assert board[0]["best"] and sweep["best_run_id"] == board[0]["run_id"]
    assert sum(row["best"] for row in board) == 1
    assert {(r["params"]["max_depth"], r["params"]["n_estimators"]) for r in board} == {
        (1, 5), (1, 15), (3, 5), (3, 15)}
    run = editor.get(f"/api/v1/runs/{board[0]['run_id']}/").json()
    assert run["params"]["max_depth"] == str(board[0]["params"]["max_depth"])


def test_sweep_queues_no_more_than_its_parallelism(editor, project, version):
    search = {"strategy": "random", "space": {"max_depth": {"low": 1, "high": 6, "int": True}},
              "n_trials": 5, "seed": 1}
    response = editor.post(f"/api/v1/projects/{project.slug}/sweeps/",
                           {"experiment": "sweep", "spec": spec_for(version), "search": search,
                            "parallelism": 2}, format="json")
    assert response.status_code == 201
    assert response.json()["progress"] | {"percent": 0} == {
        "total": 5, "pending": 3, "queued": 2, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0,
        "percent": 0}
    bad = editor.post(f"/api/v1/projects/{project.slug}/sweeps/",
                      {"experiment": "sweep", "spec": spec_for(version),
                       "search": {"space": {"max_depth": [2, "deep"]}}}, format="json")
    assert bad.status_code == 400 and "trial 2" in error_of(bad)["fields"]["search.space"].lower()


def test_sweep_page_queues_the_next_trial_when_a_job_ended_without_reporting(editor, project, version):
    search = {"strategy": "grid", "space": {"max_depth": [1, 2, 3]}}
    sweep = editor.post(f"/api/v1/projects/{project.slug}/sweeps/",
                        {"experiment": "sweep", "spec": spec_for(version), "search": search,
                         "parallelism": 1}, format="json").json()
    assert sweep["progress"]["queued"] == 1 and sweep["progress"]["pending"] == 2
    # The reaper failed the first trial's job (its worker died twice): no task reported back.
    Job.objects.filter(kind="training").update(status=JobStatus.FAILED, error="worker lost")
    again = editor.get(f"/api/v1/sweeps/{sweep['id']}/").json()
    progress = again["progress"]
    assert (progress["failed"], progress["queued"], progress["pending"]) == (1, 1, 1)
    assert [r["error"] for r in again["leaderboard"] if r["status"] == "failed"] == ["worker lost"]


@pytest.mark.django_db(transaction=True)
def test_a_training_job_run_off_the_main_thread_still_trains(editor, project, version, settings):
    # Eager tasks in a web server's thread (or a threads pool) cannot take signal handlers:
    # the fit is then only watched for heartbeats, and cancel waits for the next progress report.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    responses = []

    def post():
        try:
            url = f"/api/v1/projects/{project.slug}/training-jobs/"
            body = {"experiment": "threaded", "spec": spec_for(version)}
            responses.append(editor.post(url, body, format="json"))
        finally:
            connection.close()  # this thread's own

    thread = threading.Thread(target=post)
    thread.start()
    thread.join()
    assert responses[0].status_code == 202, responses[0].content
    job = Job.objects.get(pk=responses[0].json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert Run.objects.filter(pk=job.result["run_id"]).exists()
