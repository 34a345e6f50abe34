from django.urls import path

from training import views

app_name = "training"

urlpatterns = [
    path("p/<slug:slug>/train/", views.training_new, name="training-new"),
    path("training/jobs/<int:job_id>/", views.training_job, name="training-job"),
    path("training/jobs/<int:job_id>/cancel/", views.training_job_cancel, name="training-job-cancel"),
    path("runs/<uuid:run_id>/rerun/", views.run_rerun, name="run-rerun"),
    path("runs/<uuid:run_id>/datasets-panel/", views.run_panel, name="run-panel"),
    path("runs/<uuid:run_id>/figures/<path:path>", views.run_plot, name="run-plot"),
    path("p/<slug:slug>/sweeps/", views.sweep_list, name="sweeps"),
    path("sweeps/<int:sweep_id>/", views.sweep_detail, name="sweep"),
]
