"""Steward's Python client: log runs from training scripts.

    import steward

    with steward.start_run(project="credit", experiment="baseline") as run:
        run.log_param("lr", 0.01)
        for step in range(100):
            run.log_metric("loss", 1 / (step + 1), step=step)

    steward.set_experiment("baseline")      # or, as with MLflow, without a `with` block:
    steward.log_metric("acc", 0.93)         # starts a run; the script's end (or end_run) ends it

Logging calls return at once; a background thread sends batches, retries
what fails and keeps what cannot be sent in an on-disk spool. See docs/sdk.md.
"""

from __future__ import annotations

__version__ = "0.1.0"

from steward.capture import seed_everything  # noqa: E402
from steward.client import Client, StoredRun  # noqa: E402
from steward.config import configure, reset_configuration  # noqa: E402
from steward.errors import (  # noqa: E402
    AmbiguousIdError,
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    InvalidRequestError,
    InvalidTypeError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServerUnavailableError,
    StewardError,
)
from steward.fluent import (  # noqa: E402
    active_run,
    autolog,
    end_run,
    flush,
    get_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    open_runs,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    start_run,
    sync,
)
from steward.keys import param_text  # noqa: E402
from steward.options import RunOptions  # noqa: E402
from steward.run import Run, RunInfo  # noqa: E402
from steward.spool import SyncReport  # noqa: E402

__all__ = [
    "AmbiguousIdError", "ApiError", "AuthenticationError", "Client", "ConfigurationError", "ConflictError",
    "InvalidInputError", "InvalidRequestError", "InvalidTypeError", "NotFoundError", "PayloadTooLargeError",
    "PermissionDeniedError", "Run", "RunInfo", "RunOptions", "ServerUnavailableError", "StewardError",
    "StoredRun", "SyncReport", "active_run", "autolog", "configure", "end_run", "flush", "get_run",
    "log_artifact", "log_artifacts", "log_dict", "log_figure", "log_image", "log_metric", "log_metrics",
    "log_param", "log_params", "log_text", "open_runs", "param_text", "reset_configuration",
    "search_runs", "seed_everything", "set_experiment", "set_tag", "set_tags", "start_run", "sync",
]
