import pytest
from django.urls import URLPattern, URLResolver, get_resolver


def api_routes() -> list[str]:
    """Every URL pattern under /api/, as a path with each parameter filled in."""
    filled = {"slug": "some-project", "int": "1", "str": "x", "path": "x", "artifactpath": "x"}

    def walk(patterns, prefix: str):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                yield route

    out = []
    for route in walk(get_resolver().url_patterns, "/"):
        if not route.startswith("/api/"):
            continue
        for converter, value in filled.items():
            route = __import__("re").sub(rf"<{converter}:\w+>", value, route)
        assert "<" not in route, route
        out.append(route)
    return sorted(set(out))


@pytest.fixture
def assert_json_error():
    def check(response, status: int | tuple[int, ...] | None = None) -> dict:
        statuses = (status,) if isinstance(status, int) else status
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
        if statuses is not None:
            assert response.status_code in statuses, (response.status_code, response.content[:300])
        assert response["Content-Type"].startswith("application/json"), response.content[:300]
        error = response.json()["error"]
        assert set(error) == {"code", "message", "fields"} and error["message"]
        return error

    return check
