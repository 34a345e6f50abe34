"""Routes that raise one domain error each, beside the whole site, for tests/core/test_errors.py.

One DRF view (Steward's API handler), one MLflow view (MLflow's handler) and one
plain page per error, so each error goes through the same machinery a real
request does.
"""

from django.core.exceptions import ValidationError
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from core import errors
from mlflow_compat.views_base import MlflowView
from mlplatform.urls import handler400, handler404, handler500  # noqa: F401 - the site's own handlers
from registry.services import AliasProtected

RAISE = {
    "not_found": lambda: errors.NotFound("No model named 'churn' in this project."),
    "permission_denied": lambda: errors.PermissionDenied("This needs the editor role in 'demo'."),
    "alias_protected": lambda: AliasProtected("'champion' is a protected alias of churn."),
    "not_authenticated": lambda: errors.NotAuthenticated(),
    "authentication_failed": lambda: errors.AuthenticationFailed("Invalid, expired or revoked token."),
    "conflict": lambda: errors.Conflict("Param 'lr' is already logged as '0.5'."),
    "idempotency_key_reused": lambda: errors.IdempotencyKeyReused(),
    "payload_too_large": lambda: errors.PayloadTooLarge("The figure is larger than 20 MiB; download it."),
    "invalid": lambda: ValidationError({"name": "Must not be blank."}),
}


class RaisingApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request, which):
        raise RAISE[which]()


class RaisingMlflow(MlflowView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request, which):
        raise RAISE[which]()


def raising_page(request, which):
    raise RAISE[which]()


urlpatterns = [
    path("api/v1/raise/<str:which>", RaisingApi.as_view()),
    path("api/2.0/mlflow/raise/<str:which>", RaisingMlflow.as_view()),
    path("raise/<str:which>", raising_page),
    path("", include("mlplatform.urls")),
]
