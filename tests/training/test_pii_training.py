"""Training jobs and PII columns: left out unless the spec opts in, and never named by value."""

import json

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Membership, Role
from core.models import Job, JobStatus
from experiments.models import Run
from tests.datasets import test_datasets as ds
from tests.datasets.test_datasets import csv_bytes, error_of, upload
from tests.datasets.test_pii_validation import PII_MARK, browser_for, people_frame
from tests.training.test_training import _artifact, submit
from training import services as training

eager = ds.eager


@pytest.fixture
def people(editor, project, eager):
    with eager():
        body = upload(editor, project.slug, "people", csv_bytes(people_frame())).json()
    editor.patch(f"/api/v1/dataset-versions/{body['id']}/columns/",
                 {"columns": {"email": {"pii": True}, "churn": {"role": "target"}}}, format="json")
    return body


def spec_for(version, **changes):
    spec = {"dataset_version": version["id"], "target": "churn", "task": "classification",
            "estimator": "RandomForestClassifier", "params": {"n_estimators": 10, "max_depth": 4},
            "split": {"test_size": 0.25, "stratify": True, "seed": 1}, "metrics": ["accuracy"]}
    spec.update(changes)
    return spec


def trained(client, project, spec, eager) -> tuple[Job, Run]:
    response = submit(client, project, spec, eager)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job, Run.objects.get(pk=job.result["run_id"])


def blob(run, path) -> bytes:
    return _artifact(run, path)[1]


@pytest.mark.parametrize("features", [None, ["email", "income", "dept"]])
def test_a_pii_column_is_left_out_of_the_features_and_the_job_and_run_say_so(
    editor, viewer, project, people, eager, features
):
    job, run = trained(editor, project, spec_for(people, features=features), eager)
    assert job.params["pii_left_out"] == ["email"] and job.result["pii_left_out"] == ["email"]
    assert "Left out PII column(s) email" in job.log
    assert json.loads(run.tags.get(key="steward.pii_left_out").value) == ["email"]
    assert "email" not in run.training.resolved_features
    assert "email" not in [i["name"] for i in json.loads(blob(run, "model/signature.json"))["inputs"]]
    for path in ("model/model.skops", "feature_importances.json", "plots/feature_importances.json"):
        assert PII_MARK.encode() not in blob(run, path), path
    assert not run.artifacts.filter(pii=True).exists()  # nothing to lock: no PII went in
    # Viewers read why, on the job page and the run's panel.
    for url in (f"/training/jobs/{job.pk}/", f"/runs/{run.pk}/datasets-panel/"):
        page = browser_for(viewer).get(url).content.decode()
        assert 'id="pii-left-out"' in page and "allow_pii_features" in page, url


def test_training_on_pii_needs_the_opt_in_and_names_the_column_not_its_values(editor, project, people, eager):
    job, run = trained(editor, project, spec_for(people, allow_pii_features=True), eager)
    assert job.result["pii_features"] == ["email"] and job.result["pii_left_out"] == []
    assert "email" in run.training.resolved_features
    assert PII_MARK.encode() in blob(run, "model/model.skops")  # the encoder keeps the values
    importances = json.loads(blob(run, "feature_importances.json"))
    names = [p["feature"] for p in importances]
    assert "email" in names and not any(n.startswith("cat__email") for n in names)
    assert "cat__dept_sales" in names  # a column that is not PII keeps its per-value outputs
    assert sum(p["importance"] for p in importances) == pytest.approx(1.0)  # nothing lost in the sums
    plot = blob(run, "plots/feature_importances.json")
    assert b'"email"' in plot and PII_MARK.encode() not in plot
    assert json.loads(run.tags.get(key="steward.pii_features").value) == ["email"]


def test_coefficient_importances_of_a_pii_column_are_summed_under_its_name(editor, project, people, eager):
    spec = spec_for(people, estimator="LogisticRegression", params={"max_iter": 500},
                    allow_pii_features=True)
    _, run = trained(editor, project, spec, eager)
    importances = json.loads(blob(run, "feature_importances.json"))
    assert [p["feature"] for p in importances].count("email") == 1
    assert PII_MARK not in json.dumps(importances)


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"features": ["email"]}, "features", "every feature column is pii (email)"),
    ({"target": "email"}, "target", "marked pii"),
    ({"target": "email", "allow_pii_features": True}, "target", "marked pii"),
    ({"allow_pii_features": "yes"}, "allow_pii_features", "true or false"),
])
def test_specs_that_would_show_pii_are_refused_naming_the_field(
    editor, project, people, eager, changes, field, words
):
    if changes.get("target") == "email":
        changes = {**changes, "split": {"stratify": False}}
    response = submit(editor, project, spec_for(people, **changes), eager)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert field in error["fields"] and words in error["fields"][field].lower(), error
    assert PII_MARK not in json.dumps(error)
    assert not Job.objects.filter(kind="training").exists()


def test_only_a_role_that_may_see_pii_can_opt_in(member_client, project, people):
    viewer = member_client(Role.VIEWER)
    with pytest.raises(ValidationError) as refused:
        training.spec_clean(project=project, spec=spec_for(people, allow_pii_features=True), user=viewer.user)
    assert "allow_pii_features" in refused.value.message_dict
    clean, _ = training.spec_clean(project=project, spec=spec_for(people), user=viewer.user)
    assert clean["allow_pii_features"] is False


def test_a_job_whose_submitter_lost_the_role_does_not_train_on_pii(
    editor, project, people, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = editor.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                               {"experiment": "people", "spec": spec_for(people, allow_pii_features=True)},
                               format="json")
    assert response.status_code == 202
    Membership.objects.filter(user=editor.user, project=project).update(role=Role.VIEWER)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    for callback in queued:
        callback()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.FAILED and "PII" in job.error
    assert not Run.objects.exists()


def test_the_training_form_opts_in_with_a_checkbox(editor, project, people, eager):
    browser = browser_for(editor)
    form = browser.get(f"/p/{project.slug}/train/?dataset_version={people['id']}").content.decode()
    assert 'name="allow_pii_features"' in form
    fields = {"experiment": "ui", "dataset_version": people["id"], "target": "churn",
              "task": "classification", "estimator": "DecisionTreeClassifier", "params": "",
              "test_size": 0.3, "seed": 3, "stratify": "on"}
    with eager():
        browser.post(f"/p/{project.slug}/train/", fields)
        browser.post(f"/p/{project.slug}/train/", fields | {"allow_pii_features": "on"})
    first, second = Job.objects.filter(kind="training").order_by("pk")
    assert first.result["pii_left_out"] == ["email"] and first.params["spec"]["allow_pii_features"] is False
    assert second.result["pii_features"] == ["email"] and second.params["spec"]["allow_pii_features"] is True


def test_the_model_file_of_a_pii_trained_run_is_only_for_roles_that_may_see_pii(
    editor, viewer, project, people, eager
):
    _, run = trained(editor, project, spec_for(people, allow_pii_features=True), eager)
    assert set(run.artifacts.filter(pii=True).values_list("path", flat=True)) == {"model/model.skops"}
    listing = viewer.get(f"/api/v1/runs/{run.pk}/artifacts/?recursive=true").json()["files"]
    files = {f["path"]: f for f in listing}
    assert files["model/model.skops"]["pii"] is True and files["model/signature.json"]["pii"] is False

    url = f"/api/v1/runs/{run.pk}/artifacts/model/model.skops"
    refused = viewer.get(url)
    assert refused.status_code == 403 and error_of(refused)["code"] == "permission_denied"
    assert editor.get(url).status_code == 200
    assert viewer.get(f"/api/v1/runs/{run.pk}/artifacts/model/signature.json").status_code == 200
    preview = f"/runs/{run.pk}/artifacts/preview/?path=model/model.skops"
    assert browser_for(viewer).get(preview).status_code == 403
    assert browser_for(editor).get(preview).status_code == 200
    tree = browser_for(viewer).get(f"/runs/{run.pk}/artifacts/?prefix=model").content.decode()
    assert "model.skops" in tree and ">PII<" in tree

    # Uploading over the path does not unlock it.
    data = b"not a model any more"
    response = editor.generic("PUT", url, data, content_type="application/octet-stream",
                              CONTENT_LENGTH=str(len(data)))
    assert response.status_code == 201 and response.json()["pii"] is True
    assert viewer.get(url).status_code == 403


def test_sweep_trials_that_no_longer_pass_fail_saying_why(editor, project, people):
    search = {"strategy": "grid", "space": {"max_depth": [1, 2, 3]}}
    sweep = editor.post(f"/api/v1/projects/{project.slug}/sweeps/",
                        {"experiment": "sweep", "spec": spec_for(people), "search": search, "parallelism": 1},
                        format="json").json()
    assert sweep["progress"]["queued"] == 1
    # The target is flagged PII after the sweep began; its first trial ended without reporting back.
    editor.patch(f"/api/v1/dataset-versions/{people['id']}/columns/", {"columns": {"churn": {"pii": True}}},
                 format="json")
    Job.objects.filter(kind="training").update(status=JobStatus.FAILED, error="worker lost")
    response = editor.get(f"/api/v1/sweeps/{sweep['id']}/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "finished" and body["progress"]["failed"] == 3
    errors = [r["error"] for r in body["leaderboard"] if r["error"] != "worker lost"]
    assert len(errors) == 2 and all("marked PII" in e for e in errors)
    assert browser_for(editor).get(f"/sweeps/{sweep['id']}/").status_code == 200
