from django.urls import path

from governance import api

model = "projects/<slug:slug>/models/<str:name>/"

urlpatterns = [
    path(model + "promotion-requests/", api.PromotionRequestListApi.as_view()),
    path(model + "policy/", api.PolicyApi.as_view()),
    path("promotion-requests/<int:request_id>/", api.PromotionRequestDetailApi.as_view()),
    path("promotion-requests/<int:request_id>/reviews/", api.PromotionReviewApi.as_view()),
    path("promotion-requests/<int:request_id>/withdraw/", api.PromotionWithdrawApi.as_view()),
]
