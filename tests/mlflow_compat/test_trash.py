"""MLflow's delete and restore are Steward's trash: one state, seen and changed from both sides."""

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from experiments import trash
from experiments.models import Experiment, Lifecycle, Run
from experiments.services import run_create
from governance.models import AuditEvent
from tests.mlflow_compat.test_api import assert_error, url


@pytest.fixture
def run(editor, project):
    return run_create(project=project, experiment="e", user=editor.user, name="r1").run


def steward_run_names(client, project, **params) -> set[str]:
    response = client.get(f"/api/v1/projects/{project.slug}/runs/search/", params)
    assert response.status_code == 200, response.content
    return {r["name"] for r in response.json()["runs"]}


def mlflow_run(client, project, run) -> dict:
    response = client.get(url(project, "runs/get"), {"run_id": run.pk.hex})
    assert response.status_code == 200, response.content
    return response.json()["run"]["info"]


@pytest.mark.django_db
def test_a_run_deleted_through_mlflow_is_in_stewards_trash_and_restored_from_steward(editor, project, run):
    assert editor.post(url(project, "runs/delete"), {"run_id": run.pk.hex}, format="json").json() == {}
    run.refresh_from_db()
    assert run.lifecycle == Lifecycle.DELETED and run.deleted_at is not None
    assert steward_run_names(editor, project) == set()
    trashed = editor.get(f"/api/v1/projects/{project.slug}/trash/").json()["runs"]
    assert [r["name"] for r in trashed] == ["r1"]
    assert AuditEvent.objects.filter(action="run.delete", object_id=str(run.pk)).count() == 1
    assert mlflow_run(editor, project, run)["lifecycle_stage"] == "deleted"
    # A deleted run takes no writes, as in MLflow.
    write = {"run_id": run.pk.hex, "key": "k", "value": "v"}
    assert_error(editor.post(url(project, "runs/log-parameter"), write, format="json"),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(editor.post(url(project, "runs/set-tag"), write, format="json"), 400,
                 "INVALID_PARAMETER_VALUE")
    assert not run.params.exists() and not run.tags.filter(key="k").exists()

    assert editor.post(f"/api/v1/runs/{run.pk}/restore/").status_code == 200
    assert mlflow_run(editor, project, run)["lifecycle_stage"] == "active"
    assert steward_run_names(editor, project) == {"r1"}


@pytest.mark.django_db
def test_a_run_deleted_in_steward_is_deleted_for_mlflow_and_restored_through_it(editor, project, run):
    assert editor.delete(f"/api/v1/runs/{run.pk}/").status_code == 200
    search = {"experiment_ids": [str(run.experiment_id)]}
    assert editor.post(url(project, "runs/search"), search, format="json").json().get("runs", []) == []
    for view_type in ("DELETED_ONLY", "ALL", 3):
        found = editor.post(url(project, "runs/search"), {**search, "run_view_type": view_type},
                            format="json").json()["runs"]
        assert [(r["info"]["run_id"], r["info"]["lifecycle_stage"]) for r in found] \
            == [(run.pk.hex, "deleted")]
    assert mlflow_run(editor, project, run)["lifecycle_stage"] == "deleted"

    assert editor.post(url(project, "runs/restore"), {"run_id": run.pk.hex}, format="json").json() == {}
    run.refresh_from_db()
    assert run.lifecycle == Lifecycle.ACTIVE and run.deleted_at is None
    assert AuditEvent.objects.filter(action="run.restore", object_id=str(run.pk)).count() == 1
    assert steward_run_names(editor, project) == {"r1"}
    assert editor.post(url(project, "runs/search"), {**search, "run_view_type": "DELETED_ONLY"},
                       format="json").json().get("runs", []) == []


@pytest.mark.django_db
def test_search_pages_count_only_the_runs_of_the_view(editor, project):
    """The view narrows the query itself, so a page of active runs is full and its token goes on."""
    made = [run_create(project=project, experiment="e", user=editor.user, name=f"r{i}").run for i in range(5)]
    for deleted in made[:3]:
        trash.run_delete(run=deleted, user=editor.user)
    body = {"experiment_ids": [str(made[0].experiment_id)], "max_results": 1}
    seen, token = [], None
    while True:
        page = editor.post(url(project, "runs/search"), {**body, **({"page_token": token} if token else {})},
                           format="json").json()
        seen += [r["info"]["run_name"] for r in page["runs"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert sorted(seen) == ["r3", "r4"]


@pytest.mark.django_db
def test_a_deleted_experiment_keeps_its_name_and_comes_back_with_its_runs(editor, project, run):
    experiment = run.experiment
    exp_id = str(experiment.pk)
    alone = run_create(project=project, experiment="e", user=editor.user, name="deleted-before").run
    editor.post(url(project, "runs/delete"), {"run_id": alone.pk.hex}, format="json")
    deleted = editor.post(url(project, "experiments/delete"), {"experiment_id": exp_id}, format="json")
    assert deleted.json() == {}
    experiment.refresh_from_db()
    run.refresh_from_db()
    assert experiment.lifecycle == Lifecycle.DELETED and run.lifecycle == Lifecycle.DELETED
    assert AuditEvent.objects.filter(action="experiment.delete", object_id=exp_id).count() == 1
    # Its name still exists, as in MLflow.
    message = assert_error(editor.post(url(project, "experiments/create"), {"name": "e"}, format="json"),
                           400, "RESOURCE_ALREADY_EXISTS")
    assert "deleted" in message
    got = editor.get(url(project, "experiments/get-by-name"), {"experiment_name": "e"}).json()["experiment"]
    assert got["experiment_id"] == exp_id and got["lifecycle_stage"] == "deleted"
    assert editor.get(url(project, "experiments/get"), {"experiment_id": exp_id}).json()[
        "experiment"]["lifecycle_stage"] == "deleted"

    def names(view_type):
        body = {"view_type": view_type} if view_type else {}
        found = editor.post(url(project, "experiments/search"), body, format="json").json()
        return [e["name"] for e in found.get("experiments", [])]

    assert "e" not in names(None) and names("DELETED_ONLY") == ["e"] and "e" in names("ALL")
    # Steward's own pages and API leave it out too.
    listed = editor.get(f"/api/v1/projects/{project.slug}/experiments/").json()["experiments"]
    assert "e" not in [e["name"] for e in listed]
    assert steward_run_names(editor, project) == set()
    # Restoring a run of a deleted experiment is refused with the reason.
    message = assert_error(editor.post(url(project, "runs/restore"), {"run_id": run.pk.hex}, format="json"),
                           400, "INVALID_PARAMETER_VALUE")
    assert "restore the experiment first" in message

    # Restored from Steward's side: MLflow sees it active, with the runs deleted along with it.
    assert editor.post(f"/api/v1/projects/{project.slug}/experiments/{exp_id}/restore/").status_code == 200
    assert names(None).count("e") == 1
    found = editor.post(url(project, "runs/search"), {"experiment_ids": [exp_id]}, format="json")
    found = found.json()["runs"]
    assert [r["info"]["run_name"] for r in found] == ["r1"]


@pytest.mark.django_db
def test_an_experiment_deleted_in_steward_is_restored_through_mlflow(editor, project, run):
    experiment = run.experiment
    trash.experiment_delete(experiment=experiment, user=editor.user)
    create = {"experiment_id": str(experiment.pk)}
    assert_error(editor.post(url(project, "runs/create"), create, format="json"), 400,
                 "INVALID_PARAMETER_VALUE")
    assert editor.post(url(project, "experiments/restore"), {"experiment_id": str(experiment.pk)},
                       format="json").json() == {}
    experiment.refresh_from_db()
    run.refresh_from_db()
    assert experiment.lifecycle == Lifecycle.ACTIVE and run.lifecycle == Lifecycle.ACTIVE
    assert AuditEvent.objects.filter(action="experiment.restore", object_id=str(experiment.pk)).count() == 1


@pytest.mark.django_db
def test_viewers_cannot_delete_or_restore_and_outsiders_see_nothing(viewer, outsider, project, run):
    assert_error(viewer.post(url(project, "runs/delete"), {"run_id": run.pk.hex}, format="json"),
                 403, "PERMISSION_DENIED")
    assert_error(viewer.post(url(project, "experiments/delete"), {"experiment_id": str(run.experiment_id)},
                             format="json"), 403, "PERMISSION_DENIED")
    assert_error(outsider.post(url(project, "runs/delete"), {"run_id": run.pk.hex}, format="json"),
                 404, "RESOURCE_DOES_NOT_EXIST")
    run.refresh_from_db()
    assert run.lifecycle == Lifecycle.ACTIVE and run.experiment.lifecycle == Lifecycle.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_mlflows_side_table_into_the_trash(editor, project):
    kept = run_create(project=project, experiment="kept", user=editor.user, name="alone").run
    gone = run_create(project=project, experiment="gone", user=editor.user, name="with-exp").run
    earlier = run_create(project=project, experiment="gone", user=editor.user, name="earlier").run
    executor = MigrationExecutor(connection)
    executor.migrate([("mlflow_compat", "0002_version_tags")])
    old = executor.loader.project_state([("mlflow_compat", "0002_version_tags")]).apps
    then = timezone.now() - dt.timedelta(days=1)
    old.get_model("mlflow_compat", "DeletedRun").objects.create(run_id=kept.pk, deleted_at=then)
    old.get_model("mlflow_compat", "DeletedRun").objects.create(run_id=earlier.pk, deleted_at=then)
    old.get_model("mlflow_compat", "ExperimentState").objects.create(
        experiment_id=gone.experiment_id, tags={"team": "a"}, deleted_at=timezone.now())

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    kept.refresh_from_db()
    gone.refresh_from_db()
    earlier.refresh_from_db()
    assert (kept.lifecycle, kept.deleted_at) == (Lifecycle.DELETED, then)
    assert kept.experiment.lifecycle == Lifecycle.ACTIVE
    experiment = Experiment.objects.get(pk=gone.experiment_id)
    assert experiment.lifecycle == Lifecycle.DELETED
    assert gone.lifecycle == Lifecycle.DELETED and gone.deleted_at == experiment.deleted_at
    # Deleted on its own before: stays in the trash when the experiment is restored.
    assert earlier.deleted_at == then
    trash.experiment_restore(experiment=experiment, user=editor.user)
    assert set(Run.objects.filter(lifecycle=Lifecycle.ACTIVE).values_list("name", flat=True)) == {"with-exp"}
    # The experiment's MLflow tags stay.
    got = editor.get(url(project, "experiments/get"), {"experiment_id": str(experiment.pk)}).json()
    assert {"key": "team", "value": "a"} in got["experiment"]["tags"]
