"""A run being logged: calls append to memory, a background thread sends batches.

``log_metric`` only validates and appends to a buffer; the ``steward-sender``
thread takes up to ``batch_size`` points at a time (when the buffer is that
full, or every ``flush_interval`` seconds) and posts them to the batch
endpoint with a fresh Idempotency-Key. Transient failures are retried with
backoff; when the retry budget is spent the batch goes to the on-disk spool
and the run carries on offline, probing the server every ``probe_interval``
seconds and replaying its spool in order once the server answers again.
"""

from __future__ import annotations

import atexit
import logging
import math
import re
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from steward import capture as capture_module
from steward._datasets import RunDatasets
from steward._registry import RunRegistry
from steward.client import artifact_path_check
from steward.config import Settings
from steward.errors import (
    ApiError,
    AuthenticationError,
    ConflictError,
    PermissionDeniedError,
    ServerUnavailableError,
    StewardError,
)
from steward.spool import Spool, SyncReport, artifact_url, replay_run, sync
from steward.transport import Transport

log = logging.getLogger("steward")

# \Z, never $ (as on the server): "$" also matches before a final newline.
KEY_RE = re.compile(r"^[A-Za-z0-9_\-./ :]+\Z")
KEY_MAX = 250
PARAM_VALUE_MAX = 6000
TAG_VALUE_MAX = 8000
MAX_BATCH_PARAMS = 1000
MAX_BATCH_TAGS = 1000
RUN_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
SPOOL_SYNC_GRACE = 60.0  # seconds a run's end waits for the earlier runs' spool to go out

_open_runs: list[Run] = []
_open_lock = threading.Lock()
_hooks_installed = False
_uncaught: BaseException | None = None


class InvalidInputError(StewardError, ValueError):
    """A key or value the server would refuse, caught before it is buffered."""


def active_run() -> Run | None:
    """The innermost run started and not yet ended in this process, if any."""
    with _open_lock:
        return _open_runs[-1] if _open_runs else None


def open_runs() -> list[Run]:
    with _open_lock:
        return list(_open_runs)


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"A key must be a non-empty string, got {key!r}.")
    if len(key) > KEY_MAX:
        raise InvalidInputError(f"Key {key[:60]!r}... is longer than {KEY_MAX} characters.")
    if not KEY_RE.fullmatch(key):
        raise InvalidInputError(f"Key {key[:60]!r} may only contain letters, digits and _ - . / space :")
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidInputError(f"Key {key[:60]!r} must not be an absolute or parent path.")
    return key


def value_text(value: Any, limit: int, what: str) -> str:
    """A param or tag value as the server stores it (booleans lower-case, floats by repr)."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = repr(value)
    elif value is None:
        text = ""
    else:
        text = str(value)
    if len(text) > limit:
        raise InvalidInputError(f"{what} value is longer than {limit} characters.")
    if "\x00" in text:
        raise InvalidInputError(f"{what} value must not contain NUL characters.")
    return text


def _as_float(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise InvalidInputError(f"Metric {key!r}: value must be a number, not a boolean.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"Metric {key!r}: value must be a number, got {value!r:.40}.") from None


def _non_finite(value: float) -> str:
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _install_hooks() -> None:
    """At interpreter exit, end the runs still open (their buffers are flushed)."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):
        global _uncaught
        _uncaught = exc
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_end_open_runs_at_exit)


def _end_open_runs_at_exit() -> None:
    for run in reversed(open_runs()):
        try:
            if _uncaught is not None:
                text = "".join(traceback.format_exception(_uncaught))
                status = "KILLED" if isinstance(_uncaught, KeyboardInterrupt) else "FAILED"
                run.end(status, error=text)
            else:
                run.end("FINISHED")
        except Exception as exc:  # noqa: BLE001 - at exit, report and go on with the next run
            print(f"steward: run {run.id}: {exc}", file=sys.stderr)


class Run(RunDatasets, RunRegistry):
    """A run in progress. Use it as a context manager, or call :meth:`end`.

    Leaving the ``with`` block ends the run FINISHED; an exception ends it
    FAILED (KILLED for Ctrl-C) with the traceback recorded as the run's error,
    and the exception propagates.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        project: str,
        experiment: str | None = None,
        name: str | None = None,
        tags: dict[str, Any] | None = None,
        notes: str | None = None,
        seed: int | None = None,
        capture: bool = True,
        capture_git: bool = True,
        system_metrics: float | None = None,
        run_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.id = str(uuid.UUID(run_id)) if run_id else str(uuid.uuid4())
        self.project = project
        self.experiment = experiment or "Default"
        self.name = name or ""
        self.status = "RUNNING"
        self._spool = Spool(settings.spool_dir, settings.url)
        self._batch_size = settings.batch_size
        self._metrics: deque[tuple[str, float | str, int, int]] = deque()
        self._steps: dict[str, int] = {}
        self._valid_keys: set[str] = set()
        self._side_lock = threading.Lock()
        self._params: dict[str, str] = {}
        self._pending_params: dict[str, str] = {}
        self._pending_tags: dict[str, str] = {}
        self._jobs: deque[tuple[str, bytes, str]] = deque()
        self._errors: list[ApiError] = []
        self._wake = threading.Event()
        self._cv = threading.Condition()
        self._flush_requested = 0
        self._flush_done = 0
        self._stopping = False
        self._end_body: dict[str, Any] | None = None
        self._ended = False
        self._online = not settings.offline
        self._created = False
        self._warned_offline = False
        self._next_probe = 0.0
        self._sync_stop = threading.Event()
        self._sync_thread: threading.Thread | None = None
        self._system_stop = threading.Event()
        self._system_thread: threading.Thread | None = None
        self.spooled = 0
        self.sync_report: SyncReport | None = None

        seed = seed if seed is not None else capture_module.current_seed()
        captured = capture_module.capture(git=capture_git) if capture else capture_module.Capture()
        self._create_body: dict[str, Any] = {
            "experiment": self.experiment,
            "id": self.id,
            "name": self.name,
            "start_time": int(time.time() * 1000),
            "tags": {_check_key(k): value_text(v, TAG_VALUE_MAX, "Tag") for k, v in (tags or {}).items()},
            "notes": notes or "",
        }
        if captured.source:
            self._create_body["source"] = captured.source
        if seed is not None:
            self._create_body["seed"] = int(seed)

        def transport(retry_timeout: float, cancel: threading.Event | None = None) -> Transport:
            return Transport(settings.url, settings.token, retry_timeout=retry_timeout,
                             connect_timeout=settings.connect_timeout,
                             read_timeout=settings.read_timeout, cancel=cancel)

        # One session per thread: the caller's, the sender's, the probe's and the spool sync's.
        self._main = transport(settings.retry_timeout)
        self._sender = transport(settings.retry_timeout)
        self._probe = transport(min(1.0, settings.retry_timeout))
        self._sync_transport = transport(settings.retry_timeout, cancel=self._sync_stop)

        try:
            self._create()
        except BaseException:
            for t in (self._main, self._sender, self._probe, self._sync_transport):
                t.close()
            raise
        for path, data in captured.artifacts.items():
            self._jobs.append((path, data, "text/plain"))

        self._thread = threading.Thread(target=self._sender_main, name="steward-sender", daemon=True)
        self._thread.start()
        if self._online and self._spool.run_ids():
            self._sync_thread = threading.Thread(
                target=self._sync_others, name="steward-spool-sync", daemon=True
            )
            self._sync_thread.start()
        interval = system_metrics if system_metrics is not None else settings.system_metrics_interval
        if interval:
            self._start_system_metrics(float(interval))
        with _open_lock:
            _open_runs.append(self)
        _install_hooks()

    def __repr__(self) -> str:
        return f"<steward.Run {self.id} {self.project}/{self.experiment} {self.status}>"

    # Creation and the spool

    def _create(self) -> None:
        if self._online:
            try:
                self._main.request(
                    "POST", f"/api/v1/projects/{self.project}/runs/", json_body=self._create_body
                )
                self._created = True
                return
            except ServerUnavailableError as exc:
                self._go_offline(exc)
        # The run gets created when the spool is replayed; its client-side id makes that safe to repeat.
        self._spool_write("create", {"project": self.project, "body": self._create_body})

    def _spool_write(self, kind: str, record: dict[str, Any], data: bytes | Path | None = None) -> None:
        self._spool.write(self.id, kind, record, data)
        self.spooled += 1

    def _go_offline(self, exc: Exception | None) -> None:
        self._online = False
        self._next_probe = time.monotonic() + self.settings.probe_interval
        if not self._warned_offline:
            self._warned_offline = True
            log.warning(
                "steward: %s is unreachable (%s); run %s keeps logging to the spool in %s. "
                "It is sent when the server answers again, or by `steward sync`.",
                self.settings.url, exc, self.id, self._spool.root,
            )

    def _try_reconnect(self) -> None:
        """Replay this run's spool (create first); back online once all of it is acknowledged."""
        report = SyncReport()
        for _ in range(3):
            try:
                if not replay_run(self._spool, self._probe, self.id, report):
                    break
            except (AuthenticationError, PermissionDeniedError) as exc:
                self._record_error(exc)
                self._next_probe = math.inf
                return
            if not self._spool.records(self.id):
                self._online = True
                self._created = True
                log.warning("steward: %s answers again; run %s is back online.", self.settings.url, self.id)
                return
        self._next_probe = time.monotonic() + self.settings.probe_interval

    def _sync_others(self) -> None:
        try:
            self.sync_report = sync(self._spool, self._sync_transport, stop=self._sync_stop, skip={self.id})
            if self.sync_report.sent:
                log.info("steward: sent %d spooled record(s) of earlier runs.", self.sync_report.sent)
        except Exception:  # noqa: BLE001 - a failed background sync must not disturb the run
            log.exception("steward: syncing the spool failed")

    def _record_error(self, exc: ApiError) -> None:
        log.error("steward: run %s: the server refused logged data: %s", self.id, exc)
        self._errors.append(exc)

    def _raise_errors(self) -> None:
        if self._errors:
            first = self._errors[0]
            self._errors.clear()
            raise first

    # The sender thread

    def _sender_main(self) -> None:
        while True:
            self._wake.wait(self.settings.flush_interval)
            self._wake.clear()
            with self._cv:
                generation = self._flush_requested
                stopping = self._stopping
            try:
                self._send_pending()
                if stopping:
                    self._send_end()
            except Exception as exc:  # noqa: BLE001 - the thread must survive anything and report it
                log.exception("steward: the background sender failed")
                if isinstance(exc, ApiError):
                    self._errors.append(exc)
            with self._cv:
                self._flush_done = generation
                self._cv.notify_all()
            if stopping:
                return

    def _send_pending(self) -> None:
        if (not self._online and not self.settings.offline
                and time.monotonic() >= self._next_probe):
            self._try_reconnect()
        while self._jobs:
            path, data, ctype = self._jobs.popleft()
            self._put_artifact(path, data, ctype, self._sender)
        while True:
            body = self._take_batch()
            if body is None:
                return
            self._deliver(body)

    def _take_batch(self) -> dict[str, list] | None:
        with self._side_lock:
            params = self._pending_params
            tags = self._pending_tags
            if len(params) > MAX_BATCH_PARAMS:
                keys = list(params)[:MAX_BATCH_PARAMS]
                params = {k: self._pending_params.pop(k) for k in keys}
            else:
                self._pending_params = {}
            if len(tags) > MAX_BATCH_TAGS:
                keys = list(tags)[:MAX_BATCH_TAGS]
                tags = {k: self._pending_tags.pop(k) for k in keys}
            else:
                self._pending_tags = {}
        buffer = self._metrics
        count = min(len(buffer), self._batch_size)
        pop = buffer.popleft
        metrics = []
        for _ in range(count):
            key, value, step, ts = pop()
            metrics.append({"key": key, "value": value, "step": step, "timestamp": ts})
        if not (params or tags or metrics):
            return None
        return {
            "params": [{"key": k, "value": v} for k, v in params.items()],
            "metrics": metrics,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }

    def _deliver(self, body: dict[str, list]) -> None:
        key = str(uuid.uuid4())
        if self._online:
            try:
                self._sender.request(
                    "POST", f"/api/v1/runs/{self.id}/batch/", json_body=body,
                    headers={"Idempotency-Key": key},
                )
                return
            except ServerUnavailableError as exc:
                self._go_offline(exc)
            except AuthenticationError as exc:
                # Kept for `steward login` + `steward sync` rather than dropped.
                self._online = False
                self._next_probe = math.inf
                self._record_error(exc)
            except ConflictError as exc:
                # Only params can conflict: keep them aside and still deliver the metrics and tags.
                rest = {"params": [], "metrics": body["metrics"], "tags": body["tags"]}
                rejected = {"params": body["params"], "metrics": [], "tags": []}
                self._spool.write_rejected(self.id, "batch", {"key": key, "body": rejected}, exc)
                self._record_error(exc)
                if body["params"] and (rest["metrics"] or rest["tags"]):
                    self._deliver(rest)
                return
            except ApiError as exc:
                self._spool.write_rejected(self.id, "batch", {"key": key, "body": body}, exc)
                self._record_error(exc)
                return
        self._spool_write("batch", {"key": key, "body": body})

    def _send_end(self) -> None:
        body = self._end_body
        if body is None:
            return
        if self._online:
            try:
                self._sender.request("PATCH", f"/api/v1/runs/{self.id}/", json_body=body)
                return
            except ServerUnavailableError as exc:
                self._go_offline(exc)
            except AuthenticationError as exc:
                self._online = False
                self._record_error(exc)
            except ApiError as exc:
                self._record_error(exc)
                return
        self._spool_write("update", {"body": body})

    def _put_artifact(self, path: str, data: bytes | Path, content_type: str,
                      transport: Transport) -> dict[str, Any] | None:
        if self._online:
            try:
                response = transport.request(
                    "PUT", artifact_url(self.id, path), body=data, headers={"Content-Type": content_type}
                )
                return response.json() if response.content else {}
            except ServerUnavailableError as exc:
                self._go_offline(exc)
        self._spool_write("artifact", {"path": path, "content_type": content_type}, data)
        return None

    # Logging

    def _check_open(self) -> None:
        if self._ended:
            raise StewardError(f"Run {self.id} has ended; start a new run to log more.")

    def log_metric(
        self, key: str, value: float, step: int | None = None, *, timestamp: int | None = None
    ) -> None:
        """Append one metric point; returns at once (the network is the sender thread's business).

        ``step`` defaults to one more than this key's previous step (0 for the
        first point). NaN and +/-Infinity are kept. ``timestamp`` is epoch
        milliseconds, now by default.
        """
        if self._errors:
            self._raise_errors()
        if self._ended:
            self._check_open()
        if key not in self._valid_keys:
            self._valid_keys.add(_check_key(key))
        if type(value) is not float:
            value = _as_float(value, key)
        if value - value != 0.0:  # NaN or +/-inf: JSON cannot carry them as numbers
            value = _non_finite(value)
        if step is None:
            step = self._steps.get(key, -1) + 1
        elif type(step) is not int:
            step = int(step)
        self._steps[key] = step
        self._metrics.append(
            (key, value, step, int(time.time() * 1000) if timestamp is None else int(timestamp))
        )
        if len(self._metrics) >= self._batch_size:
            self._wake.set()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, *,
                    timestamp: int | None = None) -> None:
        """Log several metrics at the same step and time."""
        ts = int(time.time() * 1000) if timestamp is None else timestamp
        for key, value in metrics.items():
            self.log_metric(key, value, step, timestamp=ts)

    def log_param(self, key: str, value: Any) -> None:
        """Record a hyperparameter.

        Params are write-once: another value for the same key raises ConflictError.
        """
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        """Record several hyperparameters (see :meth:`log_param`)."""
        self._raise_errors()
        self._check_open()
        checked = {_check_key(k): value_text(v, PARAM_VALUE_MAX, f"Param {k!r}") for k, v in params.items()}
        with self._side_lock:
            for key, text in checked.items():
                if key in self._params and self._params[key] != text:
                    raise ConflictError(
                        409, "conflict",
                        f"Param '{key}' is already logged as {self._params[key][:100]!r}; "
                        f"params cannot be changed (got {text[:100]!r}).",
                        {key: "already logged"},
                    )
            for key, text in checked.items():
                if key not in self._params:
                    self._params[key] = text
                    self._pending_params[key] = text

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag; setting it again replaces the value."""
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set several tags."""
        self._raise_errors()
        self._check_open()
        checked = {_check_key(k): value_text(v, TAG_VALUE_MAX, f"Tag {k!r}") for k, v in tags.items()}
        with self._side_lock:
            self._pending_tags.update(checked)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> dict[str, Any] | None:
        """Upload one file as ``artifact_path/<file name>``.

        Returns the server's ``{path, size, sha256, content_type}``, or None if
        the server is unreachable and the file was copied to the spool instead.
        """
        self._raise_errors()
        self._check_open()
        local = Path(local_path)
        if not local.is_file():
            raise FileNotFoundError(f"No file at {local}")
        dest = f"{artifact_path.strip('/')}/{local.name}" if artifact_path else local.name
        return self._put_artifact(artifact_path_check(dest), local, _content_type(dest), self._main)

    def log_artifacts(
        self, local_dir: str | Path, artifact_path: str | None = None
    ) -> list[dict[str, Any] | None]:
        """Upload every file under ``local_dir``, keeping the folder layout under ``artifact_path``."""
        self._raise_errors()
        self._check_open()
        root = Path(local_dir)
        if not root.is_dir():
            raise NotADirectoryError(f"No folder at {root}")
        results = []
        for file in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = file.relative_to(root).as_posix()
            dest = f"{artifact_path.strip('/')}/{rel}" if artifact_path else rel
            dest = artifact_path_check(dest)
            results.append(self._put_artifact(dest, file, _content_type(dest), self._main))
        return results

    def log_bytes(
        self, data: bytes, artifact_file: str, content_type: str | None = None
    ) -> dict[str, Any] | None:
        """Store bytes as an artifact at ``artifact_file``."""
        self._raise_errors()
        self._check_open()
        path = artifact_path_check(artifact_file)
        return self._put_artifact(path, bytes(data), content_type or _content_type(path), self._main)

    def log_text(self, text: str, artifact_file: str) -> dict[str, Any] | None:
        """Store a string as a UTF-8 text artifact."""
        return self.log_bytes(text.encode("utf-8"), artifact_file, "text/plain; charset=utf-8")

    # Flushing and ending

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything logged so far is stored on the server or in the spool.

        Raises the first error the server answered for a background batch.
        """
        self._request_flush(timeout)
        self._raise_errors()

    def _request_flush(self, timeout: float | None) -> None:
        if not self._thread.is_alive():
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            self._flush_requested += 1
            generation = self._flush_requested
            self._wake.set()
            while self._flush_done < generation and self._thread.is_alive():
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"Run {self.id}: flush did not finish in {timeout}s.")
                self._cv.wait(0.25)

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Flush, record the final status (FINISHED, FAILED or KILLED) and stop the background threads.

        Safe to call twice. Raises the first error the server answered for a
        background batch, after the run is ended.
        """
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}")
        if self._ended:
            return
        self._ended = True
        self._system_stop.set()
        if self._system_thread is not None:
            self._system_thread.join()
        body: dict[str, Any] = {"status": status, "end_time": int(time.time() * 1000)}
        if error:
            body["error"] = error[-20_000:]
        self._end_body = body
        with self._cv:
            self._stopping = True
        self._wake.set()
        self._thread.join()
        if self._sync_thread is not None:
            # Let the earlier runs' records finish sending, within reason; the rest waits for next time.
            self._sync_thread.join(SPOOL_SYNC_GRACE)
            self._sync_stop.set()
            self._sync_thread.join()
        for transport in (self._main, self._sender, self._probe, self._sync_transport):
            transport.close()
        self.status = status
        with _open_lock:
            if self in _open_runs:
                _open_runs.remove(self)
        if self.spooled and not self._online:
            log.warning(
                "steward: run %s ended with %d request(s) in the spool %s; run `steward sync` to send them.",
                self.id, len(self._spool.records(self.id)), self._spool.root,
            )
        self._raise_errors()

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

    # System metrics

    def _start_system_metrics(self, interval: float) -> None:
        try:
            import psutil
        except ImportError:
            log.warning("steward: system metrics need psutil (pip install 'steward-sdk[system]').")
            return
        process = psutil.Process()
        psutil.cpu_percent(None)

        def sample() -> None:
            step = 0
            while not self._system_stop.wait(interval):
                memory = psutil.virtual_memory()
                self.log_metrics({
                    "system/cpu_percent": psutil.cpu_percent(None),
                    "system/memory_percent": memory.percent,
                    "system/memory_used_mb": (memory.total - memory.available) / 2**20,
                    "system/process_rss_mb": process.memory_info().rss / 2**20,
                }, step=step)
                step += 1

        self._system_thread = threading.Thread(target=sample, name="steward-system-metrics", daemon=True)
        self._system_thread.start()


def _content_type(path: str) -> str:
    import mimetypes

    return mimetypes.guess_type(path)[0] or "application/octet-stream"
