from django.urls import path

from governance import views

app_name = "governance"

model = "p/<slug:slug>/models/<str:name>/promotions/"

urlpatterns = [
    path("reviews/", views.inbox, name="inbox"),
    path("reviews/notifications/read/", views.notifications_read, name="notifications-read"),
    path("reviews/<int:request_id>/", views.review_page, name="review"),
    path("reviews/<int:request_id>/decide/", views.review_decide, name="review-decide"),
    path("reviews/<int:request_id>/withdraw/", views.withdraw, name="withdraw"),
    path("p/<slug:slug>/policy/", views.project_policy, name="project-policy"),
    path(model, views.model_promotions, name="model"),
    path(model + "request/", views.request_create, name="request-create"),
    path(model + "rollback/", views.rollback, name="rollback"),
    path(model + "policy/", views.model_policy_edit, name="policy-edit"),
]
