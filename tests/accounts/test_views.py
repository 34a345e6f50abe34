"""Account pages: API tokens (shown once, revocable), project members, project creation."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken, Membership, Project, Role, token_hash
from tests.factories import MembershipFactory, UserFactory


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_token_is_shown_once_and_stored_hashed():
    user = UserFactory()
    client = _login(user)
    response = client.post(reverse("accounts:tokens"), {"name": "laptop"})
    assert response.status_code == 200
    page = response.content.decode()
    token = ApiToken.objects.get(user=user)
    start = page.index('id="new-token-value">') + len('id="new-token-value">')
    raw = page[start:page.index("</code>", start)]
    assert raw.startswith("stw_") and token.key_hash == token_hash(raw)
    assert raw not in client.get(reverse("accounts:tokens")).content.decode()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/projects/").status_code == 200


@pytest.mark.django_db
def test_new_token_is_answered_uncached_and_kept_in_no_session():
    client = _login(UserFactory())
    response = client.post(reverse("accounts:tokens"), {"name": "laptop"})
    page = response.content.decode()
    start = page.index('id="new-token-value">') + len('id="new-token-value">')
    raw = page[start:page.index("</code>", start)]
    assert raw.startswith("stw_")
    assert "no-store" in response["Cache-Control"]
    # Not in any session row, whether or not the browser ever asks for another page.
    assert Session.objects.exists()
    for row in Session.objects.all():
        assert raw not in row.session_data
        assert raw not in str(row.get_decoded())
    # Nor anywhere in the database but as its hash.
    from django.db import connection

    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            assert raw not in repr(cursor.fetchall()), table


@pytest.mark.django_db
def test_token_form_errors_are_shown():
    client = _login(UserFactory())
    response = client.post(reverse("accounts:tokens"), {"name": "", "expires_in_days": "0"})
    assert response.status_code == 200
    assert "field-error" in response.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_revoked_token_stops_working_and_others_cannot_revoke():
    user, other = UserFactory(), UserFactory()
    client = _login(user)
    client.post(reverse("accounts:tokens"), {"name": "ci"})
    token = ApiToken.objects.get(user=user)
    assert _login(other).post(reverse("accounts:token-revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    response = client.post(reverse("accounts:token-revoke", args=[token.pk]), follow=True)
    assert "was revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.django_db
def test_tokens_page_needs_login_and_csrf():
    assert Client().get(reverse("accounts:tokens")).status_code == 302
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    assert client.post(reverse("accounts:tokens"), {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_owner_manages_members(project):
    owner, bob = UserFactory(), UserFactory(username="bob")
    MembershipFactory(project=project, user=owner, role=Role.OWNER)
    client = _login(owner)
    url = reverse("experiments:members", args=[project.slug])
    assert client.post(url, {"username": "bob", "role": "editor"}).status_code == 302
    assert Membership.objects.get(project=project, user=bob).role == Role.EDITOR
    client.post(url, {"username": "bob", "role": "viewer"})
    assert Membership.objects.get(project=project, user=bob).role == Role.VIEWER
    response = client.post(url, {"username": "nobody", "role": "viewer"})
    assert response.status_code == 200 and "No user named" in response.content.decode()
    client.post(url, {"action": "remove", "username": "bob"})
    assert not Membership.objects.filter(project=project, user=bob).exists()


def test_last_owner_cannot_demote_themselves(project):
    owner = UserFactory()
    MembershipFactory(project=project, user=owner, role=Role.OWNER)
    client = _login(owner)
    response = client.post(reverse("experiments:members", args=[project.slug]),
                           {"username": owner.username, "role": "viewer"})
    assert response.status_code == 200 and "at least one owner" in response.content.decode()
    assert Membership.objects.get(project=project, user=owner).role == Role.OWNER


def test_only_owners_manage_members(project):
    editor, bob = UserFactory(), UserFactory(username="bob")
    MembershipFactory(project=project, user=editor, role=Role.EDITOR)
    client = _login(editor)
    url = reverse("experiments:members", args=[project.slug])
    page = client.get(url).content.decode()
    assert "Add a member" not in page and editor.username in page
    assert client.post(url, {"username": "bob", "role": "owner"}).status_code == 403
    assert not Membership.objects.filter(user=bob).exists()
    assert _login(UserFactory()).get(url).status_code == 404


@pytest.mark.django_db
def test_create_project_from_projects_page():
    user = UserFactory()
    client = _login(user)
    response = client.post(reverse("experiments:home"), {"slug": "churn", "name": "Churn"})
    assert response.status_code == 302
    project = Project.objects.get(slug="churn")
    assert Membership.objects.get(project=project, user=user).role == Role.OWNER
    response = client.post(reverse("experiments:home"), {"slug": "churn"})
    assert response.status_code == 200 and "already exists" in response.content.decode()
    response = client.post(reverse("experiments:home"), {"slug": "Bad Slug!"})
    assert "field-error" in response.content.decode()
    assert not Project.objects.filter(name="Bad Slug!").exists()
    assert "Churn" in client.get(reverse("experiments:home")).content.decode()
    assert "Churn" not in _login(UserFactory()).get(reverse("experiments:home")).content.decode()


@pytest.mark.django_db
def test_login_page_logs_in():
    UserFactory(username="carol")
    client = Client()
    response = client.post(reverse("accounts:login"), {"username": "carol", "password": "pw-Steward-123"})
    assert response.status_code == 302
    assert client.get(reverse("experiments:home")).status_code == 200
    bad = Client().post(reverse("accounts:login"), {"username": "carol", "password": "wrong"})
    assert bad.status_code == 200 and "error" in bad.content.decode()
