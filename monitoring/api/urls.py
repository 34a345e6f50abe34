from django.urls import path

from monitoring.api import views

urlpatterns = [
    path("projects/<slug:slug>/monitors/", views.MonitorListApi.as_view()),
    path("monitors/<int:monitor_id>/", views.MonitorDetailApi.as_view()),
    path("monitors/<int:monitor_id>/run/", views.MonitorRunApi.as_view()),
    path("monitors/<int:monitor_id>/labels/", views.LabelsApi.as_view()),
    path("monitors/<int:monitor_id>/predictions/", views.PredictionsApi.as_view()),
    path("monitors/<int:monitor_id>/alerts/", views.AlertListApi.as_view()),
    path("monitor-reports/<int:report_id>/", views.ReportDetailApi.as_view()),
    path("alerts/<int:alert_id>/<str:action>/", views.AlertActionApi.as_view()),
]
