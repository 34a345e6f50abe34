"""Creating a run reads the token, the project, the membership and the experiment in one query;
every credential is answered as on the rest of the API (accounts.selectors)."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import ApiToken, Role
from experiments.models import Run
from tests.factories import inactive_user_client, member, session_client, token_client, unknown_token_client

pytestmark = pytest.mark.django_db


# (case, how its client is made, the status a create answers)
CASES = [
    ("editor token", lambda p: token_client(member(p, Role.EDITOR)), 201),
    ("owner token", lambda p: token_client(member(p, Role.OWNER)), 201),
    ("staff token, no membership", lambda p: token_client(member(p, None, is_staff=True)), 201),
    ("viewer token", lambda p: token_client(member(p, Role.VIEWER)), 403),
    ("expired token", lambda p: token_client(member(p, Role.EDITOR),
                                              expires_at=timezone.now() - dt.timedelta(seconds=1)), 401),
    ("revoked token", lambda p: token_client(member(p, Role.EDITOR), revoked_at=timezone.now()), 401),
    ("token of an inactive user", inactive_user_client, 401),
    ("inactive staff", lambda p: token_client(member(p, None, is_staff=True, is_active=False)), 401),
    ("unknown token", unknown_token_client, 401),
    ("no credentials", lambda p: APIClient(), 401),
    ("non-member token", lambda p: token_client(member(p, None)), 404),
    ("editor session", lambda p: session_client(member(p, Role.EDITOR)), 201),
    ("viewer session", lambda p: session_client(member(p, Role.VIEWER)), 403),
    ("staff session", lambda p: session_client(member(p, None, is_staff=True)), 201),
    ("non-member session", lambda p: session_client(member(p, None)), 404),
]


def _create(client, slug: str, experiment: str = "access"):
    return client.post(f"/api/v1/projects/{slug}/runs/", {"experiment": experiment, "id": str(uuid.uuid4())},
                       content_type="application/json")


@pytest.mark.parametrize(("case", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_every_credential_is_answered_as_on_the_rest_of_the_api(project, case, make, expected):
    client = make(project)
    response = _create(client, project.slug)
    assert response.status_code == expected, (case, response.content)
    # The same answer a project read gives (403 there only for what a viewer may not change).
    read = client.get(f"/api/v1/projects/{project.slug}/")
    assert read.status_code == (200 if expected in (201, 403) else expected), case
    if expected == 201:
        assert Run.objects.filter(pk=response.json()["id"], project=project).exists()
    else:
        codes = {401: ("not_authenticated", "authentication_failed"), 403: ("permission_denied",),
                 404: ("not_found",)}
        assert response.json()["error"]["code"] in codes[expected], case
        assert not Run.objects.filter(project=project).exists()


@pytest.mark.parametrize(("case", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_missing_project_is_404_to_whoever_may_ask_and_401_to_others(project, case, make, expected):
    response = _create(make(project), "no-such-project")
    assert response.status_code == (401 if expected == 401 else 404), case


def test_creating_runs_records_the_tokens_use_once_a_minute(project):
    user = member(project, Role.EDITOR)
    token, raw = account_services.api_token_create(user=user, name="use")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert _create(client, project.slug).status_code == 201
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    assert _create(client, project.slug).status_code == 201
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - dt.timedelta(minutes=5))
    assert _create(client, project.slug).status_code == 201
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


def test_a_run_in_an_experiment_in_the_trash_is_refused(project):
    from experiments.models import Experiment, Lifecycle

    client = token_client(member(project, Role.EDITOR))
    assert _create(client, project.slug, "binned").status_code == 201
    Experiment.objects.filter(project=project, name="binned").update(lifecycle=Lifecycle.DELETED)
    response = _create(client, project.slug, "binned")
    assert response.status_code == 409, response.content
    assert Run.objects.filter(project=project).count() == 1


def test_the_author_is_the_tokens_user(project):
    user = member(project, Role.EDITOR)
    response = _create(token_client(user), project.slug)
    assert response.json()["author"] == user.username
    assert Run.objects.get(pk=response.json()["id"]).author == user
