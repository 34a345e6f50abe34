"""The real MLflow client deletes, restores and searches: Steward's trash and registry rules answer."""

import json
import uuid

import pytest

from experiments.models import Experiment, Lifecycle, Run
from governance.models import AuditEvent
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from tests.mlflow_compat.conftest import run_script

pytestmark = pytest.mark.live


def lifecycle_checks(out: dict, mlflow_user, guarded) -> None:
    assert out["long_name"] is True
    kept, dropped = out["kept"], out["dropped"]
    # Runs: MLflow's delete is Steward's trash, and MLflow's views read it.
    assert out["deleted_stage"] == "deleted"
    assert out["views"] == {"active": [kept], "deleted": [dropped], "all": sorted([kept, dropped])}
    assert out["write_refused"]["code"] == "INVALID_PARAMETER_VALUE"
    assert out["restored_stage"] == "active"
    assert AuditEvent.objects.filter(action="run.delete", object_id=str(uuid.UUID(dropped))).count() == 1
    assert AuditEvent.objects.filter(action="run.restore", object_id=str(uuid.UUID(dropped))).count() == 1
    # Experiments: a deleted one keeps its name, and its runs went to the trash with it.
    assert out["by_name"] == [out["experiment_id"], "deleted"]
    assert out["name_taken"]["code"] == "RESOURCE_ALREADY_EXISTS"
    assert out["deleted_experiments"] == ["lifecycle"] and "lifecycle" not in out["active_experiments"]
    assert out["run_stage_with_experiment"] == "deleted"
    assert out["restored_experiment"] == "active"
    # Experiment search orders as asked.
    names = out["experiment_orders"]["name_desc"]
    assert names == sorted(names, reverse=True) and {"lifecycle", "x" * 500} <= set(names)
    ids = out["experiment_orders"]["id_asc"]
    assert ids == sorted(ids, key=int) and len(ids) == len(names)
    assert out["experiment_orders"]["created"] == ids  # created in id order
    assert out["bad_experiment_order"]["code"] == "INVALID_PARAMETER_VALUE"
    experiment = Experiment.objects.get(pk=int(out["experiment_id"]))
    assert experiment.lifecycle == Lifecycle.ACTIVE
    runs = Run.objects.filter(experiment=experiment)
    assert set(runs.values_list("lifecycle", flat=True)) == {Lifecycle.ACTIVE}
    # The registry.
    assert out["left"] == ["1", "3"]
    assert out["searches"] == {
        "like": ["lc-model"], "ilike": ["LC-other", "lc-model"], "tag": ["LC-other"],
        "ordered": ["lc-model", "guarded", "LC-other"], "paged": ["LC-other"],
        "run": [["LC-other", "1"], ["lc-model", "1"], ["lc-model", "3"]],
        "run_in": [["LC-other", "1"], ["lc-model", "1"], ["lc-model", "3"]],
        "numbers": ["3", "1"], "pages": ["LC-other", "guarded"],
    }
    assert out["bad_filter"]["code"] == "INVALID_PARAMETER_VALUE" and "owner" in out["bad_filter"]["message"]
    assert out["model_gone"]["code"] == "RESOURCE_DOES_NOT_EXIST"
    assert not RegisteredModel.objects.filter(name="lc-model").exists()
    assert AuditEvent.objects.filter(action="registered_model.delete").count() == 1
    assert AuditEvent.objects.filter(action="model_version.delete").count() == 3
    # A protected alias is never deleted around.
    for refused in (out["protected_version"], out["protected_model"]):
        assert refused["code"] == "PERMISSION_DENIED" and "promotion request" in refused["message"]
    assert ModelVersion.objects.filter(pk=guarded.pk).exists()
    assert ModelAlias.objects.filter(name="champion", version=guarded).exists()


def test_mlflow_client_deletes_restores_and_searches(live_server, mlflow_user, settings, guarded):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    result = run_script("lifecycle.py", {
        "MLFLOW_TRACKING_URI": f"{live_server.url}/mlflow/vision",
        "MLFLOW_TRACKING_TOKEN": mlflow_user.token,
    })
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["mlflow"].startswith("3.")
    assert out["statuses"] == ["READY"] * 3 and out["alias_refused"] is None
    # An alias holds a version, and its model, until it is moved or removed.
    assert out["aliased"]["code"] == "INVALID_PARAMETER_VALUE" and "candidate" in out["aliased"]["message"]
    assert out["model_aliased"]["code"] == "INVALID_PARAMETER_VALUE"
    lifecycle_checks(out, mlflow_user, guarded)
