"""The registry's REST API (under /api/v1/): models, versions, aliases, trusted hashes, batch scoring.

``serve_patterns`` (the predict endpoint) is included first among the API's URLs: it is matched on
every prediction.
"""

from django.urls import path

from registry.api import views

model = "projects/<slug:slug>/models/<str:name>/"

serve_patterns = [
    path("serve/<slug:slug>/<str:name>/<str:ref>/predict", views.predict_view),
]

urlpatterns = [
    path("projects/<slug:slug>/models/", views.ModelListApi.as_view()),
    path("projects/<slug:slug>/trusted-hashes/", views.TrustedHashApi.as_view()),
    path(model, views.ModelDetailApi.as_view()),
    path(model + "versions/", views.VersionListApi.as_view()),
    path(model + "versions/<str:ref>/", views.VersionDetailApi.as_view()),
    path(model + "versions/<str:ref>/check-job/", views.VersionCheckJobApi.as_view()),
    path(model + "versions/<str:ref>/batch-score/", views.BatchScoreApi.as_view()),
    path(model + "aliases/", views.AliasListApi.as_view()),
    path(model + "aliases/<str:alias>/", views.AliasDetailApi.as_view()),
    path(model + "compare/", views.CompareApi.as_view()),
]
