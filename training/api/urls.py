"""The REST API of the estimator catalogue, training jobs, re-runs and sweeps (under /api/v1/)."""

from django.urls import path

from training.api import views

urlpatterns = [
    path("runs/<str:run_id>/rerun/", views.RunRerunApi.as_view()),
    path("runs/<str:run_id>/training/", views.RunTrainingApi.as_view()),
    path("estimators/", views.EstimatorListApi.as_view()),
    path("projects/<slug:slug>/training-jobs/", views.TrainingJobApi.as_view()),
    path("projects/<slug:slug>/sweeps/", views.SweepListApi.as_view()),
    path("sweeps/<int:sweep_id>/", views.SweepDetailApi.as_view()),
    path("sweeps/<int:sweep_id>/cancel/", views.SweepCancelApi.as_view()),
]
