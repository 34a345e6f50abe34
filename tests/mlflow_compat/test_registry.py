import json
import uuid

import pytest

from experiments.models import Artifact, Metric, Run
from registry.models import AliasEvent, ModelAlias, ModelVersion, VersionStatus
from tests.mlflow_compat.conftest import run_script


@pytest.mark.live
@pytest.mark.worker
def test_training_script_registers_aliases_and_loads_its_model(live_server, mlflow_user, queue, start_worker):
    # A real Celery worker runs Steward's checks on the new version while MLflow's client waits
    # for PENDING_REGISTRATION to end.
    worker = start_worker(queue)
    result = run_script("train_sklearn.py", {
        "MLFLOW_TRACKING_URI": f"{live_server.url}/mlflow/vision",
        "MLFLOW_TRACKING_TOKEN": mlflow_user.token,
    })
    out = json.loads(result.stdout.strip().splitlines()[-1])
    run = Run.objects.get(pk=uuid.UUID(out["run_id"]))
    # Autologging's params and the model's files are the run's own.
    assert out["autolog_params"] and dict(run.params.values_list("key", "value"))["max_iter"] == "300"
    # MLflow 3 logs the run's metrics again for the model it logs: still one point each.
    rows = list(Metric.objects.filter(run=run).values_list("key", "step", "timestamp", "value"))
    assert len(rows) == len(set(rows)) and [r[0] for r in rows].count("val_acc") == 1
    folder = f"models/{out['model_id']}"
    paths = set(Artifact.objects.filter(run=run).values_list("path", flat=True))
    assert {f"{folder}/MLmodel", f"{folder}/model.skops", f"{folder}/input_example.json"} <= paths
    version = ModelVersion.objects.get(model__name="iris-clf", version=int(out["version"]))
    assert version.run == run and version.model.project == mlflow_user.project
    assert version.artifact_path == f"{folder}/model.skops" and version.model_format == "skops"
    assert version.status == VersionStatus.READY, (version.status_message, worker.log())
    assert [c["name"] for c in version.columns] == ["sepal length (cm)", "sepal width (cm)",
                                                    "petal length (cm)", "petal width (cm)"]
    assert out["status"] == "READY"
    assert AliasEvent.objects.filter(model=version.model, alias="candidate", version=version).exists()
    assert out["alias_version"] == out["version"]
    assert out["predictions"] == out["expected"]
    assert out["latest"] == [out["version"]]
    assert out["download_uri"] == f"mlflow-artifacts:/{run.experiment_id}/{run.pk.hex}/artifacts/{folder}"
    assert out["alias_gone"] and not ModelAlias.objects.filter(name="candidate").exists()
    assert out["searched"] == ["iris-clf"] and out["versions"] == [out["version"]]
    assert out["model_tags"] == {"team": "growth"} and out["version_tags"] == {"validated": "yes"}
    assert out["description"] == "first try"
    # The protected alias stays protected.
    assert out["refused"]["code"] == "PERMISSION_DENIED"
    assert "promotion request" in out["refused"]["message"]
    assert not ModelAlias.objects.filter(model=version.model, name="champion").exists()
    assert not AliasEvent.objects.filter(model=version.model, alias="champion").exists()
