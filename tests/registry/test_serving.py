import json

import numpy as np
import pytest

from registry import prediction_log
from registry.models import PredictionLog
from tests.registry.conftest import register, store_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(project, run, editor, forest, cancer_data):
    X, _ = cancer_data
    store_model(run, forest, example=X.sample(100, random_state=2))
    return register(project=project, run=run, user=editor.user)


def url(project, ref="1", name="credit-scorer"):
    return f"/api/v1/serve/{project.slug}/{name}/{ref}/predict"


def records(frame):
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_predictions_match_scikit_learn(project, editor, served, forest, cancer_data):
    X, _ = cancer_data
    rows = X.iloc[:100]
    response = editor.post(url(project), {"records": records(rows)}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["model_version"] == 1
    assert body["runtime"] == "onnx"
    assert body["classes"] == [0, 1]
    assert len(body["request_id"]) == 32
    assert body["predictions"] == forest.predict(rows).tolist()
    assert np.abs(np.array(body["probabilities"]) - forest.predict_proba(rows)).max() <= 1e-5


def test_column_oriented_requests(project, editor, served, forest, cancer_data):
    rows = cancer_data[0].iloc[:3]
    columns = {name: [float(v) for v in rows[name]] for name in rows.columns}
    response = editor.post(url(project), {"columns": columns}, format="json")
    assert response.status_code == 200
    assert response.json()["predictions"] == forest.predict(rows).tolist()


def test_regression_and_string_classes(project, run, editor, diabetes_ridge, iris_logreg):
    ridge, Xd = diabetes_ridge
    store_model(run, ridge, folder="ridge", example=Xd)
    register(project=project, run=run, user=editor.user, path="ridge", name="ridge")
    response = editor.post(url(project, name="ridge"), {"records": records(Xd.iloc[:2])}, format="json")
    body = response.json()
    assert "probabilities" not in body
    assert body["predictions"] == pytest.approx(ridge.predict(Xd.iloc[:2]).tolist(), abs=1e-4)

    logreg, Xi = iris_logreg
    store_model(run, logreg, folder="iris", example=Xi)
    register(project=project, run=run, user=editor.user, path="iris", name="iris")
    rows = records(Xi.iloc[[0, 100]])
    body = editor.post(url(project, name="iris"), {"records": rows}, format="json").json()
    assert body["predictions"] == ["setosa", "virginica"]
    assert body["classes"] == ["setosa", "versicolor", "virginica"]


def test_sklearn_runtime_serves_what_onnx_cannot(project, run, editor, hist_gb, cancer_data):
    store_model(run, hist_gb, folder="hgb", example=cancer_data[0].head(50))
    register(project=project, run=run, user=editor.user, path="hgb", name="hgb")
    rows = cancer_data[0].iloc[:5]
    body = editor.post(url(project, name="hgb"), {"records": records(rows)}, format="json").json()
    assert body["runtime"] == "sklearn"
    assert body["predictions"] == hist_gb.predict(rows).tolist()


def _row(cancer_data):
    return records(cancer_data[0].iloc[:2])


def test_a_missing_column_is_a_400_naming_it(project, editor, served, cancer_data):
    rows = _row(cancer_data)
    del rows[1]["mean area"]
    response = editor.post(url(project), {"records": rows}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"mean area": "Row 1: missing column."}


@pytest.mark.parametrize("bad, message", [
    ("12.5", "expected a number, got '12.5'"),
    (True, "expected a number, got True"),
    ([1], "expected a number"),
    (None, "cannot take a missing value"),
])
def test_a_wrong_type_or_null_is_a_400_naming_the_column(project, editor, served, cancer_data, bad, message):
    rows = _row(cancer_data)
    rows[0]["worst area"] = bad
    response = editor.post(url(project), {"records": rows}, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert list(fields) == ["worst area"]
    assert message in fields["worst area"]


def test_a_nan_literal_is_a_400_naming_the_column(project, editor, served, cancer_data):
    rows = _row(cancer_data)
    rows[1]["mean radius"] = float("nan")
    body = json.dumps({"records": rows})  # Python writes NaN, as many clients do
    response = editor.post(url(project), body, content_type="application/json")
    assert response.status_code == 400
    assert "mean radius" in response.json()["error"]["fields"]


def test_nullable_columns_take_missing_values(project, run, editor, cancer_data):
    from sklearn.ensemble import RandomForestClassifier

    X, y = cancer_data
    X = X.copy()
    X.loc[X.index[:40], "mean radius"] = np.nan
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    store_model(run, model, folder="nan", example=X.head(60))
    version = register(project=project, run=run, user=editor.user, path="nan", name="nan")
    assert [c["name"] for c in version.columns if c["nullable"]] == ["mean radius"]
    frame = X.iloc[[50, 51]].copy()
    frame.iloc[0, 0] = np.nan
    rows = records(frame)
    rows[0]["mean radius"] = None
    response = editor.post(url(project, name="nan"), {"records": rows}, format="json")
    assert response.status_code == 200, response.json()
    # Whichever runtime serves it, the answer is scikit-learn's for the missing value.
    assert response.json()["predictions"] == model.predict(frame).tolist()
    assert np.abs(np.array(response.json()["probabilities"]) - model.predict_proba(frame)).max() <= 1e-5
    prediction_log.prediction_log_flush()
    assert PredictionLog.objects.get().inputs["mean radius"][0] is None


@pytest.mark.parametrize("body, field", [
    ({}, "records"),
    ({"records": []}, "records"),
    ({"records": "x"}, "records"),
    ({"records": [1, 2]}, "records[0]"),
    ({"columns": {"mean radius": [1.0], "mean area": [1.0, 2.0]}}, "columns"),
])
def test_malformed_bodies_are_400s(project, editor, served, body, field):
    response = editor.post(url(project), body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_a_batch_over_the_configured_size_is_a_413(project, editor, served, cancer_data, settings):
    settings.SERVING_MAX_ROWS = 10
    rows = records(cancer_data[0].iloc[:11])
    response = editor.post(url(project), {"records": rows}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert editor.post(url(project), {"records": rows[:10]}, format="json").status_code == 200


def test_unknown_model_version_or_alias_is_a_404(project, editor, served, cancer_data):
    body = {"records": _row(cancer_data)}
    assert editor.post(url(project, ref="champion"), body, format="json").status_code == 404
    assert editor.post(url(project, ref="7"), body, format="json").status_code == 404
    response = editor.post(url(project, name="nope"), body, format="json")
    assert response.status_code == 404
    assert "No model named" in response.json()["error"]["message"]


def test_outsiders_get_404_and_viewers_may_predict(project, outsider, viewer, served, cancer_data):
    body = {"records": _row(cancer_data)}
    assert outsider.post(url(project), body, format="json").status_code == 404
    assert viewer.post(url(project), body, format="json").status_code == 200


def test_every_prediction_is_logged_in_batches(project, editor, served, cancer_data):
    rows = _row(cancer_data)
    first = editor.post(url(project), {"records": rows}, format="json").json()
    second = editor.post(url(project), {"records": rows[:1]}, format="json").json()
    # Nothing is written on the request path.
    assert PredictionLog.objects.count() == 0
    assert prediction_log.prediction_log_flush() == 3
    # One record per request, holding each of its rows.
    logs = list(PredictionLog.objects.order_by("id"))
    assert [(log.request_id.hex, log.rows) for log in logs] == [(first["request_id"], 2),
                                                                 (second["request_id"], 1)]
    assert logs[0].model_version_id == served.pk
    assert logs[0].row_get(1) == {"inputs": rows[1], "prediction": first["predictions"][1],
                                  "probabilities": first["probabilities"][1]}
    assert logs[1].row_get(0)["inputs"] == rows[0]


def test_pii_columns_are_left_out_of_the_log_unless_asked_for(project, run, editor, member_client,
                                                              iris_logreg):
    from accounts.models import Role

    model, X = iris_logreg
    store_model(run, model, example=X)
    register(project=project, run=run, user=editor.user, name="iris", pii_columns=["sepal width (cm)"])
    row = records(X.iloc[:1])
    editor.post(url(project, name="iris"), {"records": row}, format="json")
    prediction_log.prediction_log_flush()
    logged = PredictionLog.objects.get().row_get(0)["inputs"]
    assert logged == {k: v for k, v in row[0].items() if k != "sepal width (cm)"}

    owner = member_client(Role.OWNER)
    model_url = f"/api/v1/projects/{project.slug}/models/iris/"
    assert editor.patch(model_url, {"log_pii": True}, format="json").status_code == 403
    assert owner.patch(model_url, {"log_pii": True}, format="json").status_code == 200
    editor.post(url(project, name="iris"), {"records": row}, format="json")
    prediction_log.prediction_log_flush()
    assert PredictionLog.objects.order_by("-id").first().row_get(0)["inputs"] == row[0]


def test_a_given_request_id_is_kept(project, editor, served, cancer_data):
    rid = "6f1c7b1e-3f7b-4f57-9a51-3b1f0e2a9d11"
    body = editor.post(url(project), {"records": _row(cancer_data)}, format="json",
                       HTTP_X_REQUEST_ID=rid).json()
    assert body["request_id"] == rid.replace("-", "")


def test_tokens_are_checked_like_everywhere_else(project, editor, served, cancer_data):
    import datetime as dt

    from django.utils import timezone
    from rest_framework.test import APIClient

    from accounts import services as account_services
    from accounts.models import ApiToken

    body = {"records": _row(cancer_data)}
    anonymous = APIClient()
    assert anonymous.post(url(project), body, format="json").status_code == 401
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer stw_not-a-token")
    assert anonymous.post(url(project), body, format="json").status_code == 401
    anonymous.credentials(HTTP_AUTHORIZATION="Basic abc")
    assert anonymous.post(url(project), body, format="json").status_code == 401

    token, raw = account_services.api_token_create(user=editor.user, name="soon")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.post(url(project), body, format="json").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client.post(url(project), body, format="json").status_code == 401
    ApiToken.objects.filter(pk=token.pk).update(expires_at=None, revoked_at=timezone.now())
    response = client.post(url(project), body, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    editor.user.is_active = False
    editor.user.save()
    assert editor.post(url(project), body, format="json").status_code == 401


def test_the_browser_session_needs_the_csrf_token(project, editor, served, cancer_data):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(editor.user)
    payload = json.dumps({"records": _row(cancer_data)})
    refused = browser.post(url(project), payload, content_type="application/json")
    assert refused.status_code == 403
    token = "a" * 32  # what a page's CSRF cookie holds
    browser.cookies["csrftoken"] = token
    allowed = browser.post(url(project), payload, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert allowed.status_code == 200, allowed.content


def test_staff_may_predict_anywhere(project, served, cancer_data):
    from tests.conftest import _client_for
    from tests.factories import UserFactory

    admin = _client_for(UserFactory(is_staff=True))
    assert admin.post(url(project), {"records": _row(cancer_data)}, format="json").status_code == 200


def test_not_json_is_a_400(project, editor, served):
    response = editor.post(url(project), "{nope", content_type="application/json")
    assert response.status_code == 400
    assert "body" in response.json()["error"]["fields"]


def test_the_serving_lookup_is_one_prepared_statement_on_postgresql(project, editor, served, cancer_data):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    body = {"records": _row(cancer_data)}
    for _ in range(3):
        assert editor.post(url(project), body, format="json").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans + custom_plans FROM pg_prepared_statements "
                       "WHERE statement LIKE %s", ["%key_hash%"])
        # Prepared once and run for each request, not planned afresh every time.
        assert cursor.fetchall() == [(3,)]


def test_bad_tokens_on_predict_are_throttled_with_the_api(project, editor, served, cancer_data, settings):
    from rest_framework.test import APIClient

    rates = {"token_failure": "3/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    body = {"records": _row(cancer_data)}
    for _ in range(10):  # successful predictions are never counted
        assert editor.post(url(project), body, format="json").status_code == 200
    guesser = APIClient()
    guesser.credentials(HTTP_AUTHORIZATION="Bearer stw_wrong")
    assert guesser.post(url(project), body, format="json").status_code == 401
    assert guesser.post(url(project), body, format="json").status_code == 401
    assert guesser.get("/api/v1/projects/").status_code == 401  # one count for every route
    throttled = guesser.post(url(project), body, format="json")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert editor.post(url(project), body, format="json").status_code == 429  # same address
    assert editor.post(url(project), body, format="json", REMOTE_ADDR="10.2.2.2").status_code == 200
