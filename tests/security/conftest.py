import re
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import Role
from experiments.models import Run

# MLflow's paths answer in MLflow's error shape (tests/mlflow_compat/test_routes.py checks them).
MLFLOW_PREFIXES = ("/api/2.0/", "/api/3.0/")


def api_patterns() -> list[str]:
    """Every URL pattern under /api/ (but MLflow's), parameters as written (``<slug:slug>``)."""

    def walk(patterns, prefix: str):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                yield route

    return sorted({r for r in walk(get_resolver().url_patterns, "/")
                   if r.startswith("/api/") and not r.startswith(MLFLOW_PREFIXES)})


def api_routes() -> list[str]:
    """Every URL pattern under /api/, each parameter filled with a made-up value."""
    filled = {"slug": "some-project", "int": "1", "str": "x", "path": "x", "artifactpath": "x"}
    return [re.sub(r"<(\w+):\w+>", lambda m: filled[m.group(1)], p) for p in api_patterns()]


@pytest.fixture
def assert_json_error():
    def check(response, status: int | tuple[int, ...] | None = None) -> dict:
        statuses = (status,) if isinstance(status, int) else status
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
        if statuses is not None:
            assert response.status_code in statuses, (response.status_code, response.content[:300])
        assert response["Content-Type"].startswith("application/json"), response.content[:300]
        error = response.json()["error"]
        assert set(error) == {"code", "message", "fields"} and error["message"]
        return error

    return check


@dataclass
class World:
    """One of everything the API names by URL, in one project whose owner is ``client``."""

    project: object
    client: object
    run: object
    model: str
    version: object
    dataset: str
    dataset_version_id: int
    rule_id: int
    job_id: int
    token_id: int
    sweep_id: int
    member: str

    def fill(self, route: str) -> str:
        """``route`` (a URL pattern) with each parameter naming this world's object."""
        values = {
            "slug": self.project.slug, "run_id": str(self.run.pk), "ref": "1", "alias": "staging",
            "version_id": str(self.dataset_version_id), "rule_id": str(self.rule_id),
            "job_id": str(self.job_id), "token_id": str(self.token_id), "username": self.member,
            "key": "team", "path": "model/model.skops", "sweep_id": str(self.sweep_id),
            "name": self.dataset if "/datasets/<" in route else self.model,
        }
        # Parameters of objects this world does not make (monitors, alerts, promotion requests...)
        # name id 1: those routes answer 404 before they read a body, which is also never a 500.
        return re.sub(r"<\w+:(\w+)>", lambda m: values.get(m.group(1), "1"), route)


@pytest.fixture
def world(project, member_client, artifact_root, settings) -> World:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from accounts.models import Membership
    from tests.registry.conftest import register, store_model

    settings.PREDICTION_LOG_BACKGROUND = False
    client = member_client(Role.OWNER)
    viewer = member_client(Role.VIEWER)
    client.raise_request_exception = False
    run = client.post(f"/api/v1/projects/{project.slug}/runs/",
                      {"experiment": "e", "tags": {"team": "risk"}}, format="json").json()
    run = Run.objects.get(pk=run["id"])
    X, y = load_iris(return_X_y=True, as_frame=True)
    store_model(run, LogisticRegression(max_iter=500).fit(X, y), example=X.head(20))
    version = register(project=project, run=run, user=client.user, name="iris")
    assert client.put(f"/api/v1/projects/{project.slug}/models/iris/aliases/staging/", {"version": 1},
                      format="json").status_code == 200
    csv = X.assign(species=y).to_csv(index=False).encode()
    uploaded = client.generic("POST", f"/api/v1/projects/{project.slug}/datasets/flowers/versions/", csv,
                              content_type="application/octet-stream", CONTENT_LENGTH=str(len(csv)))
    assert uploaded.status_code == 201, uploaded.content
    rule = client.post(f"/api/v1/projects/{project.slug}/datasets/flowers/rules/",
                       {"kind": "not_null", "column": "species"}, format="json")
    assert rule.status_code == 201, rule.content
    job = client.post(f"/api/v1/runs/{run.pk}/summary/").json()
    token = client.post("/api/v1/tokens/", {"name": "second"}, format="json")
    assert token.status_code == 201, token.content
    spec = {"dataset_version": uploaded.json()["id"], "target": "species", "task": "classification",
            "estimator": "LogisticRegression"}
    search = {"space": {"C": [0.1, 1.0]}}
    sweep = client.post(f"/api/v1/projects/{project.slug}/sweeps/",
                        {"experiment": "e", "spec": spec, "search": search}, format="json")
    assert sweep.status_code == 201, sweep.content
    return World(project=project, client=client, run=run, model="iris", version=version,
                 dataset="flowers", dataset_version_id=uploaded.json()["id"], rule_id=rule.json()["id"],
                 job_id=job["id"], token_id=token.json()["id"], sweep_id=sweep.json()["id"],
                 member=Membership.objects.get(project=project, user=viewer.user).user.username)
