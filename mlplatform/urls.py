from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.errors import json_error

api_v1 = [
    path("", include("accounts.urls_api")),
    path("", include("experiments.urls_api")),
    path("", include("experiments.urls_search")),
    path("", include("experiments.urls_artifacts")),
    path("", include("registry.urls_api")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("experiments.urls")),
]


def api_aware_404(request, exception=None):
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return json_error(404, "not_found", "Not found.")
    return page_not_found(request, exception)


def api_aware_500(request):
    from django.views.defaults import server_error

    if request.path.startswith("/api/"):
        return json_error(500, "server_error", "The server failed; the error was logged.")
    return server_error(request)


handler404 = api_aware_404
handler500 = api_aware_500
