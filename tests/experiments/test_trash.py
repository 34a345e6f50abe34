"""Delete and restore, as MLflow has them: a trash, a restore, and a purge after the retention."""

import datetime as dt
import io

import pytest
from django.utils import timezone

from core.models import Job, JobStatus
from experiments import artifacts, trash
from experiments.models import Experiment, Lifecycle, Run
from tests.factories import ExperimentFactory, RunFactory


def search(client, project, **params):
    response = client.get(f"/api/v1/projects/{project.slug}/runs/search/", params)
    assert response.status_code == 200, response.content
    return {r["name"] for r in response.json()["runs"]}


@pytest.fixture
def runs(project):
    experiment = ExperimentFactory(project=project, name="baseline")
    return {name: RunFactory(experiment=experiment, name=name) for name in ("a", "b", "c")}


@pytest.mark.django_db
def test_a_deleted_run_leaves_tables_and_search_and_comes_back_restored(editor, project, runs):
    run = runs["a"]
    response = editor.delete(f"/api/v1/runs/{run.pk}/")
    assert response.status_code == 200 and response.json()["lifecycle"] == "deleted"
    assert search(editor, project) == {"b", "c"}
    assert search(editor, project, view_type="deleted_only") == {"a"}
    assert search(editor, project, view_type="all") == {"a", "b", "c"}
    # Its page still answers, saying where it is.
    assert editor.get(f"/api/v1/runs/{run.pk}/").json()["lifecycle"] == "deleted"
    trash_body = editor.get(f"/api/v1/projects/{project.slug}/trash/").json()
    assert [r["name"] for r in trash_body["runs"]] == ["a"] and trash_body["runs"][0]["purge_after"]

    restored = editor.post(f"/api/v1/runs/{run.pk}/restore/")
    assert restored.status_code == 200 and restored.json()["lifecycle"] == "active"
    assert search(editor, project) == {"a", "b", "c"}


@pytest.mark.django_db
def test_only_editors_delete_or_restore_and_outsiders_see_nothing(viewer, outsider, project, runs):
    run = runs["a"]
    assert viewer.delete(f"/api/v1/runs/{run.pk}/").status_code == 403
    assert outsider.delete(f"/api/v1/runs/{run.pk}/").status_code == 404
    assert outsider.post(f"/api/v1/runs/{run.pk}/restore/").status_code == 404
    assert outsider.get(f"/api/v1/projects/{project.slug}/trash/").status_code == 404
    assert Run.objects.get(pk=run.pk).lifecycle == Lifecycle.ACTIVE


@pytest.mark.django_db
def test_bad_view_type_is_a_400_naming_the_field(editor, project, runs):
    response = editor.get(f"/api/v1/projects/{project.slug}/runs/search/", {"view_type": "trash"})
    assert response.status_code == 400 and "view_type" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_an_experiment_goes_to_the_trash_with_its_runs_and_restores_only_those(editor, project, runs):
    experiment = runs["a"].experiment
    editor.delete(f"/api/v1/runs/{runs['a'].pk}/")  # in the trash before the experiment
    response = editor.delete(f"/api/v1/projects/{project.slug}/experiments/{experiment.pk}/")
    assert response.status_code == 200 and response.json()["lifecycle"] == "deleted"
    assert search(editor, project) == set()
    listed = editor.get(f"/api/v1/projects/{project.slug}/experiments/").json()["experiments"]
    assert experiment.name not in [e["name"] for e in listed]

    # A run cannot come back while its experiment is in the trash, nor can new runs go there.
    refused = editor.post(f"/api/v1/runs/{runs['b'].pk}/restore/")
    assert refused.status_code == 409 and "restore the experiment" in refused.json()["error"]["message"]
    created = editor.post(f"/api/v1/projects/{project.slug}/runs/", {"experiment": "baseline"}, format="json")
    assert created.status_code == 409 and "trash" in created.json()["error"]["message"]

    restored = editor.post(f"/api/v1/projects/{project.slug}/experiments/{experiment.pk}/restore/")
    assert restored.status_code == 200
    # "a" was deleted on its own before: it stays in the trash.
    assert search(editor, project) == {"b", "c"}


def _store(run, path="model/model.bin", data=b"weights"):
    artifacts.artifact_upload(run=run, path=path, stream=io.BytesIO(data), content_length=len(data))
    return run.artifacts.get(path=path).storage_name


@pytest.mark.django_db
def test_purge_removes_what_outlived_the_retention_with_its_files(
        settings, editor, project, runs, django_capture_on_commit_callbacks):
    settings.TRASH_RETENTION_DAYS = 7
    storage = artifacts.artifact_storage()
    old_file, new_file = _store(runs["a"]), _store(runs["b"])
    trash.run_delete(run=runs["a"], user=None)
    trash.run_delete(run=runs["b"], user=None)
    Run.objects.filter(pk=runs["a"].pk).update(deleted_at=timezone.now() - dt.timedelta(days=8))
    gone = ExperimentFactory(project=project, name="old")
    trash.experiment_delete(experiment=gone, user=None)
    Experiment.objects.filter(pk=gone.pk).update(deleted_at=timezone.now() - dt.timedelta(days=30))

    with django_capture_on_commit_callbacks(execute=True):
        result = trash.trash_purge_due()
    assert result["runs_purged"] == [str(runs["a"].pk)] and result["experiments_purged"] == ["old"]
    assert not Run.objects.filter(pk=runs["a"].pk).exists() and not storage.exists(old_file)
    # Deleted a moment ago: still in the trash, its file kept, restorable.
    assert storage.exists(new_file)
    assert editor.post(f"/api/v1/runs/{runs['b'].pk}/restore/").status_code == 200
    # A second purge finds nothing more to do.
    assert trash.trash_purge_due()["runs_purged"] == []


@pytest.mark.django_db
def test_purge_is_queued_once_however_often_beat_asks(django_capture_on_commit_callbacks, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with django_capture_on_commit_callbacks(execute=False):
        first = trash.trash_purge_enqueue()
        second = trash.trash_purge_enqueue()
    assert first is not None and second is None
    assert Job.objects.filter(kind=trash.PURGE_JOB_KIND, status=JobStatus.QUEUED).count() == 1


@pytest.mark.django_db
def test_a_run_in_the_trash_is_read_only_until_restored(editor, project, runs):
    run = runs["a"]
    editor.delete(f"/api/v1/runs/{run.pk}/")
    refused = editor.post(f"/api/v1/runs/{run.pk}/batch/", {"params": [{"key": "lr", "value": 0.1}]},
                          format="json")
    assert refused.status_code == 403 and "in the trash" in refused.json()["error"]["message"]
    assert editor.get(f"/api/v1/runs/{run.pk}/").status_code == 200
    # Deleting it again changes nothing and is not an error.
    assert editor.delete(f"/api/v1/runs/{run.pk}/").status_code == 200
    editor.post(f"/api/v1/runs/{run.pk}/restore/")
    again = editor.post(f"/api/v1/runs/{run.pk}/batch/", {"params": [{"key": "lr", "value": 0.1}]},
                        format="json")
    assert again.status_code == 201
