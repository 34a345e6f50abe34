"""Every governance-relevant change in the lower apps leaves a chained audit event, with its actor."""

import pytest

from accounts.models import Role
from governance.audit import audit_chain_verify
from governance.models import AuditEvent
from registry import services
from registry.models import TrustedModelHash
from tests.factories import UserFactory
from tests.governance.conftest import actions

pytestmark = pytest.mark.django_db


def last(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("id")


def test_tokens_created_and_revoked_are_audited(editor):
    created = editor.post("/api/v1/tokens/", {"name": "ci"}, format="json")
    assert created.status_code == 201
    event = last("token.created")
    assert (event.actor_id, event.object_id) == (editor.user.pk, str(created.json()["id"]))
    assert event.after["name"] == "ci" and event.after["prefix"] == created.json()["prefix"]
    assert created.json()["token"] not in str(event.after)  # the secret is never recorded
    assert event.ip == "127.0.0.1"

    assert editor.delete(f"/api/v1/tokens/{created.json()['id']}/").status_code == 204
    revoked = last("token.revoked")
    assert revoked.object_id == str(created.json()["id"]) and revoked.actor_name == editor.user.username
    # Revoking again changes nothing and records nothing.
    editor.delete(f"/api/v1/tokens/{created.json()['id']}/")
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


def test_memberships_added_changed_and_removed_are_audited(member_client, project):
    owner = member_client(Role.OWNER)
    UserFactory(username="bea")
    url = f"/api/v1/projects/{project.slug}/members/"
    owner.post(url, {"username": "bea", "role": "viewer"}, format="json")
    owner.post(url, {"username": "bea", "role": "reviewer"}, format="json")
    owner.post(url, {"username": "bea", "role": "reviewer"}, format="json")  # no change, no event
    owner.delete(f"{url}bea/")
    events = list(AuditEvent.objects.filter(object_type="accounts.Membership", after__user="bea")
                  .order_by("id")) + [last("membership.removed")]
    assert [(e.action, e.before.get("role"), e.after.get("role")) for e in events] == [
        ("membership.added", None, "viewer"),
        ("membership.role_changed", "viewer", "reviewer"),
        ("membership.removed", "reviewer", None),
    ]
    assert {e.actor_id for e in events} == {owner.user.pk}
    assert {e.project_id for e in events} == {project.pk}


def test_a_refused_role_change_leaves_no_event(member_client, project):
    owner = member_client(Role.OWNER)
    url = f"/api/v1/projects/{project.slug}/members/"
    before = AuditEvent.objects.count()
    response = owner.post(url, {"username": owner.user.username, "role": "viewer"}, format="json")
    assert response.status_code == 400  # the last owner cannot be demoted
    assert AuditEvent.objects.count() == before


def test_models_and_versions_registered_are_audited(project, ready_version, editor):
    registered = last("model.registered")
    assert registered.after["name"] == "credit-scorer" and registered.project_id == project.pk
    created = last("model_version.created")
    assert created.object_id == str(ready_version.pk)
    assert created.after["sha256"] == ready_version.sha256 and created.after["version"] == 1
    assert created.actor_id == editor.user.pk


def test_trusting_a_pickle_hash_is_audited(project, admin, pickles_on):
    sha = "ab" * 32
    response = admin.post(f"/api/v1/projects/{project.slug}/trusted-hashes/", {"sha256": sha, "note": "ours"},
                          format="json")
    assert response.status_code == 201
    event = last("pickle_hash.trusted")
    assert event.after == {"sha256": sha, "note": "ours"}
    assert (event.actor_id, event.project_id) == (admin.user.pk, project.pk)
    assert event.object_id == str(TrustedModelHash.objects.get(sha256=sha).pk)


def test_alias_moves_and_removals_are_audited(project, ready_version, editor):
    url = f"/api/v1/projects/{project.slug}/models/credit-scorer/aliases/challenger/"
    assert editor.put(url, {"version": 1}, format="json").status_code == 200
    assert editor.delete(url).status_code == 204
    moved, removed = last("alias.moved"), last("alias.removed")
    assert (moved.after["alias"], moved.after["version"], moved.after["via"]) == ("challenger", 1, "api")
    assert moved.before["version"] is None
    assert removed.before == {"model": "credit-scorer", "alias": "challenger", "version": 1}
    assert {moved.actor_id, removed.actor_id} == {editor.user.pk}


def test_an_approved_protected_move_is_audited_with_its_approval(project, ready_version, reviewer):
    services.alias_set_protected(model=ready_version.model, alias="champion", version=ready_version,
                                 approval=TrustedModelHash.objects.create(project=project, sha256="cd" * 32),
                                 actor=reviewer.user)
    event = last("alias.moved")
    assert event.after["protected"] is True
    assert event.after["via"].startswith("approval:registry.trustedmodelhash:")


def test_adding_protection_is_direct_and_audited(project, ready_version, owner):
    url = f"/api/v1/projects/{project.slug}/models/credit-scorer/"
    response = owner.patch(url, {"protected_aliases": ["champion", "production", "gold"]}, format="json")
    assert response.status_code == 200
    event = last("model.protected_aliases_changed")
    assert event.before["protected_aliases"] == ["champion", "production"]
    assert event.after["protected_aliases"] == ["champion", "gold", "production"]
    assert event.actor_id == owner.user.pk


def test_the_whole_log_of_a_busy_session_verifies(project, ready_version, editor):
    url = f"/api/v1/projects/{project.slug}/models/credit-scorer/aliases/a/"
    editor.put(url, {"version": 1}, format="json")
    assert "alias.moved" in actions(project_id=project.pk)
    assert audit_chain_verify().ok


def test_turning_pii_logging_on_is_audited(project, ready_version, owner):
    url = f"/api/v1/projects/{project.slug}/models/credit-scorer/"
    assert owner.patch(url, {"description": "Scores applications."}, format="json").status_code == 200
    assert not AuditEvent.objects.filter(action="model.log_pii_changed").exists()
    assert owner.patch(url, {"log_pii": True}, format="json").status_code == 200
    event = last("model.log_pii_changed")
    assert (event.before["log_pii"], event.after["log_pii"], event.actor_id) == (False, True, owner.user.pk)
