"""Governance's REST API (under /api/v1/): promotion requests and reviews, policies, protected aliases,
the audit log, model cards, fairness audits and explanations."""

from django.urls import path

from governance.api import analysis, audit, cards, promotions

model = "projects/<slug:slug>/models/<str:name>/"
version = model + "versions/<str:ref>/"

urlpatterns = [
    path(model + "promotion-requests/", promotions.PromotionRequestListApi.as_view()),
    path(model + "policy/", promotions.PolicyApi.as_view()),
    path("promotion-requests/<int:request_id>/", promotions.PromotionRequestDetailApi.as_view()),
    path("promotion-requests/<int:request_id>/reviews/", promotions.PromotionReviewApi.as_view()),
    path("promotion-requests/<int:request_id>/withdraw/", promotions.PromotionWithdrawApi.as_view()),
    path("audit-log/", audit.AuditLogApi.as_view()),
    path("projects/<slug:slug>/audit-log/", audit.ProjectAuditLogApi.as_view()),
    path(model + "protection-requests/", audit.ProtectionRequestListApi.as_view()),
    path(model + "versions/<str:ref>/model-card/", cards.ModelCardApi.as_view()),
    path("protection-requests/<int:change_id>/", audit.ProtectionRequestDetailApi.as_view()),
    path("protection-requests/<int:change_id>/decision/", audit.ProtectionRequestDecisionApi.as_view()),
    path("protection-requests/<int:change_id>/withdraw/", audit.ProtectionRequestWithdrawApi.as_view()),
    path(version + "fairness/", analysis.FairnessApi.as_view()),
    path(version + "explanation/", analysis.ExplanationApi.as_view()),
    path(version + "explanation/rows/", analysis.ExplanationRowsApi.as_view()),
]
