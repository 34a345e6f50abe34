"""MLflow's REST paths, served with the project taken from the URL prefix
(``/mlflow/<slug>/...``) or from MLflow's workspace header."""

from django.urls import include, path, re_path

from mlflow_compat import api_artifacts as a
from mlflow_compat import api_models as m
from mlflow_compat import api_registry as r
from mlflow_compat import api_tracking as t

tracking = [
    path("experiments/create", t.ExperimentCreate.as_view()),
    path("experiments/get", t.ExperimentGet.as_view()),
    path("experiments/get-by-name", t.ExperimentGetByName.as_view()),
    path("experiments/search", t.ExperimentSearch.as_view()),
    path("experiments/update", t.ExperimentUpdate.as_view()),
    path("experiments/delete", t.ExperimentDelete.as_view()),
    path("experiments/restore", t.ExperimentRestore.as_view()),
    path("experiments/set-experiment-tag", t.ExperimentTagSet.as_view()),
    path("experiments/delete-experiment-tag", t.ExperimentTagDelete.as_view()),
    path("runs/create", t.RunCreate.as_view()),
    path("runs/get", t.RunGet.as_view()),
    path("runs/update", t.RunUpdate.as_view()),
    path("runs/delete", t.RunDelete.as_view()),
    path("runs/restore", t.RunRestore.as_view()),
    path("runs/log-metric", t.MetricLog.as_view()),
    path("runs/log-parameter", t.ParamLog.as_view()),
    path("runs/set-tag", t.TagSet.as_view()),
    path("runs/delete-tag", t.TagDelete.as_view()),
    path("runs/log-batch", t.BatchLog.as_view()),
    path("runs/log-inputs", t.InputsLog.as_view()),
    path("runs/search", t.RunSearch.as_view()),
    path("metrics/get-history", t.MetricHistory.as_view()),
    path("runs/outputs", m.RunOutputs.as_view()),
    path("runs/log-model", m.RunLogModel.as_view()),
    path("logged-models", m.LoggedModelCreate.as_view()),
    path("logged-models/search", m.LoggedModelSearch.as_view()),
    path("logged-models/<str:model_id>", m.LoggedModelDetail.as_view()),
    path("logged-models/<str:model_id>/tags", m.LoggedModelTags.as_view()),
    path("logged-models/<str:model_id>/tags/<path:key>", m.LoggedModelTagDelete.as_view()),
    path("logged-models/<str:model_id>/params", m.LoggedModelParams.as_view()),
    path("registered-models/create", r.RegisteredModelCreate.as_view()),
    path("registered-models/get", r.RegisteredModelDetail.as_view()),
    path("registered-models/update", r.RegisteredModelUpdate.as_view()),
    path("registered-models/rename", r.RegisteredModelRename.as_view()),
    path("registered-models/delete", r.RegisteredModelDelete.as_view()),
    path("registered-models/search", r.RegisteredModelSearch.as_view()),
    path("registered-models/set-tag", r.RegisteredModelTag.as_view()),
    path("registered-models/delete-tag", r.RegisteredModelTag.as_view()),
    path("registered-models/get-latest-versions", r.LatestVersions.as_view()),
    path("registered-models/alias", r.AliasApi.as_view()),
    path("model-versions/create", r.VersionCreate.as_view()),
    path("model-versions/get", r.VersionDetail.as_view()),
    path("model-versions/update", r.VersionUpdate.as_view()),
    path("model-versions/delete", r.VersionDelete.as_view()),
    path("model-versions/search", r.VersionSearch.as_view()),
    path("model-versions/get-download-uri", r.VersionDownloadUri.as_view()),
    path("model-versions/set-tag", r.VersionTag.as_view()),
    path("model-versions/delete-tag", r.VersionTag.as_view()),
    path("model-versions/transition-stage", r.TransitionStage.as_view()),
    re_path(r"^.*$", t.NotFound.as_view()),
]

v3 = [
    path("server-info", t.ServerInfo.as_view()),
    re_path(r"^.*$", t.NotFound.as_view()),
]

artifacts = [
    path("artifacts", a.ArtifactList.as_view()),
    path("artifacts/<path:path>", a.ArtifactFile.as_view()),
    re_path(r"^mpu/", a.MultipartUpload.as_view()),
    re_path(r"^.*$", t.NotFound.as_view()),
]


def _under(prefix: str) -> list:
    return [
        path(f"{prefix}api/2.0/mlflow/", include(tracking)),
        path(f"{prefix}api/3.0/mlflow/", include(v3)),
        path(f"{prefix}api/2.0/mlflow-artifacts/", include(artifacts)),
    ]


urlpatterns = _under("") + _under("mlflow/<slug:project_slug>/")
