"""The registry endpoints on Steward's registry, without a live client: shapes, statuses, refusals."""

import json

import numpy as np
import pytest
import skops.io as sio
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from experiments.services import run_create
from governance.models import AuditEvent
from registry import registration
from registry import services as registry_services
from registry.models import AliasEvent, ModelAlias, ModelVersion, RegisteredModel
from tests.mlflow_compat.conftest import Approval
from tests.mlflow_compat.test_api import assert_error, url
from tests.registry.conftest import upload

pytestmark = pytest.mark.django_db

MLMODEL = """artifact_path: model
flavors:
  sklearn:
    serialization_format: skops
signature:
  inputs: '[{"type": "double", "name": "sepal length (cm)", "required": true}, {"type":
    "double", "name": "sepal width (cm)", "required": true}, {"type": "double", "name":
    "petal length (cm)", "required": true}, {"type": "double", "name": "petal width (cm)",
    "required": true}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
saved_input_example_info:
  artifact_path: input_example.json
  type: dataframe
"""


@pytest.fixture
def mlflow_model_run(editor, project, artifact_root):
    return model_run(project, editor.user)


def model_run(project, user):
    """A run holding a model as MLflow 3 logs it: MLmodel, model.skops, split-JSON input example."""
    X, y = load_iris(return_X_y=True, as_frame=True)
    run = run_create(project=project, experiment="iris", user=user).run
    upload(run, "model/model.skops", sio.dumps(LogisticRegression(max_iter=300).fit(X, y)))
    upload(run, "model/MLmodel", MLMODEL.encode())
    example = {"columns": list(X.columns), "data": X.head(3).values.tolist()}
    upload(run, "model/input_example.json", json.dumps(example).encode())
    return run


def _register(editor, project, run, name="iris", folder="model"):
    response = editor.post(url(project, "model-versions/create"),
                           {"name": name, "run_id": run.pk.hex, "source": f"runs:/{run.pk.hex}/{folder}"},
                           format="json")
    assert response.status_code == 200, response.content
    body = response.json()["model_version"]
    version = ModelVersion.objects.get(model__name=name, version=int(body["version"]))
    return body, version


def _check(version):
    registration.model_version_check(job_id=version.check_job_id)
    version.refresh_from_db()
    return version


def test_registration_is_pending_then_ready_with_the_mlmodel_signature(editor, project, mlflow_model_run):
    body, version = _register(editor, project, mlflow_model_run)
    assert body["status"] == "PENDING_REGISTRATION"
    assert body["source"] == f"runs:/{mlflow_model_run.pk.hex}/model"
    assert [c["name"] for c in version.columns][:2] == ["sepal length (cm)", "sepal width (cm)"]
    assert version.example["dtypes"] == ["double"] * 4 and len(version.example["data"]) == 3
    _check(version)
    got = editor.get(url(project, "model-versions/get"), {"name": "iris", "version": "1"}).json()
    assert got["model_version"]["status"] == "READY", version.status_message
    uri = editor.get(url(project, "model-versions/get-download-uri"), {"name": "iris", "version": "1"}).json()
    assert uri["artifact_uri"].endswith(f"/{mlflow_model_run.pk.hex}/artifacts/model")


def test_a_model_fitted_on_an_array_gets_columns_x0_to_xn(editor, project, artifact_root):
    X, y = load_iris(return_X_y=True)
    run = run_create(project=project, experiment="arrays", user=editor.user).run
    upload(run, "model/model.skops", sio.dumps(LogisticRegression(max_iter=300).fit(np.asarray(X), y)))
    _, version = _register(editor, project, run, name="arrays")
    _check(version)
    assert version.status == "ready", version.status_message
    assert [c["name"] for c in version.columns] == ["x0", "x1", "x2", "x3"]


def test_aliases_stages_and_protection(editor, project, mlflow_model_run):
    _, version = _register(editor, project, mlflow_model_run)
    _check(version)
    body = {"name": "iris", "alias": "candidate", "version": "1"}
    assert editor.post(url(project, "registered-models/alias"), body, format="json").status_code == 200
    by_alias = editor.get(url(project, "registered-models/alias"), {"name": "iris", "alias": "candidate"})
    assert by_alias.json()["model_version"]["version"] == "1"
    assert by_alias.json()["model_version"]["aliases"] == ["candidate"]
    message = assert_error(editor.post(url(project, "registered-models/alias"), {**body, "alias": "champion"},
                                       format="json"), 403, "PERMISSION_DENIED")
    assert "promotion request" in message
    for bad in ("latest", "v2", "a b", "x" * 65):
        response = editor.post(url(project, "registered-models/alias"), {**body, "alias": bad}, format="json")
        assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert_error(editor.post(url(project, "model-versions/transition-stage"),
                             {"name": "iris", "version": "1", "stage": "Production"}, format="json"),
                 403, "PERMISSION_DENIED")
    assert not ModelAlias.objects.filter(name__in=["champion", "production"]).exists()
    assert not AliasEvent.objects.filter(alias__in=["champion", "production"]).exists()
    response = editor.delete(url(project, "registered-models/alias") + "?name=iris&alias=candidate")
    assert response.status_code == 200 and not ModelAlias.objects.filter(name="candidate").exists()
    # MLflow's client sends a DELETE's arguments as JSON.
    editor.post(url(project, "registered-models/alias"), body, format="json")
    response = editor.delete(url(project, "registered-models/alias"), {"name": "iris", "alias": "candidate"},
                             format="json")
    assert response.status_code == 200 and not ModelAlias.objects.filter(name="candidate").exists()
    assert_error(editor.delete(url(project, "registered-models/alias"), {"name": "iris", "alias": "champion"},
                               format="json"), 403, "PERMISSION_DENIED")
    latest = editor.post(url(project, "registered-models/get-latest-versions"), {"name": "iris"},
                         format="json")
    assert [v["version"] for v in latest.json()["model_versions"]] == ["1"]


def test_models_and_versions_tags_descriptions_rename_search(editor, project, mlflow_model_run, viewer):
    created = editor.post(url(project, "registered-models/create"),
                          {"name": "iris", "description": "flowers", "tags": [{"key": "team", "value": "a"}]},
                          format="json")
    assert created.json()["registered_model"]["tags"] == [{"key": "team", "value": "a"}]
    assert_error(editor.post(url(project, "registered-models/create"), {"name": "iris"}, format="json"),
                 400, "RESOURCE_ALREADY_EXISTS")
    _register(editor, project, mlflow_model_run)
    one = {"name": "iris", "version": "1"}
    editor.post(url(project, "model-versions/set-tag"), {**one, "key": "k", "value": "v"}, format="json")
    editor.patch(url(project, "model-versions/update"), {**one, "description": "first"}, format="json")
    got = editor.get(url(project, "model-versions/get"), one).json()["model_version"]
    assert got["tags"] == [{"key": "k", "value": "v"}] and got["description"] == "first"
    renamed = editor.post(url(project, "registered-models/rename"), {"name": "iris", "new_name": "iris2"},
                          format="json")
    assert renamed.json()["registered_model"]["name"] == "iris2"
    found = editor.get(url(project, "registered-models/search"), {"filter": "name LIKE 'iris%'"}).json()
    assert [m["name"] for m in found["registered_models"]] == ["iris2"]
    versions = editor.get(url(project, "model-versions/search"), {"filter": "name = 'iris2'"}).json()
    assert [v["version"] for v in versions["model_versions"]] == ["1"]
    assert_error(viewer.post(url(project, "registered-models/set-tag"),
                             {"name": "iris2", "key": "x", "value": "y"}, format="json"),
                 403, "PERMISSION_DENIED")
    assert_error(editor.get(url(project, "registered-models/get"), {"name": "nope"}), 404,
                 "RESOURCE_DOES_NOT_EXIST")


def test_version_delete_follows_stewards_alias_rules_and_is_audited(editor, project, mlflow_model_run,
                                                                   viewer):
    _, v1 = _register(editor, project, mlflow_model_run)
    _, v2 = _register(editor, project, mlflow_model_run)
    _, v3 = _register(editor, project, mlflow_model_run)
    for version in (v1, v2, v3):
        _check(version)
    registry_services.alias_set(model=v1.model, alias="candidate", version=v1, user=editor.user)
    registry_services.alias_set_protected(model=v2.model, alias="champion", version=v2, approval=Approval())
    one = {"name": "iris", "version": "1"}
    message = assert_error(editor.delete(url(project, "model-versions/delete"), one, format="json"),
                           400, "INVALID_PARAMETER_VALUE")
    assert "'candidate'" in message and "Move or remove the alias first" in message
    message = assert_error(editor.delete(url(project, "model-versions/delete"), {**one, "version": "2"},
                                         format="json"), 403, "PERMISSION_DENIED")
    assert "'champion'" in message and "promotion request" in message
    assert_error(viewer.delete(url(project, "model-versions/delete"), {**one, "version": "3"}, format="json"),
                 403, "PERMISSION_DENIED")
    assert_error(editor.delete(url(project, "model-versions/delete"), {**one, "version": "9"}, format="json"),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert sorted(ModelVersion.objects.values_list("version", flat=True)) == [1, 2, 3]

    # MLflow's client sends the arguments as JSON; other clients use the query string.
    assert editor.delete(url(project, "model-versions/delete") + "?name=iris&version=3").json() == {}
    assert sorted(ModelVersion.objects.values_list("version", flat=True)) == [1, 2]
    assert AuditEvent.objects.filter(action="model_version.delete", object_id=str(v3.pk)).count() == 1
    assert_error(editor.get(url(project, "model-versions/get"), {**one, "version": "3"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    # Unaliased, it goes.
    registry_services.alias_remove(model=v1.model, alias="candidate", user=editor.user)
    assert editor.delete(url(project, "model-versions/delete"), one, format="json").json() == {}
    assert list(ModelVersion.objects.values_list("version", flat=True)) == [2]
    assert mlflow_model_run.artifacts.filter(path="model/model.skops").exists()  # the run's files stay


def test_registered_model_delete_takes_its_versions_unless_an_alias_points_at_one(editor, project,
                                                                                 mlflow_model_run):
    _, v1 = _register(editor, project, mlflow_model_run)
    _, v2 = _register(editor, project, mlflow_model_run)
    for version in (v1, v2):
        _check(version)
    registry_services.alias_set_protected(model=v1.model, alias="champion", version=v1, approval=Approval())
    registry_services.alias_set(model=v1.model, alias="candidate", version=v2, user=editor.user)
    message = assert_error(editor.delete(url(project, "registered-models/delete"), {"name": "iris"},
                                         format="json"), 403, "PERMISSION_DENIED")
    assert "'champion'" in message and "promotion request" in message
    registry_services.alias_remove_protected(model=v1.model, alias="champion", approval=Approval())
    message = assert_error(editor.delete(url(project, "registered-models/delete"), {"name": "iris"},
                                         format="json"), 400, "INVALID_PARAMETER_VALUE")
    assert "'candidate' (v2)" in message
    assert ModelVersion.objects.count() == 2 and RegisteredModel.objects.filter(name="iris").exists()

    registry_services.alias_remove(model=v1.model, alias="candidate", user=editor.user)
    model_id = v1.model_id
    deleted = editor.delete(url(project, "registered-models/delete"), {"name": "iris"}, format="json")
    assert deleted.status_code == 200 and deleted.json() == {}
    assert not RegisteredModel.objects.filter(name="iris").exists() and not ModelVersion.objects.exists()
    assert AuditEvent.objects.filter(action="registered_model.delete", object_id=str(model_id)).count() == 1
    assert AuditEvent.objects.filter(action="model_version.delete").count() == 2
    assert_error(editor.get(url(project, "registered-models/get"), {"name": "iris"}), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    assert_error(editor.delete(url(project, "registered-models/delete"), {"name": "iris"}, format="json"),
                 404, "RESOURCE_DOES_NOT_EXIST")


def test_registry_searches_take_mlflows_filters_order_and_page_tokens(editor, project, mlflow_model_run):
    other = model_run(project, editor.user)
    for name, run in (("iris-a", mlflow_model_run), ("iris-a", other), ("iris-a", mlflow_model_run),
                      ("Iris-B", other), ("wine", mlflow_model_run)):
        _register(editor, project, run, name=name)
    editor.post(url(project, "registered-models/set-tag"), {"name": "wine", "key": "team", "value": "x"},
                format="json")
    editor.post(url(project, "model-versions/set-tag"), {"name": "iris-a", "version": "2", "key": "stage",
                                                          "value": "qa"}, format="json")

    def models(**query):
        response = editor.get(url(project, "registered-models/search"), query)
        assert response.status_code == 200, response.content
        body = response.json()
        return [m["name"] for m in body["registered_models"]], body.get("next_page_token")

    def versions(**query):
        response = editor.get(url(project, "model-versions/search"), query)
        assert response.status_code == 200, response.content
        body = response.json()
        return [(v["name"], v["version"]) for v in body["model_versions"]], body.get("next_page_token")

    assert models(filter="name = 'wine'")[0] == ["wine"]
    assert models(filter="name LIKE 'iris%'")[0] == ["iris-a"]
    assert models(filter="name ILIKE 'iris%'")[0] == ["Iris-B", "iris-a"]
    assert models(filter="tags.team = 'x'")[0] == ["wine"]
    assert models(order_by=["name DESC"])[0] == ["wine", "iris-a", "Iris-B"]
    first, token = models(max_results=2, order_by=["name ASC"])
    assert first == ["Iris-B", "iris-a"] and token
    assert models(max_results=2, order_by=["name ASC"], page_token=token) == (["wine"], None)

    run_hex = other.pk.hex
    assert versions(filter=f"run_id = '{run_hex}'")[0] == [("Iris-B", "1"), ("iris-a", "2")]
    assert versions(filter=f"run_id IN ('{str(other.pk)}', 'ffff')")[0] == [("Iris-B", "1"), ("iris-a", "2")]
    assert versions(filter="name = 'iris-a' AND version_number >= 2")[0] == [("iris-a", "3"), ("iris-a", "2")]
    assert versions(filter="name = 'iris-a'", order_by=["version_number ASC"])[0] == \
        [("iris-a", "1"), ("iris-a", "2"), ("iris-a", "3")]
    assert versions(filter="tags.stage = 'qa'")[0] == [("iris-a", "2")]
    assert versions(filter="name ILIKE '%IRIS%' AND version_number IN (1, 3)")[0] == \
        [("Iris-B", "1"), ("iris-a", "3"), ("iris-a", "1")]
    newest, _ = versions(order_by=["last_updated_timestamp DESC"], max_results=1)
    assert newest == [("wine", "1")]
    seen, token = [], None
    while True:
        page, token = versions(max_results=2, **({"page_token": token} if token else {}))
        seen += page
        if not token:
            break
    assert len(seen) == 5 and len(set(seen)) == 5

    for endpoint, bad in (("registered-models/search", {"filter": "owner = 'ada'"}),
                          ("registered-models/search", {"filter": "name = wine"}),
                          ("registered-models/search", {"order_by": ["size DESC"]}),
                          ("registered-models/search", {"max_results": "many"}),
                          ("registered-models/search", {"page_token": "not-a-token"}),
                          ("model-versions/search", {"filter": "version_number = 'two'"}),
                          ("model-versions/search", {"filter": "name > 'a'"}),
                          ("model-versions/search", {"filter": "run_id IN 'x'"}),
                          ("model-versions/search", {"order_by": ["version_number SIDEWAYS"]})):
        message = assert_error(editor.get(url(project, endpoint), bad), 400, "INVALID_PARAMETER_VALUE")
        assert message
