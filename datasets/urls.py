from django.urls import path

from datasets import views

app_name = "datasets"

urlpatterns = [
    path("p/<slug:slug>/datasets/", views.dataset_list, name="list"),
    path("p/<slug:slug>/datasets/<str:name>/", views.dataset_detail, name="dataset"),
    path("datasets/v/<int:version_id>/", views.version_detail, name="version"),
]
