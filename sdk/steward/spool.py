"""The on-disk spool: what could not be sent yet, kept until the server acknowledges it.

Layout: one folder per run under the spool root, holding one JSON record per
request in the order it was made (file names sort by time)::

    <spool>/<server>/<run id>/<seq>.create.json    the run's create payload (runs started offline)
    <spool>/<server>/<run id>/<seq>.batch.json     a batch and its Idempotency-Key
    <spool>/<server>/<run id>/<seq>.artifact.json  an artifact's path (its bytes in <seq>.artifact.data)
    <spool>/<server>/<run id>/<seq>.update.json    the run's final status
    <spool>/<server>/rejected/<run id>/...         records the server refused (4xx), with the reason

Each server the SDK talks to has its own folder under the spool root.
A record is written atomically (temp file, fsync, rename) and deleted only
after the server answered 2xx, so a crash between the two resends it: the
idempotency key, the client-chosen run id and PUT semantics make that resend
store nothing twice.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from steward.errors import ApiError, AuthenticationError, PermissionDeniedError, ServerUnavailableError
from steward.transport import Transport

log = logging.getLogger("steward")

RECORD_RE = re.compile(r"^\d{20}-\d+-\d{6}\.(create|batch|artifact|update)\.json\Z")
_counter = itertools.count()
_seq_lock = threading.Lock()
_last_ns = 0


def _sequence() -> str:
    """A name that sorts in the order records were made, even within one clock tick."""
    global _last_ns
    with _seq_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        return f"{_last_ns:020d}-{os.getpid()}-{next(_counter) % 1_000_000:06d}"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def artifact_url(run_id: str, artifact_path: str) -> str:
    return f"/api/v1/runs/{run_id}/artifacts/{quote(artifact_path, safe='/')}"


def server_dir_name(url: str) -> str:
    """A readable, unique folder name for one server, so one spool can serve several."""
    parsed = urlsplit(url)
    readable = re.sub(r"[^A-Za-z0-9.]+", "_", parsed.netloc + parsed.path).strip("_") or "server"
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{readable[:80]}-{digest}"


class Spool:
    """The part of a spool folder (``~/.steward/spool`` or ``STEWARD_SPOOL_DIR``) for one server."""

    def __init__(self, root: Path, url: str) -> None:
        self.url = url.rstrip("/")
        self.root = Path(root) / server_dir_name(self.url)

    def _run_dir(self, run_id: str) -> Path:
        path = self.root / run_id
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def write(self, run_id: str, kind: str, record: dict[str, Any], data: bytes | Path | None = None) -> Path:
        """Store one record (and an artifact's bytes) durably; returns the record's path."""
        folder = self._run_dir(run_id)
        seq = _sequence()
        record = {**record, "kind": kind, "run_id": run_id, "url": self.url}
        if data is not None:
            data_path = folder / f"{seq}.artifact.data"
            if isinstance(data, Path):
                tmp = data_path.with_name(f".tmp-{uuid.uuid4().hex}")
                shutil.copyfile(data, tmp)
                os.replace(tmp, data_path)
            else:
                _write_atomic(data_path, data)
            record["data_file"] = data_path.name
        path = folder / f"{seq}.{kind}.json"
        _write_atomic(path, json.dumps(record, separators=(",", ":"), allow_nan=False).encode())
        return path

    def run_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name != "rejected")

    def records(self, run_id: str) -> list[Path]:
        folder = self.root / run_id
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if RECORD_RE.fullmatch(p.name))

    def pending(self) -> dict[str, int]:
        """Run id -> number of records waiting."""
        out = {}
        for run_id in self.run_ids():
            count = len(self.records(run_id))
            if count:
                out[run_id] = count
        return out

    def write_rejected(self, run_id: str, kind: str, record: dict[str, Any], error: Exception) -> Path:
        """Keep a request the server refused (never sent again), with the reason beside it."""
        path = self.write(run_id, kind, record)
        return self.reject(path, {**record, "kind": kind}, error)

    def remove(self, path: Path, record: dict[str, Any] | None = None) -> None:
        path.unlink(missing_ok=True)
        if record and record.get("data_file"):
            (path.parent / record["data_file"]).unlink(missing_ok=True)
        try:
            path.parent.rmdir()  # only succeeds once the run's folder is empty
        except OSError:
            pass

    def reject(self, path: Path, record: dict[str, Any], error: Exception) -> Path:
        """Move a record the server refused aside, with the reason, so it is kept but not resent."""
        target = self.root / "rejected" / path.parent.name
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        if record.get("data_file"):
            src = path.parent / record["data_file"]
            if src.exists():
                os.replace(src, target / src.name)
        os.replace(path, target / path.name)
        (target / (path.name + ".error")).write_text(f"{error}\n", encoding="utf-8")
        try:
            path.parent.rmdir()
        except OSError:
            pass
        return target / path.name


def send_record(transport: Transport, record: dict[str, Any], folder: Path) -> None:
    """Send one spooled record; raises what the transport raises."""
    run_id = record["run_id"]
    kind = record["kind"]
    if kind == "create":
        transport.request("POST", f"/api/v1/projects/{record['project']}/runs/", json_body=record["body"])
    elif kind == "batch":
        transport.request(
            "POST", f"/api/v1/runs/{run_id}/batch/", json_body=record["body"],
            headers={"Idempotency-Key": record["key"]},
        )
    elif kind == "artifact":
        transport.request(
            "PUT", artifact_url(run_id, record["path"]), body=folder / record["data_file"],
            headers={"Content-Type": record.get("content_type") or "application/octet-stream"},
        )
    elif kind == "update":
        transport.request("PATCH", f"/api/v1/runs/{run_id}/", json_body=record["body"])
    else:  # pragma: no cover - RECORD_RE admits only the kinds above
        raise ValueError(f"unknown spool record kind {kind!r}")


@dataclass
class SyncReport:
    """What one pass over the spool did."""

    sent: int = 0
    rejected: list[str] = field(default_factory=list)
    remaining: int = 0
    runs: set[str] = field(default_factory=set)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when everything was sent: nothing refused, nothing left waiting."""
        return not self.rejected and not self.remaining and self.error is None


def replay_run(
    spool: Spool, transport: Transport, run_id: str, report: SyncReport,
    stop: threading.Event | None = None,
) -> bool:
    """Send one run's records in order; False if the server could not be reached (the rest stay)."""
    records = spool.records(run_id)
    for i, path in enumerate(records):
        if stop is not None and stop.is_set():
            report.remaining += len(records) - i
            return False
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue  # sent meanwhile by the run's own process or another sync
        except ValueError as exc:
            spool.reject(path, {}, exc)
            report.rejected.append(f"{path.name}: unreadable ({exc})")
            continue
        if record.get("url") not in (None, transport.url):
            continue
        try:
            send_record(transport, record, path.parent)
        except FileNotFoundError:
            continue
        except (ServerUnavailableError, AuthenticationError, PermissionDeniedError) as exc:
            # Nothing wrong with the record: the server is away or this identity may not write
            # here. Keep it for a later sync (after `steward login` with the right token).
            report.remaining += len(records) - i
            report.error = str(exc)
            if isinstance(exc, ApiError):
                raise
            return False
        except ApiError as exc:
            log.error("steward: the server refused a spooled %s for run %s: %s", record["kind"], run_id, exc)
            spool.reject(path, record, exc)
            report.rejected.append(f"{run_id}/{path.name}: {exc}")
            if record["kind"] == "create":
                # Without its run nothing else of this run can be stored: keep the rest aside too.
                for rest in records[i + 1:]:
                    try:
                        rest_record = json.loads(rest.read_text(encoding="utf-8"))
                    except (OSError, ValueError):
                        continue
                    spool.reject(rest, rest_record, exc)
                    report.rejected.append(f"{run_id}/{rest.name}: its run could not be created")
                return True
            continue
        spool.remove(path, record)
        report.sent += 1
        report.runs.add(run_id)
    return True


def sync(
    spool: Spool, transport: Transport, *, stop: threading.Event | None = None,
    skip: set[str] | None = None,
) -> SyncReport:
    """Send every spooled record addressed to ``transport.url``, run by run, oldest first."""
    report = SyncReport()
    for run_id in spool.run_ids():
        if skip and run_id in skip:
            continue
        if stop is not None and stop.is_set():
            break
        try:
            if not replay_run(spool, transport, run_id, report, stop):
                break
        except (AuthenticationError, PermissionDeniedError):
            break
    report.remaining = sum(spool.pending().values())
    return report
