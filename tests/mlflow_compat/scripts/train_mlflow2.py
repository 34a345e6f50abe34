"""The same kind of script for an MLflow 2.x client: artifact_path=, cloudpickle models."""

import json
import sys

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
mlflow.set_experiment("iris-2x")
with mlflow.start_run(run_name="v2") as run:
    mlflow.log_params({"C": 1.0, "max_iter": 300})
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    model = LogisticRegression(max_iter=300).fit(X, y)
    mlflow.sklearn.log_model(model, artifact_path="model", input_example=X.head(5))
    mlflow.log_text("notes", "notes.txt")

version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "iris-2x")
client = MlflowClient()
got = client.get_model_version("iris-2x", version.version)
found = client.search_runs([run.info.experiment_id], "params.C = '1.0'")
print(json.dumps({
    "mlflow": mlflow.__version__,
    "run_id": run.info.run_id,
    "version": version.version,
    "status": got.status,
    "status_message": got.status_message,
    "artifacts": sorted(f.path for f in client.list_artifacts(run.info.run_id, "model")),
    "found": [r.info.run_id for r in found],
}))
sys.stdout.flush()
