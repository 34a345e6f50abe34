from django.urls import path, register_converter

from experiments import api_artifacts


class ArtifactPathConverter:
    """Like <path:...> but also matches newlines and other control characters,
    so a malformed artifact path reaches the view and is refused with a 400."""

    regex = r"(?s:.+)"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ArtifactPathConverter, "artifactpath")

urlpatterns = [
    path("runs/<str:run_id>/artifacts/", api_artifacts.ArtifactListApi.as_view()),
    path("runs/<str:run_id>/artifacts/<artifactpath:path>", api_artifacts.ArtifactApi.as_view()),
    path("runs/<str:run_id>/artifacts-verify/", api_artifacts.ArtifactVerifyApi.as_view()),
]
