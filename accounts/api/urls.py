from django.urls import path

from accounts.api import views

urlpatterns = [
    path("me/", views.MeApi.as_view()),
    path("tokens/", views.TokenListApi.as_view()),
    path("tokens/<int:token_id>/", views.TokenDetailApi.as_view()),
    path("projects/", views.ProjectListApi.as_view()),
    path("projects/<slug:slug>/", views.ProjectDetailApi.as_view()),
    path("projects/<slug:slug>/members/", views.MemberListApi.as_view()),
    path("projects/<slug:slug>/members/<str:username>/", views.MemberDetailApi.as_view()),
]
