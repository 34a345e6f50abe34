import pytest

from accounts.models import Role
from experiments.models import Job, JobStatus, Run
from registry import services
from tests.experiments import test_datasets as ds


@pytest.fixture(autouse=True)
def _artifacts_of_its_own(artifact_root):
    return artifact_root


@pytest.fixture
def owner(member_client):
    return member_client(Role.OWNER)


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
