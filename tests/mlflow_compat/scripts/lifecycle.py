"""Deletes, restores and registry searches as an MLflow script makes them, for a 2.x or 3.x client.

The server holds a model "guarded" whose version 1 carries the protected alias "champion".
"""

import json
import sys

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

MLFLOW3 = mlflow.__version__.startswith("3.")
client = MlflowClient()


def refusal(call, *args):
    try:
        call(*args)
    except MlflowException as exc:
        return {"code": exc.error_code, "message": exc.message}
    return None


def run_ids(experiment_id, view_type):
    return sorted(r.info.run_id for r in client.search_runs([experiment_id], run_view_type=view_type))


long_name = "x" * 500
long_id = client.create_experiment(long_name)
experiment_id = mlflow.set_experiment("lifecycle").experiment_id
X, y = load_iris(return_X_y=True, as_frame=True)
with mlflow.start_run(run_name="kept") as kept:
    model = LogisticRegression(max_iter=300).fit(X, y)
    if MLFLOW3:
        mlflow.sklearn.log_model(model, name="model", input_example=X.head(3))
    else:
        mlflow.sklearn.log_model(model, artifact_path="model", input_example=X.head(3))
with mlflow.start_run(run_name="dropped") as dropped:
    mlflow.log_metric("loss", 0.5)

client.delete_run(dropped.info.run_id)
deleted_stage = client.get_run(dropped.info.run_id).info.lifecycle_stage
views = {name: run_ids(experiment_id, view) for name, view in
         (("active", ViewType.ACTIVE_ONLY), ("deleted", ViewType.DELETED_ONLY), ("all", ViewType.ALL))}
write_refused = refusal(client.log_param, dropped.info.run_id, "p", "1")
client.restore_run(dropped.info.run_id)
restored_stage = client.get_run(dropped.info.run_id).info.lifecycle_stage

client.delete_experiment(experiment_id)
by_name = client.get_experiment_by_name("lifecycle")
name_taken = refusal(client.create_experiment, "lifecycle")
deleted_experiments = [e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)]
active_experiments = [e.name for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
run_stage_with_experiment = client.get_run(kept.info.run_id).info.lifecycle_stage
client.restore_experiment(experiment_id)
restored_experiment = client.get_experiment(experiment_id).lifecycle_stage
experiment_orders = {
    "name_desc": [e.name for e in client.search_experiments(order_by=["name DESC"])],
    "id_asc": [e.experiment_id for e in client.search_experiments(order_by=["attribute.experiment_id ASC"])],
    "created": [e.experiment_id for e in client.search_experiments(order_by=["creation_time ASC"])],
}
bad_experiment_order = refusal(lambda: client.search_experiments(order_by=["owner ASC"]))

# The registry: three versions of one model, two models more to search among.
for _ in range(3):
    mlflow.register_model(f"runs:/{kept.info.run_id}/model", "lc-model")
mlflow.register_model(f"runs:/{kept.info.run_id}/model", "LC-other")
client.set_registered_model_tag("LC-other", "team", "a")
statuses = [client.get_model_version("lc-model", str(n)).status for n in (1, 2, 3)]
# A 2.x client's cloudpickle is not trusted by Steward, so its version takes no alias.
alias_refused = refusal(client.set_registered_model_alias, "lc-model", "candidate", "1")
aliased = refusal(client.delete_model_version, "lc-model", "1") if alias_refused is None else None
client.delete_model_version("lc-model", "2")
left = sorted(v.version for v in client.search_model_versions("name = 'lc-model'"))
searches = {
    "like": [m.name for m in client.search_registered_models("name LIKE 'lc%'")],
    "ilike": sorted(m.name for m in client.search_registered_models("name ILIKE 'lc%'")),
    "tag": [m.name for m in client.search_registered_models("tags.team = 'a'")],
    "ordered": [m.name for m in client.search_registered_models(order_by=["name DESC"])],
    "paged": [m.name for m in client.search_registered_models(max_results=1, order_by=["name ASC"])],
    "run": sorted((v.name, v.version) for v in client.search_model_versions(
        f"run_id = '{kept.info.run_id}'")),
    "run_in": sorted((v.name, v.version) for v in client.search_model_versions(
        f"run_id IN ('{kept.info.run_id}', '0000')")),
    "numbers": [v.version for v in client.search_model_versions(
        "name = 'lc-model' AND version_number >= 1", order_by=["version_number DESC"])],
}
first_page = client.search_registered_models(max_results=1, order_by=["name ASC"])
second_page = client.search_registered_models(max_results=1, order_by=["name ASC"],
                                              page_token=first_page.token)
searches["pages"] = [first_page[0].name, second_page[0].name]
bad_filter = refusal(client.search_registered_models, "owner = 'ada'")

model_aliased = refusal(client.delete_registered_model, "lc-model") if aliased is not None else None
if aliased is not None:
    client.delete_registered_model_alias("lc-model", "candidate")
client.delete_registered_model("lc-model")
model_gone = refusal(client.get_registered_model, "lc-model")
protected_version = refusal(client.delete_model_version, "guarded", "1")
protected_model = refusal(client.delete_registered_model, "guarded")

print(json.dumps({
    "mlflow": mlflow.__version__,
    "long_name": client.get_experiment(long_id).name == long_name,
    "kept": kept.info.run_id, "dropped": dropped.info.run_id, "experiment_id": experiment_id,
    "deleted_stage": deleted_stage, "views": views, "write_refused": write_refused,
    "restored_stage": restored_stage,
    "by_name": [by_name.experiment_id, by_name.lifecycle_stage], "name_taken": name_taken,
    "deleted_experiments": deleted_experiments, "active_experiments": active_experiments,
    "run_stage_with_experiment": run_stage_with_experiment, "restored_experiment": restored_experiment,
    "experiment_orders": experiment_orders, "bad_experiment_order": bad_experiment_order,
    "statuses": statuses, "alias_refused": alias_refused, "aliased": aliased, "left": left,
    "searches": searches, "bad_filter": bad_filter,
    "model_aliased": model_aliased, "model_gone": model_gone,
    "protected_version": protected_version, "protected_model": protected_model,
}))
sys.stdout.flush()
