"""Steward's Python client: log runs from training scripts.

    import steward

    with steward.start_run(project="credit", experiment="baseline") as run:
        run.log_param("lr", 0.01)
        for step in range(100):
            run.log_metric("loss", 1 / (step + 1), step=step)

Logging calls return at once; a background thread sends batches, retries
what fails and keeps what cannot be sent in an on-disk spool. See docs/sdk.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"

from steward.capture import seed_everything  # noqa: E402
from steward.client import Client, StoredRun  # noqa: E402
from steward.config import configure, reset_configuration  # noqa: E402
from steward.errors import (  # noqa: E402
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServerUnavailableError,
    StewardError,
)
from steward.run import InvalidInputError, Run, active_run, open_runs  # noqa: E402
from steward.spool import SyncReport  # noqa: E402

__all__ = [
    "ApiError", "AuthenticationError", "Client", "ConfigurationError", "ConflictError",
    "InvalidInputError", "InvalidRequestError", "NotFoundError", "PayloadTooLargeError",
    "PermissionDeniedError", "Run", "ServerUnavailableError", "StewardError", "StoredRun",
    "SyncReport", "active_run", "configure", "end_run", "flush", "log_artifact", "log_artifacts",
    "log_metric", "log_metrics", "log_param", "log_params", "reset_configuration",
    "seed_everything", "set_tag", "set_tags", "start_run", "sync",
]


def start_run(
    project: str | None = None,
    experiment: str | None = None,
    name: str | None = None,
    tags: dict[str, Any] | None = None,
    *,
    notes: str | None = None,
    seed: int | None = None,
    capture: bool = True,
    system_metrics: float | None = None,
    run_id: str | None = None,
    url: str | None = None,
    token: str | None = None,
) -> Run:
    """Start a run and return it; use it as a context manager to end it.

    ``project`` defaults to the configured project and ``experiment`` (created
    if missing) to "Default". With ``capture`` the run records the git commit,
    branch, dirty flag and diff, the entry point and its arguments, host,
    Python version and installed packages. ``system_metrics=N`` samples CPU
    and memory every N seconds (needs psutil). ``seed`` (or an earlier
    :func:`seed_everything`) is stored as the run's seed.

    If the server cannot be reached the run still starts, with a client-side
    id, and everything goes to the spool until the server answers again or
    ``steward sync`` runs. A 4xx answer (no such project, no permission, bad
    token) raises at once.
    """
    client = Client(url=url, token=token)
    try:
        return client.start_run(
            project, experiment, name, tags, notes=notes, seed=seed, capture=capture,
            system_metrics=system_metrics, run_id=run_id,
        )
    finally:
        client.close()


def _active() -> Run:
    run = active_run()
    if run is None:
        raise StewardError("No active run: start one with steward.start_run().")
    return run


def end_run(status: str = "FINISHED") -> None:
    """End the innermost active run (what leaving its ``with`` block does)."""
    _active().end(status)


def flush(timeout: float | None = None) -> None:
    """Block until every open run's logged data is on the server (or in the spool)."""
    for run in open_runs():
        run.flush(timeout)


def log_param(key: str, value: Any) -> None:
    """Log a param to the active run."""
    _active().log_param(key, value)


def log_params(params: dict[str, Any]) -> None:
    """Log params to the active run."""
    _active().log_params(params)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric point to the active run."""
    _active().log_metric(key, value, step)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log several metric points to the active run."""
    _active().log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    _active().set_tag(key, value)


def set_tags(tags: dict[str, Any]) -> None:
    """Set tags on the active run."""
    _active().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> dict[str, Any] | None:
    """Upload a file to the active run."""
    return _active().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> list[dict[str, Any] | None]:
    """Upload a folder to the active run."""
    return _active().log_artifacts(local_dir, artifact_path)


def sync(url: str | None = None, token: str | None = None) -> SyncReport:
    """Send what the spool holds for the configured server (``steward sync`` in code)."""
    with Client(url=url, token=token) as client:
        return client.sync()
