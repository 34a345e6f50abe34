import json
import uuid

import pytest

from experiments.models import Artifact, Run
from tests.mlflow_compat.conftest import run_script


@pytest.mark.live
def test_artifacts_upload_list_and_download_through_the_proxy(live_server, mlflow_user):
    result = run_script("track_artifacts.py", {
        "MLFLOW_TRACKING_URI": f"{live_server.url}/mlflow/vision",
        "MLFLOW_TRACKING_TOKEN": mlflow_user.token,
    })
    out = json.loads(result.stdout.strip().splitlines()[-1])
    run = Run.objects.get(pk=uuid.UUID(out["run_id"]))
    assert out["artifact_uri"] == f"mlflow-artifacts:/{run.experiment_id}/{run.pk.hex}/artifacts"
    stored = dict(Artifact.objects.filter(run=run).values_list("path", "size"))
    assert stored == {"notes.txt": 14, "plots/a.csv": 8, "plots/deep/b.json": 8,
                      "texts/inline.txt": 11, "config.json": len(json.dumps({"k": [1, 2]}, indent=2))}
    assert out["top"] == [["config.json", False, stored["config.json"]], ["notes.txt", False, 14],
                          ["plots", True, None], ["texts", True, None]]
    assert out["inner"] == [["plots/a.csv", False, 8], ["plots/deep", True, None]]
    assert out["deep"] == '{"b": 1}'
    assert out["text"] == "inline text"


def _artifact_url(run, path):
    return (f"/mlflow/{run.project.slug}/api/2.0/mlflow-artifacts/artifacts/"
            f"{run.experiment_id}/{run.pk.hex}/artifacts/{path}")


@pytest.fixture
def mlflow_run(editor, project):
    from experiments.services import run_create

    return run_create(project=project, experiment="e", user=editor.user).run


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["..%2F..%2Fetc%2Fpasswd", "a/../../x", "%2e%2e/x", "a%00b", "a\\..\\b"])
def test_path_traversal_is_refused_with_mlflows_error(editor, mlflow_run, artifact_root, path):
    response = editor.generic("PUT", _artifact_url(mlflow_run, path), b"data",
                              content_type="application/octet-stream")
    assert response.status_code in (400, 404), response.content
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert not Artifact.objects.filter(run=mlflow_run).exists()
    assert not any(p.is_file() for p in artifact_root.parent.rglob("passwd"))


@pytest.mark.django_db
def test_multipart_upload_answers_501_so_the_client_falls_back(editor, mlflow_run):
    response = editor.post(
        f"/mlflow/{mlflow_run.project.slug}/api/2.0/mlflow-artifacts/mpu/create/"
        f"{mlflow_run.experiment_id}/{mlflow_run.pk.hex}/artifacts/big.bin",
        {"path": "big.bin", "num_parts": 3}, format="json",
    )
    assert response.status_code == 501
    assert response.json() == {"error_code": "NOT_IMPLEMENTED", "message":
                               "Multipart upload is not supported for the current artifact repository"}


@pytest.mark.django_db
def test_outsider_and_viewer_cannot_write_artifacts(outsider, viewer, mlflow_run, artifact_root):
    response = outsider.generic("PUT", _artifact_url(mlflow_run, "x.txt"), b"data",
                                content_type="text/plain")
    assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    response = viewer.generic("PUT", _artifact_url(mlflow_run, "x.txt"), b"data", content_type="text/plain")
    assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED"
    assert not Artifact.objects.filter(run=mlflow_run).exists()
