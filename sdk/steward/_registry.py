"""The model registry and serving from the SDK.

    with steward.start_run(experiment="credit") as run:
        model.fit(X, y)
        version = run.log_model(model, registered_model="credit-scorer", input_example=X)

    client = steward.Client()
    client.register_model(run_id, "credit-scorer", artifact_path="model")
    client.set_alias("credit", "credit-scorer", "challenger", 3)
    client.get_model_version("credit", "credit-scorer", "challenger")
    client.predict("credit", "credit-scorer", "challenger", [{"income": 52000, "age": 40}])

A model is stored as a skops file (never a pickle) with up to 1000 rows of its
input example, from which the server fixes the input signature and verifies
the ONNX export it serves.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from steward._base import ClientBase
from steward._datasets import Job, _Record
from steward.errors import StewardError

EXAMPLE_ROWS = 1000
FINAL_STATUSES = ("succeeded", "failed", "cancelled")


class ModelVersion(_Record):
    """A registered model version: ``model``, ``version``, ``status``, ``runtime``, ``signature``..."""

    @property
    def ready(self) -> bool:
        return self["status"] == "ready"


def _path(*parts: Any) -> str:
    return "/".join(quote(str(p), safe="") for p in parts)


def _model_url(project: str, model: str) -> str:
    return f"/api/v1/projects/{_path(project)}/models/{_path(model)}"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
        return None if isinstance(value, float) and math.isnan(value) else value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def example_json(X: Any, rows: int = EXAMPLE_ROWS) -> bytes:
    """``{"columns", "dtypes", "data"}`` from a DataFrame (or a 2-D array, as columns x0, x1, ...)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - a list of rows still works without pandas
        pd = None
    if pd is not None and not isinstance(X, pd.DataFrame):
        X = pd.DataFrame(X)
        X.columns = [f"x{i}" for i in range(X.shape[1])]
    if pd is None:
        raise StewardError("input_example needs pandas (pip install 'steward-sdk[pandas]').")
    head = X.head(rows)
    data = [[_clean(v) for v in row] for row in head.astype(object).itertuples(index=False)]
    return json.dumps({"columns": [str(c) for c in head.columns], "dtypes": [str(t) for t in head.dtypes],
                       "data": data}, allow_nan=False).encode()


def records_json(records: Any) -> list[dict[str, Any]]:
    """Records as JSON-ready dicts: a DataFrame becomes its rows; NaN becomes null."""
    if hasattr(records, "to_dict") and hasattr(records, "columns"):
        records = records.to_dict("records")
    if isinstance(records, dict):
        records = [records]
    return [{str(k): _clean(v) for k, v in row.items()} for row in records]


def register(request: Callable[..., Any], *, project: str, name: str, run_id: str, artifact_path: str,
              description: str, pii_columns: list[str] | None, wait: bool, timeout: float) -> ModelVersion:
    body: dict[str, Any] = {"run_id": run_id, "artifact_path": artifact_path, "description": description}
    if pii_columns:
        body["pii_columns"] = list(pii_columns)
    version = request("POST", f"{_model_url(project, name)}/versions/", json_body=body)
    if wait:
        deadline = time.monotonic() + timeout
        job_id = version.get("check_job_id")
        while job_id is not None:
            job = request("GET", f"/api/v1/jobs/{job_id}/")
            if job["status"] in FINAL_STATUSES:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"The checks of {name} v{version['version']} are still {job['status']} "
                                   f"after {timeout}s.")
            time.sleep(0.5)
        version = request("GET", f"{_model_url(project, name)}/versions/{version['version']}/")
    return ModelVersion(version)


class ClientRegistry(ClientBase):
    """Registry and serving calls of :class:`~steward.Client`."""

    def _run_project(self, run_id: str) -> str:
        return self._json("GET", f"/api/v1/runs/{quote(str(run_id), safe='')}/")["project"]

    def register_model(self, run_id: str, name: str, artifact_path: str = "model", *,
                       project: str | None = None, description: str = "",
                       pii_columns: list[str] | None = None, wait: bool = True,
                       timeout: float = 600.0) -> ModelVersion:
        """Register the model file a run stored at ``artifact_path`` as the next version of ``name``.

        The model is created if new. With ``wait`` this returns once the server's
        checks ended (``version.status`` is then ready or failed, ``version.runtime``
        says whether ONNX Runtime or scikit-learn serves it); otherwise at once,
        pending checks. A pickle/joblib file fails its checks on a server with pickles
        off (the default; log the model with ``run.log_model``, which writes skops);
        where they are on, it stays pending until an instance administrator trusts
        its sha256.
        """
        return register(self._json, project=project or self._run_project(run_id), name=name,
                         run_id=str(run_id), artifact_path=artifact_path, description=description,
                         pii_columns=pii_columns, wait=wait, timeout=timeout)

    def get_model_version(self, project: str, model: str, version_or_alias: int | str) -> ModelVersion:
        """One version by number or by the alias pointing at it now."""
        return ModelVersion(self._json(
            "GET", f"{_model_url(project, model)}/versions/{_path(version_or_alias)}/"))

    def set_alias(self, project: str, model: str, alias: str, version: int) -> dict[str, Any]:
        """Point ``alias`` at ``version``. Protected aliases (champion, production) are refused
        with :class:`~steward.errors.PermissionDeniedError`: they move only through an approval."""
        return self._json("PUT", f"{_model_url(project, model)}/aliases/{_path(alias)}/",
                          json_body={"version": int(version)})

    def predict(self, project: str, model: str, alias_or_version: int | str, records: Any,
                request_id: str | None = None) -> dict[str, Any]:
        """Score records (a list of dicts or a DataFrame) with the version an alias names now.

        Returns ``{"predictions", "probabilities" (classifiers), "model_version", "request_id"}``.
        ``request_id`` (a UUID) names the request for labels sent later; the server makes one
        when it is left out. Reusing one marks a retry of the same request: monitoring keeps
        the first record logged under it.
        """
        headers = {"X-Request-ID": str(request_id)} if request_id is not None else None
        return self._json("POST", f"/api/v1/serve/{_path(project, model, alias_or_version)}/predict",
                          json_body={"records": records_json(records)}, headers=headers)

    def score_dataset(self, project: str, model: str, version_or_alias: int | str,
                      dataset_version_id: int) -> Job:
        """Queue a batch-scoring job; its result names the dataset version holding the scores."""
        url = f"{_model_url(project, model)}/versions/{_path(version_or_alias)}/batch-score/"
        return Job(self._json("POST", url, json_body={"dataset_version_id": int(dataset_version_id)}))


def model_store(log_bytes: Callable[..., Any], model: Any, folder: str, input_example: Any) -> Any:
    """Store a fitted model as ``<folder>/model.skops`` (and its input example) through ``log_bytes``.

    Returns what ``log_bytes`` returned for the model file: None when it went to the spool.
    """
    try:
        import skops.io
    except ImportError:
        raise StewardError("log_model needs skops: pip install 'steward-sdk[sklearn]'.") from None
    stored = log_bytes(skops.io.dumps(model), f"{folder}/model.skops", "application/octet-stream")
    if input_example is not None:
        log_bytes(example_json(input_example), f"{folder}/input_example.json", "application/json")
    return stored
