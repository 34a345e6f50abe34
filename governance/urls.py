"""Governance's pages. Four URL namespaces, as templates name them: ``governance`` (reviews, policies,
promotions), ``audit`` (the audit log and protected aliases), ``cards`` (model cards) and
``governance_analysis`` (re-running a fairness audit or an explanation)."""

from django.urls import include, path

from governance.views import analysis, audit, cards, promotions

model = "p/<slug:slug>/models/<str:name>/"
version = model + "v/<int:number>/"
promotions_of = model + "promotions/"

promotion_patterns = [
    path("reviews/", promotions.inbox, name="inbox"),
    path("reviews/notifications/read/", promotions.notifications_read, name="notifications-read"),
    path("reviews/<int:request_id>/", promotions.review_page, name="review"),
    path("reviews/<int:request_id>/decide/", promotions.review_decide, name="review-decide"),
    path("reviews/<int:request_id>/withdraw/", promotions.withdraw, name="withdraw"),
    path("p/<slug:slug>/policy/", promotions.project_policy, name="project-policy"),
    path(promotions_of, promotions.model_promotions, name="model"),
    path(promotions_of + "request/", promotions.request_create, name="request-create"),
    path(promotions_of + "rollback/", promotions.rollback, name="rollback"),
    path(promotions_of + "policy/", promotions.model_policy_edit, name="policy-edit"),
]

audit_patterns = [
    path("audit/", audit.audit_log_all, name="all"),
    path("audit/export.csv", audit.audit_log_all_csv, name="all-csv"),
    path("p/<slug:slug>/audit/", audit.audit_log, name="log"),
    path("p/<slug:slug>/audit/export.csv", audit.audit_log_csv, name="log-csv"),
    path("p/<slug:slug>/models/<str:name>/protection/", audit.protection_page, name="protection"),
    path("p/<slug:slug>/models/<str:name>/protection/request/", audit.protection_request,
         name="protection-request"),
    path("protection-requests/<int:change_id>/decide/", audit.protection_decide,
         name="protection-decide"),
    path("protection-requests/<int:change_id>/withdraw/", audit.protection_withdraw,
         name="protection-withdraw"),
]

card_patterns = [
    path(version + "card/", cards.card_page, name="card"),
    path(version + "card/edit/", cards.card_edit, name="edit"),
    path(version + "card.md", cards.card_markdown, name="markdown"),
    path(version + "card.html", cards.card_html, name="html"),
]

analysis_patterns = [
    path(version + "fairness/rerun/", analysis.analysis_rerun, {"which": "fairness"},
         name="fairness-rerun"),
    path(version + "explanation/rerun/", analysis.analysis_rerun, {"which": "explanation"},
         name="explanation-rerun"),
]

urlpatterns = [
    path("", include((promotion_patterns, "governance"))),
    path("", include((audit_patterns, "audit"))),
    path("", include((card_patterns, "cards"))),
    path("", include((analysis_patterns, "governance_analysis"))),
]
