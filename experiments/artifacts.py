"""Run artifacts: streamed in and out of the artifacts storage, with sha256 and size.

A blob is written under a fresh name (``runs/<run id>/<uuid>``) and becomes
visible only when its ``Artifact`` row is committed, so a reader never sees a
half-written file; the blob a re-upload replaces is deleted after the commit.
Nothing here reads a whole body into memory.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import unquote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import IntegrityError, transaction
from django.http import UnreadablePostError
from django.utils import timezone

from accounts.permissions import require_pii_access
from core import jobs
from core.errors import NotFound, PayloadTooLarge
from core.models import Job
from experiments.models import ARTIFACT_PATH_MAX_LENGTH, Artifact, Run

CHUNK_SIZE = 1024 * 1024
CONTENT_TYPE_MAX_LENGTH = 200
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# curl --data-binary sends this when told nothing else; it never describes an artifact.
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
CONTENT_TYPE_RE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;[ -~]*)?\Z")
DRIVE_RE = re.compile(r"^[A-Za-z]:")
# Characters that reorder how a name is displayed, so "exe.txt" can show as "txt.exe".
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
MAX_DECODE_ROUNDS = 5


def artifact_storage() -> Storage:
    return storages["artifacts"]


def _refuse(message: str) -> None:
    raise ValidationError({"path": message})


def _check_characters(text: str, *, encoded: bool = False) -> None:
    how = "a percent-encoded " if encoded else "a "
    for ch in text:
        if ch == "\x00":
            _refuse(f"An artifact path must not contain {how}NUL byte.")
        if ch == "\\":
            _refuse(f"An artifact path must not contain {how}backslash; use '/'.")
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Zl", "Zp") or ch in BIDI_CONTROLS:
            _refuse(f"An artifact path must not contain {how}control character (U+{ord(ch):04X}).")


def _check_segments(segments: list[str], *, encoded: bool = False) -> None:
    how = "percent-encoded " if encoded else ""
    for segment in segments:
        if segment and set(segment) == {"."} and (encoded or segment != "."):
            _refuse(f"An artifact path must not contain {how}'{segment}' segments.")
        if DRIVE_RE.match(segment):
            _refuse(f"An artifact path must not contain a {how}drive letter ('{segment[:2]}').")


def artifact_path_clean(path: str) -> str:
    """The normalised relative form of ``path``, or ValidationError on field "path".

    Refuses anything that could climb out of the run's folder or be read
    differently by another system: ``..``, absolute paths, backslashes,
    drive letters, NUL and control characters, empty segments, and
    percent-encodings that decode to any of those. ``.`` segments are dropped
    and the result is in Unicode NFC.
    """
    if not isinstance(path, str) or not path:
        _refuse("An artifact path must be a non-empty string.")
    if len(path) > ARTIFACT_PATH_MAX_LENGTH:
        _refuse(f"An artifact path must be at most {ARTIFACT_PATH_MAX_LENGTH} characters.")
    _check_characters(path)
    if path.startswith("/"):
        _refuse("An artifact path must be relative, not start with '/'.")
    segments = path.split("/")
    if "" in segments:
        _refuse("An artifact path must not contain empty segments ('//' or a trailing '/').")
    _check_segments(segments)

    # Another layer (a proxy, a client, a storage backend) may decode the path
    # again; what it would see must be as safe as what we store.
    decoded = path
    for _ in range(MAX_DECODE_ROUNDS):
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
        _check_characters(decoded, encoded=True)
        if decoded.count("/") != path.count("/"):
            _refuse("An artifact path must not contain a percent-encoded '/'.")
        _check_segments(decoded.split("/"), encoded=True)
    else:
        _refuse("An artifact path must not be percent-encoded this many times.")

    cleaned = unicodedata.normalize("NFC", "/".join(s for s in segments if s != "."))
    if not cleaned:
        _refuse("An artifact path must name a file, not '.'.")
    if len(cleaned) > ARTIFACT_PATH_MAX_LENGTH:
        _refuse(f"An artifact path must be at most {ARTIFACT_PATH_MAX_LENGTH} characters.")
    return cleaned


def _content_type_clean(content_type: str, path: str) -> str:
    content_type = (content_type or "").strip()
    if content_type.split(";")[0].strip().lower() == FORM_CONTENT_TYPE:
        content_type = ""
    if not content_type:
        return mimetypes.guess_type(path)[0] or DEFAULT_CONTENT_TYPE
    if len(content_type) > CONTENT_TYPE_MAX_LENGTH or not CONTENT_TYPE_RE.fullmatch(content_type):
        raise ValidationError({"content_type": "Content-Type must be a media type like 'text/plain'."})
    return content_type


class _HashingReader(io.RawIOBase):
    """The upload body as a file: hashes and counts what passes through.

    Reading more than ``limit`` bytes raises PayloadTooLarge, so a client that
    sends more than it announced is cut off there.
    """

    def __init__(self, stream: IO[bytes], limit: int, what: str = "artifact"):
        super().__init__()
        self._what = what
        self._stream = stream
        self._limit = limit
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def _read_some(self, size: int) -> bytes:
        # Never ask for more than one byte past the limit.
        size = min(size, CHUNK_SIZE, self._limit + 1 - self.size)
        try:
            data = self._stream.read(size)
        except UnreadablePostError:
            raise ValidationError({"body": "The upload was interrupted."}) from None
        if not data:
            return b""
        self.size += len(data)
        if self.size > self._limit:
            raise PayloadTooLarge(f"The {self._what} is larger than the limit of {self._limit} bytes.")
        self.sha256.update(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        # Full reads (short only at the end) like a buffered file: some callers,
        # such as boto3's uploader, take a short read for the end of the stream.
        wanted = size if size is not None and size >= 0 else None
        parts: list[bytes] = []
        got = 0
        while wanted is None or got < wanted:
            data = self._read_some(CHUNK_SIZE if wanted is None else wanted - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)


def _blob_delete(storage: Storage, name: str) -> None:
    try:
        storage.delete(name)
    except FileNotFoundError:
        pass


def blob_delete(storage: Storage, name: str) -> None:
    """Delete a stored file; one that is already gone is fine."""
    _blob_delete(storage, name)


@dataclass(frozen=True)
class Blob:
    storage_name: str
    size: int
    sha256: str


def blob_write(
    stream: IO[bytes], *, name_prefix: str, max_bytes: int, content_length: int | None = None,
    content_type: str = "", what: str = "artifact",
) -> Blob:
    """Stream ``stream`` into storage under a fresh name, hashing and counting it on the way.

    ``content_length``, when given, is refused up front if over ``max_bytes``
    and must match what arrives; a blob that fails either way is deleted.
    """
    if content_length is not None:
        if content_length < 0:
            raise ValidationError({"Content-Length": "Content-Length must not be negative."})
        if content_length > max_bytes:
            raise PayloadTooLarge(
                f"The {what} ({content_length} bytes) is larger than the limit of {max_bytes} bytes."
            )
    storage = artifact_storage()
    reader = _HashingReader(stream, max_bytes, what=what)
    body = File(reader, name="blob")
    body.DEFAULT_CHUNK_SIZE = CHUNK_SIZE
    if content_type:
        body.content_type = content_type  # S3 stores it as the object's Content-Type
    wanted_name = f"{name_prefix}{uuid.uuid4().hex}"
    try:
        name = storage.save(wanted_name, body)
    except BaseException:
        _blob_delete(storage, wanted_name)
        raise
    if content_length is not None and reader.size != content_length:
        _blob_delete(storage, name)
        raise ValidationError(
            {"body": f"The upload ended after {reader.size} of {content_length} bytes."}
        )
    return Blob(name, reader.size, reader.sha256.hexdigest())


def artifact_upload(
    *, run: Run, path: str, stream: IO[bytes], content_length: int | None, content_type: str = "",
    pii: bool = False,
) -> Artifact:
    """Store ``stream`` as the run's artifact at ``path``, replacing what was there.

    The stream is read in chunks while it is written to storage; the row is
    written only after the whole body arrived. ``content_length``, when given,
    is refused up front if over the limit and must match what arrives.
    ``pii`` marks a file that holds values of PII columns; a path once marked
    stays marked.
    """
    path = artifact_path_clean(path)
    content_type = _content_type_clean(content_type, path)
    storage = artifact_storage()
    blob = blob_write(
        stream, name_prefix=f"runs/{run.pk}/", max_bytes=settings.MAX_ARTIFACT_BYTES,
        content_length=content_length, content_type=content_type,
    )
    name = blob.storage_name

    fields = {
        "storage_name": name,
        "size": blob.size,
        "sha256": blob.sha256,
        "content_type": content_type,
        "created_at": timezone.now(),
        "verified_at": None,
    }
    try:
        with transaction.atomic():
            artifact = Artifact.objects.select_for_update().filter(run=run, path=path).first()
            if artifact is None:
                try:
                    with transaction.atomic():
                        artifact = Artifact.objects.create(run=run, path=path, pii=pii, **fields)
                    return artifact
                except IntegrityError:
                    # Another upload of the same path created the row first.
                    artifact = Artifact.objects.select_for_update().filter(run=run, path=path).first()
                    if artifact is None:
                        raise
            old_name = artifact.storage_name
            for field, value in (fields | {"pii": artifact.pii or pii}).items():
                setattr(artifact, field, value)
            artifact.save(update_fields=[*fields, "pii"])
            transaction.on_commit(lambda: _blob_delete(storage, old_name))
            return artifact
    except BaseException:
        _blob_delete(storage, name)
        raise


def _artifact_get(*, run: Run, path: str) -> Artifact:
    path = artifact_path_clean(path)
    artifact = Artifact.objects.filter(run=run, path=path).first()
    if artifact is None:
        raise NotFound("No such artifact.")
    return artifact


def _blob_open(storage: Storage, name: str) -> IO[bytes]:
    """The stored blob as a file that reads from storage as it goes."""
    blob = storage.open(name, "rb")
    s3_object = getattr(blob, "obj", None)
    if s3_object is not None and hasattr(s3_object, "get"):
        # django-storages' S3File downloads the whole object into memory on
        # its first read; boto3's body streams it from the connection instead.
        blob.close()
        return s3_object.get()["Body"]
    return blob


def artifact_open(*, run: Run, path: str, user) -> tuple[Artifact, IO[bytes]]:
    """The artifact at ``path`` and its content as a file to stream out, for ``user`` to read.

    404 if absent; 403 for a PII-bearing file the user may not see (the caller
    has already checked that they may see the run).
    """
    artifact = _artifact_get(run=run, path=path)
    if artifact.pii:
        require_pii_access(user, run.project)
    try:
        return artifact, _blob_open(artifact_storage(), artifact.storage_name)
    except FileNotFoundError:
        raise NotFound("The artifact's content is missing from storage.") from None


def artifact_pii_mark(*, artifacts: list[Artifact]) -> None:
    """Mark files found to hold values of PII columns (e.g. a model registered with PII inputs)."""
    Artifact.objects.filter(pk__in=[a.pk for a in artifacts]).update(pii=True)
    for artifact in artifacts:
        artifact.pii = True


def artifact_dir_clean(prefix: str) -> str:
    """A folder path for listing: "" is the run's root; a trailing '/' is allowed."""
    prefix = (prefix or "").rstrip("/")
    return artifact_path_clean(prefix) if prefix else ""


def artifact_tree(*, run: Run, prefix: str = "", recursive: bool = False) -> list[dict[str, Any]]:
    """What lies under ``prefix``: one level of folders and files, or every file below it.

    Paths are relative to the run's root, as MLflow's list-artifacts answers;
    a prefix with nothing below it gives an empty list.
    """
    prefix = artifact_dir_clean(prefix)
    rows = Artifact.objects.filter(run=run)
    if prefix:
        rows = rows.filter(path__startswith=prefix + "/")
    rows = rows.order_by("path").values_list("path", "size", "sha256", "pii")
    start = len(prefix) + 1 if prefix else 0
    entries: list[dict[str, Any]] = []
    seen_dirs: set[str] = set()
    for path, size, sha256, pii in rows.iterator(chunk_size=2000):
        head, sep, _ = path[start:].partition("/")
        if sep and not recursive:
            directory = path[:start] + head
            if directory not in seen_dirs:
                seen_dirs.add(directory)
                entries.append({"path": directory, "is_dir": True, "size": None, "sha256": None})
            continue
        entries.append({"path": path, "is_dir": False, "size": size, "sha256": sha256, "pii": pii})
    return entries


def _blob_digest(storage: Storage, name: str) -> tuple[int, str] | None:
    """(size, sha256) of a stored blob read in chunks; None if it is gone."""
    if not storage.exists(name):
        return None
    digest = hashlib.sha256()
    size = 0
    try:
        blob = _blob_open(storage, name)
    except FileNotFoundError:
        return None
    try:
        while chunk := blob.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    finally:
        blob.close()
    return size, digest.hexdigest()


def artifacts_verify(*, job_id: int) -> None:
    """Job body: re-read every artifact of a run and compare its sha256 and size."""

    def work(job: Job) -> dict[str, Any]:
        run = Run.objects.filter(pk=job.params.get("run_id")).first()
        if run is None:
            raise ValidationError({"run_id": "The run no longer exists."})
        storage = artifact_storage()
        artifacts = list(Artifact.objects.filter(run=run).order_by("path"))
        ok: list[int] = []
        mismatched: list[str] = []
        missing: list[str] = []
        for i, artifact in enumerate(artifacts, start=1):
            found = _blob_digest(storage, artifact.storage_name)
            if found is None:
                missing.append(artifact.path)
            elif found == (artifact.size, artifact.sha256):
                ok.append(artifact.pk)
            else:
                mismatched.append(artifact.path)
            jobs.job_progress(job=job, progress=100 * i // len(artifacts),
                              message=f"Checked {i} of {len(artifacts)} artifacts")
        # Guarded by storage_name: an artifact re-uploaded meanwhile is not vouched for.
        checked_names = {a.pk: a.storage_name for a in artifacts}
        now = timezone.now()
        with transaction.atomic():
            jobs.job_guard(job=job)
            for artifact_id in ok:
                Artifact.objects.filter(pk=artifact_id, storage_name=checked_names[artifact_id]).update(
                    verified_at=now
                )
            Artifact.objects.filter(run=run, path__in=mismatched + missing).update(verified_at=None)
        return {"checked": len(artifacts), "ok": len(ok), "mismatched": mismatched, "missing": missing}

    jobs.job_run(job_id=job_id, work=work)
