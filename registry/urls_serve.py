"""The predict endpoint, included first among the API's URLs: it is matched on every prediction."""

from django.urls import path

from registry import api

urlpatterns = [
    path("serve/<slug:slug>/<str:name>/<str:ref>/predict", api.predict_view),
]
