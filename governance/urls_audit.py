from django.urls import path

from governance import views_audit

app_name = "audit"

urlpatterns = [
    path("audit/", views_audit.audit_log_all, name="all"),
    path("audit/export.csv", views_audit.audit_log_all_csv, name="all-csv"),
    path("p/<slug:slug>/audit/", views_audit.audit_log, name="log"),
    path("p/<slug:slug>/audit/export.csv", views_audit.audit_log_csv, name="log-csv"),
    path("p/<slug:slug>/models/<str:name>/protection/", views_audit.protection_page, name="protection"),
    path("p/<slug:slug>/models/<str:name>/protection/request/", views_audit.protection_request,
         name="protection-request"),
    path("protection-requests/<int:change_id>/decide/", views_audit.protection_decide,
         name="protection-decide"),
    path("protection-requests/<int:change_id>/withdraw/", views_audit.protection_withdraw,
         name="protection-withdraw"),
]
