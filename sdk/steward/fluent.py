"""The module-level calls: ``steward.log_metric(...)`` and friends act on the active run, as MLflow's do.

A logging call made while no run is open starts one (in the configured
project and experiment) and it stays the active run until
:func:`end_run` or the end of the script, which ends it FINISHED (FAILED if
the script died of an exception).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from steward import _active, config
from steward._connection import project_ensure
from steward.client import Client, StoredRun
from steward.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ServerUnavailableError,
)
from steward.options import with_run_options
from steward.run import Run
from steward.spool import SyncReport

log = logging.getLogger("steward")

# The server's limit (MLflow's too).
EXPERIMENT_NAME_MAX = 500


@with_run_options
def start_run(*args: Any, url: str | None = None, token: str | None = None, **options: Any) -> Run:
    """Start a run and return it; use it as a context manager to end it.

    Takes the fields of :class:`~steward.options.RunOptions`: ``project``,
    ``experiment``, ``name``, ``tags`` (also by position), then by keyword
    MLflow's ``run_name``, ``description``, ``nested``, ``parent_run_id``,
    ``run_id`` (resume) and ``log_system_metrics``, and Steward's ``notes``,
    ``system_metrics``, ``seed``, ``capture`` and ``capture_git``. ``url`` and
    ``token`` log as another identity than the configured one.

    If the server cannot be reached the run still starts, with a client-side
    id, and everything goes to the spool until the server answers again or
    ``steward sync`` runs. A 4xx answer (no permission, bad token, a project
    that cannot be created) raises at once.

    Examples:
        >>> with steward.start_run(experiment="baseline", run_name="lr 0.01") as run:
        ...     run.log_param("lr", 0.01)
        ...     with steward.start_run(run_name="fold 1", nested=True) as child:
        ...         child.log_metric("acc", 0.91)
    """
    client = Client(url=url, token=token)
    try:
        return client.start_run(*args, **options)
    finally:
        client.close()


def active_run() -> Run | None:
    """The innermost run started and not yet ended in this process, or ``None``."""
    return _active.active_run()


def open_runs() -> list[Run]:
    """Every run started and not yet ended in this process, oldest first."""
    return _active.open_runs()


def _run() -> Run:
    """The active run, or a new one as MLflow starts for a logging call made without one."""
    run = _active.active_run()
    if run is None:
        run = start_run()
        log.info("steward: started run %s (%s/%s) for a call made without an active run; "
                 "steward.end_run() ends it.", run.id, run.project, run.experiment)
    return run


def end_run(status: str = "FINISHED") -> None:
    """End the active run (what leaving its ``with`` block does); nothing happens without one.

    Args:
        status: ``FINISHED``, ``FAILED`` or ``KILLED``.
    """
    run = _active.active_run()
    if run is not None:
        run.end(status)


def flush(timeout: float | None = None) -> None:
    """Block until every open run's logged data is on the server (or in the spool)."""
    for run in _active.open_runs():
        run.flush(timeout)


def log_param(key: str, value: Any) -> None:
    """Log a param to the active run (see :meth:`Run.log_param`); starts a run if none is active."""
    _run().log_param(key, value)


def log_params(params: dict[str, Any]) -> None:
    """Log params to the active run (see :meth:`Run.log_params`); starts a run if none is active."""
    _run().log_params(params)


def log_metric(key: str, value: float, step: int | None = None, *, timestamp: int | None = None) -> None:
    """Log a metric point to the active run (see :meth:`Run.log_metric`); starts a run if none is active."""
    _run().log_metric(key, value, step, timestamp=timestamp)


def log_metrics(metrics: dict[str, float], step: int | None = None, *, timestamp: int | None = None) -> None:
    """Log metric points to the active run (see :meth:`Run.log_metrics`); starts a run if none is active."""
    _run().log_metrics(metrics, step, timestamp=timestamp)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run; starts a run if none is active."""
    _run().set_tag(key, value)


def set_tags(tags: dict[str, Any]) -> None:
    """Set tags on the active run; starts a run if none is active."""
    _run().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> dict[str, Any] | None:
    """Upload a file to the active run (see :meth:`Run.log_artifact`); starts a run if none is active."""
    return _run().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> list[dict[str, Any] | None]:
    """Upload a folder to the active run (see :meth:`Run.log_artifacts`); starts a run if none is active."""
    return _run().log_artifacts(local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> dict[str, Any] | None:
    """Store text as an artifact of the active run (see :meth:`Run.log_text`)."""
    return _run().log_text(text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str) -> dict[str, Any] | None:
    """Store a dict as JSON or YAML in the active run (see :meth:`Run.log_dict`)."""
    return _run().log_dict(dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> dict[str, Any] | None:
    """Store a matplotlib or Plotly figure in the active run (see :meth:`Run.log_figure`)."""
    return _run().log_figure(figure, artifact_file)


def log_image(image: Any, artifact_file: str) -> dict[str, Any] | None:
    """Store a NumPy array or Pillow image in the active run (see :meth:`Run.log_image`)."""
    return _run().log_image(image, artifact_file)


def set_experiment(experiment_name: str, *, project: str | None = None) -> dict[str, Any]:
    """Make ``experiment_name`` the experiment of the runs started from now on, creating it if missing.

    Args:
        experiment_name: The experiment's name (1-500 characters).
        project: Also make this the default project (created if missing,
            when the server lets you create projects).

    Returns:
        ``{"id", "name", "description", "project", ...}``; ``id`` is None
        while the server cannot be reached (the experiment is then created
        with the first run that reaches it).
    """
    name = (experiment_name or "").strip() if isinstance(experiment_name, str) else ""
    if not name or len(name) > EXPERIMENT_NAME_MAX:
        raise InvalidInputError(
            f"An experiment name is 1-{EXPERIMENT_NAME_MAX} characters, got {experiment_name!r}."
        )
    config.configure(experiment=name, project=project)
    with Client() as client:
        slug = client._project(None)
        offline = {"id": None, "name": name, "description": "", "project": slug}
        if client.settings.offline:
            return offline
        try:
            try:
                experiment = client.create_experiment(name, slug)
            except NotFoundError:
                project_ensure(client.create_project, slug)
                experiment = client.create_experiment(name, slug)
        except ConflictError:
            experiment = client.get_experiment_by_name(name, slug)
        except ServerUnavailableError as exc:
            log.warning("steward: %s is unreachable (%s); experiment '%s' is created with the first run "
                        "that reaches it.", client.url, exc, name)
            return offline
    return {**(experiment or offline), "project": slug}


def get_run(run_id: str) -> StoredRun:
    """A run as the server stores it (see :meth:`Client.get_run`); ``run_id`` may be a unique prefix."""
    with Client() as client:
        return client.get_run(run_id)


def search_runs(
    *,
    filter_string: str = "",
    experiment_names: list[str] | None = None,
    order_by: str | list[str] | None = None,
    max_results: int = 1000,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    project: str | None = None,
    run_view_type: str = "active_only",
) -> Any:
    """Search the runs of a project, as ``mlflow.search_runs`` does.

    Args:
        filter_string: e.g. ``"metrics.acc > 0.9 and params.model = 'rf'"``.
        experiment_names: The experiments to search. Default: the one
            :func:`set_experiment` chose, else every experiment of the project.
        order_by: e.g. ``["metrics.acc DESC"]``.
        max_results: At most this many runs.
        output_format: ``"pandas"`` for a DataFrame (one row per run, with
            ``params.*``, ``metrics.*`` and ``tags.*`` columns; needs pandas)
            or ``"list"`` for :class:`~steward.client.StoredRun` objects.
        search_all_experiments: Ignore the experiment :func:`set_experiment` chose.
        project: Project slug; default: the configured project.
        run_view_type: ``"active_only"`` (default), ``"deleted_only"`` (the trash) or
            ``"all"``, as MLflow's ``ViewType`` names them (any case).
    """
    if output_format not in ("pandas", "list"):
        raise ValueError("output_format must be 'pandas' or 'list'.")
    with Client() as client:
        experiments = experiment_names
        if experiments is None and not search_all_experiments and client.settings.experiment:
            experiments = [client.settings.experiment]
        view_type = str(run_view_type).lower()
        if output_format == "pandas":
            return client.search_runs_df(project, experiments, filter_string or None, order_by, max_results,
                                         view_type)
        return client.search_runs(project, experiments, filter_string or None, order_by, max_results,
                                  view_type)


def autolog(**options: Any) -> None:
    """Turn on autologging for every supported library that is installed: today scikit-learn.

    Takes the options of :func:`steward.sklearn.autolog` (``log_models``,
    ``max_tuning_runs``, ``experiment``, ``project``, ``disable``).
    """
    try:
        import sklearn  # noqa: F401 - only to learn whether it is installed
    except ImportError:
        log.info("steward.autolog: no supported library is installed (scikit-learn).")
        return
    from steward import sklearn as steward_sklearn

    steward_sklearn.autolog(**options)


def sync(url: str | None = None, token: str | None = None) -> SyncReport:
    """Send what the spool holds for the configured server (``steward sync`` in code)."""
    with Client(url=url, token=token) as client:
        return client.sync()
