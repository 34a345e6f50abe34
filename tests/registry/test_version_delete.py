"""A model version is deletable unless an alias points at it; a dataset version unless a
model version was trained on it; a run a version came from outlives the trash's purge."""

import datetime as dt

import pytest
from django.utils import timezone

from datasets.models import Dataset, DatasetVersion, LineageDirection, RunDataset
from experiments import trash
from experiments.models import Run
from registry.models import ModelVersion
from tests.registry.conftest import register, store_model


def version_url(project, number, name="credit-scorer"):
    return f"/api/v1/projects/{project.slug}/models/{name}/versions/{number}/"


@pytest.fixture
def trained_on(project, run):
    dataset = Dataset.objects.create(project=project, name="iris")
    version = DatasetVersion.objects.create(
        dataset=dataset, version=1, sha256="0" * 64, storage_name="datasets/none", format="csv",
        size=1, row_count=1, column_count=1)
    RunDataset.objects.create(run=run, dataset_version=version, direction=LineageDirection.INPUT,
                              role="train")
    return version


@pytest.fixture
def versions(project, run, editor, iris_logreg, trained_on):
    model, X = iris_logreg
    store_model(run, model, example=X)
    return register(project=project, run=run, user=editor.user), register(project=project, run=run,
                                                                         user=editor.user)


@pytest.mark.django_db
def test_a_version_an_alias_points_at_is_kept_until_the_alias_moves(project, editor, versions):
    v1, v2 = versions
    assert editor.put(f"/api/v1/projects/{project.slug}/models/credit-scorer/aliases/staging/",
                      {"version": 1}, format="json").status_code == 200
    refused = editor.delete(version_url(project, 1))
    assert refused.status_code == 409
    assert "'staging'" in refused.json()["error"]["message"]
    assert ModelVersion.objects.filter(pk=v1.pk).exists()

    assert editor.delete(version_url(project, 2)).status_code == 204
    assert not ModelVersion.objects.filter(pk=v2.pk).exists()
    editor.delete(f"/api/v1/projects/{project.slug}/models/credit-scorer/aliases/staging/")
    assert editor.delete(version_url(project, 1)).status_code == 204
    assert editor.get(version_url(project, 1)).status_code == 404


@pytest.mark.django_db
def test_viewers_cannot_delete_versions_and_outsiders_get_404(project, viewer, outsider, versions):
    assert viewer.delete(version_url(project, 1)).status_code == 403
    assert outsider.delete(version_url(project, 1)).status_code == 404
    assert ModelVersion.objects.count() == 2


@pytest.mark.django_db
def test_a_dataset_version_a_model_was_trained_on_cannot_be_deleted(editor, versions, trained_on):
    assert versions[0].training_dataset_version_id == trained_on.pk
    refused = editor.delete(f"/api/v1/dataset-versions/{trained_on.pk}/")
    assert refused.status_code == 409
    assert "credit-scorer v1" in refused.json()["error"]["message"]
    for number in (1, 2):
        ModelVersion.objects.get(version=number).delete()
    assert editor.delete(f"/api/v1/dataset-versions/{trained_on.pk}/").status_code == 204
    assert not DatasetVersion.objects.filter(pk=trained_on.pk).exists()


@pytest.mark.django_db
def test_the_purge_keeps_a_run_a_model_version_came_from(settings, run, versions):
    settings.TRASH_RETENTION_DAYS = 1
    trash.run_delete(run=run, user=None)
    Run.objects.filter(pk=run.pk).update(deleted_at=timezone.now() - dt.timedelta(days=2))
    result = trash.trash_purge_due()
    assert result["runs_kept"] == [str(run.pk)] and result["runs_purged"] == []
    assert Run.objects.filter(pk=run.pk).exists() and run.artifacts.exists()


@pytest.mark.django_db
def test_metrics_at_registration_leave_out_the_machines_system_metrics(project, run, editor, iris_logreg):
    from experiments import services as run_services

    point = run_services.MetricPoint
    run_services.metrics_log(run=run, points=[point("val_accuracy", 0.9, 0, 1),
                                              point("system/fit_seconds", 3.2, 0, 1)])
    model, X = iris_logreg
    store_model(run, model, example=X)
    version = register(project=project, run=run, user=editor.user, name="iris", check=False)
    assert version.metrics == {"val_accuracy": 0.9}
