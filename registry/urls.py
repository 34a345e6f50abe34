from django.urls import path

from registry import views

app_name = "registry"

model = "p/<slug:slug>/models/<str:name>/"

urlpatterns = [
    path("models/", views.models_all, name="all-models"),
    path("runs/<uuid:run_id>/models-panel/", views.run_models_panel, name="run-panel"),
    path("p/<slug:slug>/models/", views.model_list, name="models"),
    path("p/<slug:slug>/register-model/", views.model_register, name="register"),
    path(model, views.model_detail, name="model"),
    path(model + "aliases/set/", views.alias_set, name="alias-set"),
    path(model + "aliases/remove/", views.alias_remove, name="alias-remove"),
    path(model + "aliases/protected/", views.protected_aliases, name="protected-aliases"),
    path(model + "compare/", views.version_compare, name="compare"),
    path(model + "v/<int:number>/", views.version_detail, name="version"),
    path(model + "v/<int:number>/trust/", views.version_trust, name="version-trust"),
    path(model + "v/<int:number>/lineage/", views.version_lineage, name="lineage"),
    path(model + "v/<int:number>/batch-score/", views.version_batch_score, name="batch-score"),
]
