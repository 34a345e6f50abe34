from django.urls import path

from governance import api_analysis

version = "projects/<slug:slug>/models/<str:name>/versions/<str:ref>/"

urlpatterns = [
    path(version + "fairness/", api_analysis.FairnessApi.as_view()),
    path(version + "explanation/", api_analysis.ExplanationApi.as_view()),
    path(version + "explanation/rows/", api_analysis.ExplanationRowsApi.as_view()),
]
