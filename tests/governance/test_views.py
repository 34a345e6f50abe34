"""The Reviews inbox, the review page and a model's promotions page, through Django's test client."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from governance.models import Policy, PromotionRequest
from registry.models import ModelAlias
from tests.governance.conftest import make_version

pytestmark = pytest.mark.django_db


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _ask(model, people, project):
    page = _as(people["requester"]).post(
        reverse("governance:request-create", args=[project.slug, model.name]),
        {"version": "1", "alias": "champion", "justification": "Recall +4 points."})
    request = PromotionRequest.objects.get()
    assert page.status_code == 302 and page["Location"] == reverse("governance:review", args=[request.pk])
    return request


def test_inbox_review_page_and_approval_from_the_page(project, model, people, policy):
    version = make_version(model, author=people["author"])
    version.run.git_commit, version.run.seed = "abc1234", 42
    version.run.save()
    request = _ask(model, people, project)

    inbox = _as(people["alice"]).get(reverse("governance:inbox")).content.decode()
    assert 'aria-current="page">Reviews' in inbox
    waiting = inbox.split('id="waiting"')[1].split("</section>")[0]
    assert f"#{request.pk}" in waiting
    assert "asks to move credit-scorer@champion to v1" in inbox  # the in-app notification
    assert 'class="unread"' in inbox
    mine = _as(people["requester"]).get(reverse("governance:inbox")).content.decode()
    assert f"#{request.pk}" in mine.split('id="requested"')[1].split("</section>")[0]
    assert f"#{request.pk}" not in mine.split('id="waiting"')[1].split("</section>")[0]

    url = reverse("governance:review", args=[request.pk])
    page = _as(people["alice"]).get(url).content.decode()
    for section in ("checks", "decide", "model-card", "lineage", "metrics", "fairness", "explanation"):
        assert f'id="{section}"' in page
    assert version.sha256 in page and "abc1234" in page and "Recall +4 points." in page
    assert 'class="unread"' not in _as(people["alice"]).get(reverse("governance:inbox")).content.decode()
    assert "four-fifths" in page

    viewer_page = _as(people["viewer"]).get(url).content.decode()
    assert 'id="decide"' not in viewer_page and "reviewer role" in viewer_page
    assert _as(people["outsider"]).get(url).status_code == 404

    refused = _as(people["viewer"]).post(reverse("governance:review-decide", args=[request.pk]),
                                         {"decision": "approve"}, follow=True)
    assert "reviewer role" in refused.content.decode()
    assert not ModelAlias.objects.filter(model=model).exists()

    done = _as(people["alice"]).post(reverse("governance:review-decide", args=[request.pk]),
                                     {"decision": "approve", "comment": ""}, follow=True)
    assert "now points at v1" in done.content.decode()
    assert ModelAlias.objects.get(model=model, name="champion").version_id == version.pk
    decided = _as(people["viewer"]).get(reverse("governance:inbox")).content.decode()
    assert f"#{request.pk}" in decided.split('id="decisions"')[1]


def test_reject_without_comment_is_refused_on_the_page(project, model, people, policy):
    make_version(model, author=people["author"])
    request = _ask(model, people, project)
    page = _as(people["bob"]).post(reverse("governance:review-decide", args=[request.pk]),
                                   {"decision": "reject", "comment": ""}, follow=True).content.decode()
    assert "comment: This is required." in page
    request.refresh_from_db()
    assert request.status == "in_review"


def test_model_promotions_page_and_policy_edit(project, model, people):
    make_version(model, author=people["author"])
    url = reverse("governance:model", args=[project.slug, model.name])
    page = _as(people["requester"]).get(url).content.decode()
    assert 'id="request-form"' in page and 'id="rollback"' not in page
    assert 'id="request-form"' not in _as(people["viewer"]).get(url).content.decode()
    assert 'id="rollback"' in _as(people["owner"]).get(url).content.decode()

    edit = reverse("governance:policy-edit", args=[project.slug, model.name])
    assert _as(people["requester"]).post(edit, {"approvals_required": "2"}).status_code == 403
    _as(people["owner"]).post(edit, {"approvals_required": "2", "fairness_required": "on",
                                     "demographic_parity_ratio_min": "0.85",
                                     "equalized_odds_difference_max": "0.1",
                                     "min_group_size": "50", "threshold_metric": ["accuracy", ""],
                                     "threshold_kind": ["min", "min"], "threshold_value": ["0.9", ""]})
    policy = Policy.objects.get(model=model)
    assert (policy.approvals_required, policy.demographic_parity_ratio_min, policy.explanation_required) == \
        (2, 0.85, False)
    assert policy.performance_thresholds == [{"metric": "accuracy", "min": 0.9}]
    bad = _as(people["owner"]).post(edit, {"approvals_required": "0"}, follow=True).content.decode()
    assert "approvals_required" in bad
    assert Policy.objects.get(model=model).approvals_required == 2


def test_project_default_policy_page(project, model, people):
    url = reverse("governance:project-policy", args=[project.slug])
    assert "four-fifths" in _as(people["viewer"]).get(url).content.decode()
    assert _as(people["alice"]).post(url, {"approvals_required": "3"}).status_code == 403
    _as(people["owner"]).post(url, {"approvals_required": "3", "explanation_required": "on",
                                    "fairness_required": "on"})
    default = Policy.objects.get(project=project, model__isnull=True)
    assert default.approvals_required == 3
    assert _as(people["outsider"]).get(url).status_code == 404


def test_a_rollback_has_a_review_page_too(project, model, people, policy):
    from governance import promotions

    make_version(model, author=people["author"])
    request = _ask(model, people, project)
    promotions.promotion_review(request=request, user=people["alice"], decision="approve", comment="")
    rollback = _as(people["owner"]).post(reverse("governance:rollback", args=[project.slug, model.name]),
                                         {"alias": "champion", "justification": "Bad in production."},
                                         follow=True).content.decode()
    assert "rolled back to no version (removed)" in rollback
    undone = PromotionRequest.objects.get(kind="rollback")
    page = _as(people["viewer"]).get(reverse("governance:review", args=[undone.pk])).content.decode()
    assert "Bad in production." in page and "(removed)" in page
    assert not ModelAlias.objects.filter(model=model).exists()
    assert f"#{undone.pk}" in _as(people["owner"]).get(reverse("governance:inbox")).content.decode()
