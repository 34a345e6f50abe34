from django.urls import path

from registry import api

model = "projects/<slug:slug>/models/<str:name>/"

urlpatterns = [
    path("projects/<slug:slug>/models/", api.ModelListApi.as_view()),
    path("projects/<slug:slug>/trusted-hashes/", api.TrustedHashApi.as_view()),
    path(model, api.ModelDetailApi.as_view()),
    path(model + "versions/", api.VersionListApi.as_view()),
    path(model + "versions/<str:ref>/", api.VersionDetailApi.as_view()),
    path(model + "versions/<str:ref>/check-job/", api.VersionCheckJobApi.as_view()),
    path(model + "versions/<str:ref>/batch-score/", api.BatchScoreApi.as_view()),
    path(model + "aliases/", api.AliasListApi.as_view()),
    path(model + "aliases/<str:alias>/", api.AliasDetailApi.as_view()),
    path(model + "compare/", api.CompareApi.as_view()),
]
