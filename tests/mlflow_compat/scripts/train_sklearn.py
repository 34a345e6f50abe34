"""A training script as teams write it for MLflow: autologging, a model, the registry, an alias.

Nothing here names Steward; MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN point it there.
"""

import json
import sys

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
mlflow.set_experiment("iris")
mlflow.sklearn.autolog(log_models=False, log_datasets=False)

with mlflow.start_run(run_name="logreg") as run:
    model = LogisticRegression(max_iter=300).fit(X, y)
    mlflow.log_metric("val_acc", 0.97)
    info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(5))

version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "iris-clf")
client = MlflowClient()
client.set_registered_model_alias("iris-clf", "candidate", version.version)
by_alias = client.get_model_version_by_alias("iris-clf", "candidate")
loaded = mlflow.pyfunc.load_model("models:/iris-clf@candidate")
predictions = loaded.predict(X.head(3))

client.set_registered_model_tag("iris-clf", "team", "growth")
client.set_registered_model_tag("iris-clf", "temp", "x")
client.delete_registered_model_tag("iris-clf", "temp")
client.set_model_version_tag("iris-clf", version.version, "validated", "yes")
client.update_model_version("iris-clf", version.version, description="first try")
searched = [m.name for m in client.search_registered_models(filter_string="name LIKE 'iris%'")]
versions = [v.version for v in client.search_model_versions("name = 'iris-clf'")]
client.delete_registered_model_alias("iris-clf", "candidate")
try:
    client.get_model_version_by_alias("iris-clf", "candidate")
    alias_gone = False
except mlflow.exceptions.MlflowException as exc:
    alias_gone = exc.error_code == "RESOURCE_DOES_NOT_EXIST"

refused = None
try:
    client.set_registered_model_alias("iris-clf", "champion", version.version)
except mlflow.exceptions.MlflowException as exc:
    refused = {"code": exc.error_code, "message": exc.message}

print(json.dumps({
    "run_id": run.info.run_id,
    "model_id": info.model_id,
    "version": version.version,
    "status": client.get_model_version("iris-clf", version.version).status,
    "alias_version": by_alias.version,
    "predictions": [int(p) for p in predictions],
    "expected": [int(p) for p in model.predict(X.head(3))],
    "latest": [v.version for v in client.get_latest_versions("iris-clf")],
    "download_uri": client.get_model_version_download_uri("iris-clf", version.version),
    "refused": refused,
    "alias_gone": alias_gone,
    "searched": searched,
    "versions": versions,
    "model_tags": client.get_registered_model("iris-clf").tags,
    "version_tags": client.get_model_version("iris-clf", version.version).tags,
    "description": client.get_model_version("iris-clf", version.version).description,
    "autolog_params": sorted(client.get_run(run.info.run_id).data.params)[:3],
}))
sys.stdout.flush()
