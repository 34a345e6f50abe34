"""The REST API of datasets, their versions, rules and run lineage (under /api/v1/)."""

from django.urls import path

from datasets.api import views

urlpatterns = [
    path("projects/<slug:slug>/datasets/", views.DatasetListApi.as_view()),
    path("projects/<slug:slug>/datasets/<str:name>/", views.DatasetDetailApi.as_view()),
    path("projects/<slug:slug>/datasets/<str:name>/versions/",
         views.DatasetVersionUploadApi.as_view()),
    path("projects/<slug:slug>/datasets/<str:name>/rules/", views.ValidationRuleListApi.as_view()),
    path("dataset-versions/<int:version_id>/", views.DatasetVersionApi.as_view()),
    path("dataset-versions/<int:version_id>/columns/", views.DatasetColumnsApi.as_view()),
    path("dataset-versions/<int:version_id>/preview/", views.DatasetPreviewApi.as_view()),
    path("dataset-versions/<int:version_id>/download/", views.DatasetDownloadApi.as_view()),
    path("dataset-versions/<int:version_id>/profile/", views.DatasetProfileJobApi.as_view()),
    path("dataset-versions/<int:version_id>/validate/", views.DatasetValidateJobApi.as_view()),
    path("dataset-rules/<int:rule_id>/", views.ValidationRuleDetailApi.as_view()),
    path("runs/<str:run_id>/datasets/", views.RunDatasetsApi.as_view()),
]
