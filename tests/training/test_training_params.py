"""Hyperparameters given as JSON objects (class_weight) through the API, the spec and the form."""

import json

import pytest
import skops.io as sio
from django.test import Client

from accounts.models import Role
from core.models import Job, JobStatus
from datasets.models import DatasetVersion
from experiments.models import Run
from tests.datasets import test_datasets as ds
from tests.datasets.test_datasets import csv_bytes, error_of, upload
from tests.factories import MembershipFactory, UserFactory
from tests.training.test_training import _artifact, breast_cancer_frame, spec_for, submit
from training.models import Sweep, TrainingRun

eager = ds.eager


@pytest.fixture
def version(editor, project, eager):
    df = breast_cancer_frame()
    df["size"] = (df["mean radius"] > 14).map({True: "large", False: "small"})
    with eager():
        return upload(editor, project.slug, "cancer", csv_bytes(df)).json()


def _model(run):
    _, blob = _artifact(run, "model/signature.json")
    _, model_bytes = _artifact(run, "model/model.skops")
    return sio.loads(model_bytes, trusted=json.loads(blob)["trusted_types"]).named_steps["model"]


def _metrics(client, run_id):
    return {k: v["value"] for k, v in client.get(f"/api/v1/runs/{run_id}/").json()["metrics"].items()
            if not k.startswith("system/")}


def test_class_weight_object_trains_with_the_targets_own_labels(editor, project, version, eager):
    weights = {"0": 1, "1": 5}
    spec = spec_for(version, estimator="LogisticRegression", metrics=["accuracy", "recall"],
                    params={"class_weight": weights, "max_iter": 500})
    response = submit(editor, project, spec, eager)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    run = Run.objects.get(pk=job.result["run_id"])

    # The integer target's classes are 0 and 1: the model holds them as numbers, not "0" and "1".
    assert _model(run).class_weight == {0: 1, 1: 5}
    body = editor.get(f"/api/v1/runs/{run.pk}/").json()
    # Stored as every path stores a value: str() of the Python value, as autolog would log it.
    assert body["params"]["class_weight"] == str(weights)
    assert TrainingRun.objects.get(run=run).spec["params"]["class_weight"] == weights
    assert editor.get(f"/api/v1/runs/{run.pk}/training/").json()["spec"]["params"]["class_weight"] == weights

    plain = submit(editor, project, {**spec, "params": {"max_iter": 500}}, eager).json()
    plain_run = Job.objects.get(pk=plain["id"]).result["run_id"]
    # Weighting class 1 five times moves the decision boundary: the metrics differ.
    assert _metrics(editor, plain_run) != _metrics(editor, run.pk)

    with eager():
        again = editor.post(f"/api/v1/runs/{run.pk}/rerun/")
    rerun = Job.objects.get(pk=again.json()["id"])
    assert rerun.status == JobStatus.SUCCEEDED, rerun.error
    assert _metrics(editor, rerun.result["run_id"]) == _metrics(editor, run.pk)


def test_class_weight_object_for_a_text_target(editor, project, version, eager):
    spec = spec_for(version, target="size", features=["mean texture", "mean smoothness"],
                    estimator="DecisionTreeClassifier",
                    params={"max_depth": 3, "class_weight": {"large": 3, "small": 0.5}})
    job = Job.objects.get(pk=submit(editor, project, spec, eager).json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert _model(Run.objects.get(pk=job.result["run_id"])).class_weight == {"large": 3, "small": 0.5}


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"class_weight": {"0": 1, "7": 2}}, "params.class_weight", "'7' is not a class of 'malignant'"),
        ({"class_weight": {"zero": 1}}, "params.class_weight", "its classes are 0, 1"),
        ({"class_weight": {"1": -2}}, "params.class_weight", "positive number"),
        ({"class_weight": {"1": 0}}, "params.class_weight", "positive number"),
        ({"class_weight": {"1": "heavy"}}, "params.class_weight", "positive number"),
        ({"class_weight": {"1": True}}, "params.class_weight", "positive number"),
        ({"class_weight": {"1": [1, 2]}}, "params.class_weight", "positive number"),
        ({"class_weight": {"1": 1, "1.0": 2}}, "params.class_weight", "twice"),
        ({"criterion": {"gini": 1}}, "params.criterion", "does not take an object"),
        ({"max_depth": {"low": 1}}, "params.max_depth", "does not take an object"),
    ],
)
def test_bad_objects_are_refused_with_the_field_and_nothing_is_queued(editor, project, version, eager,
                                                                      params, field, words):
    response = submit(editor, project, spec_for(version, params=params), eager)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert field in error["fields"], error
    assert words.lower() in error["fields"][field].lower()
    assert not Job.objects.filter(kind="training").exists() and not Run.objects.exists()


def test_a_sweep_over_class_weights_checks_every_trial(editor, project, version, eager):
    search = {"strategy": "grid", "space": {"class_weight": [None, "balanced", {"0": 1, "2": 3}]}}
    body = {"experiment": "sweep", "spec": spec_for(version), "search": search}
    response = editor.post(f"/api/v1/projects/{project.slug}/sweeps/", body, format="json")
    assert response.status_code == 400
    assert "not a class" in error_of(response)["fields"]["search.space"]
    assert not Job.objects.filter(kind="training").exists() and not Sweep.objects.exists()

    search["space"]["class_weight"][2] = {"0": 1, "1": 3}
    with eager():
        response = editor.post(f"/api/v1/projects/{project.slug}/sweeps/",
                               {"experiment": "sweep", "spec": spec_for(version), "search": search,
                                "parallelism": 3}, format="json")
    assert response.status_code == 201, response.content
    sweep = editor.get(f"/api/v1/sweeps/{response.json()['id']}/").json()
    assert sweep["progress"]["succeeded"] == 3, sweep["leaderboard"]


def test_without_a_profile_the_worker_checks_the_classes_and_fails_the_job(editor, project, version, eager):
    # Until the profile job has run, the web process does not know the target's classes.
    DatasetVersion.objects.filter(pk=version["id"]).update(profile=None)
    response = submit(editor, project, spec_for(version, params={"class_weight": {"0": 1, "7": 2}}), eager)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.FAILED and job.message == "Invalid input"
    assert "class_weight" in job.error and "'7' is not a class of 'malignant'" in job.error
    assert not Run.objects.exists()


def test_training_form_takes_a_class_weight_object_and_shows_its_errors(project, version, eager):
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.EDITOR)
    browser = Client()
    browser.force_login(user)
    fields = {"experiment": "ui", "dataset_version": version["id"], "target": "malignant",
              "task": "classification", "estimator": "RandomForestClassifier", "test_size": 0.25, "seed": 7,
              "stratify": "on", "metrics": ["accuracy"]}
    form = browser.get(f"/p/{project.slug}/train/?dataset_version={version['id']}").content.decode()
    assert "class_weight" in form  # the params field says how to give an object

    bad = browser.post(f"/p/{project.slug}/train/",
                       {**fields, "params": '{"class_weight": {"0": 1, "9": 4}}'})
    assert bad.status_code == 200
    assert "params.class_weight" in bad.content.decode() and "is not a class" in bad.content.decode()
    assert not Job.objects.filter(kind="training").exists()

    with eager():
        good = browser.post(f"/p/{project.slug}/train/",
                            {**fields, "params": '{"n_estimators": 10, "class_weight": {"0": 1, "1": 4}}'})
    job = Job.objects.get(kind="training")
    assert good.status_code == 302 and job.status == JobStatus.SUCCEEDED, job.error
    assert _model(Run.objects.get(pk=job.result["run_id"])).class_weight == {0: 1, 1: 4}
