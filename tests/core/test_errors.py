"""Each domain error answers with its status, code and body: through the API, MLflow's paths and a page.

The raising routes live in tests/core/error_urls.py beside the whole site; the
last tests go through real Steward routes, where a selector raises the error.
"""

import ast
from pathlib import Path

import pytest
from django.test import Client

from accounts.models import Role
from tests.factories import MembershipFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
APPS = ["core", "accounts", "experiments", "datasets", "training", "registry", "monitoring", "governance",
        "mlflow_compat"]

# which -> (status, Steward's code, message)
STEWARD = {
    "not_found": (404, "not_found", "No model named 'churn' in this project."),
    "permission_denied": (403, "permission_denied", "This needs the editor role in 'demo'."),
    "alias_protected": (403, "alias_protected", "'champion' is a protected alias of churn."),
    "not_authenticated": (401, "not_authenticated", "Authentication credentials were not provided."),
    "authentication_failed": (401, "authentication_failed", "Invalid, expired or revoked token."),
    "conflict": (409, "conflict", "Param 'lr' is already logged as '0.5'."),
    "idempotency_key_reused": (
        422, "idempotency_key_reused",
        "This Idempotency-Key was already used for another request (a different body); send a new "
        "request with a new key.",
    ),
    "payload_too_large": (413, "payload_too_large", "The figure is larger than 20 MiB; download it."),
    "invalid": (400, "invalid", "name: Must not be blank."),
}

# which -> (status, MLflow's error_code)
MLFLOW = {
    "not_found": (404, "RESOURCE_DOES_NOT_EXIST"),
    "permission_denied": (403, "PERMISSION_DENIED"),
    "alias_protected": (403, "PERMISSION_DENIED"),
    "not_authenticated": (401, "UNAUTHENTICATED"),
    "authentication_failed": (401, "UNAUTHENTICATED"),
    "conflict": (400, "INVALID_PARAMETER_VALUE"),
    "idempotency_key_reused": (422, "INVALID_PARAMETER_VALUE"),
    "payload_too_large": (413, "INVALID_PARAMETER_VALUE"),
    "invalid": (400, "INVALID_PARAMETER_VALUE"),
}


@pytest.fixture
def signed_in(db):
    client = Client()
    client.force_login(UserFactory())
    return client


@pytest.mark.urls("tests.core.error_urls")
@pytest.mark.parametrize("which", list(STEWARD))
def test_the_api_answers_each_domain_error_with_its_status_code_and_body(client, db, which):
    status, code, message = STEWARD[which]
    response = client.get(f"/api/v1/raise/{which}")
    assert response.status_code == status
    fields = {"name": "Must not be blank."} if which == "invalid" else {}
    assert response.json() == {"error": {"code": code, "message": message, "fields": fields}}


@pytest.mark.urls("tests.core.error_urls")
@pytest.mark.parametrize("which", list(MLFLOW))
def test_mlflow_paths_answer_each_domain_error_with_mlflows_code(client, db, which):
    status, error_code = MLFLOW[which]
    response = client.get(f"/api/2.0/mlflow/raise/{which}")
    assert response.status_code == status
    assert response.json() == {"error_code": error_code, "message": STEWARD[which][2]}


@pytest.mark.urls("tests.core.error_urls")
@pytest.mark.parametrize("which", ["permission_denied", "alias_protected", "conflict",
                                   "idempotency_key_reused", "payload_too_large", "invalid"])
def test_a_page_answers_a_domain_error_with_its_status_and_says_why(signed_in, which):
    status, _, message = STEWARD[which]
    response = signed_in.get(f"/raise/{which}")
    assert response.status_code == status
    page = response.content.decode()
    assert f'data-error-status="{status}"' in page
    assert message.replace("'", "&#x27;") in page


@pytest.mark.urls("tests.core.error_urls")
def test_a_page_answers_not_found_with_the_404_page_that_names_nothing(signed_in):
    response = signed_in.get("/raise/not_found")
    assert response.status_code == 404
    page = response.content.decode()
    assert 'data-error-status="404"' in page
    assert "churn" not in page


@pytest.mark.urls("tests.core.error_urls")
@pytest.mark.parametrize("which", ["not_authenticated", "authentication_failed"])
def test_a_page_sends_an_unauthenticated_visitor_to_log_in(client, db, which):
    response = client.get(f"/raise/{which}")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/raise/{which}"


def test_a_model_the_project_lacks_is_a_404_in_the_api_and_on_its_page(project, viewer):
    response = viewer.get(f"/api/v1/projects/{project.slug}/models/nope/")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found", "message": "No model named 'nope' in this project.", "fields": {},
    }
    page = Client()
    page.force_login(viewer.user)
    answer = page.get(f"/p/{project.slug}/models/nope/")
    assert answer.status_code == 404
    assert 'data-error-status="404"' in answer.content.decode()


def test_a_viewer_moving_an_alias_from_the_page_gets_the_403_page_saying_why(project):
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.VIEWER)
    page = Client()
    page.force_login(user)
    response = page.post(f"/p/{project.slug}/models/churn/aliases/set/",
                         {"alias": "champion", "version": "1"})
    assert response.status_code == 403
    why = f"This needs the editor role in &#x27;{project.slug}&#x27;; you are viewer."
    assert why in response.content.decode()


def _imports(path: Path) -> list[str]:
    """Every module a file imports, and ``module.name`` for each name it takes from one."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _service_and_selector_modules() -> list[Path]:
    paths = []
    for app in APPS:
        for name in ("services", "selectors"):
            paths += [p for p in [ROOT / app / f"{name}.py"] if p.exists()]
            paths += sorted((ROOT / app / name).glob("**/*.py"))
    return paths


def test_services_and_selectors_import_no_drf_and_no_http404():
    modules = _service_and_selector_modules()
    assert len(modules) >= 10  # the walk found the apps' services and selectors
    offending = {
        str(path.relative_to(ROOT)): name
        for path in modules
        for name in _imports(path)
        if name.split(".")[0] == "rest_framework" or name == "django.http.Http404"
    }
    assert offending == {}


def test_the_domain_errors_module_imports_neither_drf_nor_any_app():
    names = _imports(ROOT / "core" / "errors.py")
    assert not [n for n in names if n.split(".")[0] in {"rest_framework", *APPS} - {"core"}]
    assert not [n for n in names if n.startswith("django.http")]
