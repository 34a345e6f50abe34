from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("monitors/", views.monitor_index, name="index"),
    path("monitors/<int:monitor_id>/", views.monitor_detail, name="monitor"),
    path("monitors/<int:monitor_id>/run/", views.monitor_run, name="run"),
    path("monitors/alerts/<int:alert_id>/<str:action>/", views.alert_action, name="alert-action"),
    path("p/<slug:slug>/monitors/new/", views.monitor_new, name="new"),
]
