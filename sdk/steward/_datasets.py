"""Datasets and training jobs from the SDK.

    dv = client.create_dataset_version("credit", "loans", "loans.csv")   # or a DataFrame
    job = client.submit_training_job("credit", "baseline", {"dataset_version": dv.id, ...})
    job = client.wait_job(job.id, timeout=600)
    job.result["run_id"]

    with steward.start_run(experiment="manual") as run:
        run.log_dataset(df, "loans", role="train")

Files are streamed from disk; a DataFrame is written to a temporary Parquet
file first (CSV when pyarrow is missing), never held twice in memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from steward._base import ClientBase
from steward.transport import Transport

FINAL_STATUSES = ("succeeded", "failed", "cancelled")


class _Record(dict):
    """A server object that reads both as a dict and by attribute (``obj.id``, ``obj["id"]``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Job(_Record):
    """A background job: ``id``, ``kind``, ``status``, ``progress``, ``message``, ``result``, ``error``..."""

    @property
    def done(self) -> bool:
        return self["status"] in FINAL_STATUSES


class DatasetVersion(_Record):
    """A stored dataset version: ``id``, ``dataset``, ``version``, ``sha256``, ``row_count``..."""


@contextlib.contextmanager
def _upload_file(path_or_dataframe: Any) -> Iterator[tuple[Path, str | None]]:
    """A file to stream and its format (None lets the server detect it)."""
    if isinstance(path_or_dataframe, (str, os.PathLike)):
        path = Path(path_or_dataframe)
        if not path.is_file():
            raise FileNotFoundError(f"No file at {path}")
        yield path, "parquet" if path.suffix.lower() in (".parquet", ".pq") else None
        return
    if not hasattr(path_or_dataframe, "to_csv"):
        raise TypeError("Give a path to a CSV or Parquet file, or a pandas DataFrame.")
    with tempfile.TemporaryDirectory(prefix="steward-dataset-") as tmp:
        try:
            path = Path(tmp) / "data.parquet"
            path_or_dataframe.to_parquet(path, index=False)
            yield path, "parquet"
        except ImportError:
            path = Path(tmp) / "data.csv"
            path_or_dataframe.to_csv(path, index=False)
            yield path, "csv"


def upload_dataset(transport: Transport, project: str, name: str, path_or_dataframe: Any, *,
                   delimiter: str | None = None, encoding: str | None = None,
                   description: str | None = None) -> DatasetVersion:
    with _upload_file(path_or_dataframe) as (path, file_format):
        params = {"filename": path.name if isinstance(path_or_dataframe, (str, os.PathLike)) else ""}
        for key, value in (("file_format", file_format), ("delimiter", delimiter), ("encoding", encoding),
                           ("description", description)):
            if value:
                params[key] = value
        response = transport.request(
            "POST", f"/api/v1/projects/{quote(project, safe='')}/datasets/{quote(name, safe='')}/versions/",
            body=path, params=params, headers={"Content-Type": "application/octet-stream"},
        )
    return DatasetVersion(response.json())


class ClientDatasets(ClientBase):
    """Dataset and training-job methods of :class:`steward.Client`."""

    def create_dataset_version(self, project: str, name: str, path_or_dataframe: Any, *,
                               delimiter: str | None = None, encoding: str | None = None,
                               description: str | None = None) -> DatasetVersion:
        """Upload a CSV/Parquet file or a DataFrame as a version of dataset ``name``.

        Identical content returns the version that already holds it.
        """
        return upload_dataset(self._transport, self._project(project), name, path_or_dataframe,
                              delimiter=delimiter, encoding=encoding, description=description)

    def get_dataset_version(self, version_id: int) -> DatasetVersion:
        """A stored dataset version: ``id``, ``dataset``, ``version``, ``sha256``, ``row_count``..."""
        return DatasetVersion(self._json("GET", f"/api/v1/dataset-versions/{int(version_id)}/"))

    def set_dataset_columns(self, version_id: int, columns: dict[str, dict[str, Any]]) -> DatasetVersion:
        """Set column roles and PII flags: ``{"sex": {"role": "sensitive"}, "name": {"pii": True}}``."""
        return DatasetVersion(self._json("PATCH", f"/api/v1/dataset-versions/{int(version_id)}/columns/",
                                         json_body={"columns": columns}))

    def submit_training_job(self, project: str | None, experiment: str, spec: dict[str, Any]) -> Job:
        """Queue a training job; the spec is checked first and a bad one raises InvalidRequestError."""
        slug = quote(self._project(project), safe="")
        return Job(self._json("POST", f"/api/v1/projects/{slug}/training-jobs/",
                              json_body={"experiment": experiment, "spec": spec}))

    def rerun(self, run_id: str) -> Job:
        """Train again from the spec a run was made from."""
        return Job(self._json("POST", f"/api/v1/runs/{run_id}/rerun/"))

    def submit_sweep(self, project: str | None, experiment: str, spec: dict[str, Any],
                     search: dict[str, Any],
                     *, parallelism: int = 2, objective: str | None = None, goal: str | None = None,
                     name: str = "") -> dict[str, Any]:
        """A grid or random search: ``search={"strategy": "grid", "space": {"max_depth": [2, 4]}}``."""
        body: dict[str, Any] = {"experiment": experiment, "spec": spec, "search": search,
                                "parallelism": parallelism, "name": name}
        if objective:
            body["objective"] = objective
        if goal:
            body["goal"] = goal
        return self._json("POST", f"/api/v1/projects/{quote(self._project(project), safe='')}/sweeps/",
                          json_body=body)

    def get_sweep(self, sweep_id: int) -> dict[str, Any]:
        """A sweep: ``status``, ``progress``, ``best_run_id``, ``search``, ``spec``, ``leaderboard``."""
        return self._json("GET", f"/api/v1/sweeps/{int(sweep_id)}/")

    def wait_job(self, job_id: int, timeout: float = 600.0, poll: float = 1.0) -> Job:
        """Poll until the job succeeds, fails or is cancelled; TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            job = Job(self._json("GET", f"/api/v1/jobs/{int(job_id)}/"))
            if job.done:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"Job {job_id} is still {job['status']} after {timeout}s.")
            time.sleep(poll)

    def cancel_job(self, job_id: int) -> Job:
        """Cancel a queued or running job; a running fit stops within moments and leaves no run."""
        return Job(self._json("POST", f"/api/v1/jobs/{int(job_id)}/cancel/"))


def run_dataset_log(transport: Transport, *, project: str, run_id: str, path_or_dataframe: Any, name: str,
                    role: str, direction: str, delimiter: str | None,
                    encoding: str | None) -> DatasetVersion:
    """Upload (or find) a dataset version and record it as a run's input or output."""
    version = upload_dataset(transport, project, name, path_or_dataframe,
                             delimiter=delimiter, encoding=encoding)
    transport.request("POST", f"/api/v1/runs/{run_id}/datasets/",
                      json_body={"dataset_version": version["id"], "direction": direction, "role": role})
    return version
