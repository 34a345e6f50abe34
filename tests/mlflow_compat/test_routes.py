"""Every MLflow route, with odd Authorization headers: MLflow's 401 (or its 404 for a path it does
not serve), in MLflow's error shape, never a 500."""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

ODD_HEADERS = ["\xa0", "Bearer", "Bearer a b", "Bearer тест", "Bearer stw_\ud800", "Basic !!!",
               "Basic dXNlcjpwYXNz"]


def mlflow_routes() -> list[str]:
    def walk(patterns, prefix: str):
        for p in patterns:
            route = prefix + str(p.pattern).lstrip("^").rstrip("$")
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                yield route

    filled = {"slug": "some-project", "str": "x", "path": "x"}
    routes = set()
    for route in walk(get_resolver().url_patterns, "/"):
        if "/api/2.0/mlflow" in route or "/api/3.0/mlflow" in route:
            route = re.sub(r"<(\w+):\w+>", lambda m: filled[m.group(1)], route).replace(".*", "x")
            routes.add(route)
    return sorted(routes)


def test_the_route_list_covers_mlflows_paths():
    routes = mlflow_routes()
    assert "/api/2.0/mlflow/runs/log-batch" in routes
    assert "/mlflow/some-project/api/2.0/mlflow-artifacts/artifacts/x" in routes
    assert len(routes) > 100


@pytest.mark.django_db
@pytest.mark.parametrize("header", ODD_HEADERS)
def test_an_odd_authorization_header_is_unauthenticated_on_every_mlflow_route(header):
    client = Client(raise_request_exception=False)
    for route in mlflow_routes():
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            response = client.generic(method, route, b"{}", content_type="application/json",
                                      HTTP_AUTHORIZATION=header)
            assert response["Content-Type"].startswith("application/json"), (route, method)
            body = response.json()
            if route.endswith("server-info") and method == "GET":
                assert response.status_code == 200  # the probe needs no credentials
                continue
            assert set(body) == {"error_code", "message"}, (route, method, body)
            if body["error_code"] == "ENDPOINT_NOT_FOUND":
                assert response.status_code == 404
                continue
            assert response.status_code in (401, 405, 429), (route, method, response.status_code, body)
            if response.status_code == 401:
                assert body["error_code"] == "UNAUTHENTICATED"
