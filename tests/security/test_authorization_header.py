"""Odd Authorization headers answer 401 in the JSON error shape on every API route, never a 500."""

import pytest
from django.core.cache import cache
from django.test import Client

from tests.security.conftest import api_routes

ODD_HEADERS = ["\xa0", " ", "\t", "Bearer", "Bearer  ", "Bearer a b", "Bearer тест", "Bearer \u2603x",
               "Bearer stw_\ud800"]
ROUTES = api_routes()


def test_the_route_list_covers_the_api():
    assert "/api/v1/serve/some-project/x/x/predict" in ROUTES
    assert "/api/v1/runs/x/batch/" in ROUTES
    assert "/api/schema/" in ROUTES
    assert len(ROUTES) > 40


@pytest.mark.django_db
@pytest.mark.parametrize("header", ODD_HEADERS)
def test_an_odd_authorization_header_is_a_401_on_every_api_route(header, assert_json_error):
    client = Client(raise_request_exception=False)
    for route in ROUTES:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            # Failed tokens are throttled per address (tests/accounts/test_token_throttle.py);
            # this test is about parsing, so every request starts with a clean count.
            cache.clear()
            response = client.generic(method, route, b"{}", content_type="application/json",
                                      HTTP_AUTHORIZATION=header)
            if route.endswith("/predict") and method != "POST":
                assert response.status_code == 405  # the view accepts POST alone
                continue
            if route in ("/api/docs/", "/api/schema/"):
                assert response.status_code == 401  # the Swagger page and the YAML schema
                continue
            error = assert_json_error(response, 401)
            assert error["code"] == "authentication_failed", (route, method, error)


@pytest.mark.django_db
def test_a_good_token_still_works_and_another_scheme_is_ignored_outside_serving(editor):
    assert editor.get("/api/v1/me/").status_code == 200
    other = Client(raise_request_exception=False)
    response = other.get("/api/v1/me/", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert response.status_code in (401, 403)
    response = other.post("/api/v1/serve/p/m/1/predict", data=b"{}", content_type="application/json",
                          HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert response.status_code == 401
