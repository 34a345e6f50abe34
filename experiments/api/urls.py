"""The REST API of experiments, runs, metrics, artifacts, search, jobs and the trash (under /api/v1/)."""

from django.urls import path, register_converter

from experiments.api import artifacts, search, trash, views


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
    path("projects/<slug:slug>/experiments/", views.ExperimentListApi.as_view()),
    path("projects/<slug:slug>/experiments/<int:experiment_id>/", trash.ExperimentDetailApi.as_view()),
    path("projects/<slug:slug>/experiments/<int:experiment_id>/restore/",
         trash.ExperimentRestoreApi.as_view()),
    path("projects/<slug:slug>/trash/", trash.TrashApi.as_view()),
    path("projects/<slug:slug>/runs/", views.RunCreateApi.as_view()),
    path("projects/<slug:slug>/jobs/", views.JobListApi.as_view()),
    path("runs/", views.RunPrefixLookupApi.as_view()),
    path("runs/<str:run_id>/", views.RunDetailApi.as_view()),
    path("runs/<str:run_id>/restore/", trash.RunRestoreApi.as_view()),
    path("runs/<str:run_id>/params/", views.ParamLogApi.as_view()),
    path("runs/<str:run_id>/metrics/", views.MetricLogApi.as_view()),
    path("runs/<str:run_id>/metrics/history/", views.MetricHistoryApi.as_view()),
    path("runs/<str:run_id>/tags/", views.TagSetApi.as_view()),
    path("runs/<str:run_id>/tags/<path:key>", views.TagDeleteApi.as_view()),
    path("runs/<str:run_id>/batch/", views.BatchLogApi.as_view()),
    path("runs/<str:run_id>/summary/", views.RunSummaryJobApi.as_view()),
    path("jobs/<int:job_id>/", views.JobDetailApi.as_view()),
    path("jobs/<int:job_id>/cancel/", views.JobCancelApi.as_view()),
    path("projects/<slug:slug>/runs/search/", search.RunSearchApi.as_view()),
    path("runs/<str:run_id>/artifacts/", artifacts.ArtifactListApi.as_view()),
    path("runs/<str:run_id>/artifacts/<artifactpath:path>", artifacts.ArtifactApi.as_view()),
    path("runs/<str:run_id>/artifacts-verify/", artifacts.ArtifactVerifyApi.as_view()),
]
