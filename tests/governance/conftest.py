"""Governance fixtures: a registered model with ready versions made directly (no model files:
promotion never loads one), members of each role, and an audit sink that keeps what it hears."""

from __future__ import annotations

import itertools

import pytest

from accounts.models import Role
from core import audit
from core.models import Job, JobStatus
from experiments.models import Run
from governance.models import AnalysisStatus, AuditEvent, Explanation, FairnessReport, Policy
from registry import services
from registry.models import ModelVersion, RegisteredModel, VersionStatus
from tests.datasets import test_datasets as ds
from tests.factories import ExperimentFactory, MembershipFactory, RunFactory, UserFactory
from tests.registry import conftest as registry
from tests.registry.conftest import register, store_model

_numbers = itertools.count(1)


def make_version(model: RegisteredModel, *, author, metrics=None, status=VersionStatus.READY,
                 fairness: str | None = AnalysisStatus.SUCCEEDED,
                 explanation: str | None = AnalysisStatus.SUCCEEDED,
                 dp_ratio: float = 0.95, eo_difference: float = 0.02) -> ModelVersion:
    from experiments.models import Artifact

    run = RunFactory(experiment=ExperimentFactory(project=model.project), author=author)
    n = next(_numbers)
    artifact = Artifact.objects.create(run=run, path="model/model.skops", storage_name=f"x/{n}", size=10,
                                       sha256=f"{n:064x}")
    number = (model.versions.order_by("-version").values_list("version", flat=True).first() or 0) + 1
    version = ModelVersion.objects.create(
        model=model, version=number, run=run, artifact=artifact, artifact_path="model/model.skops",
        storage_name=artifact.storage_name, sha256=artifact.sha256, size=10, model_format="skops",
        status=status, author=author, metrics=metrics or {"accuracy": 0.9}, onnx_sha256=f"{n + 1000:064x}",
        output_kind="classification", classes=[0, 1])
    if fairness is not None:
        FairnessReport.objects.create(
            version=version, status=fairness, task="classification", sensitive_features=["sex"],
            summary={"sex": {"demographic_parity_ratio": dp_ratio, "demographic_parity_difference": 0.01,
                             "equalized_odds_difference": eo_difference, "equalized_odds_ratio": 0.9}},
            groups=[{"feature": "sex", "group": "f", "count": 500, "small": False, "selection_rate": 0.4},
                    {"feature": "sex", "group": "m", "count": 500, "small": False, "selection_rate": 0.42}])
    if explanation is not None:
        Explanation.objects.create(version=version, status=explanation, explainer="tree", output="log_odds",
                                   base_value=0.1, global_importance={"income": 0.3})
    return version


@pytest.fixture
def people(project):
    """Members by role: the author of the versions, an editor who requests, two reviewers, an owner,
    a viewer and an outsider."""
    made = {}
    for name, role in [("author", Role.EDITOR), ("requester", Role.EDITOR), ("alice", Role.REVIEWER),
                       ("bob", Role.REVIEWER), ("owner", Role.OWNER), ("viewer", Role.VIEWER),
                       ("editor2", Role.EDITOR)]:
        user = UserFactory(username=f"{project.slug}-{name}", email=f"{name}@example.com")
        MembershipFactory(project=project, user=user, role=role)
        made[name] = user
    made["outsider"] = UserFactory(username=f"{project.slug}-outsider")
    return made


@pytest.fixture
def model(project, people):
    return RegisteredModel.objects.create(project=project, name="credit-scorer", owner=people["owner"])


@pytest.fixture
def policy(project):
    return Policy.objects.create(project=project, approvals_required=1)


@pytest.fixture
def audit_log():
    """What the audit hook is told, in order (the stored, hash-chained log is another part's)."""
    heard: list[audit.AuditEntry] = []
    audit.audit_sink_register(heard.append)
    yield heard
    audit._sinks.remove(heard.append)


# The registry tests' fixtures, shared.
_artifacts_of_its_own = registry._artifacts_of_its_own
serving_state = registry.serving_state
admin, owner, pickles_on, run = registry.admin, registry.owner, registry.pickles_on, registry.run
cancer_data, forest, iris_logreg = registry.cancer_data, registry.forest, registry.iris_logreg


@pytest.fixture
def reviewer(member_client):
    return member_client(Role.REVIEWER)


@pytest.fixture
def ready_version(project, run, editor, iris_logreg):
    model, X = iris_logreg
    store_model(run, model, example=X)
    return register(project=project, run=run, user=editor.user)


def actions(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("id").values_list("action", flat=True))


def browser_for(project, role, **user_fields):
    from django.test import Client

    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory(**user_fields)
    if role is not None:
        MembershipFactory(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


eager = ds.eager


def train(editor, project, eager, *, estimator="LogisticRegression", pii_sex=False, params=None,
          owner=None) -> tuple[Run, dict]:
    """A training job on the made-up credit table, with 'sex' as its sensitive feature."""
    frame = ds.credit_frame()
    with eager():
        dataset = ds.upload(editor, project.slug, "credit", ds.csv_bytes(frame)).json()
    if pii_sex:
        response = owner.patch(f"/api/v1/dataset-versions/{dataset['id']}/columns/",
                               {"columns": {"sex": {"role": "sensitive", "pii": True}}}, format="json")
        assert response.status_code == 200, response.content
    spec = {"dataset_version": dataset["id"], "target": "default", "features": ["income", "age", "housing"],
            "sensitive_features": ["sex", "housing"], "task": "classification", "estimator": estimator,
            "params": params or {}, "split": {"test_size": 0.25, "stratify": True, "seed": 7},
            "metrics": ["accuracy"]}
    with eager():
        response = editor.post(f"/api/v1/projects/{project.slug}/training-jobs/",
                               {"experiment": "credit", "spec": spec}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    return Run.objects.get(pk=job.result["run_id"]), dataset


def register_checked(project, run, user, eager, name="credit"):
    """Register a run's model; its checks, and whatever they queue when they pass, run here."""
    with eager():
        version = services.model_version_create(project=project, model_name=name, run=run,
                                                artifact_path="model", user=user)
    version.refresh_from_db()
    return version
