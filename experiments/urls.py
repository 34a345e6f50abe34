from django.urls import path
from django.views.generic import RedirectView

from accounts import views as account_views
from experiments import views

app_name = "experiments"

urlpatterns = [
    path("", views.home, name="home"),
    path("tokens/", RedirectView.as_view(pattern_name="accounts:tokens"), name="tokens"),
    path("p/<slug:slug>/", views.project_detail, name="project"),
    path("p/<slug:slug>/members/", account_views.members, name="members"),
    path("p/<slug:slug>/e/<int:experiment_id>/", views.experiment_detail, name="experiment"),
    path("p/<slug:slug>/compare/", views.compare, name="compare"),
    path("p/<slug:slug>/trash/", views.trash_page, name="trash"),
    path("p/<slug:slug>/e/<int:experiment_id>/delete/", views.experiment_delete,
         name="experiment-delete"),
    path("p/<slug:slug>/e/<int:experiment_id>/restore/", views.experiment_restore,
         name="experiment-restore"),
    path("runs/<uuid:run_id>/delete/", views.run_delete, name="run-delete"),
    path("runs/<uuid:run_id>/restore/", views.run_restore, name="run-restore"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run"),
    path("runs/<uuid:run_id>/live/", views.run_live, name="run-live"),
    path("runs/<uuid:run_id>/notes/", views.run_notes, name="run-notes"),
    path("runs/<uuid:run_id>/tags/", views.run_tag_set, name="run-tag-set"),
    path("runs/<uuid:run_id>/tags/delete/", views.run_tag_delete, name="run-tag-delete"),
    path("runs/<uuid:run_id>/summary/", views.run_summary, name="run-summary"),
    path("runs/<uuid:run_id>/artifacts/", views.run_artifacts, name="run-artifacts"),
    path("runs/<uuid:run_id>/artifacts/preview/", views.artifact_preview, name="artifact-preview"),
    path("jobs/<int:job_id>/", views.job_detail, name="job"),
    path("jobs/<int:job_id>/progress/", views.job_progress, name="job-progress"),
]
