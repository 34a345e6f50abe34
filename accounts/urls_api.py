from django.urls import path

from accounts import api

urlpatterns = [
    path("me/", api.MeApi.as_view()),
    path("tokens/", api.TokenListApi.as_view()),
    path("tokens/<int:token_id>/", api.TokenDetailApi.as_view()),
    path("projects/", api.ProjectListApi.as_view()),
    path("projects/<slug:slug>/", api.ProjectDetailApi.as_view()),
    path("projects/<slug:slug>/members/", api.MemberListApi.as_view()),
    path("projects/<slug:slug>/members/<str:username>/", api.MemberDetailApi.as_view()),
]
