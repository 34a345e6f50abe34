import json
import uuid

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from experiments.models import Metric, Run
from tests.mlflow_compat.conftest import run_script

pytestmark = pytest.mark.live


def test_unchanged_script_logs_a_run_with_nested_child(live_server, mlflow_user):
    result = run_script("track_basic.py", {
        "MLFLOW_TRACKING_URI": f"{live_server.url}/mlflow/vision",
        "MLFLOW_TRACKING_TOKEN": mlflow_user.token,
    })
    out = json.loads(result.stdout.strip().splitlines()[-1])
    run = Run.objects.get(pk=uuid.UUID(out["run_id"]))
    assert run.project == mlflow_user.project
    assert run.experiment.name == "churn"
    assert run.name == "baseline"
    assert run.status == "FINISHED" and run.end_time is not None
    assert run.author == mlflow_user.user
    # MLflow's source tags fill the run's source fields.
    tags = dict(run.tags.values_list("key", "value"))
    assert run.entry_point == tags["mlflow.source.name"] and run.entry_point.endswith("track_basic.py")
    assert run.git_commit == tags.get("mlflow.source.git.commit", "")
    assert dict(run.params.values_list("key", "value")) == {"lr": "0.1", "depth": "4", "model": "rf"}
    tags = dict(run.tags.values_list("key", "value"))
    assert tags["team"] == "growth" and tags["a"] == "1" and "b" not in tags
    loss = Metric.objects.filter(run=run, key="loss").order_by("step").values_list("step", "value")
    assert list(loss) == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert Metric.objects.get(run=run, key="nan_metric").value is None  # NaN
    child = Run.objects.get(pk=uuid.UUID(out["child_id"]))
    assert child.parent_id == run.pk
    # What the client reads back is what it wrote.
    assert out["status"] == "FINISHED"
    assert out["params"] == {"lr": "0.1", "depth": "4", "model": "rf"}
    assert out["metrics"]["acc"] == 0.9 and out["metrics"]["nan_metric"] is None
    assert out["history"] == [[s, 1.0 / (s + 1)] for s in range(5)]
    assert out["found"] == [out["run_id"]]
    assert Run.objects.get(pk=uuid.UUID(out["killed_id"])).status == "KILLED"
    assert Run.objects.get(pk=uuid.UUID(out["crashed_id"])).status == "FAILED"
    # Steward's own API shows the run like any other.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {mlflow_user.token}")
    shown = client.get(f"/api/v1/runs/{run.pk}/").json()
    assert shown["name"] == "baseline" and shown["experiment"] == "churn"
    assert shown["params"]["lr"] == "0.1" and shown["metrics"]["loss"]["step"] == 4


def test_workspace_and_basic_auth_choose_the_project(live_server, mlflow_user):
    """MLflow 3's other way: the bare server URI, MLFLOW_WORKSPACE=<project slug>, and Basic auth
    with the username and a token as password."""
    from tests.factories import MembershipFactory, ProjectFactory

    other = ProjectFactory(slug="other-team")
    MembershipFactory(project=other, user=mlflow_user.user, role=Role.EDITOR)
    result = run_script("track_basic.py", {
        "MLFLOW_TRACKING_URI": live_server.url,
        "MLFLOW_WORKSPACE": "other-team",
        "MLFLOW_TRACKING_USERNAME": mlflow_user.user.username,
        "MLFLOW_TRACKING_PASSWORD": mlflow_user.token,
    })
    out = json.loads(result.stdout.strip().splitlines()[-1])
    run = Run.objects.get(pk=uuid.UUID(out["run_id"]))
    assert run.project == other and run.experiment.name == "churn"
    assert not Run.objects.filter(project=mlflow_user.project).exists()
    assert out["found"] == [out["run_id"]]
