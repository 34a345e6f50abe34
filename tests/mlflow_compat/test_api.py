"""MLflow's wire semantics on Steward's data: status codes, error shapes, limits, retries."""

import base64

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from experiments.models import LatestMetric, Metric, MetricRollup, Param, Run
from experiments.services import run_create
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db


def url(project, endpoint):
    return f"/mlflow/{project.slug}/api/2.0/mlflow/{endpoint}"


@pytest.fixture
def run(editor, project):
    return run_create(project=project, experiment="e", user=editor.user).run


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    return body["message"]


def test_a_retried_batch_is_stored_once_and_rollups_count_each_point_once(editor, project, run):
    batch = {"run_id": run.pk.hex, "metrics": [
        {"key": "loss", "value": 0.5, "timestamp": 1000, "step": 0},
        {"key": "loss", "value": "NaN", "timestamp": 1001, "step": 1},
        {"key": "loss", "value": 0.25, "timestamp": "1002", "step": "2"},  # int64 as protobuf JSON strings
    ], "params": [{"key": "lr", "value": "0.1"}], "tags": [{"key": "t", "value": "x"}]}
    for _ in range(3):
        assert editor.post(url(project, "runs/log-batch"), batch, format="json").json() == {}
    single = {"run_id": run.pk.hex, "key": "loss", "value": "NaN", "timestamp": 1001, "step": 1}
    assert editor.post(url(project, "runs/log-metric"), single, format="json").status_code == 200
    points = list(Metric.objects.filter(run=run).order_by("step").values_list("step", "value"))
    assert points == [(0, 0.5), (1, None), (2, 0.25)]
    assert sum(MetricRollup.objects.filter(run=run, key="loss").values_list("count", flat=True)) == 3
    assert LatestMetric.objects.get(run=run, key="loss").value == 0.25
    # A different value at the same step and time is another point.
    editor.post(url(project, "runs/log-metric"), {**single, "value": 0.3}, format="json")
    assert Metric.objects.filter(run=run).count() == 4


def test_a_changed_param_is_invalid_parameter_value(editor, project, run):
    body = {"run_id": run.pk.hex, "key": "lr", "value": "0.1"}
    assert editor.post(url(project, "runs/log-parameter"), body, format="json").status_code == 200
    assert editor.post(url(project, "runs/log-parameter"), body, format="json").status_code == 200
    message = assert_error(editor.post(url(project, "runs/log-parameter"), {**body, "value": "0.2"},
                                       format="json"), 400, "INVALID_PARAMETER_VALUE")
    assert "lr" in message
    assert Param.objects.get(run=run, key="lr").value == "0.1"


@pytest.mark.parametrize("field, count, limit", [("params", 101, 100), ("tags", 101, 100),
                                                 ("metrics", 1001, 1000)])
def test_batch_limits_are_mlflows_and_nothing_is_stored(editor, project, run, field, count, limit):
    item = {"params": lambda i: {"key": f"p{i}", "value": "1"},
            "tags": lambda i: {"key": f"t{i}", "value": "1"},
            "metrics": lambda i: {"key": "m", "value": 1.0, "timestamp": 1, "step": i}}[field]
    body = {"run_id": run.pk.hex, "params": [{"key": "kept", "value": "no"}]}
    body[field] = [item(i) for i in range(count)]
    message = assert_error(editor.post(url(project, "runs/log-batch"), body, format="json"),
                           400, "INVALID_PARAMETER_VALUE")
    assert f"at most {limit} {field}" in message
    assert not Param.objects.filter(run=run).exists() and not Metric.objects.filter(run=run).exists()


def test_a_long_key_names_the_field(editor, project, run):
    body = {"run_id": run.pk.hex, "metrics": [{"key": "k" * 251, "value": 1, "timestamp": 1, "step": 0}]}
    message = assert_error(editor.post(url(project, "runs/log-batch"), body, format="json"),
                           400, "INVALID_PARAMETER_VALUE")
    assert "metrics[0].key" in message


def test_auth_errors_use_mlflows_codes(project, run, outsider, viewer):
    anonymous = APIClient()
    assert_error(anonymous.get(url(project, "runs/get"), {"run_id": run.pk.hex}), 401, "UNAUTHENTICATED")
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer stw_wrong")
    assert_error(anonymous.get(url(project, "runs/get"), {"run_id": run.pk.hex}), 401, "UNAUTHENTICATED")
    assert_error(outsider.get(url(project, "runs/get"), {"run_id": run.pk.hex}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(outsider.post(url(project, "experiments/create"), {"name": "x"}, format="json"),
                 404, "RESOURCE_DOES_NOT_EXIST")
    assert viewer.get(url(project, "runs/get"), {"run_id": run.pk.hex}).status_code == 200
    assert_error(viewer.post(url(project, "runs/set-tag"), {"run_id": run.pk.hex, "key": "a", "value": "b"},
                             format="json"), 403, "PERMISSION_DENIED")


def test_basic_auth_takes_a_token_as_password(project, run, editor):
    from accounts.services import api_token_create

    _, raw = api_token_create(user=editor.user, name="basic")
    client = APIClient()
    good = base64.b64encode(f"{editor.user.username}:{raw}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {good}")
    assert client.get(url(project, "runs/get"), {"run_id": run.pk.hex}).json()["run"]["info"]["run_id"] \
        == run.pk.hex
    wrong_user = base64.b64encode(f"someone-else:{raw}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {wrong_user}")
    assert_error(client.get(url(project, "runs/get"), {"run_id": run.pk.hex}), 401, "UNAUTHENTICATED")


def test_experiments_create_get_rename_tag_delete(editor, project):
    created = editor.post(url(project, "experiments/create"),
                          {"name": "exp", "tags": [{"key": "owner", "value": "ada"}]}, format="json").json()
    assert_error(editor.post(url(project, "experiments/create"), {"name": "exp"}, format="json"),
                 400, "RESOURCE_ALREADY_EXISTS")
    exp_id = created["experiment_id"]
    editor.post(url(project, "experiments/update"), {"experiment_id": exp_id, "new_name": "renamed"},
                format="json")
    editor.post(url(project, "experiments/set-experiment-tag"),
                {"experiment_id": exp_id, "key": "mlflow.note.content", "value": "about"}, format="json")
    got = editor.get(url(project, "experiments/get-by-name"), {"experiment_name": "renamed"})
    got = got.json()["experiment"]
    assert got["experiment_id"] == exp_id and got["lifecycle_stage"] == "active"
    assert {"key": "owner", "value": "ada"} in got["tags"]
    assert {"key": "mlflow.note.content", "value": "about"} in got["tags"]
    assert_error(editor.get(url(project, "experiments/get-by-name"), {"experiment_name": "exp"}),
                 404, "RESOURCE_DOES_NOT_EXIST")
    editor.post(url(project, "experiments/delete"), {"experiment_id": exp_id}, format="json")
    names = [e["name"] for e in editor.post(url(project, "experiments/search"), {}, format="json")
             .json().get("experiments", [])]
    assert "renamed" not in names
    deleted = editor.post(url(project, "experiments/search"), {"view_type": "DELETED_ONLY"}, format="json")
    assert [e["name"] for e in deleted.json()["experiments"]] == ["renamed"]


def test_experiment_names_reach_mlflows_limit_of_500_and_no_further(editor, project):
    response = editor.post(url(project, "experiments/create"), {"name": "x" * 501}, format="json")
    message = assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert "500" in message and not project.experiments.exists()
    created = editor.post(url(project, "experiments/create"), {"name": "y" * 500}, format="json")
    assert created.status_code == 200, created.content
    assert project.experiments.get().name == "y" * 500
    renamed = editor.post(url(project, "experiments/update"),
                          {"experiment_id": created.json()["experiment_id"], "new_name": "z" * 501},
                          format="json")
    assert_error(renamed, 400, "INVALID_PARAMETER_VALUE")
    # Steward's own API takes the same names.
    assert editor.post(f"/api/v1/projects/{project.slug}/experiments/", {"name": "w" * 500},
                       format="json").status_code == 201
    response = editor.post(f"/api/v1/projects/{project.slug}/experiments/", {"name": "w" * 501},
                           format="json")
    assert response.status_code == 400 and "name" in response.json()["error"]["fields"]


def test_experiment_zero_is_the_projects_default(editor, project):
    body = editor.post(url(project, "runs/create"), {"experiment_id": "0", "start_time": 1_700_000_000_000},
                       format="json").json()["run"]
    run = Run.objects.get(pk=body["info"]["run_id"])
    assert run.experiment.name == "Default" and run.project == project
    assert body["info"]["start_time"] == 1_700_000_000_000


def test_search_answers_a_page_and_a_token_for_10000(editor, project):
    for i in range(3):
        run = run_create(project=project, experiment="s", user=editor.user, name=f"r{i}").run
        editor.post(url(project, "runs/log-metric"),
                    {"run_id": run.pk.hex, "key": "acc", "value": i / 10, "timestamp": 1, "step": 0},
                    format="json")
    exp_id = str(Run.objects.filter(project=project).first().experiment_id)
    first = editor.post(url(project, "runs/search"), {"experiment_ids": [exp_id], "max_results": 10000,
                                                      "order_by": ["metrics.acc DESC"]}, format="json")
    assert first.status_code == 200
    assert [r["info"]["run_name"] for r in first.json()["runs"]] == ["r2", "r1", "r0"]
    paged = editor.post(url(project, "runs/search"), {"experiment_ids": [exp_id], "max_results": 2,
                                                      "filter": "metrics.acc >= 0"}, format="json").json()
    rest = editor.post(url(project, "runs/search"), {"experiment_ids": [exp_id], "max_results": 2,
                                                     "filter": "metrics.acc >= 0",
                                                     "page_token": paged["next_page_token"]}, format="json")
    assert len(paged["runs"]) == 2 and len(rest.json()["runs"]) == 1
    assert_error(editor.post(url(project, "runs/search"), {"filter": "metrics.acc >>> 1"}, format="json"),
                 400, "INVALID_PARAMETER_VALUE")


def test_deleted_runs_leave_searches_until_restored(editor, project, run):
    editor.post(url(project, "runs/delete"), {"run_id": run.pk.hex}, format="json")
    search = {"experiment_ids": [str(run.experiment_id)]}
    assert editor.post(url(project, "runs/search"), search, format="json").json().get("runs", []) == []
    deleted = editor.post(url(project, "runs/search"), {**search, "run_view_type": "DELETED_ONLY"},
                          format="json").json()["runs"]
    assert deleted[0]["info"]["lifecycle_stage"] == "deleted"
    editor.post(url(project, "runs/restore"), {"run_id": run.pk.hex}, format="json")
    assert len(editor.post(url(project, "runs/search"), search, format="json").json()["runs"]) == 1


def test_metric_history_pages(editor, project, run):
    points = [{"key": "m", "value": float(i), "timestamp": 5, "step": i} for i in range(7)]
    editor.post(url(project, "runs/log-batch"), {"run_id": run.pk.hex, "metrics": points}, format="json")
    seen, token = [], None
    while True:
        query = {"run_id": run.pk.hex, "metric_key": "m", "max_results": 3}
        if token:
            query["page_token"] = token
        body = editor.get(url(project, "metrics/get-history"), query).json()
        seen += [m["step"] for m in body["metrics"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert seen == list(range(7))


def test_unknown_endpoint_is_mlflows_404(editor, project):
    assert_error(editor.get(url(project, "no-such/thing")), 404, "ENDPOINT_NOT_FOUND")


def test_server_info_announces_workspaces(client):
    body = client.get("/api/3.0/mlflow/server-info").json()
    assert body["workspaces_enabled"] is True


def test_the_workspace_header_chooses_the_project(editor, project, member_client):
    from tests.factories import MembershipFactory, ProjectFactory

    other = ProjectFactory()
    MembershipFactory(project=other, user=editor.user, role=Role.EDITOR)
    assert_error(editor.post("/api/2.0/mlflow/experiments/create", {"name": "x"}, format="json"),
                 400, "INVALID_PARAMETER_VALUE")
    created = editor.post("/api/2.0/mlflow/experiments/create", {"name": "x"}, format="json",
                          HTTP_X_MLFLOW_WORKSPACE=other.slug)
    assert created.status_code == 200
    assert other.experiments.filter(name="x").exists() and not project.experiments.filter(name="x").exists()


@pytest.mark.parametrize("source", [
    "/etc/passwd", "file:///etc/passwd", "http://evil.example/model", "s3://bucket/model",
    "runs:/{other}/model", "mlflow-artifacts:/{exp}/{other}/artifacts/model",
    "runs:/{run}/../../{other}/model", "mlflow-artifacts://evil.example/{exp}/{run}/artifacts/../x",
    "mlflow-artifacts://evil.example/{exp}/{run}/artifacts/model", "runs:/{run}/%2e%2e/%2e%2e/x",
])
def test_foreign_model_sources_are_refused(editor, project, run, source):
    other = run_create(project=project, experiment="e", user=editor.user).run
    body = {"name": "m", "run_id": run.pk.hex,
            "source": source.format(run=run.pk.hex, other=other.pk.hex, exp=run.experiment_id)}
    assert_error(editor.post(url(project, "model-versions/create"), body, format="json"),
                 400, "INVALID_PARAMETER_VALUE")
    assert not ModelVersion.objects.exists()


def test_experiment_search_filters_on_name_and_tags(editor, project):
    for name, team in (("alpha", "a"), ("beta", "b"), ("alphabet", "b")):
        editor.post(url(project, "experiments/create"),
                    {"name": name, "tags": [{"key": "team", "value": team}]}, format="json")

    def names(text):
        body = editor.post(url(project, "experiments/search"), {"filter": text}, format="json").json()
        return sorted(e["name"] for e in body.get("experiments", []))

    assert names("name LIKE 'alpha%'") == ["alpha", "alphabet"]
    assert names("name LIKE 'alpha%' AND tags.team = 'b'") == ["alphabet"]
    assert names("tags.`team` != 'b'") == ["alpha"]
    assert_error(editor.post(url(project, "experiments/search"), {"filter": "creation_time >> 1"},
                             format="json"), 400, "INVALID_PARAMETER_VALUE")


def test_searches_refuse_a_page_size_that_is_not_a_number(editor, project):
    for method, endpoint in ((editor.post, "logged-models/search"), (editor.get, "registered-models/search"),
                             (editor.get, "model-versions/search"), (editor.post, "experiments/search")):
        response = method(url(project, endpoint), {"max_results": "many"},
                          **({"format": "json"} if method == editor.post else {}))
        assert "max_results" in assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_a_run_created_through_mlflow_reads_its_experiment_once(editor, project):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    experiment = editor.post(url(project, "experiments/create"), {"name": "once"}, format="json")
    experiment_id = experiment.json()["experiment_id"]
    with CaptureQueriesContext(connection) as queries:
        response = editor.post(url(project, "runs/create"), {
            "experiment_id": experiment_id, "run_name": "r", "start_time": 1_700_000_000_000,
            "tags": [{"key": "mlflow.user", "value": "ada"}, {"key": "mlflow.source.name", "value": "t.py"}],
        }, format="json")
    assert response.status_code == 200, response.content
    reads = [q["sql"] for q in queries.captured_queries
             if q["sql"].startswith("SELECT") and "experiments_experiment" in q["sql"]]
    assert len(reads) == 1, reads
    run = Run.objects.get(pk=response.json()["run"]["info"]["run_id"])
    assert (run.name, run.experiment_id) == ("r", int(experiment_id))
