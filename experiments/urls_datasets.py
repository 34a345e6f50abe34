from django.urls import path

from experiments import api_datasets, api_training

urlpatterns = [
    path("projects/<slug:slug>/datasets/", api_datasets.DatasetListApi.as_view()),
    path("projects/<slug:slug>/datasets/<str:name>/", api_datasets.DatasetDetailApi.as_view()),
    path("projects/<slug:slug>/datasets/<str:name>/versions/",
         api_datasets.DatasetVersionUploadApi.as_view()),
    path("projects/<slug:slug>/datasets/<str:name>/rules/", api_datasets.ValidationRuleListApi.as_view()),
    path("dataset-versions/<int:version_id>/", api_datasets.DatasetVersionApi.as_view()),
    path("dataset-versions/<int:version_id>/columns/", api_datasets.DatasetColumnsApi.as_view()),
    path("dataset-versions/<int:version_id>/preview/", api_datasets.DatasetPreviewApi.as_view()),
    path("dataset-versions/<int:version_id>/download/", api_datasets.DatasetDownloadApi.as_view()),
    path("dataset-versions/<int:version_id>/profile/", api_datasets.DatasetProfileJobApi.as_view()),
    path("dataset-versions/<int:version_id>/validate/", api_datasets.DatasetValidateJobApi.as_view()),
    path("dataset-rules/<int:rule_id>/", api_datasets.ValidationRuleDetailApi.as_view()),
    path("runs/<str:run_id>/datasets/", api_datasets.RunDatasetsApi.as_view()),
    path("runs/<str:run_id>/rerun/", api_training.RunRerunApi.as_view()),
    path("runs/<str:run_id>/training/", api_training.RunTrainingApi.as_view()),
    path("estimators/", api_training.EstimatorListApi.as_view()),
    path("projects/<slug:slug>/training-jobs/", api_training.TrainingJobApi.as_view()),
    path("projects/<slug:slug>/sweeps/", api_training.SweepListApi.as_view()),
    path("sweeps/<int:sweep_id>/", api_training.SweepDetailApi.as_view()),
    path("sweeps/<int:sweep_id>/cancel/", api_training.SweepCancelApi.as_view()),
]
