"""The promotion API: create, read and review, with the JSON error shape and 404 for outsiders."""

from __future__ import annotations

import pytest

from governance.models import Policy, PromotionRequest
from registry.models import ModelAlias
from tests.conftest import _client_for
from tests.governance.conftest import make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def clients(people):
    return {name: _client_for(user) for name, user in people.items()}


def _url(project, model="credit-scorer"):
    return f"/api/v1/projects/{project.slug}/models/{model}/promotion-requests/"


def test_request_read_and_approve_through_the_api(project, model, people, policy, clients):
    version = make_version(model, author=people["author"])
    response = clients["requester"].post(_url(project), {"version": version.version, "alias": "champion",
                                                         "justification": "Better recall."}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "in_review" and body["approvals_required"] == 1 and body["approvals"] == []
    assert {c["check"] for c in body["checks"]} >= {"version", "fairness", "explanation"}

    shown = clients["viewer"].get(f"/api/v1/promotion-requests/{body['id']}/")
    assert shown.status_code == 200 and shown.json()["justification"] == "Better recall."

    refused = clients["requester"].post(f"/api/v1/promotion-requests/{body['id']}/reviews/",
                                        {"decision": "approve"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    for who in ("viewer", "editor2"):
        assert clients[who].post(f"/api/v1/promotion-requests/{body['id']}/reviews/",
                                 {"decision": "approve"}, format="json").status_code == 403

    done = clients["alice"].post(f"/api/v1/promotion-requests/{body['id']}/reviews/",
                                 {"decision": "approve", "comment": "Fine."}, format="json")
    assert done.status_code == 201
    assert done.json()["request"]["status"] == "approved"
    assert done.json()["review"]["sha256"] == version.sha256
    assert ModelAlias.objects.get(model=model, name="champion").version_id == version.pk


def test_outsiders_get_404(project, model, people, policy, clients, outsider):
    version = make_version(model, author=people["author"])
    request = PromotionRequest.objects.create(model=model, version=version, alias="champion",
                                              requester=people["requester"], justification="x")
    assert outsider.get(f"/api/v1/promotion-requests/{request.pk}/").status_code == 404
    assert outsider.post(f"/api/v1/promotion-requests/{request.pk}/reviews/", {"decision": "approve"},
                         format="json").status_code == 404
    assert outsider.post(_url(project), {"version": 1, "alias": "champion", "justification": "x"},
                         format="json").status_code == 404
    assert outsider.get("/api/v1/promotion-requests/999999/").status_code == 404


@pytest.mark.parametrize("payload, field", [
    ({"alias": "champion", "justification": "x"}, "version"),
    ({"version": 99, "alias": "champion", "justification": "x"}, "version"),
    ({"version": 1, "alias": "challenger", "justification": "x"}, "alias"),
    ({"version": 1, "alias": "bad alias!", "justification": "x"}, "alias"),
    ({"version": 1, "alias": "champion", "justification": "   "}, "justification"),
    ({"version": "one", "alias": "champion", "justification": "x"}, "version"),
])
def test_bad_request_input_names_the_field_and_stores_nothing(project, model, people, policy, clients,
                                                              payload, field):
    make_version(model, author=people["author"])
    response = clients["requester"].post(_url(project), payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert PromotionRequest.objects.count() == 0


def test_bad_review_input(project, model, people, policy, clients):
    version = make_version(model, author=people["author"])
    created = clients["requester"].post(_url(project), {"version": version.version, "alias": "champion",
                                                        "justification": "x"}, format="json").json()
    url = f"/api/v1/promotion-requests/{created['id']}/reviews/"
    bad = clients["alice"].post(url, {"decision": "maybe"}, format="json")
    assert bad.status_code == 400 and "decision" in bad.json()["error"]["fields"]
    no_comment = clients["alice"].post(url, {"decision": "reject"}, format="json")
    assert no_comment.status_code == 400 and "comment" in no_comment.json()["error"]["fields"]
    assert clients["alice"].post(url, ["approve"], format="json").status_code == 400
    assert PromotionRequest.objects.get(pk=created["id"]).reviews.count() == 0


def test_policy_api_owner_changes_editor_cannot(project, model, people, clients):
    url = f"/api/v1/projects/{project.slug}/models/{model.name}/policy/"
    assert clients["viewer"].get(url).json()["approvals_required"] == 1
    assert clients["editor2"].put(url, {"approvals_required": 2}, format="json").status_code == 403
    bad = clients["owner"].put(url, {"approvals_required": 0}, format="json")
    assert bad.status_code == 400 and "approvals_required" in bad.json()["error"]["fields"]
    bad = clients["owner"].put(url, {"performance_thresholds": [{"metric": "auc"}]}, format="json")
    assert bad.status_code == 400 and "performance_thresholds" in bad.json()["error"]["fields"]
    assert not Policy.objects.filter(model=model).exists()
    ok = clients["owner"].put(url, {"approvals_required": 2, "webhook_url": "https://hooks.example/x",
                                    "webhook_secret": "s3cret",
                                    "performance_thresholds": [{"metric": "auc", "min": 0.8}]}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["approvals_required"] == 2 and ok.json()["webhook_secret_set"] is True
    assert "webhook_secret" not in ok.json()
    policy = Policy.objects.get(model=model)
    assert policy.performance_thresholds == [{"metric": "auc", "min": 0.8}]
    assert policy.fairness_thresholds().demographic_parity_ratio_min == 0.8


def test_list_and_withdraw(project, model, people, policy, clients):
    version = make_version(model, author=people["author"])
    created = clients["requester"].post(_url(project), {"version": version.version, "alias": "champion",
                                                        "justification": "x"}, format="json").json()
    listed = clients["viewer"].get(_url(project)).json()["promotion_requests"]
    assert [r["id"] for r in listed] == [created["id"]]
    url = f"/api/v1/promotion-requests/{created['id']}/withdraw/"
    assert clients["alice"].post(url).status_code == 403
    assert clients["requester"].post(url).json()["status"] == "withdrawn"
    again = clients["requester"].post(url)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
