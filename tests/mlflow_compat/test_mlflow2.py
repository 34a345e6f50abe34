"""An MLflow 2.x client (its own virtualenv, made by `make mlflow2-client`) against a live Steward."""

import json
import uuid
from pathlib import Path

import pytest

from experiments.models import Metric, Run
from registry.models import ModelVersion, VersionStatus
from tests.mlflow_compat.conftest import run_script
from tests.mlflow_compat.test_lifecycle import lifecycle_checks

MLFLOW2_PYTHON = Path(__file__).resolve().parents[2] / ".venv-mlflow2" / "bin" / "python"

pytestmark = pytest.mark.live


@pytest.fixture
def mlflow2_python():
    if not MLFLOW2_PYTHON.exists():
        pytest.fail(f"{MLFLOW2_PYTHON} is missing: run `make mlflow2-client` (make test does).")
    return str(MLFLOW2_PYTHON)


def test_mlflow2_script_logs_and_registers_a_pickle_without_hanging(live_server, mlflow_user, settings,
                                                                    mlflow2_python):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    result = run_script("train_mlflow2.py", {
        "MLFLOW_TRACKING_URI": f"{live_server.url}/mlflow/vision",
        "MLFLOW_TRACKING_TOKEN": mlflow_user.token,
    }, python=mlflow2_python)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["mlflow"].startswith("2.")
    run = Run.objects.get(pk=uuid.UUID(out["run_id"]))
    assert run.project == mlflow_user.project and run.name == "v2" and run.status == "FINISHED"
    assert list(Metric.objects.filter(run=run, key="loss").order_by("step").values_list("value", flat=True)) \
        == [1.0, 0.5, 1.0 / 3]
    assert "model/model.pkl" in out["artifacts"] and "model/MLmodel" in out["artifacts"]
    assert out["found"] == [out["run_id"]]
    # The cloudpickle file is stored, never loaded (pickles are off): registration still completes,
    # and the version says what Steward needs.
    version = ModelVersion.objects.get(model__name="iris-2x", version=int(out["version"]))
    assert version.model_format == "pickle" and version.run == run
    assert version.status == VersionStatus.FAILED
    assert out["status"] == "READY"
    assert "serialization_format='skops'" in out["status_message"]
    assert "mlflow.log-model.history" in dict(run.tags.values_list("key", "value"))


def test_mlflow2_client_deletes_restores_and_searches(live_server, mlflow_user, settings, mlflow2_python,
                                                      guarded):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    result = run_script("lifecycle.py", {
        "MLFLOW_TRACKING_URI": f"{live_server.url}/mlflow/vision",
        "MLFLOW_TRACKING_TOKEN": mlflow_user.token,
    }, python=mlflow2_python)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["mlflow"].startswith("2.")
    # A 2.x cloudpickle is not trusted here: its versions exist and are deleted, but carry no alias.
    assert out["alias_refused"]["code"] == "INVALID_PARAMETER_VALUE" and out["aliased"] is None
    lifecycle_checks(out, mlflow_user, guarded)
