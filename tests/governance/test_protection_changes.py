"""Taking an alias off the protected list is a request that another reviewer approves."""

import pytest

from accounts.models import Role
from governance.models import AuditEvent, ProtectionChangeRequest
from registry import services
from registry.models import AliasEvent, ModelAlias, RegisteredModel
from tests.governance.conftest import actions, browser_for

pytestmark = pytest.mark.django_db


def model_url(project):
    return f"/api/v1/projects/{project.slug}/models/credit-scorer/"


def ask(client, project, alias="champion", justification="Retiring the champion slot."):
    return client.post(model_url(project) + "protection-requests/",
                       {"alias": alias, "justification": justification}, format="json")


def decide(client, change_id, decision, comment=""):
    return client.post(f"/api/v1/protection-requests/{change_id}/decision/",
                       {"decision": decision, "comment": comment}, format="json")


def protected(project) -> list[str]:
    return RegisteredModel.objects.get(project=project, name="credit-scorer").protected_aliases


def test_unprotect_move_reprotect_by_an_owner_alone_is_impossible(project, ready_version, owner):
    # 1. The direct path refuses the removal, saying a request is needed.
    refused = owner.patch(model_url(project), {"protected_aliases": ["production"]}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "approval_required"
    assert "protection change request" in refused.json()["error"]["message"]
    # 2. The owner's own request cannot be approved by the owner.
    change = ask(owner, project)
    assert change.status_code == 201
    self_approval = decide(owner, change.json()["id"], "approve")
    assert self_approval.status_code == 403
    assert "another reviewer" in self_approval.json()["error"]["message"]
    # 3. So champion is still protected and cannot be moved by hand.
    assert "champion" in protected(project)
    moved = owner.put(model_url(project) + "aliases/champion/", {"version": 1}, format="json")
    assert moved.status_code == 403
    assert not ModelAlias.objects.filter(name="champion").exists()
    assert not AliasEvent.objects.filter(alias="champion", kind="unprotected").exists()
    assert ProtectionChangeRequest.objects.get().status == "pending"


def test_another_reviewer_approves_and_only_then_the_alias_is_unprotected(project, ready_version, owner,
                                                                            reviewer):
    change = ask(owner, project).json()
    assert change["status"] == "pending" and change["requested_by"] == owner.user.username
    approved = decide(reviewer, change["id"], "approve", "Agreed in the review meeting.")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "approved" and approved.json()["decided_by"] == reviewer.user.username
    assert protected(project) == ["production"]
    event = AliasEvent.objects.get(alias="champion", kind="unprotected")
    assert event.actor == reviewer.user
    assert event.via == f"approval:governance.protectionchangerequest:{change['id']}"
    # Both steps and the list change itself are on the audit log.
    assert actions(object_type="governance.ProtectionChangeRequest") == [
        "protection_change.requested", "protection_change.approved"]
    listed = AuditEvent.objects.get(action="model.protected_aliases_changed")
    assert listed.before["protected_aliases"] == ["champion", "production"]
    assert listed.after["protected_aliases"] == ["production"]
    assert listed.actor_id == reviewer.user.pk
    # Deciding twice is refused.
    assert decide(reviewer, change["id"], "reject", "no").status_code == 409


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_viewers_and_editors_cannot_approve(project, ready_version, owner, member_client, role):
    change = ask(owner, project).json()
    response = decide(member_client(role), change["id"], "approve")
    assert response.status_code == 403
    assert "champion" in protected(project)


def test_outsiders_see_nothing(project, ready_version, owner, outsider):
    change = ask(owner, project).json()
    assert outsider.get(f"/api/v1/protection-requests/{change['id']}/").status_code == 404
    assert decide(outsider, change["id"], "approve").status_code == 404
    assert outsider.get(model_url(project) + "protection-requests/").status_code == 404


def test_only_owners_ask_and_bad_input_names_the_field(project, ready_version, owner, editor):
    assert ask(editor, project).status_code == 403
    not_protected = ask(owner, project, alias="challenger")
    assert not_protected.status_code == 400 and "alias" in not_protected.json()["error"]["fields"]
    empty = ask(owner, project, justification="")
    assert empty.status_code == 400 and "justification" in empty.json()["error"]["fields"]
    assert ask(owner, project).status_code == 201
    assert ask(owner, project).status_code == 409  # one pending request per alias
    assert ProtectionChangeRequest.objects.count() == 1


def test_a_rejection_needs_a_comment_and_keeps_the_protection(project, ready_version, owner, reviewer):
    change = ask(owner, project).json()
    silent = decide(reviewer, change["id"], "reject")
    assert silent.status_code == 400 and "comment" in silent.json()["error"]["fields"]
    assert decide(reviewer, change["id"], "maybe").status_code == 400
    rejected = decide(reviewer, change["id"], "reject", "Champion stays governed.")
    assert rejected.json()["status"] == "rejected"
    assert "champion" in protected(project)
    assert "protection_change.rejected" in actions()


def test_the_requester_withdraws(project, ready_version, owner, reviewer):
    change = ask(owner, project).json()
    assert reviewer.post(f"/api/v1/protection-requests/{change['id']}/withdraw/").status_code == 403
    assert owner.post(f"/api/v1/protection-requests/{change['id']}/withdraw/").json()["status"] == "withdrawn"
    assert decide(reviewer, change["id"], "approve").status_code == 409
    assert "champion" in protected(project)


def test_the_registry_service_refuses_removal_without_a_saved_approval(project, ready_version, owner):
    model = ready_version.model
    with pytest.raises(services.ProtectionRemovalNeedsApproval):
        services.model_protected_aliases_set(model=model, aliases=[], user=owner.user)
    with pytest.raises(services.ProtectionRemovalNeedsApproval):
        services.model_protected_aliases_set(model=model, aliases=[], user=owner.user,
                                             approval=ProtectionChangeRequest(model=model, alias="champion"))
    assert protected(project) == ["champion", "production"]


def test_the_protection_page_requests_and_approves(project, ready_version):
    owner = browser_for(project, Role.OWNER)
    reviewer = browser_for(project, Role.REVIEWER)
    page = f"/p/{project.slug}/models/credit-scorer/protection/"
    assert b'id="protection-link"' in owner.get(f"/p/{project.slug}/models/credit-scorer/").content
    nul = owner.post(page + "request/", {"alias": "production", "justification": "a\x00b"}, follow=True)
    assert "justification: Must not contain NUL characters." in nul.content.decode()
    assert not ProtectionChangeRequest.objects.exists()
    response = owner.post(page + "request/", {"alias": "production", "justification": "Not served any more."},
                          follow=True)
    assert "a reviewer other than you decides it" in response.content.decode()
    change = ProtectionChangeRequest.objects.get()
    # The requester sees no approve button; the reviewer does.
    assert f"/protection-requests/{change.pk}/decide/".encode() not in owner.get(page).content
    assert f"/protection-requests/{change.pk}/decide/".encode() in reviewer.get(page).content
    owner.post(f"/protection-requests/{change.pk}/decide/", {"decision": "approve"})
    assert "production" in protected(project)
    response = reviewer.post(f"/protection-requests/{change.pk}/decide/", {"decision": "approve"},
                             follow=True)
    assert "no longer protected" in response.content.decode()
    assert protected(project) == ["champion"]
    outsider = browser_for(project, None)
    assert outsider.get(page).status_code == 404
