from django.urls import path

from governance import api_audit, api_cards

model = "projects/<slug:slug>/models/<str:name>/"

urlpatterns = [
    path("audit-log/", api_audit.AuditLogApi.as_view()),
    path("projects/<slug:slug>/audit-log/", api_audit.ProjectAuditLogApi.as_view()),
    path(model + "protection-requests/", api_audit.ProtectionRequestListApi.as_view()),
    path(model + "versions/<str:ref>/model-card/", api_cards.ModelCardApi.as_view()),
    path("protection-requests/<int:change_id>/", api_audit.ProtectionRequestDetailApi.as_view()),
    path("protection-requests/<int:change_id>/decision/", api_audit.ProtectionRequestDecisionApi.as_view()),
    path("protection-requests/<int:change_id>/withdraw/", api_audit.ProtectionRequestWithdrawApi.as_view()),
]
