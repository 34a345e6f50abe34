"""The serving endpoint is in the OpenAPI schema, and answers with the X-Request-ID it used."""

import uuid

import pytest

from tests.registry.conftest import register, store_model


@pytest.mark.django_db
def test_the_schema_documents_the_predict_endpoint(viewer):
    schema = viewer.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/serve/{slug}/{name}/{ref}/predict"]["post"]
    assert {"records", "columns"} <= {k for s in operation["requestBody"]["content"]["application/json"]
                                      ["schema"]["oneOf"] for k in s["properties"]}
    assert {"200", "400", "404", "409", "413"} <= set(operation["responses"])
    assert "X-Request-ID" in [p["name"] for p in operation["parameters"]]


@pytest.mark.django_db
def test_predict_echoes_the_request_id_it_recorded(project, run, editor, iris_logreg):
    model, X = iris_logreg
    store_model(run, model, example=X)
    register(project=project, run=run, user=editor.user, name="iris")
    rid = uuid.uuid4()
    response = editor.post(f"/api/v1/serve/{project.slug}/iris/1/predict",
                           {"records": [X.iloc[0].to_dict()]}, format="json", HTTP_X_REQUEST_ID=str(rid))
    assert response.status_code == 200, response.content
    assert response["X-Request-ID"] == rid.hex == response.json()["request_id"]
