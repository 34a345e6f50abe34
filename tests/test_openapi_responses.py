"""The OpenAPI schema describes every answer, and describes it truly.

Each answer below is checked against the schema generated for its operation and status code, with
every object closed (a key the schema does not name fails), so a view that drifts from its
documented shape, or a description that drifts from the view, fails here.
"""

from __future__ import annotations

import copy
import uuid

import jsonschema
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from monitoring.models import Alert
from registry import prediction_log, serving
from tests.datasets.test_datasets import csv_bytes, upload
from tests.factories import MembershipFactory, UserFactory
from tests.monitoring.conftest import FEATURES, credit_frame, spec


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _bare(node: dict, components: dict) -> bool:
    """An object that says nothing of its keys (``type: object, additionalProperties: {}``)."""
    if "$ref" in node:
        return _bare(components[node["$ref"].rsplit("/", 1)[-1]], components)
    if node.get("type") == "array":
        return _bare(node.get("items", {}), components)
    if any(key in node for key in ("oneOf", "anyOf", "allOf")):
        return False
    return (node.get("type") == "object" and not node.get("properties")
            and node.get("additionalProperties") in ({}, True, None))


def test_no_success_response_is_a_bare_object(schema):
    components = schema["components"]["schemas"]
    offenders, answers = [], 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code, response in operation.get("responses", {}).items():
                if not str(code).startswith("2"):
                    continue
                answers += 1
                for media in (response.get("content") or {}).values():
                    if _bare(media.get("schema", {}), components):
                        offenders.append(f"{method.upper()} {path} {code}")
    assert answers > 100
    assert offenders == []


def test_the_serving_endpoint_is_in_the_schema(schema):
    operation = schema["paths"]["/api/v1/serve/{slug}/{name}/{ref}/predict"]["post"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"predictions", "model_version", "request_id"} <= set(answer["properties"])


def _json_schema(node):
    """OpenAPI 3.0 schema -> JSON Schema: ``nullable`` as a null alternative, and every object that
    names its properties closed to any other key."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: ({name: _json_schema(sub) for name, sub in value.items()} if key in ("properties", "schemas")
                 else _json_schema(value)) for key, value in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.pop("nullable", False):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


class Checker:
    """Calls the API and validates each answer against its operation's documented schema."""

    def __init__(self, schema: dict):
        self.schema = schema
        self.components = _json_schema(schema["components"])
        self.checked: set[tuple[str, str, int]] = set()

    def validate(self, method: str, template: str, status: int, body) -> None:
        operation = self.schema["paths"][template][method]
        response = operation["responses"].get(str(status))
        assert response is not None, f"{method.upper()} {template} answered {status}, which is not documented"
        media = response["content"]["application/json"]["schema"]
        root = {**_json_schema(media), "components": self.components}
        validator = jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{method.upper()} {template} {status}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:5])
        self.checked.add((method, template, status))

    def __call__(self, client, method: str, template: str, status: int, data=None, query: str = "",
                 **path) -> dict:
        url = template.format(**path) + (f"?{query}" if query else "")
        response = getattr(client, method)(url, data, format="json") if data is not None else getattr(
            client, method)(url)
        assert response.status_code == status, (method, url, response.status_code, response.content[:500])
        body = response.json()
        self.validate(method, template, status, body)
        return body


def _client(user) -> APIClient:
    _, raw = account_services.api_token_create(user=user, name="schema")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def eager(django_capture_on_commit_callbacks, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.PREDICTION_LOG_BACKGROUND = False
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.mark.django_db
def test_every_answer_matches_its_documented_schema(schema, project, artifact_root, eager):
    check = Checker(schema)
    owner_user = UserFactory()
    MembershipFactory(project=project, user=owner_user, role=Role.OWNER)
    reviewer_user = UserFactory()
    MembershipFactory(project=project, user=reviewer_user, role=Role.REVIEWER)
    owner, reviewer, staff = _client(owner_user), _client(reviewer_user), _client(UserFactory(is_staff=True))
    slug = project.slug
    serving.predictor_cache_clear()
    prediction_log._drain()

    # accounts
    check(owner, "get", "/api/v1/me/", 200)
    check(owner, "get", "/api/v1/projects/", 200)
    check(owner, "get", "/api/v1/projects/{slug}/", 200, slug=slug)
    check(owner, "get", "/api/v1/projects/{slug}/members/", 200, slug=slug)
    check(owner, "get", "/api/v1/tokens/", 200)
    check(owner, "post", "/api/v1/tokens/", 201, {"name": "ci"})
    check(owner, "post", "/api/v1/projects/{slug}/members/", 200,
          {"username": UserFactory().username, "role": "viewer"}, slug=slug)
    check(staff, "post", "/api/v1/projects/", 201, {"slug": f"{slug}-other", "name": "Other"})

    # tracking
    check(owner, "post", "/api/v1/projects/{slug}/experiments/", 201, {"name": "notebook"}, slug=slug)
    check(owner, "get", "/api/v1/projects/{slug}/experiments/", 200, slug=slug)
    run = check(owner, "post", "/api/v1/projects/{slug}/runs/", 201,
                {"experiment": "notebook", "name": "baseline", "tags": {"team": "risk"}, "seed": 7,
                 "source": {"git_commit": "abc123", "packages": {"numpy": "2.0"}}}, slug=slug)
    run_id = run["id"]
    check(owner, "post", "/api/v1/runs/{run_id}/params/", 201, {"key": "lr", "value": "0.1"}, run_id=run_id)
    check(owner, "post", "/api/v1/runs/{run_id}/metrics/", 201,
          [{"key": "loss", "value": v, "step": i} for i, v in enumerate([0.9, 0.5, "NaN"])], run_id=run_id)
    check(owner, "post", "/api/v1/runs/{run_id}/tags/", 201, {"key": "stage", "value": "dev"}, run_id=run_id)
    check(owner, "post", "/api/v1/runs/{run_id}/batch/", 201,
          {"params": [{"key": "depth", "value": "3"}], "metrics": [{"key": "acc", "value": 0.8}],
           "tags": [{"key": "note", "value": "x"}]}, run_id=run_id)
    full = check(owner, "get", "/api/v1/runs/{run_id}/", 200, run_id=run_id)
    assert full["metrics"]["loss"]["value"] == "NaN" and full["params"]["lr"] == "0.1"
    check(owner, "patch", "/api/v1/runs/{run_id}/", 200, {"notes": "first try"}, run_id=run_id)
    check(owner, "get", "/api/v1/runs/{run_id}/metrics/history/", 200, query="key=loss", run_id=run_id)
    check(owner, "get", "/api/v1/runs/", 200, query=f"prefix={run_id[:8]}")
    response = owner.generic("PUT", f"/api/v1/runs/{run_id}/artifacts/plots/loss.txt", b"0.9\n0.5\n",
                             content_type="text/plain")
    assert response.status_code == 201, response.content
    check.validate("put", "/api/v1/runs/{run_id}/artifacts/{path}", 201, response.json())
    check(owner, "get", "/api/v1/runs/{run_id}/artifacts/", 200, run_id=run_id)
    check(owner, "get", "/api/v1/runs/{run_id}/artifacts/", 200, query="recursive=true", run_id=run_id)
    check(owner, "post", "/api/v1/runs/{run_id}/artifacts-verify/", 202, run_id=run_id)
    summary = check(owner, "post", "/api/v1/runs/{run_id}/summary/", 202, run_id=run_id)
    check(owner, "get", "/api/v1/jobs/{job_id}/", 200, job_id=summary["id"])
    check(owner, "post", "/api/v1/jobs/{job_id}/cancel/", 200, job_id=summary["id"])
    check(owner, "get", "/api/v1/projects/{slug}/jobs/", 200, slug=slug)
    check(owner, "get", "/api/v1/projects/{slug}/runs/search/", 200, query="filter=metrics.acc > 0.5",
          slug=slug)
    check(owner, "post", "/api/v1/projects/{slug}/runs/search/", 200,
          {"experiment": ["notebook"], "order_by": ["metrics.acc DESC"]}, slug=slug)

    # datasets
    with eager():
        version = upload(owner, slug, "credit", csv_bytes(credit_frame(rows=600)))
    assert version.status_code == 201, version.content
    check.validate("post", "/api/v1/projects/{slug}/datasets/{name}/versions/", 201, version.json())
    version_id = version.json()["id"]
    response = owner.post(f"/api/v1/projects/{slug}/datasets/", {
        "name": "small", "file": SimpleUploadedFile("small.csv", b"a,b\n1,x\n2,y\n", "text/csv")},
        format="multipart")
    assert response.status_code == 201, response.content
    check.validate("post", "/api/v1/projects/{slug}/datasets/", 201, response.json())
    again = upload(owner, slug, "credit", csv_bytes(credit_frame(rows=600)))
    check.validate("post", "/api/v1/projects/{slug}/datasets/{name}/versions/", 200, again.json())
    check(owner, "post", "/api/v1/projects/{slug}/datasets/{name}/rules/", 201,
          {"kind": "not_null", "column": "income"}, slug=slug, name="credit")
    check(owner, "get", "/api/v1/projects/{slug}/datasets/{name}/rules/", 200, slug=slug, name="credit")
    with eager():
        check(owner, "post", "/api/v1/dataset-versions/{version_id}/validate/", 202, version_id=version_id)
    check(owner, "post", "/api/v1/dataset-versions/{version_id}/profile/", 202, version_id=version_id)
    check(owner, "patch", "/api/v1/dataset-versions/{version_id}/columns/", 200,
          {"columns": {"region": {"pii": True}}}, version_id=version_id)
    check(owner, "get", "/api/v1/dataset-versions/{version_id}/", 200, version_id=version_id)
    check(owner, "get", "/api/v1/dataset-versions/{version_id}/preview/", 200, query="rows=3",
          version_id=version_id)
    check(owner, "get", "/api/v1/projects/{slug}/datasets/", 200, slug=slug)
    check(owner, "get", "/api/v1/projects/{slug}/datasets/{name}/", 200, slug=slug, name="credit")
    check(owner, "post", "/api/v1/runs/{run_id}/datasets/", 201, {"dataset_version": version_id},
          run_id=run_id)
    check(owner, "get", "/api/v1/runs/{run_id}/datasets/", 200, run_id=run_id)
    check(owner, "patch", "/api/v1/dataset-versions/{version_id}/columns/", 200,
          {"columns": {"region": {"pii": False}}}, version_id=version_id)

    # training
    check(owner, "get", "/api/v1/estimators/", 200)
    with eager():
        job = check(owner, "post", "/api/v1/projects/{slug}/training-jobs/", 202,
                    {"experiment": "credit", "spec": spec(version_id)}, slug=slug)
    trained = check(owner, "get", "/api/v1/jobs/{job_id}/", 200, job_id=job["id"])
    assert trained["status"] == "succeeded", trained["error"]
    trained_run = trained["result"]["run_id"]
    check(owner, "get", "/api/v1/runs/{run_id}/training/", 200, run_id=trained_run)
    check(owner, "post", "/api/v1/runs/{run_id}/rerun/", 202, run_id=trained_run)
    sweep = check(owner, "post", "/api/v1/projects/{slug}/sweeps/", 201,
                  {"experiment": "credit", "spec": spec(version_id), "objective": "test_accuracy",
                   "search": {"strategy": "grid", "space": {"C": [0.5, 1.0]}}, "parallelism": 1}, slug=slug)
    check(owner, "get", "/api/v1/projects/{slug}/sweeps/", 200, slug=slug)
    check(owner, "get", "/api/v1/sweeps/{sweep_id}/", 200, sweep_id=sweep["id"])
    check(owner, "post", "/api/v1/sweeps/{sweep_id}/cancel/", 200, sweep_id=sweep["id"])

    # registry
    check(owner, "post", "/api/v1/projects/{slug}/models/", 201, {"name": "scorer", "tags": {"k": "v"}},
          slug=slug)
    with eager():
        check(owner, "post", "/api/v1/projects/{slug}/models/{name}/versions/", 201,
              {"run_id": trained_run, "artifact_path": "model"}, slug=slug, name="scorer")
    ready = check(owner, "get", "/api/v1/projects/{slug}/models/{name}/versions/{ref}/", 200,
                  slug=slug, name="scorer", ref="1")
    assert ready["status"] == "ready", ready["status_message"]
    check(owner, "get", "/api/v1/projects/{slug}/models/{name}/versions/", 200, slug=slug, name="scorer")
    check(owner, "get", "/api/v1/projects/{slug}/models/{name}/versions/{ref}/check-job/", 200,
          slug=slug, name="scorer", ref="1")
    check(owner, "put", "/api/v1/projects/{slug}/models/{name}/aliases/{alias}/", 200, {"version": 1},
          slug=slug, name="scorer", alias="live")
    check(owner, "get", "/api/v1/projects/{slug}/models/{name}/aliases/", 200, slug=slug, name="scorer")
    check(owner, "get", "/api/v1/projects/{slug}/models/", 200, slug=slug)
    check(owner, "get", "/api/v1/projects/{slug}/models/{name}/", 200, slug=slug, name="scorer")
    check(owner, "patch", "/api/v1/projects/{slug}/models/{name}/", 200, {"description": "Scores credit."},
          slug=slug, name="scorer")
    check(owner, "get", "/api/v1/projects/{slug}/models/{name}/compare/", 200, query="a=1&b=live",
          slug=slug, name="scorer")
    check(owner, "get", "/api/v1/projects/{slug}/trusted-hashes/", 200, slug=slug)
    check(owner, "post", "/api/v1/projects/{slug}/models/{name}/versions/{ref}/batch-score/", 202,
          {"dataset_version_id": version_id}, slug=slug, name="scorer", ref="1")
    frame = credit_frame(rows=40, seed=3)
    request_id = str(uuid.uuid4())
    check(owner, "post", "/api/v1/serve/{slug}/{name}/{ref}/predict", 200,
          {"records": frame[FEATURES].to_dict("records")}, slug=slug, name="scorer", ref="live")
    prediction_log.prediction_log_flush()

    # monitoring
    monitor = check(owner, "post", "/api/v1/projects/{slug}/monitors/", 201,
                    {"model": "scorer", "alias": "live", "reference_dataset_version": version_id}, slug=slug)
    monitor_id = monitor["id"]
    check(owner, "get", "/api/v1/projects/{slug}/monitors/", 200, slug=slug)
    check(owner, "patch", "/api/v1/monitors/{monitor_id}/", 200, {"cooldown_minutes": 30},
          monitor_id=monitor_id)
    check(owner, "post", "/api/v1/monitors/{monitor_id}/predictions/", 201,
          [{"inputs": row, "prediction": 1, "request_id": request_id}
           for row in frame[FEATURES].head(1).to_dict("records")], monitor_id=monitor_id)
    check(owner, "post", "/api/v1/monitors/{monitor_id}/labels/", 201,
          [{"request_id": request_id, "row": 0, "label": 1}], monitor_id=monitor_id)
    with eager():
        run_job = check(owner, "post", "/api/v1/monitors/{monitor_id}/run/", 202, monitor_id=monitor_id)
    report = check(owner, "get", "/api/v1/jobs/{job_id}/", 200, job_id=run_job["id"])
    assert report["status"] == "succeeded", report["error"]
    check(owner, "get", "/api/v1/monitor-reports/{report_id}/", 200, report_id=report["result"]["report_id"])
    alert = Alert.objects.create(monitor_id=monitor_id, kind="drift", message="Income drifted.",
                                 details={"features": ["income"]})
    check(owner, "get", "/api/v1/monitors/{monitor_id}/alerts/", 200, monitor_id=monitor_id)
    check(owner, "post", "/api/v1/alerts/{alert_id}/{action}/", 200, alert_id=alert.pk, action="acknowledge")
    check(owner, "get", "/api/v1/monitors/{monitor_id}/", 200, monitor_id=monitor_id)

    # governance
    fairness = check(owner, "get", "/api/v1/projects/{slug}/models/{name}/versions/{ref}/fairness/", 200,
                     slug=slug, name="scorer", ref="1")
    explanation = check(owner, "get", "/api/v1/projects/{slug}/models/{name}/versions/{ref}/explanation/",
                        200, query="include=beeswarm", slug=slug, name="scorer", ref="1")
    if explanation["status"] == "succeeded":
        check(owner, "post", "/api/v1/projects/{slug}/models/{name}/versions/{ref}/explanation/rows/", 200,
              {"records": frame[FEATURES].head(2).to_dict("records")}, slug=slug, name="scorer", ref="1")
    check(owner, "post", "/api/v1/projects/{slug}/models/{name}/versions/{ref}/fairness/", 202, {},
          slug=slug, name="scorer", ref="1")
    check(owner, "post", "/api/v1/projects/{slug}/models/{name}/versions/{ref}/explanation/", 202,
          slug=slug, name="scorer", ref="1")
    assert fairness["version"] == 1
    check(owner, "patch", "/api/v1/projects/{slug}/models/{name}/versions/{ref}/model-card/", 200,
          {"sections": {"intended_use": "Credit decisions."}}, slug=slug, name="scorer", ref="1")
    check(owner, "get", "/api/v1/projects/{slug}/models/{name}/versions/{ref}/model-card/", 200,
          slug=slug, name="scorer", ref="1")
    check(owner, "get", "/api/v1/projects/{slug}/models/{name}/policy/", 200, slug=slug, name="scorer")
    check(owner, "put", "/api/v1/projects/{slug}/models/{name}/policy/", 200, {"approvals_required": 1},
          slug=slug, name="scorer")
    promotion = check(owner, "post", "/api/v1/projects/{slug}/models/{name}/promotion-requests/", 201,
                      {"version": 1, "alias": "champion", "justification": "Best so far."},
                      slug=slug, name="scorer")
    check(owner, "get", "/api/v1/projects/{slug}/models/{name}/promotion-requests/", 200,
          slug=slug, name="scorer")
    check(reviewer, "get", "/api/v1/promotion-requests/{request_id}/", 200, request_id=promotion["id"])
    check(reviewer, "post", "/api/v1/promotion-requests/{request_id}/reviews/", 201,
          {"decision": "reject", "comment": "Not yet."}, request_id=promotion["id"])
    second = check(owner, "post", "/api/v1/projects/{slug}/models/{name}/promotion-requests/", 201,
                   {"version": 1, "alias": "production", "justification": "Serve it."},
                   slug=slug, name="scorer")
    check(owner, "post", "/api/v1/promotion-requests/{request_id}/withdraw/", 200, request_id=second["id"])
    change = check(owner, "post", "/api/v1/projects/{slug}/models/{name}/protection-requests/", 201,
                   {"alias": "production", "justification": "Not used."}, slug=slug, name="scorer")
    check(owner, "get", "/api/v1/projects/{slug}/models/{name}/protection-requests/", 200,
          slug=slug, name="scorer")
    check(reviewer, "get", "/api/v1/protection-requests/{change_id}/", 200, change_id=change["id"])
    check(reviewer, "post", "/api/v1/protection-requests/{change_id}/decision/", 200,
          {"decision": "reject", "comment": "Keep it."}, change_id=change["id"])
    other = check(owner, "post", "/api/v1/projects/{slug}/models/{name}/protection-requests/", 201,
                  {"alias": "champion", "justification": "Not used."}, slug=slug, name="scorer")
    check(owner, "post", "/api/v1/protection-requests/{change_id}/withdraw/", 200, change_id=other["id"])
    check(owner, "get", "/api/v1/projects/{slug}/audit-log/", 200, query="max_results=20", slug=slug)
    check(staff, "get", "/api/v1/audit-log/", 200, query="max_results=20")

    # the trash
    check(owner, "delete", "/api/v1/runs/{run_id}/", 200, run_id=run_id)
    experiment_id = full["experiment_id"]
    check(owner, "delete", "/api/v1/projects/{slug}/experiments/{experiment_id}/", 200,
          slug=slug, experiment_id=experiment_id)
    check(owner, "get", "/api/v1/projects/{slug}/trash/", 200, slug=slug)
    check(owner, "post", "/api/v1/projects/{slug}/experiments/{experiment_id}/restore/", 200,
          slug=slug, experiment_id=experiment_id)
    check(owner, "get", "/api/v1/projects/{slug}/experiments/{experiment_id}/", 200,
          slug=slug, experiment_id=experiment_id)
    check(owner, "delete", "/api/v1/runs/{run_id}/", 200, run_id=run_id)
    check(owner, "post", "/api/v1/runs/{run_id}/restore/", 200, run_id=run_id)

    operations = {(method, template) for method, template, _ in check.checked}
    apps = {template.split("/")[3] for _, template in operations}
    assert len(operations) >= 80, len(operations)
    assert {"me", "projects", "runs", "dataset-versions", "monitors", "promotion-requests", "serve"} <= apps


@pytest.mark.django_db
def test_an_answer_that_breaks_its_schema_is_caught(schema, project):
    """The checker itself: a missing key, an undocumented key and a wrong type each fail."""
    check = Checker(schema)
    job = {"id": 1, "kind": "run_summary", "status": "queued", "progress": 0, "message": "", "params": {},
           "result": None, "error": "", "log": "", "project": project.slug, "created_by": None,
           "attempts": 0, "created_at": "2026-01-01T00:00:00+00:00", "started_at": None, "finished_at": None}
    check.validate("get", "/api/v1/jobs/{job_id}/", 200, job)
    for broken in ({k: v for k, v in job.items() if k != "status"}, job | {"secret": 1},
                   job | {"progress": "half"}, job | {"project": 3}):
        with pytest.raises(AssertionError):
            check.validate("get", "/api/v1/jobs/{job_id}/", 200, copy.deepcopy(broken))
