from django.urls import path

from experiments import api_search

urlpatterns = [
    path("projects/<slug:slug>/runs/search/", api_search.RunSearchApi.as_view()),
]
