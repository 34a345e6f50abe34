from django.urls import path

from monitoring import api

urlpatterns = [
    path("projects/<slug:slug>/monitors/", api.MonitorListApi.as_view()),
    path("monitors/<int:monitor_id>/", api.MonitorDetailApi.as_view()),
    path("monitors/<int:monitor_id>/run/", api.MonitorRunApi.as_view()),
    path("monitors/<int:monitor_id>/labels/", api.LabelsApi.as_view()),
    path("monitors/<int:monitor_id>/predictions/", api.PredictionsApi.as_view()),
    path("monitors/<int:monitor_id>/alerts/", api.AlertListApi.as_view()),
    path("monitor-reports/<int:report_id>/", api.ReportDetailApi.as_view()),
    path("alerts/<int:alert_id>/<str:action>/", api.AlertActionApi.as_view()),
]
