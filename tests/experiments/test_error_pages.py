"""403, 404 and 500 pages use the site layout, with the navigation, and say what happened."""

import uuid

import pytest
from django.test import Client, RequestFactory

from accounts.models import Role
from mlplatform.urls import api_aware_500
from tests.factories import ExperimentFactory, MembershipFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_404_page_has_the_site_navigation(project):
    run = RunFactory(experiment=ExperimentFactory(project=project))
    response = _client(UserFactory()).get(f"/runs/{run.pk}/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'class="mainnav"' in html and 'href="/models/"' in html
    assert "<h1>Not found</h1>" in html and f"/runs/{run.pk}/" in html
    assert _client(UserFactory()).get(f"/runs/{uuid.uuid4()}/").status_code == 404


def test_403_page_has_the_site_navigation_and_says_why(project):
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.VIEWER)
    response = _client(user).post(f"/p/{project.slug}/", {"name": "new-experiment"})
    assert response.status_code == 403
    html = response.content.decode()
    assert 'class="mainnav"' in html and "<h1>Not allowed</h1>" in html


def test_500_page_uses_the_layout_and_api_paths_get_json(db):
    request = RequestFactory().get("/p/x/")
    request.user = UserFactory()
    response = api_aware_500(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert 'class="mainnav"' in html and "Something went wrong" in html
    api = RequestFactory().get("/api/v1/runs/")
    api.user = request.user
    assert api_aware_500(api)["Content-Type"].startswith("application/json")
