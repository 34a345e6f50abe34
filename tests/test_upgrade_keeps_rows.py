"""Upgrading across the move of jobs, datasets and training out of ``experiments`` keeps every row and file.

The database is taken back to the migrations that came before the move (what an installation of
the previous release has), filled through the models *as they were then* (``experiments.Job``,
``experiments.DatasetVersion``, ``experiments.TrainingRun``...), with real files in artifact
storage; then the migrations run forward, and every row is read through today's models and every
file is served by today's API.
"""

from __future__ import annotations

import io
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from core.models import IdempotentRequest, Job
from datasets.models import Dataset, DatasetVersion, RunDataset, ValidationRule
from experiments import artifacts
from experiments.models import Artifact, Metric, Run
from registry.models import ModelVersion, PredictionLog
from training.models import Sweep, SweepTrial, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)

# The first migration of each app that knows the new layout; everything before them is the
# previous release's schema.
MOVE = [
    ("core", "0001_initial"),
    ("datasets", "0001_initial"),
    ("training", "0001_initial"),
    ("experiments", "0013_models_moved_to_core_datasets_training"),
    ("registry", "0005_models_moved_to_core_datasets"),
    ("monitoring", "0004_models_moved_to_core_datasets"),
    ("governance", "0005_models_moved_to_core"),
]
ARTIFACT_BYTES = b"weights \x00\x01 of a model\n" * 100
DATASET_BYTES = b"age,income,label\n31,52000,1\n45,61000,0\n27,38000,1\n"


def _before_move(executor: MigrationExecutor) -> list[tuple[str, str | None]]:
    """For every app, its newest migration that does not depend on the move (None: not yet an app)."""
    graph = executor.loader.graph
    after = set()
    for node in MOVE:
        after |= set(graph.backwards_plan(node))  # the node and all that depends on it
    targets = []
    for app in sorted({app for app, _ in graph.nodes}):
        kept = [node for node in graph.forwards_plan(max(n for n in graph.leaf_nodes() if n[0] == app))
                if node[0] == app and node not in after]
        targets.append((app, kept[-1][1] if kept else None))
    return targets


def _store(data: bytes, prefix: str) -> artifacts.Blob:
    return artifacts.blob_write(io.BytesIO(data), name_prefix=prefix, max_bytes=10 ** 6)


def _fill(apps) -> dict:
    """One of everything the move touches, through the models of the previous release."""
    User = apps.get_model("auth", "User")
    Project = apps.get_model("accounts", "Project")
    Membership = apps.get_model("accounts", "Membership")
    old = {name: apps.get_model("experiments", name) for name in (
        "Experiment", "Run", "Param", "Tag", "Metric", "Artifact", "IdempotentRequest", "Job",
        "Dataset", "DatasetVersion", "ValidationRule", "RunDataset", "Sweep", "SweepTrial", "TrainingRun")}
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    ModelVersion = apps.get_model("registry", "ModelVersion")
    PredictionLog = apps.get_model("registry", "PredictionLog")
    Monitor = apps.get_model("monitoring", "Monitor")
    MonitorReport = apps.get_model("monitoring", "MonitorReport")

    user = User.objects.create(username="carol", is_active=True)
    project = Project.objects.create(slug="upgrade", name="Upgrade")
    Membership.objects.create(project=project, user=user, role=40)
    experiment = old["Experiment"].objects.create(project=project, name="before-the-move")
    run = old["Run"].objects.create(id=uuid.uuid4(), experiment=experiment, project=project, name="trained",
                                    author=user)
    old["Param"].objects.create(run=run, key="max_depth", value="4")
    old["Tag"].objects.create(run=run, key="team", value="risk")
    for step in range(5):
        old["Metric"].objects.create(run=run, key="loss", value=1.0 / (step + 1), step=step,
                                     timestamp=1_700_000_000_000 + step)
    blob = _store(ARTIFACT_BYTES, "artifacts/")
    artifact = old["Artifact"].objects.create(run=run, path="model/model.skops", size=blob.size,
                                              storage_name=blob.storage_name, sha256=blob.sha256)

    job = old["Job"].objects.create(kind="training", status="succeeded", progress=100, project=project,
                                    created_by=user, params={"spec": {"estimator": "decision_tree"}},
                                    result={"run_id": str(run.pk)})
    profile_job = old["Job"].objects.create(kind="dataset_profile", status="succeeded", project=project)
    old["IdempotentRequest"].objects.create(user=user, key="retry-1", scope="runs.create", status_code=201,
                                            response={"run": {"id": str(run.pk)}})

    dataset = old["Dataset"].objects.create(project=project, name="applicants", created_by=user)
    file = _store(DATASET_BYTES, "datasets/")
    version = old["DatasetVersion"].objects.create(
        dataset=dataset, version=1, sha256=file.sha256, storage_name=file.storage_name, format="csv",
        read_options={"delimiter": ",", "encoding": "utf-8"}, original_name="applicants.csv", size=file.size,
        row_count=3, column_count=3, profile_job=profile_job,
        columns=[{"name": n, "dtype": "int64", "nullable": False, "null_count": 0, "role": r, "pii": False}
                 for n, r in (("age", "feature"), ("income", "feature"), ("label", "target"))])
    old["ValidationRule"].objects.create(dataset=dataset, kind="not_null", column="age")
    old["RunDataset"].objects.create(run=run, dataset_version=version, direction="input", role="training")

    sweep = old["Sweep"].objects.create(project=project, experiment=experiment, base_spec={},
                                        objective="accuracy", best_run=run,
                                        search={"strategy": "grid", "space": {"max_depth": [4]}})
    old["SweepTrial"].objects.create(sweep=sweep, index=0, params={"max_depth": 4}, job=job)
    old["TrainingRun"].objects.create(run=run, spec={"estimator": "decision_tree"}, resolved_features=["age"],
                                      job=job, sweep=sweep)

    model = RegisteredModel.objects.create(project=project, name="credit", owner=user)
    model_version = ModelVersion.objects.create(
        model=model, version=1, run=run, artifact=artifact, artifact_path=artifact.path,
        storage_name=artifact.storage_name, sha256=artifact.sha256, size=artifact.size, model_format="skops",
        training_dataset_version=version, check_job=job, author=user, status="ready")
    PredictionLog.objects.create(model_version=model_version, rows=2, inputs=[[31, 52000], [45, 61000]],
                                 predictions=[1, 0])
    monitor = Monitor.objects.create(project=project, model=model, alias="champion",
                                     reference_dataset_version=version, created_by=user)
    MonitorReport.objects.create(monitor=monitor, job=job, reference_dataset_version=version)
    return {"user": user, "run": run, "job": job, "version": version, "model_version": model_version,
            "artifact_path": artifact.path}


MOVED_TABLES = {
    "Job": "experiments_job", "IdempotentRequest": "experiments_idempotentrequest",
    "Dataset": "experiments_dataset", "DatasetVersion": "experiments_datasetversion",
    "ValidationRule": "experiments_validationrule", "RunDataset": "experiments_rundataset",
    "Sweep": "experiments_sweep", "SweepTrial": "experiments_sweeptrial",
    "TrainingRun": "experiments_trainingrun",
}


def _counts() -> dict[str, int]:
    """Rows per moved table, counted in SQL so the answer does not depend on which models are loaded."""
    with connection.cursor() as cursor:
        counts = {}
        for table in MOVED_TABLES.values():
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            counts[table] = cursor.fetchone()[0]
    return counts




def test_upgrade_across_the_app_split_keeps_every_row_and_file(artifact_root):
    executor = MigrationExecutor(connection)
    old_targets = _before_move(executor)
    assert ("experiments", "0012_experiment_name_500") in old_targets
    assert ("datasets", None) in old_targets and ("core", None) in old_targets
    executor.migrate(old_targets)

    old_apps = MigrationExecutor(connection).loader.project_state(
        [target for target in old_targets if target[1] is not None]).apps
    with pytest.raises(LookupError):  # the previous release had no datasets app
        old_apps.get_model("datasets", "DatasetVersion")
    made = _fill(old_apps)
    before = _counts()
    assert all(before.values()), before

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    # Every row is still there, now read through the models' new homes.
    assert _counts() == before
    assert Job.objects.count() == before["experiments_job"] == 2
    assert IdempotentRequest.objects.get(key="retry-1").response == {"run": {"id": str(made["run"].pk)}}
    assert Dataset.objects.get().name == "applicants"
    version = DatasetVersion.objects.get(pk=made["version"].pk)
    assert version.profile_job.kind == "dataset_profile"
    assert ValidationRule.objects.get().dataset == version.dataset
    link = RunDataset.objects.get()
    assert (link.run_id, link.dataset_version_id, link.direction) == (made["run"].pk, version.pk, "input")
    record = TrainingRun.objects.get(run_id=made["run"].pk)
    assert record.job_id == made["job"].pk and record.sweep == Sweep.objects.get()
    assert SweepTrial.objects.get().job_id == made["job"].pk
    assert Metric.objects.filter(run_id=made["run"].pk).count() == 5
    model_version = ModelVersion.objects.get(pk=made["model_version"].pk)
    assert model_version.training_dataset_version == version and model_version.check_job_id == made["job"].pk
    assert PredictionLog.objects.get().predictions == [1, 0]
    assert Artifact.objects.get().run_id == Run.objects.get().pk

    # The content types moved with the models, so permissions and admin history still resolve.
    from django.contrib.contenttypes.models import ContentType

    assert ContentType.objects.get_for_model(DatasetVersion).app_label == "datasets"
    assert not ContentType.objects.filter(app_label="experiments", model="datasetversion").exists()

    # And today's API serves what the previous release stored.
    from django.contrib.auth import get_user_model

    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="carol"))
    run_id = made["run"].pk
    answer = client.get(f"/api/v1/runs/{run_id}/artifacts/{made['artifact_path']}")
    assert answer.status_code == 200
    assert b"".join(answer.streaming_content) == ARTIFACT_BYTES
    answer = client.get(f"/api/v1/dataset-versions/{version.pk}/download/")
    assert answer.status_code == 200
    assert b"".join(answer.streaming_content) == DATASET_BYTES
    lineage = client.get(f"/api/v1/runs/{run_id}/datasets/").json()
    assert [link["dataset_version"] for link in lineage["inputs"]] == [version.pk]
    training = client.get(f"/api/v1/runs/{run_id}/training/").json()
    assert training["spec"] == {"estimator": "decision_tree"}
    job = client.get(f"/api/v1/jobs/{made['job'].pk}/").json()
    assert job["kind"] == "training" and job["status"] == "succeeded"
    metrics = client.get(f"/api/v1/runs/{run_id}/metrics/history/", {"key": "loss"}).json()
    assert [point["step"] for point in metrics["points"]] == [0, 1, 2, 3, 4]
