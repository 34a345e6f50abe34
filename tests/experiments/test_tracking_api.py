import math
import uuid

import pytest

from accounts.models import Role
from core.models import IdempotentRequest
from experiments.api.serializers import MAX_BATCH_METRICS
from experiments.models import LatestMetric, Metric, Param, Run, Tag


@pytest.fixture
def run_id(editor, project):
    response = editor.post(
        f"/api/v1/projects/{project.slug}/runs/",
        {"experiment": "baseline", "name": "first", "tags": {"team": "risk"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def batch(client, run_id, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/api/v1/runs/{run_id}/batch/", body, format="json", **headers)


def test_run_is_created_with_experiment_tags_and_source(editor, project):
    response = editor.post(
        f"/api/v1/projects/{project.slug}/runs/",
        {
            "experiment": "baseline",
            "name": "rf",
            "tags": {"team": "risk"},
            "seed": 7,
            "source": {"git_commit": "abc123", "git_branch": "main", "git_dirty": True,
                       "entry_point": "train.py", "python_version": "3.11.7"},
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["experiment"] == "baseline"
    assert body["status"] == "RUNNING"
    assert body["tags"] == {"team": "risk"}
    assert body["seed"] == 7
    assert body["source"]["git_dirty"] is True
    assert body["author"] == editor.user.username


def test_client_chosen_run_id_makes_creation_safe_to_retry(editor, project):
    run_id = str(uuid.uuid4())
    payload = {"experiment": "offline", "id": run_id, "name": "made offline"}
    first = editor.post(f"/api/v1/projects/{project.slug}/runs/", payload, format="json")
    again = editor.post(f"/api/v1/projects/{project.slug}/runs/", payload, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] == run_id
    assert Run.objects.filter(pk=run_id).count() == 1


def test_created_run_answer_equals_the_stored_run(editor, project):
    payload = {"experiment": "answers", "id": str(uuid.uuid4()), "name": "r", "tags": {"a": "1", "b": ""},
               "seed": 3, "notes": "n", "source": {"git_commit": "abc", "git_dirty": False}}
    created = editor.post(f"/api/v1/projects/{project.slug}/runs/", payload, format="json")
    assert created.status_code == 201
    assert created.json() == editor.get(f"/api/v1/runs/{payload['id']}/").json()
    assert created.json()["tags"] == {"a": "1", "b": ""}
    assert created.json()["params"] == created.json()["metrics"] == {}


def test_creating_a_run_reads_nothing_back(editor, project):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = f"/api/v1/projects/{project.slug}/runs/"
    assert editor.post(url, {"experiment": "fast"}, format="json").status_code == 201
    with CaptureQueriesContext(connection) as queries:
        response = editor.post(url, {"experiment": "fast", "id": str(uuid.uuid4()), "tags": {"t": "v"}},
                               format="json")
    assert response.status_code == 201
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    # Token, project, membership and experiment in one query: no lookup of the id, no read-back of
    # params, metrics, tags.
    assert len(selects) == 1, selects
    assert not any("experiments_run" in sql or "experiments_tag" in sql for sql in selects)
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 2, inserts


SDK_TAGS = {"mlflow.user": "bench", "mlflow.source.name": "train.py", "mlflow.source.type": "LOCAL",
            "mlflow.source.git.commit": "0123456789abcdef0123456789abcdef01234567"}
SDK_SOURCE = {"git_commit": "0123456789abcdef", "git_branch": "main", "git_dirty": False,
              "entry_point": "train.py", "host": "laptop", "python_version": "3.11.7",
              "packages": {"numpy": "2.1.0", "scikit-learn": "1.5.2"}}


@pytest.mark.parametrize("role", [Role.EDITOR, "staff"])
@pytest.mark.parametrize("extra", [{}, {"notes": "", "seed": 7, "source": SDK_SOURCE}], ids=["bench", "sdk"])
def test_creating_a_run_costs_five_queries(member_client, project, django_assert_max_num_queries, role,
                                           extra):
    """The SDK's create (a client-chosen id, a start time, four tags, its source): one read of
    the token, the project, the membership and the experiment; the run's and the tags' inserts;
    the transaction around them (a savepoint inside the test's own)."""
    client = member_client(Role.VIEWER if role == "staff" else role)
    if role == "staff":
        client.user.is_staff = True
        client.user.save(update_fields=["is_staff"])
    url = f"/api/v1/projects/{project.slug}/runs/"
    assert client.post(url, {"experiment": "sweep"}, format="json").status_code == 201
    with django_assert_max_num_queries(5):
        response = client.post(url, {"experiment": "sweep", "id": str(uuid.uuid4()), "name": "trial-1",
                                     "start_time": 1_700_000_000_000, "tags": SDK_TAGS, **extra},
                               format="json")
    assert response.status_code == 201, response.content
    assert response.json()["tags"] == SDK_TAGS
    assert Tag.objects.filter(run_id=response.json()["id"]).count() == 4
    if extra:
        assert response.json()["source"] == SDK_SOURCE and response.json()["seed"] == 7


@pytest.mark.parametrize("body", [
    {"experiment": " spaced ", "name": " n ", "notes": " x ", "tags": {"a": 5, "b": "x"}},
    {"experiment": "spaced", "name": "n", "notes": "x", "tags": {"a": "5", "b": "x"}},
], ids=["spaced", "plain"])
def test_run_create_trims_names_and_stores_tag_values_as_text(editor, project, body):
    """Whitespace around the experiment, name and notes is trimmed, and tag values that are
    numbers become text, as a batch stores them; unknown source fields are left out."""
    parent = editor.post(f"/api/v1/projects/{project.slug}/runs/", {"experiment": "spaced"}, format="json")
    url = f"/api/v1/projects/{project.slug}/runs/"
    response = editor.post(url, {**body, "seed": None, "parent_run_id": parent.json()["id"],
                                 "source": {"git_dirty": None, "host": "h", "packages": {"a": "1"}}},
                           format="json")
    assert response.status_code == 201, response.content
    got = response.json()
    assert (got["experiment"], got["name"], got["notes"]) == ("spaced", "n", "x")
    assert got["tags"] == {"a": "5", "b": "x"}
    assert (got["seed"], got["parent_run_id"]) == (None, parent.json()["id"])
    assert got["source"]["host"] == "h" and got["source"]["packages"] == {"a": "1"}
    assert editor.get(f"/api/v1/runs/{got['id']}/").json() == got


@pytest.mark.parametrize(("body", "field"), [
    ({"experiment": ""}, "experiment"),
    ({"experiment": "e" * 501}, "experiment"),
    ({"name": "x"}, "experiment"),
    ({"experiment": "e", "id": "not-a-uuid"}, "id"),
    ({"experiment": "e", "id": 7.5}, "id"),
    ({"experiment": "e", "id": None}, "id"),
    ({"experiment": "e", "name": "n" * 251}, "name"),
    ({"experiment": "e", "notes": None}, "notes"),
    ({"experiment": "e", "start_time": "soon"}, "start_time"),
    ({"experiment": "e", "start_time": True}, "start_time"),
    ({"experiment": "e", "start_time": 2**70}, "start_time"),
    ({"experiment": "e", "seed": 2**70}, "seed"),
    ({"experiment": "e", "seed": "x"}, "seed"),
    ({"experiment": "e", "parent_run_id": "x"}, "parent_run_id"),
    ({"experiment": "e", "parent_run_id": str(uuid.uuid4())}, "parent_run_id"),
    ({"experiment": "e", "tags": "a"}, "tags"),
    ({"experiment": "e", "tags": ["a"]}, "tags[0]"),
    ({"experiment": "e", "tags": [{"key": "k", "value": ["v"]}]}, "tags[0].value"),
    ({"experiment": "e", "tags": {"bad key!": "v"}}, "tags[0].key"),
    ({"experiment": "e", "source": None}, "source"),
    ({"experiment": "e", "source": {"git_commit": "c" * 65}}, "source.git_commit"),
    ({"experiment": "e", "source": {"git_dirty": "maybe"}}, "source.git_dirty"),
    ({"experiment": "e", "source": {"host": None}}, "source.host"),
    ({"experiment": "e", "source": {"packages": ["numpy"]}}, "source.packages"),
])
def test_a_refused_run_create_names_the_field(editor, project, body, field):
    response = editor.post(f"/api/v1/projects/{project.slug}/runs/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not Run.objects.filter(project=project).exists()


def test_run_create_checks_the_role_before_the_body(member_client, outsider, project, client):
    url = f"/api/v1/projects/{project.slug}/runs/"
    viewer = member_client(Role.VIEWER)
    refused = viewer.post(url, {"experiment": "e"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert outsider.post(url, {"experiment": "e"}, format="json").status_code == 404
    assert outsider.post("/api/v1/projects/no-such-project/runs/", {"experiment": "e"},
                         format="json").status_code == 404
    # Credentials come first: a bad token or none is 401 whatever the body holds.
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer stw_nope"}):
        response = client.post(url, b"{not json", content_type="application/json", **headers)
        assert response.status_code == 401, response.content
        assert response["WWW-Authenticate"] == "Bearer"
    editor = member_client(Role.EDITOR)
    bad_json = editor.post(url, b"{not json", content_type="application/json")
    assert bad_json.status_code == 400
    assert not Run.objects.filter(project=project).exists()


def test_a_session_user_creates_runs_with_the_csrf_token(project):
    from django.test import Client

    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.EDITOR)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    url = f"/api/v1/projects/{project.slug}/runs/"
    assert browser.post(url, {"experiment": "e"}, content_type="application/json").status_code == 403
    browser.get("/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post(url, {"experiment": "e", "name": "from the page"},
                            content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
    assert response.json()["author"] == user.username


def test_retried_run_under_another_experiment_conflicts_and_creates_nothing(editor, project):
    url = f"/api/v1/projects/{project.slug}/runs/"
    run_id = str(uuid.uuid4())
    assert editor.post(url, {"experiment": "one", "id": run_id}, format="json").status_code == 201
    response = editor.post(url, {"experiment": "two", "id": run_id}, format="json")
    assert response.status_code == 409
    assert not project.experiments.filter(name="two").exists()


def test_retried_run_is_answered_even_when_the_retry_body_is_refused(editor, project):
    url = f"/api/v1/projects/{project.slug}/runs/"
    run_id = str(uuid.uuid4())
    assert editor.post(url, {"experiment": "one", "id": run_id}, format="json").status_code == 201
    again = editor.post(url, {"experiment": "one", "id": run_id, "seed": 2**70}, format="json")
    assert again.status_code == 200, again.content
    assert again.json()["id"] == run_id and again.json()["seed"] is None
    fresh = editor.post(url, {"experiment": "one", "id": str(uuid.uuid4()), "seed": 2**70}, format="json")
    assert fresh.status_code == 400 and "seed" in fresh.json()["error"]["fields"]


def test_batch_stores_params_metrics_and_tags(editor, run_id):
    response = batch(editor, run_id, {
        "params": [{"key": "lr", "value": 0.01}, {"key": "model", "value": "rf"}],
        "metrics": [{"key": "loss", "value": 1.0 / (s + 1), "step": s} for s in range(5)],
        "tags": [{"key": "stage", "value": "dev"}],
    })
    assert response.status_code == 201
    run = editor.get(f"/api/v1/runs/{run_id}/").json()
    assert run["params"] == {"lr": "0.01", "model": "rf"}
    assert run["tags"] == {"team": "risk", "stage": "dev"}
    assert run["metrics"]["loss"]["value"] == pytest.approx(0.2)
    assert run["metrics"]["loss"]["step"] == 4
    assert Metric.objects.filter(run_id=run_id).count() == 5


def test_batch_with_one_bad_value_stores_nothing(editor, run_id):
    response = batch(editor, run_id, {
        "params": [{"key": "lr", "value": 0.01}],
        "metrics": [{"key": "loss", "value": 0.5, "step": 0}, {"key": "loss", "value": "abc", "step": 1}],
        "tags": [{"key": "stage", "value": "dev"}],
    })
    assert response.status_code == 400
    error = response.json()["error"]
    assert "metrics[1].value" in error["fields"]
    assert not Metric.objects.filter(run_id=run_id).exists()
    assert not Param.objects.filter(run_id=run_id).exists()
    assert not Tag.objects.filter(run_id=run_id, key="stage").exists()


def test_batch_conflicting_param_is_409_and_rolls_back_the_rest(editor, run_id):
    assert batch(editor, run_id, {"params": [{"key": "lr", "value": "0.1"}]}).status_code == 201
    response = batch(editor, run_id, {
        "params": [{"key": "lr", "value": "0.2"}],
        "metrics": [{"key": "loss", "value": 0.5}],
    })
    assert response.status_code == 409
    assert "lr" in response.json()["error"]["message"]
    assert not Metric.objects.filter(run_id=run_id).exists()
    # the same value again is fine
    assert batch(editor, run_id, {"params": [{"key": "lr", "value": "0.1"}]}).status_code == 201


def test_same_idempotency_key_stores_once_and_answers_the_same(editor, run_id):
    body = {"metrics": [{"key": "acc", "value": 0.5 + s / 100, "step": s} for s in range(50)]}
    first = batch(editor, run_id, body, key="batch-0001")
    second = batch(editor, run_id, body, key="batch-0001")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert Metric.objects.filter(run_id=run_id, key="acc").count() == 50
    assert IdempotentRequest.objects.filter(key="batch-0001").count() == 1


def test_idempotency_key_reused_for_another_run_is_refused(editor, project, run_id):
    other = editor.post(f"/api/v1/projects/{project.slug}/runs/", {"experiment": "x"}, format="json")
    assert batch(editor, run_id, {"metrics": [{"key": "a", "value": 1}]}, key="k-1").status_code == 201
    response = batch(editor, other.json()["id"], {"metrics": [{"key": "a", "value": 1}]}, key="k-1")
    assert response.status_code == 409
    assert not Metric.objects.filter(run_id=other.json()["id"]).exists()


def test_idempotency_key_reused_with_another_body_is_a_422_and_stores_nothing(editor, run_id):
    first = {"metrics": [{"key": "a", "value": 1.0, "step": 0}], "params": [{"key": "lr", "value": "0.1"}]}
    assert batch(editor, run_id, first, key="k-2").status_code == 201
    other = {"metrics": [{"key": "a", "value": 2.0, "step": 1}]}
    response = batch(editor, run_id, other, key="k-2")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused" and "another request" in error["message"]
    assert list(Metric.objects.filter(run_id=run_id).values_list("step", flat=True)) == [0]
    # The same body again, keys in another order, still gets the stored answer.
    same = {"params": [{"value": "0.1", "key": "lr"}], "metrics": [{"step": 0, "value": 1.0, "key": "a"}]}
    again = batch(editor, run_id, same, key="k-2")
    assert again.status_code == 201 and again.json() == {"params": 1, "metrics": 1, "tags": 0}
    assert Metric.objects.filter(run_id=run_id).count() == 1


def test_a_key_stored_before_bodies_were_hashed_still_answers_its_repeat(editor, run_id):
    assert batch(editor, run_id, {"metrics": [{"key": "a", "value": 1.0}]}, key="k-old").status_code == 201
    IdempotentRequest.objects.filter(key="k-old").update(request_hash="")  # as rows from before 0007
    again = batch(editor, run_id, {"metrics": [{"key": "a", "value": 1.0}]}, key="k-old")
    assert again.status_code == 201 and again.json()["metrics"] == 1
    assert Metric.objects.filter(run_id=run_id).count() == 1


def test_nan_and_infinities_are_kept(editor, run_id):
    response = batch(editor, run_id, {"metrics": [
        {"key": "v", "value": "NaN", "step": 0},
        {"key": "v", "value": "Infinity", "step": 1},
        {"key": "v", "value": "-Infinity", "step": 2},
        {"key": "v", "value": 1.5, "step": 3},
    ]})
    assert response.status_code == 201
    points = editor.get(f"/api/v1/runs/{run_id}/metrics/history/", {"key": "v"}).json()["points"]
    assert [p["value"] for p in points] == ["NaN", "Infinity", "-Infinity", 1.5]
    values = list(Metric.objects.filter(run_id=run_id).order_by("step").values_list("value", flat=True))
    assert values[0] is None and math.isinf(values[1]) and values[2] == -math.inf


def test_latest_metric_follows_the_highest_step_even_out_of_order(editor, run_id):
    batch(editor, run_id, {"metrics": [{"key": "loss", "value": 0.1, "step": 10}]})
    batch(editor, run_id, {"metrics": [{"key": "loss", "value": 0.9, "step": 2}]})
    latest = LatestMetric.objects.get(run_id=run_id, key="loss")
    assert (latest.step, latest.value) == (10, 0.1)


def test_batch_over_the_point_limit_is_refused(editor, run_id):
    points = [{"key": "x", "value": 1.0, "step": i} for i in range(MAX_BATCH_METRICS + 1)]
    response = batch(editor, run_id, {"metrics": points})
    assert response.status_code == 400
    assert "metrics" in response.json()["error"]["fields"]
    assert not Metric.objects.filter(run_id=run_id).exists()


def test_a_full_batch_of_ten_thousand_points_is_stored(editor, run_id):
    points = [{"key": "x", "value": i * 0.5, "step": i} for i in range(MAX_BATCH_METRICS)]
    assert batch(editor, run_id, {"metrics": points}).status_code == 201
    assert Metric.objects.filter(run_id=run_id).count() == MAX_BATCH_METRICS


@pytest.mark.parametrize("key", ["bad*key", "x" * 251, "a\x00b", "", "../etc", "/abs", "semi;colon"])
def test_bad_keys_are_400_naming_the_field(editor, run_id, key):
    response = batch(editor, run_id, {"metrics": [{"key": key, "value": 1.0}]})
    assert response.status_code == 400
    assert "metrics[0].key" in response.json()["error"]["fields"]


@pytest.mark.parametrize("key", ["val/loss", "train acc", "a:b-c_d.e"])
def test_allowed_key_characters(editor, run_id, key):
    assert batch(editor, run_id, {"metrics": [{"key": key, "value": 1.0}]}).status_code == 201


def test_param_value_of_6000_random_chars_is_stored(editor, run_id):
    import secrets

    value = secrets.token_hex(3000)
    assert batch(editor, run_id, {"params": [{"key": "long", "value": value}]}).status_code == 201
    assert editor.get(f"/api/v1/runs/{run_id}/").json()["params"]["long"] == value


def test_param_value_over_6000_chars_is_400(editor, run_id):
    response = batch(editor, run_id, {"params": [{"key": "p", "value": "x" * 6001}]})
    assert response.status_code == 400
    assert "params[0].value" in response.json()["error"]["fields"]


def test_step_must_be_an_int64(editor, run_id):
    response = batch(editor, run_id, {"metrics": [{"key": "a", "value": 1, "step": 2**63}]})
    assert response.status_code == 400
    assert "metrics[0].step" in response.json()["error"]["fields"]


def test_malformed_json_is_400(editor, run_id):
    response = editor.post(f"/api/v1/runs/{run_id}/batch/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"]


def test_run_is_ended_with_status(editor, run_id):
    response = editor.patch(f"/api/v1/runs/{run_id}/", {"status": "FINISHED"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "FINISHED"
    assert response.json()["end_time"] is not None
    bad = editor.patch(f"/api/v1/runs/{run_id}/", {"status": "DONE"}, format="json")
    assert bad.status_code == 400
    assert "status" in bad.json()["error"]["fields"]


def test_seed_can_be_recorded_after_the_start(editor, run_id):
    response = editor.patch(f"/api/v1/runs/{run_id}/", {"seed": 42}, format="json")
    assert response.status_code == 200
    assert editor.get(f"/api/v1/runs/{run_id}/").json()["seed"] == 42


def test_no_token_is_401(client, run_id):
    response = client.get(f"/api/v1/runs/{run_id}/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_invalid_token_is_401(client, run_id):
    response = client.get(f"/api/v1/runs/{run_id}/", HTTP_AUTHORIZATION="Bearer stw_nope")
    assert response.status_code == 401


def test_viewer_can_read_but_not_write(member_client, run_id):
    viewer = member_client(Role.VIEWER)
    assert viewer.get(f"/api/v1/runs/{run_id}/").status_code == 200
    response = batch(viewer, run_id, {"metrics": [{"key": "a", "value": 1}]})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Metric.objects.filter(run_id=run_id).exists()


def test_outsider_gets_404_for_everything(outsider, project, run_id):
    assert outsider.get(f"/api/v1/projects/{project.slug}/").status_code == 404
    assert outsider.get(f"/api/v1/runs/{run_id}/").status_code == 404
    assert batch(outsider, run_id, {"metrics": [{"key": "a", "value": 1}]}).status_code == 404
    assert outsider.get(f"/api/v1/runs/{run_id}/metrics/history/", {"key": "a"}).status_code == 404
    response = outsider.post(f"/api/v1/projects/{project.slug}/runs/", {"experiment": "e"}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("run_id", ["not-a-uuid", str(uuid.uuid4())])
def test_unknown_run_is_404_json(editor, run_id):
    response = editor.get(f"/api/v1/runs/{run_id}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_unknown_api_url_is_404_json(editor):
    response = editor.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_openapi_schema_and_docs_are_served(editor, client):
    schema = editor.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/runs/{run_id}/batch/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()
