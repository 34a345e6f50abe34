"""Artifacts from a plain MLflow script: one file, a folder, then listing and downloading them."""

import json
import os
import tempfile

import mlflow
from mlflow import MlflowClient

mlflow.set_experiment("artifacts")
work = tempfile.mkdtemp()
with open(os.path.join(work, "notes.txt"), "w") as f:
    f.write("hello steward\n")
os.makedirs(os.path.join(work, "plots", "deep"))
with open(os.path.join(work, "plots", "a.csv"), "w") as f:
    f.write("x,y\n1,2\n")
with open(os.path.join(work, "plots", "deep", "b.json"), "w") as f:
    f.write('{"b": 1}')

with mlflow.start_run() as run:
    mlflow.log_artifact(os.path.join(work, "notes.txt"))
    mlflow.log_artifacts(os.path.join(work, "plots"), artifact_path="plots")
    mlflow.log_text("inline text", "texts/inline.txt")
    mlflow.log_dict({"k": [1, 2]}, "config.json")

client = MlflowClient()
top = client.list_artifacts(run.info.run_id)
inner = client.list_artifacts(run.info.run_id, "plots")
out_dir = tempfile.mkdtemp()
local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="plots", dst_path=out_dir)
with open(os.path.join(local, "deep", "b.json")) as f:
    deep = f.read()
print(json.dumps({
    "run_id": run.info.run_id,
    "artifact_uri": run.info.artifact_uri,
    "top": [[f.path, f.is_dir, f.file_size] for f in top],
    "inner": [[f.path, f.is_dir, f.file_size] for f in inner],
    "deep": deep,
    "text": mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/texts/inline.txt"),
}))
