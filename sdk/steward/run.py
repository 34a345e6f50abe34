"""A run being logged: calls check and buffer in the caller's thread, a background thread sends.

``log_metric`` only validates and appends to a buffer; the ``steward-sender``
thread (:mod:`steward._sender`) posts batches with a fresh Idempotency-Key.
Transient failures are retried with backoff; when the retry budget is spent
the batch goes to the on-disk spool and the run carries on offline
(:mod:`steward._connection`), replaying its spool once the server answers.
System metrics are sampled by a thread of their own (:mod:`steward._system`).
A refusal the server answered in the background is raised by the next call
made in the user's thread, and only there.
"""

from __future__ import annotations

import logging
import mimetypes
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steward import _active, _datasets, _media, _registry
from steward import capture as capture_module
from steward._connection import Connection, DeferredErrors
from steward._sender import Sender
from steward._system import SystemMetrics, sampling_interval
from steward.client import artifact_path_check
from steward.config import Settings
from steward.errors import ApiError, ConfigurationError, ConflictError, ServerUnavailableError, StewardError
from steward.keys import PARAM_VALUE_MAX, TAG_VALUE_MAX, key_check, metric_value, value_text
from steward.options import RunOptions
from steward.spool import SyncReport

log = logging.getLogger("steward")

RUN_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
DEFAULT_EXPERIMENT = "Default"

# Kept importable from here, where they used to live.
active_run = _active.active_run
open_runs = _active.open_runs


@dataclass(frozen=True)
class RunInfo:
    """What :attr:`Run.info` tells, under MLflow's names (``run.info.run_id``)."""

    run_id: str
    run_name: str
    project: str
    experiment: str
    status: str
    parent_run_id: str | None


class Run:
    """A run in progress: start one with :func:`steward.start_run`, end it with ``with`` or :meth:`end`.

    Leaving the ``with`` block ends the run FINISHED; an exception ends it
    FAILED (KILLED for Ctrl-C) with the traceback recorded as the run's error,
    and the exception propagates.

    Logging calls return at once. A refusal the server answered for data
    sent in the background (e.g. a param logged elsewhere with another value)
    is raised by the next call you make on the run, by :meth:`flush` or by
    :meth:`end` - always in your thread, never lost in a background one.

    Args:
        settings: Server, token and tuning, from :func:`steward.config.resolve`.
        options: The run's options; or give them as keyword arguments
            (see :class:`~steward.options.RunOptions`).

    Attributes:
        id: The run's id (a UUID chosen by the client, kept by the server).
        project: The project's slug.
        experiment: The experiment's name.
        name: The run's name.
        status: ``RUNNING`` until the run ends, then its final status.
        parent_run_id: The parent run's id, or ``None``.
        settings: The server, token and tuning this run logs with.
    """

    def __init__(self, settings: Settings, options: RunOptions | None = None, **option_values: Any) -> None:
        if options is None:
            options = RunOptions.from_call((), option_values)
        elif option_values:
            raise TypeError("Run() takes options or keyword options, not both.")
        parent = _active.active_run() if options.nested and options.parent_run_id is None else None
        # A nested run goes where its parent is unless told otherwise.
        project = options.project or (parent.project if parent else None) or settings.project
        if not project:
            raise ConfigurationError(
                "No project given: pass project=..., call steward.configure(project=...), "
                "set STEWARD_PROJECT or run `steward login --project ...`."
            )
        self.settings = settings
        self.id = options.run_id or str(uuid.uuid4())
        self.project = project
        self.experiment = (options.experiment or (parent.experiment if parent else None)
                           or settings.experiment or DEFAULT_EXPERIMENT)
        self.name = options.run_name or ""
        self.status = "RUNNING"
        self.parent_run_id = options.parent_run_id or (parent.id if parent else None)
        self._ended = False
        self._end_lock = threading.Lock()  # the user's thread and the exit hook may both end the run
        self._errors = DeferredErrors()
        self._pending_errors = self._errors.pending
        self._conn = Connection(settings, self.id, self._errors)
        self._sender = Sender(self._conn, batch_size=settings.batch_size,
                              flush_interval=settings.flush_interval)
        self._metrics = self._sender.metrics
        self._batch_size = settings.batch_size
        self._steps: dict[str, int] = {}
        self._step_lock = threading.Lock()
        self._valid_keys: set[str] = set()
        self._params_lock = threading.Lock()
        self._params: dict[str, str] = {}
        try:
            self._start(options)
        except BaseException:
            self._conn.close()
            raise
        self._sender.start()
        self._conn.start_sync()
        self._system: SystemMetrics | None = None
        interval = sampling_interval(options, settings)
        if interval:
            self._system = SystemMetrics(interval, self._sender.add_points)
            self._system.start()
        _active.push(self)

    def _start(self, options: RunOptions) -> None:
        resumed = self._find_run_to_resume(options) if options.run_id else None
        if resumed is not None:
            self._conn.mark_created()
            self.project, self.experiment = resumed["project"], resumed["experiment"]
            self.name = resumed.get("name") or ""
            self.parent_run_id = resumed.get("parent_run_id")
            self._params = dict(resumed.get("params") or {})
            # Keys logged before go on from their last step, as if the run had never stopped.
            self._steps = {k: int(p["step"]) for k, p in (resumed.get("metrics") or {}).items()}
            if options.tags:
                self._sender.add_tags(self._checked_tags(options.tags))
            return
        seed = options.seed if options.seed is not None else capture_module.current_seed()
        captured = (capture_module.capture(git=options.capture_git) if options.capture
                    else capture_module.Capture())
        body: dict[str, Any] = {
            "experiment": self.experiment,
            "id": self.id,
            "name": self.name,
            "start_time": int(time.time() * 1000),
            "tags": self._checked_tags(options.tags or {}),
            "notes": options.description or "",
        }
        if self.parent_run_id:
            body["parent_run_id"] = self.parent_run_id
        if captured.source:
            body["source"] = captured.source
        if seed is not None:
            body["seed"] = int(seed)
        self._conn.create_run(self.project, body)
        for path, data in captured.artifacts.items():
            self._sender.add_artifact(path, data, "text/plain")

    def _find_run_to_resume(self, options: RunOptions) -> dict[str, Any] | None:
        """The run ``run_id`` names, checked for resuming; None if there is none (it gets created).

        While the server cannot be asked, the run's creation is spooled as for
        any run: the server answers it with the existing run when project and
        experiment match, so a resume offline needs them given.
        """
        if not self._conn.online:
            return None
        try:
            found = self._conn.fetch_run()
        except ServerUnavailableError as exc:
            self._conn.go_offline(exc)
            return None
        if found is None:
            return None
        if found["status"] != "RUNNING":
            raise StewardError(
                f"Run {self.id} is {found['status']}: a run that ended cannot be resumed. "
                f"Start a new run (parent_run_id={self.id!r} links it to this one)."
            )
        for what in ("project", "experiment"):
            wanted = getattr(options, what)
            if wanted and wanted != found[what]:
                raise StewardError(f"Run {self.id} belongs to {what} '{found[what]}', not '{wanted}'.")
        return found

    def __repr__(self) -> str:
        return f"<steward.Run {self.id} {self.project}/{self.experiment} {self.status}>"

    @property
    def info(self) -> RunInfo:
        """The run's id, name, project, experiment, status and parent, under MLflow's names."""
        return RunInfo(self.id, self.name, self.project, self.experiment, self.status, self.parent_run_id)

    @property
    def spooled(self) -> int:
        """How many requests of this run went to the on-disk spool (0 while the server answers)."""
        return self._conn.spooled

    @property
    def sync_report(self) -> SyncReport | None:
        """What the background sync of earlier runs' spool did (None if there was nothing to send)."""
        return self._conn.sync_report

    # Checks shared by the logging calls (the user's thread)

    def _check(self) -> None:
        """Raise a refusal the server answered in the background, or refuse logging to an ended run."""
        if self._pending_errors:
            self._errors.raise_first()
        if self._ended:
            raise StewardError(f"Run {self.id} has ended; start a new run to log more.")

    def _refuse_after_seal(self, refused: bool) -> None:
        if refused:
            raise StewardError(f"Run {self.id} ended while this was logged; it was not stored.")

    @staticmethod
    def _checked_tags(tags: Any) -> dict[str, str]:
        return {key_check(k): value_text(v, TAG_VALUE_MAX, f"Tag {k!r}") for k, v in tags.items()}

    # Metrics, params and tags

    def log_metric(self, key: str, value: float, step: int | None = None, *,
                   timestamp: int | None = None) -> None:
        """Append one metric point; returns at once (the network is the sender thread's business).

        Args:
            key: Metric name, e.g. ``"loss"`` or ``"val/acc"``.
            value: A real number: ``int``, ``float`` or a NumPy integer or
                floating scalar. NaN and +/-Infinity are kept.
            step: Default: one more than this key's previous step (0 for the first point).
            timestamp: Epoch milliseconds; now by default.

        Raises:
            InvalidInputError: a bad key.
            InvalidTypeError: (a ``TypeError``) a value that is not a real
                number, e.g. the string ``"0.3"`` or a boolean.
            ApiError: a refusal the server answered for data sent earlier.
        """
        if self._pending_errors or self._ended:
            self._check()
        if key not in self._valid_keys:
            self._valid_keys.add(key_check(key))
        if type(value) is not float or value - value != 0.0:
            value = metric_value(value, key)
        if step is None:
            with self._step_lock:  # two threads counting the same key's steps must not both take one
                step = self._steps.get(key, -1) + 1
                self._steps[key] = step
        else:
            if type(step) is not int:
                step = int(step)
            with self._step_lock:
                self._steps[key] = step
        ts = int(time.time() * 1000) if timestamp is None else int(timestamp)
        point = (key, value, step, ts)
        self._metrics.append(point)
        if self._sender.sealed:
            # end() ran in another thread since the check above. The sender seals before its last
            # drain: a point still queued now is never sent, so it is taken back and refused.
            self._refuse_after_seal(self._sender.take_back(point))
        if len(self._metrics) >= self._batch_size:
            self._sender.wake.set()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, *,
                    timestamp: int | None = None) -> None:
        """Log several metrics at the same step and time (see :meth:`log_metric`)."""
        ts = int(time.time() * 1000) if timestamp is None else timestamp
        for key, value in metrics.items():
            self.log_metric(key, value, step, timestamp=ts)

    def log_param(self, key: str, value: Any) -> None:
        """Record a hyperparameter, as the text :func:`steward.keys.param_text` gives.

        Params are write-once: the same value again is fine, another value
        for the same key raises :class:`~steward.errors.ConflictError`.
        """
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        """Record several hyperparameters (see :meth:`log_param`); none is kept if one is refused."""
        self._check()
        checked = {key_check(k): value_text(v, PARAM_VALUE_MAX, f"Param {k!r}") for k, v in params.items()}
        with self._params_lock:
            for key, text in checked.items():
                if key in self._params and self._params[key] != text:
                    raise ConflictError(
                        409, "conflict",
                        f"Param '{key}' is already logged as {self._params[key][:100]!r}; "
                        f"params cannot be changed (got {text[:100]!r}).",
                        {key: "already logged"},
                    )
            new = {key: text for key, text in checked.items() if key not in self._params}
            self._params.update(new)
        if new:
            self._refuse_after_seal(not self._sender.add_params(new))

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag; setting it again replaces the value."""
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set several tags (see :meth:`set_tag`)."""
        self._check()
        self._refuse_after_seal(not self._sender.add_tags(self._checked_tags(tags)))

    # Artifacts

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> dict[str, Any] | None:
        """Upload one file as ``artifact_path/<file name>`` (streamed from disk).

        Returns:
            The server's ``{"path", "size", "sha256", "content_type"}``, or
            ``None`` if the server is unreachable and the file was copied to the spool.
        """
        self._check()
        local = Path(local_path)
        if not local.is_file():
            raise FileNotFoundError(f"No file at {local}")
        dest = f"{artifact_path.strip('/')}/{local.name}" if artifact_path else local.name
        return self._conn.put_artifact(artifact_path_check(dest), local, _content_type(dest), self._conn.main)

    def log_artifacts(self, local_dir: str | Path,
                      artifact_path: str | None = None) -> list[dict[str, Any] | None]:
        """Upload every file under ``local_dir``, keeping the folder layout under ``artifact_path``.

        Returns:
            One :meth:`log_artifact` result per file.
        """
        self._check()
        root = Path(local_dir)
        if not root.is_dir():
            raise NotADirectoryError(f"No folder at {root}")
        results = []
        for file in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = file.relative_to(root).as_posix()
            dest = artifact_path_check(f"{artifact_path.strip('/')}/{rel}" if artifact_path else rel)
            results.append(self._conn.put_artifact(dest, file, _content_type(dest), self._conn.main))
        return results

    def log_bytes(self, data: bytes, artifact_file: str,
                  content_type: str | None = None) -> dict[str, Any] | None:
        """Store bytes as the artifact ``artifact_file`` (content type guessed from the name by default)."""
        self._check()
        path = artifact_path_check(artifact_file)
        content_type = content_type or _content_type(path)
        return self._conn.put_artifact(path, bytes(data), content_type, self._conn.main)

    def log_text(self, text: str, artifact_file: str) -> dict[str, Any] | None:
        """Store a string as a UTF-8 text artifact, e.g. ``run.log_text(report, "report.txt")``."""
        return self.log_bytes(text.encode("utf-8"), artifact_file, "text/plain; charset=utf-8")

    def log_dict(self, dictionary: Any, artifact_file: str) -> dict[str, Any] | None:
        """Store a dict (or list) as JSON, or as YAML when ``artifact_file`` ends in ``.yaml``/``.yml``.

        NumPy scalars and arrays inside are written as plain numbers and lists.
        """
        data, content_type = _media.dict_bytes(dictionary, artifact_file)
        return self.log_bytes(data, artifact_file, content_type)

    def log_figure(self, figure: Any, artifact_file: str) -> dict[str, Any] | None:
        """Store a matplotlib or Plotly figure.

        A matplotlib figure is saved in the format the file name says
        (``.png``, ``.svg``, ``.pdf``...). A Plotly figure becomes a
        self-contained ``.html`` page (plotly.js included, so it opens
        offline), its ``.json`` spec, or an image format when kaleido is installed.
        """
        data, content_type = _media.figure_bytes(figure, artifact_file)
        return self.log_bytes(data, artifact_file, content_type)

    def log_image(self, image: Any, artifact_file: str) -> dict[str, Any] | None:
        """Store an image: a NumPy array as PNG, or a Pillow image.

        An array is (height, width) grey, or (height, width, 1|3|4) for grey,
        RGB or RGBA; integer pixels are 0..255, float pixels 0.0..1.0.
        """
        data, content_type = _media.image_bytes(image, artifact_file)
        return self.log_bytes(data, artifact_file, content_type)

    # Datasets and models

    def log_dataset(self, path_or_dataframe: Any, name: str, role: str = "train", *,
                    direction: str = "input", delimiter: str | None = None,
                    encoding: str | None = None) -> _datasets.DatasetVersion:
        """Upload (or find) a version of dataset ``name`` and record it as this run's input or output.

        Args:
            path_or_dataframe: A CSV or Parquet file, or a pandas DataFrame.
            name: The dataset's name in the project.
            role: e.g. ``"train"``, ``"test"``, ``"validation"``.
            direction: ``"input"`` or ``"output"``.
            delimiter: CSV delimiter, detected by the server by default.
            encoding: CSV encoding, detected by the server by default.

        Returns:
            The stored dataset version (identical content returns the version that holds it).
        """
        self._check()
        self._require_server("log_dataset", "Upload it later with Client.create_dataset_version.")
        return _datasets.run_dataset_log(self._conn.main, project=self.project, run_id=self.id,
                                         path_or_dataframe=path_or_dataframe, name=name, role=role,
                                         direction=direction, delimiter=delimiter, encoding=encoding)

    def log_model(self, model: Any, artifact_path: str = "model", *, registered_model: str | None = None,
                  input_example: Any = None, pii_columns: list[str] | None = None,
                  description: str = "", wait: bool = True,
                  timeout: float = 600.0) -> _registry.ModelVersion | None:
        """Store a fitted model as ``<artifact_path>/model.skops`` and optionally register it.

        Args:
            model: A fitted scikit-learn estimator or pipeline (needs skops).
            artifact_path: The artifact folder for the model.
            registered_model: Register the model as the next version of this
                registered model (created if new). The run's buffered metrics
                are sent first, so the version records them.
            input_example: Up to 1000 rows (DataFrame or 2-D array) stored
                beside the model; the server derives the input signature from it.
            pii_columns: Columns of the input that hold personal data.
            description: The version's description.
            wait: Wait for the server's checks of the new version to end.
            timeout: Seconds to wait for them.

        Returns:
            The registered version, or ``None`` without ``registered_model``.
        """
        self._check()
        folder = artifact_path.strip("/")
        stored = _registry.model_store(self.log_bytes, model, folder, input_example)
        if registered_model is None:
            return None
        if stored is None or not self._conn.created:
            raise StewardError("The server is unreachable, so the model was kept in the spool and cannot "
                               "be registered now; register it later with Client.register_model.")
        self.flush()  # the version records the run's metrics as they are at registration
        return _registry.register(lambda m, p, **kw: self._conn.main.request(m, p, **kw).json(),
                                  project=self.project, name=registered_model, run_id=self.id,
                                  artifact_path=folder, description=description, pii_columns=pii_columns,
                                  wait=wait, timeout=timeout)

    def _require_server(self, what: str, later: str) -> None:
        if not self._conn.created:
            raise StewardError(
                f"{what} needs the server: this run is offline, so it cannot be done now. {later}"
            )

    # Flushing and ending

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything logged so far is stored on the server or in the spool.

        Raises:
            ApiError: the first refusal the server answered for a background batch.
            TimeoutError: not done within ``timeout`` seconds.
        """
        self._sender.flush(timeout)
        self._errors.raise_first()

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Flush, record the final status and stop the background threads. Safe to call twice.

        Args:
            status: ``FINISHED``, ``FAILED`` or ``KILLED``.
            error: Text stored as the run's error (the last 20,000 characters).

        Raises:
            ApiError: the first refusal the server answered for a background
                batch, after the run is ended.
        """
        if status not in RUN_STATUSES or status == "RUNNING":
            raise ValueError("status must be one of FINISHED, FAILED, KILLED")
        with self._end_lock:
            # Held until the end is sent: a second caller returns once the run has ended, with one status.
            if self._ended:
                return
            self._ended = True
            if self._system is not None:
                self._system.stop()
            body: dict[str, Any] = {"status": status, "end_time": int(time.time() * 1000)}
            if error:
                body["error"] = error[-20_000:]
            self._sender.stop(body)
            self._conn.finish_sync()
            self._conn.close()
            self.status = status
            _active.remove(self)
            self._conn.warn_if_spooled()
        self._errors.raise_first()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.end("FINISHED")
            return
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            self.end(status, error="".join(traceback.format_exception(exc_type, exc, tb)))
        except ApiError as pending:
            # The body's own exception is the one to show; the refused batch was logged already.
            log.error("steward: run %s: %s", self.id, pending)


def _content_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"
