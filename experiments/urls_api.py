from django.urls import path

from experiments import api, api_trash

urlpatterns = [
    path("projects/<slug:slug>/experiments/", api.ExperimentListApi.as_view()),
    path("projects/<slug:slug>/experiments/<int:experiment_id>/", api_trash.ExperimentDetailApi.as_view()),
    path("projects/<slug:slug>/experiments/<int:experiment_id>/restore/",
         api_trash.ExperimentRestoreApi.as_view()),
    path("projects/<slug:slug>/trash/", api_trash.TrashApi.as_view()),
    path("projects/<slug:slug>/runs/", api.RunCreateApi.as_view()),
    path("projects/<slug:slug>/jobs/", api.JobListApi.as_view()),
    path("runs/", api.RunPrefixLookupApi.as_view()),
    path("runs/<str:run_id>/", api.RunDetailApi.as_view()),
    path("runs/<str:run_id>/restore/", api_trash.RunRestoreApi.as_view()),
    path("runs/<str:run_id>/params/", api.ParamLogApi.as_view()),
    path("runs/<str:run_id>/metrics/", api.MetricLogApi.as_view()),
    path("runs/<str:run_id>/metrics/history/", api.MetricHistoryApi.as_view()),
    path("runs/<str:run_id>/tags/", api.TagSetApi.as_view()),
    path("runs/<str:run_id>/tags/<path:key>", api.TagDeleteApi.as_view()),
    path("runs/<str:run_id>/batch/", api.BatchLogApi.as_view()),
    path("runs/<str:run_id>/summary/", api.RunSummaryJobApi.as_view()),
    path("jobs/<int:job_id>/", api.JobDetailApi.as_view()),
    path("jobs/<int:job_id>/cancel/", api.JobCancelApi.as_view()),
]
