"""A NUL character in a URL's path or query is a 400 naming where it is, before any lookup."""

import pytest
from django.db import transaction
from django.test import Client

from datasets.models import DatasetVersion

pytestmark = pytest.mark.django_db


def test_a_nul_in_a_path_parameter_is_a_400_on_every_kind_of_name(world, assert_json_error):
    s, run = world.project.slug, world.run.pk
    for method, url in (
        ("GET", f"/api/v1/projects/{s}/models/a%00b/"),
        ("GET", f"/api/v1/projects/{s}/models/iris/versions/a%00b/"),
        ("PUT", f"/api/v1/projects/{s}/models/iris/aliases/a%00b/"),
        ("GET", f"/api/v1/projects/{s}/datasets/a%00b/"),
        ("DELETE", f"/api/v1/projects/{s}/members/a%00b/"),
        ("DELETE", f"/api/v1/runs/{run}/tags/a%00b"),
        ("GET", f"/api/v1/runs/{run}/artifacts/a%00b"),
        ("POST", f"/api/v1/serve/{s}/a%00b/1/predict"),
        ("POST", f"/api/v1/serve/{s}/iris/a%00b/predict"),
    ):
        # A savepoint each: were one to reach the database, it must not hide what the next does.
        with transaction.atomic():
            response = world.client.generic(method, url, b'{"version": 1}', content_type="application/json")
            transaction.set_rollback(True)
        assert assert_json_error(response, 400)["fields"] == {"path": "Must not contain the NUL character."}


def test_a_nul_in_a_query_value_is_a_400_naming_the_parameter(world, assert_json_error):
    data = b"a,b\n1,2\n"
    response = world.client.generic(
        "POST", f"/api/v1/projects/{world.project.slug}/datasets/new/versions/?filename=a%00b.csv", data,
        content_type="text/csv", CONTENT_LENGTH=str(len(data)))
    assert assert_json_error(response, 400)["fields"] == {"filename": "Must not contain the NUL character."}
    assert not DatasetVersion.objects.filter(dataset__name="new").exists()
    response = world.client.get(f"/api/v1/runs/{world.run.pk}/metrics/history/?key=a%00b")
    assert "key" in assert_json_error(response, 400)["fields"]


def test_pages_refuse_a_nul_too_and_ordinary_urls_pass(world):
    browser = Client()
    browser.force_login(world.client.user)
    assert browser.get(f"/p/{world.project.slug}/models/a%00b/").status_code == 400
    assert browser.get(f"/p/{world.project.slug}/models/iris/").status_code == 200
    assert browser.get(f"/p/{world.project.slug}/models/iris/compare/?a=1&b=%2500").status_code == 404
