"""Promotion through the SDK against a real server: request, refused self-review, approval."""

from __future__ import annotations

import pytest
import steward

from accounts.models import Project, Role
from governance.models import Policy
from registry.models import ModelAlias, RegisteredModel
from tests.governance.conftest import make_version
from tests.sdk.conftest import make_account, sdk_sandbox, steward_server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_request_and_review_a_promotion_with_the_sdk(steward_server):  # noqa: F811
    requester = make_account(Role.EDITOR)
    project = Project.objects.get(slug=requester.project)
    reviewer = make_account(Role.REVIEWER, project=project)
    author = make_account(Role.EDITOR, project=project)
    Policy.objects.create(project=project, approvals_required=1)
    model = RegisteredModel.objects.create(project=project, name="credit-scorer")
    version = make_version(model, author=author.user)

    asking = steward.Client(url=steward_server.url, token=requester.token)
    request = asking.request_promotion(project.slug, "credit-scorer", version.version, "champion",
                                       "Recall up four points.")
    assert request["status"] == "in_review" and request["approvals_required"] == 1
    with pytest.raises(steward.PermissionDeniedError, match="reviewer role"):
        asking.review_promotion(request["id"], "approve", "")
    with pytest.raises(steward.ApiError) as err:
        asking.request_promotion(project.slug, "credit-scorer", version.version, "challenger", "x")
    assert "alias" in str(err.value)

    reviewing = steward.Client(url=steward_server.url, token=reviewer.token)
    out = reviewing.review_promotion(request["id"], "approve", "Looks right.")
    assert out["request"]["status"] == "approved" and out["request"]["approvals"] == [reviewer.username]
    assert asking.get_promotion_request(request["id"])["status"] == "approved"
    assert ModelAlias.objects.get(model=model, name="champion").version_id == version.pk
    for client in (asking, reviewing):
        client.close()
