"""The synchronous client: read runs, metrics and artifacts; the lower-level write calls."""

from __future__ import annotations

import hashlib
import math
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from steward._analyses import ClientAnalyses
from steward._datasets import ClientDatasets, Job
from steward._monitoring import ClientMonitoring
from steward._promotions import ClientPromotions
from steward._registry import ClientRegistry
from steward.errors import AmbiguousIdError, NotFoundError, StewardError
from steward.keys import metric_value, param_text
from steward.options import RunOptions, with_run_options
from steward.spool import Spool, SyncReport, artifact_url, sync

if TYPE_CHECKING:
    from steward.run import Run

_PREFIX_RE = re.compile(r"^[0-9a-fA-F][0-9a-fA-F-]{3,35}\Z")
_NON_FINITE_IN = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def float_in(value: Any) -> float:
    """A metric value from the server: the strings NaN/Infinity/-Infinity become floats again."""
    if isinstance(value, str):
        return _NON_FINITE_IN.get(value, math.nan)
    return float(value)


def artifact_path_check(path: str) -> str:
    """A relative POSIX artifact path without '..'; the server refuses anything else too."""
    clean = str(path).replace("\\", "/").strip("/")
    parts = PurePosixPath(clean).parts
    if not clean or "\x00" in clean or any(p in ("..", ".") for p in parts) or str(path).startswith("/"):
        raise ValueError(f"Artifact path {path!r} must be a relative path without '..'.")
    return "/".join(parts)


@dataclass
class StoredRun:
    """A run as the server stores it.

    ``params`` and ``tags`` map keys to strings, ``metrics`` maps each metric
    key to its latest value (NaN/Infinity as floats), ``metric_details`` adds
    each latest value's step and timestamp, and ``info`` holds everything else
    the server said (id, name, project, experiment, status, start/end time,
    author, notes, error, seed, source, parent_run_id).

    Attributes:
        id: The run's id.
        status: ``RUNNING``, ``FINISHED``, ``FAILED`` or ``KILLED``.
        params: Param key to stored text.
        metrics: Metric key to its latest value.
        metric_details: Metric key to ``{"value", "step", "timestamp"}`` of its latest point.
        tags: Tag key to value.
        info: Every other field of the server's answer.
    """

    id: str
    status: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    metric_details: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The run's name ("" when it has none)."""
        return self.info.get("name", "")

    @property
    def experiment(self) -> str:
        """The experiment's name."""
        return self.info.get("experiment", "")

    @property
    def project(self) -> str:
        """The project's slug."""
        return self.info.get("project", "")

    @property
    def parent_run_id(self) -> str | None:
        """The parent run's id (a nested run's, see ``start_run(nested=True)``), or None."""
        return self.info.get("parent_run_id")

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> StoredRun:
        """Build a StoredRun from the server's JSON for a run."""
        metrics_raw = body.get("metrics") or {}
        details = {
            key: {**point, "value": float_in(point.get("value"))} for key, point in metrics_raw.items()
        }
        info = {k: v for k, v in body.items() if k not in ("params", "metrics", "tags")}
        return cls(
            id=str(body["id"]),
            status=body.get("status", ""),
            params=dict(body.get("params") or {}),
            metrics={k: d["value"] for k, d in details.items()},
            metric_details=details,
            tags=dict(body.get("tags") or {}),
            info=info,
        )


class Client(ClientDatasets, ClientRegistry, ClientPromotions, ClientAnalyses, ClientMonitoring):
    """Talks to one Steward server as one identity.

    ``Client()`` uses the configured URL and token (see :func:`steward.configure`);
    ``Client(url=..., token=...)`` gives another identity in the same script.
    Use it as a context manager, or call :meth:`close`. Every method raises
    an :class:`~steward.errors.ApiError` subclass, with the server's message,
    when the server refuses the request.

    Args:
        url: Server URL; default: the configured one.
        token: API token; default: the configured one.
        project: Default project for calls that take ``project=None``.
        **settings: Any other setting :func:`steward.configure` takes.
    """

    # Identity and projects

    def me(self) -> dict[str, Any]:
        """Who the token belongs to: ``{"username", "is_staff"}``."""
        return self._json("GET", "/api/v1/me/")

    def get_project(self, slug: str) -> dict[str, Any]:
        """A project you can see: ``{"slug", "name", "description", "role", ...}``."""
        return self._json("GET", f"/api/v1/projects/{slug}/")

    def create_project(self, slug: str, name: str | None = None, description: str = "") -> dict[str, Any]:
        """Create a project; you become its owner."""
        return self._json("POST", "/api/v1/projects/",
                          json_body={"slug": slug, "name": name or slug, "description": description})

    # Experiments

    def list_experiments(self, project: str | None = None) -> list[dict[str, Any]]:
        """The experiments of a project: ``[{"id", "name", "description", "created_at"}]``."""
        slug = quote(self._project(project), safe="")
        return self._json("GET", f"/api/v1/projects/{slug}/experiments/")["experiments"]

    def create_experiment(self, name: str, project: str | None = None,
                          description: str = "") -> dict[str, Any]:
        """Create an experiment; :class:`~steward.errors.ConflictError` if the name is taken."""
        slug = quote(self._project(project), safe="")
        return self._json("POST", f"/api/v1/projects/{slug}/experiments/",
                          json_body={"name": name, "description": description})

    def get_experiment_by_name(self, name: str, project: str | None = None) -> dict[str, Any] | None:
        """The experiment called ``name``, or None (also None while it is in the trash)."""
        return next((e for e in self.list_experiments(project) if e["name"] == name), None)

    def delete_experiment(self, experiment_id: int, project: str | None = None) -> dict[str, Any]:
        """Move an experiment and its runs to the trash (as ``MlflowClient.delete_experiment``).

        They leave tables and search, and can be restored until the server's purge
        removes them after its retention period (``TRASH_RETENTION_DAYS``).
        """
        slug = quote(self._project(project), safe="")
        return self._json("DELETE", f"/api/v1/projects/{slug}/experiments/{int(experiment_id)}/")

    def restore_experiment(self, experiment_id: int, project: str | None = None) -> dict[str, Any]:
        """Take an experiment out of the trash, with the runs that went there with it."""
        slug = quote(self._project(project), safe="")
        return self._json("POST", f"/api/v1/projects/{slug}/experiments/{int(experiment_id)}/restore/")

    # Runs

    @with_run_options
    def start_run(self, *args: Any, **options: Any) -> Run:
        """Start a run logged through this client's server and identity.

        Takes the same arguments as :func:`steward.start_run` (the fields of
        :class:`~steward.options.RunOptions`); ``project`` defaults to this
        client's project.
        """
        from steward.run import Run

        return Run(self.settings, RunOptions.from_call(args, options))

    def create_run(
        self,
        project: str | None,
        experiment: str,
        *,
        run_id: str | None = None,
        name: str = "",
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        source: dict[str, Any] | None = None,
        seed: int | None = None,
        notes: str = "",
        parent_run_id: str | None = None,
    ) -> StoredRun:
        """Create a run synchronously, without a background sender (see :meth:`start_run` for that).

        With ``run_id`` (a UUID) a repeat returns the same run. Tag values are
        stored as :func:`steward.keys.param_text` makes them.
        """
        body: dict[str, Any] = {
            "experiment": experiment,
            "id": run_id or str(uuid.uuid4()),
            "name": name or "",
            "start_time": start_time if start_time is not None else int(time.time() * 1000),
            "tags": {str(k): param_text(v) for k, v in (tags or {}).items()},
            "notes": notes or "",
        }
        if parent_run_id:
            body["parent_run_id"] = str(parent_run_id)
        if source:
            body["source"] = source
        if seed is not None:
            body["seed"] = int(seed)
        return StoredRun.from_json(
            self._json("POST", f"/api/v1/projects/{self._project(project)}/runs/", json_body=body)
        )

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        name: str | None = None,
        notes: str | None = None,
        error: str | None = None,
    ) -> StoredRun:
        """Change a run's status (RUNNING, FINISHED, FAILED, KILLED), end time, name, notes or error."""
        body = {k: v for k, v in {"status": status, "end_time": end_time, "name": name,
                                  "notes": notes, "error": error}.items() if v is not None}
        return StoredRun.from_json(self._json("PATCH", f"/api/v1/runs/{run_id}/", json_body=body))

    def delete_run(self, run_id: str) -> StoredRun:
        """Move a run to the trash (as ``MlflowClient.delete_run``); :meth:`restore_run` brings it back.

        ``run_id`` may be a unique prefix of the id.
        """
        run_id = self.run_id_for(run_id)
        return StoredRun.from_json(self._json("DELETE", f"/api/v1/runs/{run_id}/"))

    def restore_run(self, run_id: str) -> StoredRun:
        """Take a run out of the trash; its experiment must not be in the trash itself."""
        run_id = self.run_id_for(run_id)
        return StoredRun.from_json(self._json("POST", f"/api/v1/runs/{run_id}/restore/"))

    def log_batch(
        self,
        run_id: str,
        *,
        params: dict[str, Any] | None = None,
        metrics: list[dict[str, Any]] | None = None,
        tags: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, int]:
        """Send params, metric points (``{"key", "value", "step", "timestamp"}``) and tags at once.

        Stored whole or not at all; the same ``idempotency_key`` again stores
        nothing. Param and tag values are sent as :func:`steward.keys.param_text`
        makes them; a metric value must be a real number.

        Returns:
            How many of each were stored: ``{"params", "metrics", "tags"}``.
        """
        body = {
            "params": [{"key": k, "value": param_text(v)} for k, v in (params or {}).items()],
            "metrics": [{**m, "value": metric_value(m["value"], str(m.get("key")))} for m in (metrics or [])],
            "tags": [{"key": k, "value": param_text(v)} for k, v in (tags or {}).items()],
        }
        return self._json("POST", f"/api/v1/runs/{run_id}/batch/", json_body=body,
                          headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())})

    def get_run(self, run_id: str) -> StoredRun:
        """A run with its params, latest metrics, tags, status and info.

        Args:
            run_id: The run's id, or a unique prefix of it (at least 4
                characters, e.g. the 8 that ``steward runs list`` prints).

        Raises:
            NotFoundError: no run you can see has this id or prefix.
            AmbiguousIdError: the prefix fits several runs (they are listed).
        """
        return StoredRun.from_json(self._json("GET", f"/api/v1/runs/{self.run_id_for(run_id)}/"))

    def run_id_for(self, id_or_prefix: str, project: str | None = None) -> str:
        """The full id of the run that ``id_or_prefix`` names (a full id is returned as it is).

        Args:
            id_or_prefix: A run id or a unique prefix of one (at least 4 hex characters).
            project: Look only in this project; default: every project you can see.

        Raises:
            NotFoundError: no run you can see starts with the prefix.
            AmbiguousIdError: several do; ``.candidates`` lists them.
        """
        text = str(id_or_prefix).strip()
        try:
            return str(uuid.UUID(text))
        except ValueError:
            pass
        if not _PREFIX_RE.fullmatch(text):
            raise NotFoundError(404, "not_found", f"No run {text!r}: give a run id or at least 4 of its "
                                f"first characters.", {"run_id": "not a run id or prefix"})
        params = {"prefix": text}
        if project:
            params["project"] = project
        found = self._json("GET", "/api/v1/runs/", params=params)["runs"]
        if not found:
            raise NotFoundError(404, "not_found", f"No run you can see has an id starting with {text!r}.",
                                {"run_id": "no match"})
        if len(found) > 1:
            raise AmbiguousIdError(text, [
                f"{r['id']}  {r['project']}/{r['experiment']}  {r['name'] or '-'}  {r['status']}"
                for r in found
            ])
        return found[0]["id"]

    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[dict[str, Any]]:
        """Every point of one metric, ordered by step: ``[{"step", "value", "timestamp"}]``.

        With ``max_points`` the server downsamples long series (keeping each
        bucket's minimum and maximum).
        """
        params: dict[str, Any] = {"key": key}
        if max_points is not None:
            params["max_points"] = max_points
        body = self._json("GET", f"/api/v1/runs/{run_id}/metrics/history/", params=params)
        return [
            {"step": p["step"], "value": float_in(p["value"]), "timestamp": p["timestamp"]}
            for p in body.get("points", [])
        ]

    def search_runs(
        self,
        project: str | None = None,
        experiment: str | list[str] | None = None,
        filter: str | None = None,  # noqa: A002 - the API's own name
        order_by: str | list[str] | None = None,
        max_results: int = 100,
        view_type: str = "active_only",
    ) -> list[StoredRun]:
        """Runs of a project matching ``filter``.

        Args:
            project: Project slug; default: this client's project.
            experiment: One experiment name or a list of them; default: all.
            filter: e.g. ``"metrics.acc > 0.9 and params.lr = '0.01'"``, with ``OR`` and
                parentheses; a param compared with a number compares as a number
                (``params.C > 0.5``).
            order_by: One or more of e.g. ``"metrics.acc DESC"``.
            max_results: Pages are followed until this many runs are collected.
            view_type: ``"active_only"`` (default), ``"deleted_only"`` (the trash) or ``"all"``.

        Returns:
            The runs, each with its params, latest metrics and tags.
        """
        slug = self._project(project)
        experiments = [experiment] if isinstance(experiment, str) else list(experiment or [])
        orders = [order_by] if isinstance(order_by, str) else list(order_by or [])
        runs: list[StoredRun] = []
        token = None
        while len(runs) < max_results:
            params: list[tuple[str, Any]] = [("max_results", min(1000, max_results - len(runs)))]
            if view_type != "active_only":
                params.append(("view_type", view_type))
            params.extend(("experiment", name) for name in experiments)
            if filter:
                params.append(("filter", filter))
            params.extend(("order_by", o) for o in orders)
            if token:
                params.append(("page_token", token))
            body = self._json("GET", f"/api/v1/projects/{slug}/runs/search/", params=params)
            runs.extend(StoredRun.from_json(r) for r in body.get("runs", []))
            token = body.get("next_page_token")
            if not token or not body.get("runs"):
                break
        return runs[:max_results]

    def search_runs_df(
        self,
        project: str | None = None,
        experiment: str | list[str] | None = None,
        filter: str | None = None,  # noqa: A002 - the API's own name
        order_by: str | list[str] | None = None,
        max_results: int = 100,
        view_type: str = "active_only",
    ):
        """:meth:`search_runs` as a pandas DataFrame (needs pandas).

        One row per run: ``run_id``, ``experiment``, ``name``, ``status``,
        ``start_time``, ``end_time``, ``parent_run_id``, then ``params.<key>``,
        ``metrics.<key>`` (latest values) and ``tags.<key>`` columns.
        """
        import pandas as pd

        rows = []
        for run in self.search_runs(project, experiment, filter, order_by, max_results, view_type):
            row: dict[str, Any] = {
                "run_id": run.id, "experiment": run.experiment, "name": run.name, "status": run.status,
                "start_time": pd.Timestamp(run.info["start_time"]) if run.info.get("start_time") else None,
                "end_time": pd.Timestamp(run.info["end_time"]) if run.info.get("end_time") else None,
                "parent_run_id": run.parent_run_id,
            }
            row.update({f"params.{k}": v for k, v in run.params.items()})
            row.update({f"metrics.{k}": v for k, v in run.metrics.items()})
            row.update({f"tags.{k}": v for k, v in run.tags.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    # Artifacts

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike, artifact_path: str | None = None
    ) -> dict:
        """Upload one file to ``artifact_path/<file name>`` of a run (streamed, not read whole)."""
        local = Path(local_path)
        if not local.is_file():
            raise FileNotFoundError(f"No file at {local}")
        dest = f"{artifact_path.strip('/')}/{local.name}" if artifact_path else local.name
        dest = artifact_path_check(dest)
        return self.put_artifact(run_id, dest, local)

    def put_artifact(
        self, run_id: str, path: str, data: bytes | Path, content_type: str | None = None
    ) -> dict:
        """Store bytes or a file's content at an exact artifact path."""
        import mimetypes

        path = artifact_path_check(path)
        ctype = content_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
        return self._json("PUT", artifact_url(run_id, path), body=data, headers={"Content-Type": ctype})

    def list_artifacts(self, run_id: str, path: str = "", recursive: bool = False) -> list[dict[str, Any]]:
        """The files (and, unless ``recursive``, folders) under ``path``.

        Returns:
            ``[{"path", "is_dir", "size", "sha256"}]``.
        """
        params: dict[str, Any] = {"path": path}
        if recursive:
            params["recursive"] = 1
        return self._json("GET", f"/api/v1/runs/{run_id}/artifacts/", params=params).get("files", [])

    def download_artifact(self, run_id: str, path: str, dest_dir: str | os.PathLike = ".") -> Path:
        """Download one artifact file to ``dest_dir/<path>`` (streamed, sha256 checked).

        Returns:
            The local file's path.
        """
        path = artifact_path_check(path)
        target = Path(dest_dir) / path
        response = self._transport.request("GET", artifact_url(run_id, path), stream=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        tmp = target.with_name(f".{target.name}.part")
        try:
            with tmp.open("wb") as fh:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    fh.write(chunk)
                    digest.update(chunk)
            expected = response.headers.get("X-Checksum-Sha256") or response.headers.get("X-Sha256")
            if expected and expected.lower() != digest.hexdigest():
                raise StewardError(f"Artifact {path} arrived damaged (sha256 mismatch).")
            os.replace(tmp, target)
        finally:
            response.close()
            tmp.unlink(missing_ok=True)
        return target

    def download_artifacts(self, run_id: str, path: str = "", dest_dir: str | os.PathLike = ".") -> Path:
        """Download every file under an artifact folder (or one file), keeping the layout.

        Returns:
            The local path of what ``path`` names: ``dest_dir/<path>`` (``dest_dir``
            itself for the whole run), as :meth:`download_artifact` does for one file.
        """
        files = [f for f in self.list_artifacts(run_id, path, recursive=True) if not f.get("is_dir")]
        if not files and path:
            return self.download_artifact(run_id, path, dest_dir)  # a file, not a folder
        for f in files:
            self.download_artifact(run_id, f["path"], dest_dir)
        folder = Path(dest_dir) / artifact_path_check(path) if path else Path(dest_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # Jobs

    def get_job(self, job_id: int) -> dict[str, Any]:
        """A background job: ``{"id", "kind", "status", "progress", "message", "result", "error", ...}``."""
        return Job(self._json("GET", f"/api/v1/jobs/{job_id}/"))

    def wait_for_job(self, job_id: int, timeout: float = 600.0, poll: float = 1.0) -> dict[str, Any]:
        """Poll a job until it succeeds, fails or is cancelled; raises TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"Job {job_id} is still {job['status']} after {timeout}s.")
            time.sleep(poll)

    # Spool

    def sync(self) -> SyncReport:
        """Send what earlier runs left in the spool for this server (what ``steward sync`` does)."""
        return sync(Spool(self.settings.spool_dir, self.settings.url), self._transport)
