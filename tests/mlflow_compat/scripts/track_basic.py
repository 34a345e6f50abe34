"""A plain MLflow tracking script: nothing in it knows about Steward."""

import json
import math
import sys

import mlflow
from mlflow import MlflowClient

mlflow.set_experiment("churn")
with mlflow.start_run(run_name="baseline") as run:
    mlflow.log_param("lr", 0.1)
    mlflow.log_params({"depth": 4, "model": "rf"})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"acc": 0.9, "nan_metric": math.nan})
    mlflow.set_tag("team", "growth")
    mlflow.set_tags({"a": "1", "b": "2"})
    mlflow.delete_tag("b")
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("loss", 0.5)

killed = mlflow.start_run(run_name="killed")
mlflow.end_run("KILLED")
try:
    with mlflow.start_run(run_name="crashed") as crashed:
        raise RuntimeError("boom")
except RuntimeError:
    pass

client = MlflowClient()
got = client.get_run(run.info.run_id)
history = client.get_metric_history(run.info.run_id, "loss")
found = mlflow.search_runs(experiment_names=["churn"], filter_string="metrics.acc > 0.5",
                           order_by=["metrics.acc DESC"], output_format="list")
print(json.dumps({
    "run_id": run.info.run_id,
    "child_id": child.info.run_id,
    "killed_id": killed.info.run_id,
    "crashed_id": crashed.info.run_id,
    "status": got.info.status,
    "params": got.data.params,
    "metrics": {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in got.data.metrics.items()},
    "tags": {k: v for k, v in got.data.tags.items()},
    "history": [[m.step, m.value] for m in history],
    "found": [r.info.run_id for r in found],
}))
sys.stdout.flush()
