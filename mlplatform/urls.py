from django.contrib import admin
from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.cache import never_cache
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.api_errors import json_error
from registry.api import urls as registry_api_urls
from registry.prediction_log import prediction_log_stats

api_v1 = [
    # The predict endpoint first: it is matched on every prediction.
    path("", include(registry_api_urls.serve_patterns)),
    path("", include("accounts.api.urls")),
    path("", include("experiments.api.urls")),
    path("", include("datasets.api.urls")),
    path("", include("training.api.urls")),
    path("", include("registry.api.urls")),
    path("", include("governance.api.urls")),
    path("", include("monitoring.api.urls")),
]


@never_cache
def healthz(request):
    """For load balancers and container health checks: up, and the database answers.

    Also this process's prediction-log queue: rows waiting to be written and rows dropped.
    """
    log = prediction_log_stats()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        return JsonResponse({"status": "error", "database": "unreachable", "prediction_log": log}, status=503)
    return JsonResponse({"status": "ok", "prediction_log": log})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include(api_v1)),
    # MLflow's REST paths, so unchanged MLflow scripts log here (docs/mlflow.md).
    path("", include("mlflow_compat.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("datasets.urls")),
    path("", include("training.urls")),
    path("", include("registry.urls")),
    path("", include("governance.urls")),
    path("", include("monitoring.urls")),
    path("", include("experiments.urls")),
]


def api_aware_400(request, exception=None):
    from django.views.defaults import bad_request

    if request.path.startswith("/api/"):
        return json_error(400, "bad_request", "The request could not be read.")
    return bad_request(request, exception)


def api_aware_404(request, exception=None):
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return json_error(404, "not_found", "Not found.")
    return page_not_found(request, exception)


def api_aware_500(request):
    from django.shortcuts import render
    from django.views.defaults import server_error

    if request.path.startswith("/api/"):
        return json_error(500, "server_error", "The server failed; the error was logged.")
    try:
        # The site layout with its navigation, when the failure left enough working to draw it.
        return render(request, "500.html", status=500)
    except Exception:  # noqa: BLE001 - the plain page when even that fails
        return server_error(request)


handler400 = api_aware_400
handler404 = api_aware_404
handler500 = api_aware_500
