import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiToken, Membership, Role, token_hash
from core.jobs import job_create
from tests.factories import MembershipFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def create_token(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_token", *args, stdout=out, stderr=err)
    assert "shown only now" in err.getvalue()
    return out.getvalue().strip()


# --- tokens ---------------------------------------------------------------


def test_create_token_command_prints_a_token_that_authenticates():
    UserFactory(username="ada")
    raw = create_token("ada", "--name", "laptop")
    response = bearer(raw).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["username"] == "ada"
    assert ApiToken.objects.get(user__username="ada").name == "laptop"


def test_create_token_stores_only_the_hash():
    UserFactory(username="ada")
    raw = create_token("ada")
    token = ApiToken.objects.get(user__username="ada")
    assert token.key_hash == token_hash(raw)
    stored = [str(v) for v in ApiToken.objects.values_list(*[f.attname for f in ApiToken._meta.fields]).get()]
    assert raw not in stored
    assert token.prefix == raw[:8]


def test_create_token_with_expiry_sets_it():
    UserFactory(username="ada")
    create_token("ada", "--expires-in-days", "7")
    expires = ApiToken.objects.get().expires_at
    assert dt.timedelta(days=6, hours=23) < expires - timezone.now() <= dt.timedelta(days=7)


def test_create_token_for_unknown_user_is_a_clear_error():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_token", "ghost", stdout=io.StringIO(), stderr=io.StringIO())
    assert not ApiToken.objects.exists()


def test_expired_token_is_401():
    user = UserFactory()
    token, raw = services.api_token_create(user=user, expires_at=timezone.now() + dt.timedelta(hours=1))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = bearer(raw).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_revoked_token_is_401_and_other_tokens_keep_working():
    user = UserFactory()
    first, raw_first = services.api_token_create(user=user, name="one")
    _, raw_second = services.api_token_create(user=user, name="two")
    assert bearer(raw_first).delete(f"/api/v1/tokens/{first.pk}/").status_code == 204
    assert bearer(raw_first).get("/api/v1/me/").status_code == 401
    assert bearer(raw_second).get("/api/v1/me/").status_code == 200


def test_unknown_and_malformed_tokens_are_401():
    assert bearer("stw_not-a-real-token").get("/api/v1/me/").status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")
    assert client.get("/api/v1/me/").status_code == 401


def test_token_of_a_deactivated_user_is_401():
    user = UserFactory()
    _, raw = services.api_token_create(user=user)
    user.is_active = False
    user.save()
    assert bearer(raw).get("/api/v1/me/").status_code == 401


def test_last_used_at_is_set_when_the_token_is_used():
    user = UserFactory()
    token, raw = services.api_token_create(user=user)
    assert token.last_used_at is None
    before = timezone.now()
    assert bearer(raw).get("/api/v1/me/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_at >= before


def test_post_tokens_returns_the_token_once_and_lists_without_it():
    user = UserFactory()
    _, raw = services.api_token_create(user=user, name="bootstrap")
    client = bearer(raw)
    created = client.post("/api/v1/tokens/", {"name": "ci"}, format="json")
    assert created.status_code == 201
    new_raw = created.json()["token"]
    assert new_raw.startswith("stw_") and created.json()["prefix"] == new_raw[:8]
    assert bearer(new_raw).get("/api/v1/me/").status_code == 200

    listed = client.get("/api/v1/tokens/")
    assert listed.status_code == 200
    assert {t["name"] for t in listed.json()["tokens"]} == {"bootstrap", "ci"}
    assert new_raw not in listed.content.decode()
    assert all("token" not in t for t in listed.json()["tokens"])


def test_token_with_expiry_in_the_past_is_refused_naming_the_field():
    user = UserFactory()
    _, raw = services.api_token_create(user=user)
    response = bearer(raw).post(
        "/api/v1/tokens/", {"name": "old", "expires_at": "2000-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 400
    assert "expires_at" in response.json()["error"]["fields"]
    assert ApiToken.objects.filter(user=user).count() == 1


def test_one_user_cannot_revoke_another_users_token():
    victim_token, victim_raw = services.api_token_create(user=UserFactory())
    _, raw = services.api_token_create(user=UserFactory())
    assert bearer(raw).delete(f"/api/v1/tokens/{victim_token.pk}/").status_code == 404
    assert bearer(victim_raw).get("/api/v1/me/").status_code == 200


def test_no_credentials_is_401():
    assert APIClient().get("/api/v1/projects/").status_code == 401


# --- roles ----------------------------------------------------------------


@pytest.fixture
def run(project):
    return RunFactory(experiment__project=project)


@pytest.fixture
def job(project, run):
    return job_create(kind="run_summary", project=project, params={"run_id": str(run.pk)})


def test_outsider_gets_404_on_project_run_and_job_urls(outsider, project, run, job):
    urls = [
        f"/api/v1/projects/{project.slug}/",
        f"/api/v1/projects/{project.slug}/members/",
        f"/api/v1/projects/{project.slug}/experiments/",
        f"/api/v1/projects/{project.slug}/jobs/",
        f"/api/v1/runs/{run.pk}/",
        f"/api/v1/runs/{run.pk}/metrics/history/?key=loss",
        f"/api/v1/jobs/{job.pk}/",
    ]
    for url in urls:
        response = outsider.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    # Writes answer the same 404: nothing tells an outsider the project exists.
    assert outsider.post(f"/api/v1/projects/{project.slug}/runs/", {"experiment": "x"},
                         format="json").status_code == 404
    assert outsider.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 404
    assert outsider.post(f"/api/v1/runs/{run.pk}/summary/").status_code == 404


def test_outsider_does_not_see_the_project_in_the_list(outsider, project):
    assert outsider.get("/api/v1/projects/").json()["projects"] == []


def test_viewer_reads_but_gets_403_on_writes(member_client, project, run, job):
    viewer = member_client(Role.VIEWER)
    assert viewer.get(f"/api/v1/runs/{run.pk}/").status_code == 200
    assert viewer.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    writes = [
        (f"/api/v1/projects/{project.slug}/runs/", {"experiment": "x"}),
        (f"/api/v1/projects/{project.slug}/experiments/", {"name": "x"}),
        (f"/api/v1/runs/{run.pk}/metrics/", {"key": "loss", "value": 1.0}),
        (f"/api/v1/runs/{run.pk}/batch/", {"metrics": [{"key": "loss", "value": 1.0}]}),
        (f"/api/v1/runs/{run.pk}/summary/", None),
        (f"/api/v1/jobs/{job.pk}/cancel/", None),
        (f"/api/v1/projects/{project.slug}/members/", {"username": viewer.user.username,
                                                       "role": "owner"}),
    ]
    for url, body in writes:
        response = viewer.post(url, body, format="json")
        assert response.status_code == 403, url
        assert response.json()["error"]["code"] == "permission_denied"
    assert viewer.patch(f"/api/v1/runs/{run.pk}/", {"name": "x"}, format="json").status_code == 403
    assert run.metric_points.count() == 0
    job.refresh_from_db()
    assert job.status == "queued"
    assert Membership.objects.get(user=viewer.user).role == Role.VIEWER


def test_editor_cannot_manage_members(editor, project):
    response = editor.post(f"/api/v1/projects/{project.slug}/members/",
                           {"username": editor.user.username, "role": "owner"}, format="json")
    assert response.status_code == 403


def test_owner_adds_changes_and_removes_members(member_client, project):
    owner = member_client(Role.OWNER)
    UserFactory(username="bea")
    url = f"/api/v1/projects/{project.slug}/members/"
    assert owner.post(url, {"username": "bea", "role": "viewer"}, format="json").status_code == 200
    assert owner.post(url, {"username": "bea", "role": "editor"}, format="json").json() == {
        "username": "bea", "role": "editor"}
    members = {m["username"]: m["role"] for m in owner.get(url).json()["members"]}
    assert members == {owner.user.username: "owner", "bea": "editor"}
    assert owner.delete(f"{url}bea/").status_code == 204
    assert not Membership.objects.filter(project=project, user__username="bea").exists()


def test_owner_gets_400_naming_the_field_for_unknown_user_or_role(member_client, project):
    owner = member_client(Role.OWNER)
    url = f"/api/v1/projects/{project.slug}/members/"
    unknown = owner.post(url, {"username": "ghost", "role": "viewer"}, format="json")
    assert unknown.status_code == 400 and "username" in unknown.json()["error"]["fields"]
    bad_role = owner.post(url, {"username": owner.user.username, "role": "king"}, format="json")
    assert bad_role.status_code == 400 and "role" in bad_role.json()["error"]["fields"]


def test_last_owner_can_be_neither_removed_nor_demoted(member_client, project):
    owner = member_client(Role.OWNER)
    name = owner.user.username
    url = f"/api/v1/projects/{project.slug}/members/"
    removed = owner.delete(f"{url}{name}/")
    assert removed.status_code == 400
    assert "owner" in removed.json()["error"]["message"]
    demoted = owner.post(url, {"username": name, "role": "editor"}, format="json")
    assert demoted.status_code == 400
    assert Membership.objects.get(project=project, user=owner.user).role == Role.OWNER


def test_with_a_second_owner_the_first_can_leave(member_client, project):
    owner = member_client(Role.OWNER)
    other = UserFactory(username="cleo")
    MembershipFactory(project=project, user=other, role=Role.OWNER)
    assert owner.delete(f"/api/v1/projects/{project.slug}/members/{owner.user.username}/").status_code == 204
    assert list(Membership.objects.filter(project=project).values_list("user__username", flat=True)) == [
        "cleo"]


def test_staff_sees_every_project(project):
    staff = UserFactory(is_staff=True)
    _, raw = services.api_token_create(user=staff)
    assert bearer(raw).get(f"/api/v1/projects/{project.slug}/").json()["role"] == "owner"
