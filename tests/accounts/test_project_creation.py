"""PROJECT_CREATION decides who may create (and so own) a project: everyone, or staff only."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Membership, Project, Role
from accounts.services import api_token_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user)[1]}")
    return client


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_by_default_everyone_creates_projects_and_owns_them(settings):
    assert settings.PROJECT_CREATION == "everyone"
    user = UserFactory()
    response = _client_for(user).post("/api/v1/projects/", {"slug": "mine"}, format="json")
    assert response.status_code == 201
    assert Membership.objects.get(project__slug="mine", user=user).role == Role.OWNER
    page = _browser(user)
    assert 'name="slug"' in page.get(reverse("experiments:home")).content.decode()
    assert page.post(reverse("experiments:home"), {"slug": "from-page"}).status_code == 302
    assert Project.objects.filter(slug="from-page").exists()


def test_with_staff_only_creation_other_users_get_403_from_the_api_and_the_page(settings):
    settings.PROJECT_CREATION = "staff"
    user = UserFactory()
    response = _client_for(user).post("/api/v1/projects/", {"slug": "mine"}, format="json")
    assert response.status_code == 403
    assert "Only an instance administrator" in response.json()["error"]["message"]
    page = _browser(user)
    text = page.get(reverse("experiments:home")).content.decode()
    assert 'name="slug"' not in text
    assert "only an instance administrator can create projects" in text
    assert page.post(reverse("experiments:home"), {"slug": "from-page"}).status_code == 403
    assert not Project.objects.exists()


def test_with_staff_only_creation_staff_still_create(settings):
    settings.PROJECT_CREATION = "staff"
    admin = UserFactory(is_staff=True)
    assert _client_for(admin).post("/api/v1/projects/", {"slug": "team"}, format="json").status_code == 201
    page = _browser(admin)
    assert 'name="slug"' in page.get(reverse("experiments:home")).content.decode()
    assert page.post(reverse("experiments:home"), {"slug": "team-2"}).status_code == 302
    assert set(Project.objects.values_list("slug", flat=True)) == {"team", "team-2"}


def _settings_in_a_process(**env) -> subprocess.CompletedProcess:
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.ALLOW_PICKLE_MODELS, settings.PROJECT_CREATION)")
    environ = {k: v for k, v in os.environ.items() if k not in ("ALLOW_PICKLE_MODELS", "PROJECT_CREATION")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=django_settings.BASE_DIR, capture_output=True, text=True,
        env={**environ, "DJANGO_SETTINGS_MODULE": "mlplatform.settings", "SECRET_KEY": "x", **env},
        timeout=120,
    )


def test_the_settings_are_read_from_the_environment_with_safe_defaults():
    assert _settings_in_a_process().stdout.split() == ["False", "everyone"]
    on = _settings_in_a_process(ALLOW_PICKLE_MODELS="true", PROJECT_CREATION="staff")
    assert on.stdout.split() == ["True", "staff"]
    bad = _settings_in_a_process(PROJECT_CREATION="owners")
    assert bad.returncode != 0
    assert "PROJECT_CREATION must be 'everyone' or 'staff'" in bad.stderr
