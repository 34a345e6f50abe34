import hashlib
import io
import os
from pathlib import Path

import pytest
import requests
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from core.errors import PayloadTooLarge
from core.models import Job, JobStatus
from experiments import artifacts
from experiments.models import Artifact
from experiments.tasks import artifacts_verify_task
from tests.factories import ExperimentFactory, MembershipFactory, ProjectFactory, RunFactory, UserFactory
from tests.workers import wait_for_job


@pytest.fixture
def run(project):
    return RunFactory(experiment=ExperimentFactory(project=project))


def stored_blobs(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files
    )


def url(run, path: str = "") -> str:
    return f"/api/v1/runs/{run.pk}/artifacts/{path}"


def put(client, run, path, data: bytes, content_type="application/octet-stream", **extra):
    return client.generic("PUT", url(run, path), data, content_type=content_type, **extra)


def upload(run, path: str, data: bytes) -> Artifact:
    return artifacts.artifact_upload(
        run=run, path=path, stream=io.BytesIO(data), content_length=len(data)
    )


# --- round trip -------------------------------------------------------------


def test_uploaded_bytes_come_back_with_their_sha256_and_size(editor, run, artifact_root):
    # Larger than FILE_UPLOAD_MAX_MEMORY_SIZE (2 MiB) and than one 1 MiB chunk.
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = hashlib.sha256(data).hexdigest()

    response = put(editor, run, "model/weights.bin", data)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["path"] == "model/weights.bin"
    assert body["size"] == len(data)
    assert body["sha256"] == digest
    assert body["content_type"] == "application/octet-stream"
    assert body["created_at"]
    artifact = Artifact.objects.get(run=run)
    assert (artifact.size, artifact.sha256) == (len(data), digest)
    assert stored_blobs(artifact_root) == [artifact.storage_name]

    download = editor.get(url(run, "model/weights.bin"))
    assert download.status_code == 200
    assert download.streaming
    assert b"".join(download.streaming_content) == data


def test_download_is_an_attachment_with_checksum_headers(editor, run):
    data = b"<html><script>alert(1)</script></html>"
    put(editor, run, "report.html", data, content_type="text/html")

    response = editor.get(url(run, "report.html"))

    digest = hashlib.sha256(data).hexdigest()
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="report.html"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["ETag"] == f'"{digest}"'
    assert response["X-Checksum-Sha256"] == digest
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Type"] == "text/html"


def test_a_body_larger_than_django_upload_limits_is_streamed_not_refused(editor, run, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    data = os.urandom(256 * 1024)

    response = put(editor, run, "big.bin", data)

    assert response.status_code == 201, response.content
    assert response.json()["size"] == len(data)


def test_empty_artifact_is_stored(editor, run):
    response = put(editor, run, "empty.txt", b"", content_type="")

    assert response.status_code == 201
    assert response.json()["size"] == 0
    assert response.json()["sha256"] == hashlib.sha256(b"").hexdigest()
    assert response.json()["content_type"] == "text/plain"


def test_reupload_replaces_the_artifact_and_deletes_the_old_blob(
    editor, run, artifact_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = put(editor, run, "model.pkl", b"version one")
    old_blob = Artifact.objects.get(run=run).storage_name

    with django_capture_on_commit_callbacks(execute=True):
        second = put(editor, run, "model.pkl", b"version two!")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["sha256"] == hashlib.sha256(b"version two!").hexdigest()
    artifact = Artifact.objects.get(run=run)
    assert artifact.size == len(b"version two!")
    assert stored_blobs(artifact_root) == [artifact.storage_name]
    assert artifact.storage_name != old_blob
    assert b"".join(editor.get(url(run, "model.pkl")).streaming_content) == b"version two!"


# --- listing ----------------------------------------------------------------


@pytest.fixture
def tree(run):
    for path in ["metrics.csv", "model/MLmodel", "model/data/weights.bin", "plots/a.png"]:
        upload(run, path, path.encode())
    return run


def entries(response) -> set:
    return {(f["path"], f["is_dir"], f["size"]) for f in response.json()["files"]}


def test_listing_shows_one_level_of_folders_and_files(viewer, tree):
    root = viewer.get(url(tree))
    model = viewer.get(url(tree), {"path": "model/"})

    assert root.status_code == 200
    assert root.json()["path"] == ""
    assert entries(root) == {("metrics.csv", False, 11), ("model", True, None), ("plots", True, None)}
    assert model.json()["path"] == "model"
    assert entries(model) == {("model/MLmodel", False, 13), ("model/data", True, None)}
    file_entry = next(f for f in model.json()["files"] if f["path"] == "model/MLmodel")
    assert file_entry["sha256"] == hashlib.sha256(b"model/MLmodel").hexdigest()


def test_recursive_listing_shows_every_file_below(viewer, tree):
    everything = viewer.get(url(tree), {"recursive": "1"})
    model = viewer.get(url(tree), {"path": "model", "recursive": "1"})

    assert {f["path"] for f in everything.json()["files"]} == {
        "metrics.csv", "model/MLmodel", "model/data/weights.bin", "plots/a.png"
    }
    assert not any(f["is_dir"] for f in everything.json()["files"])
    assert {f["path"] for f in model.json()["files"]} == {"model/MLmodel", "model/data/weights.bin"}


def test_listing_an_unknown_folder_is_empty_and_a_bad_one_refused(viewer, tree):
    assert viewer.get(url(tree), {"path": "nothing-here"}).json()["files"] == []
    bad = viewer.get(url(tree), {"path": "../other-run"})
    assert bad.status_code == 400
    assert "path" in bad.json()["error"]["fields"]


# --- path safety ------------------------------------------------------------

# Raw URL suffixes as a client would send them; the test client (like a WSGI
# server) decodes them once before Django routes the request.
BAD_URL_PATHS = [
    "a/../b",
    "a/%2e%2e/b",
    "%2E%2E/outside",
    "a%2f..%2fb",
    "a/%252e%252e/b",
    "a%252f..%252fb",
    "a/%252e/b",
    "/etc/passwd",
    "%2fetc/passwd",
    "a%5c..%5cb",
    "a%255c..%255cb",
    "a%00b",
    "a%2500b",
    "a%0Ab",
    "a%1Bb",
    "a%7Fb",
    "a//b",
    "a/",
    "C:/Windows/x",
    "dir/c:x",
    "x" * 1025,
]


@pytest.mark.parametrize("raw", BAD_URL_PATHS)
def test_unsafe_paths_are_refused_and_nothing_is_stored(editor, run, artifact_root, raw):
    response = put(editor, run, raw, b"payload")

    assert response.status_code == 400, response.content
    assert "path" in response.json()["error"]["fields"]
    assert not Artifact.objects.exists()
    assert stored_blobs(artifact_root) == []


@pytest.mark.parametrize("raw", ["a/%2e%2e/b", "a%2f..%2fb", "a/%252e%252e/b", "%2fetc/passwd", "a%00b"])
def test_unsafe_paths_are_refused_for_download_too(editor, run, raw):
    upload(run, "a/b", b"x")
    response = editor.get(url(run, raw))
    assert response.status_code == 400, response.content


@pytest.mark.parametrize(
    "path",
    [
        "..",
        "a/../b",
        "../a",
        "...",
        "/abs",
        "a\\b",
        "a/%2e%2e/b",
        "%2E%2e/x",
        "%2e",
        "a/%2e/b",
        "a%2fb",
        "a%2Fb",
        "a%5cb",
        "..%2f..%2fetc%2fpasswd",
        "%252e%252e/x",
        "a%25252fb",
        "a%00b",
        "a\x00b",
        "a\nb",
        "a\x7fb",
        "a\u0085b",
        "evil\u202etxt.exe",
        "a//b",
        "a/",
        "",
        "C:x",
        "c:/x",
        "a/D:/b",
        "%43:/x",
        "a" * 1025,
    ],
)
def test_path_clean_refuses(path):
    with pytest.raises(ValidationError) as info:
        artifacts.artifact_path_clean(path)
    assert "path" in info.value.message_dict


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("model/model.pkl", "model/model.pkl"),
        ("./model/./MLmodel", "model/MLmodel"),
        ("a b/%20c.txt", "a b/%20c.txt"),
        ("100%.txt", "100%.txt"),
        (".hidden/a..b", ".hidden/a..b"),
        ("e\u0301.txt", "\u00e9.txt"),
        ("x" * 1024, "x" * 1024),
    ],
)
def test_path_clean_keeps_safe_paths(path, expected):
    assert artifacts.artifact_path_clean(path) == expected


# --- size limit -------------------------------------------------------------


def test_content_length_over_the_limit_is_refused_before_reading(editor, run, settings, artifact_root):
    settings.MAX_ARTIFACT_BYTES = 10
    # The body is shorter than announced: reading it would fail, so a 413 shows
    # the refusal came from the header alone.
    response = put(editor, run, "big.bin", b"0123", CONTENT_LENGTH="5000000000")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not Artifact.objects.exists()
    assert stored_blobs(artifact_root) == []


def test_upload_at_the_limit_is_accepted_and_one_byte_more_refused(editor, run, settings):
    settings.MAX_ARTIFACT_BYTES = 10
    assert put(editor, run, "ten.bin", b"0123456789").status_code == 201
    assert put(editor, run, "eleven.bin", b"0123456789A").status_code == 413
    assert list(Artifact.objects.values_list("path", flat=True)) == ["ten.bin"]


class EndlessStream:
    """A body that never ends, as a client streaming without Content-Length could send."""

    def __init__(self):
        self.bytes_read = 0

    def read(self, size=-1):
        size = 65536 if size is None or size < 0 else size
        self.bytes_read += size
        return b"z" * size


def test_a_stream_over_the_limit_is_stopped_and_its_blob_deleted(run, settings, artifact_root):
    settings.MAX_ARTIFACT_BYTES = 3 * 1024 * 1024
    stream = EndlessStream()

    with pytest.raises(PayloadTooLarge):
        artifacts.artifact_upload(run=run, path="endless.bin", stream=stream, content_length=None)

    assert stream.bytes_read <= settings.MAX_ARTIFACT_BYTES + 1
    assert not Artifact.objects.exists()
    assert stored_blobs(artifact_root) == []


def test_a_body_shorter_than_its_content_length_is_not_stored(run, artifact_root):
    with pytest.raises(ValidationError) as info:
        artifacts.artifact_upload(
            run=run, path="cut.bin", stream=io.BytesIO(b"abc"), content_length=10
        )
    assert "body" in info.value.message_dict
    assert not Artifact.objects.exists()
    assert stored_blobs(artifact_root) == []


def test_chunked_upload_without_content_length_is_refused(editor, run):
    response = put(editor, run, "a.bin", b"abc", CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked")
    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"


# --- permissions ------------------------------------------------------------


def test_outsider_sees_nothing(outsider, run):
    upload(run, "a.txt", b"secret")

    assert put(outsider, run, "b.txt", b"x").status_code == 404
    assert outsider.get(url(run, "a.txt")).status_code == 404
    assert outsider.get(url(run)).status_code == 404
    assert outsider.post(f"/api/v1/runs/{run.pk}/artifacts-verify/").status_code == 404
    assert list(Artifact.objects.values_list("path", flat=True)) == ["a.txt"]


def test_viewer_can_read_but_not_write(viewer, run, artifact_root):
    upload(run, "a.txt", b"hello")

    write = put(viewer, run, "b.txt", b"x")
    verify = viewer.post(f"/api/v1/runs/{run.pk}/artifacts-verify/")
    read = viewer.get(url(run, "a.txt"))

    assert write.status_code == 403
    assert write.json()["error"]["code"] == "permission_denied"
    assert verify.status_code == 403
    assert read.status_code == 200
    assert b"".join(read.streaming_content) == b"hello"
    assert list(Artifact.objects.values_list("path", flat=True)) == ["a.txt"]
    assert len(stored_blobs(artifact_root)) == 1


def test_no_token_is_401(run):
    anonymous = APIClient()
    assert put(anonymous, run, "a.txt", b"x").status_code == 401
    assert anonymous.get(url(run)).status_code == 401
    assert not Artifact.objects.exists()


def test_unknown_run_or_path_is_404_json(editor, run):
    missing_run = editor.get("/api/v1/runs/00000000-0000-0000-0000-000000000000/artifacts/a.txt")
    missing_path = editor.get(url(run, "no/such/file.txt"))

    assert missing_run.status_code == 404
    assert missing_run.json()["error"]["code"] == "not_found"
    assert missing_path.status_code == 404
    assert missing_path.json()["error"]["code"] == "not_found"


# --- verification job -------------------------------------------------------


def test_verify_job_reports_tampered_and_missing_blobs(editor, run):
    good = upload(run, "good.bin", b"all fine")
    tampered = upload(run, "tampered.bin", b"original")
    gone = upload(run, "gone.bin", b"vanishes")
    storage = storages["artifacts"]
    with open(storage.path(tampered.storage_name), "wb") as f:
        f.write(b"ORIGINAL")  # same size, different bytes
    storage.delete(gone.storage_name)

    response = editor.post(f"/api/v1/runs/{run.pk}/artifacts-verify/")
    assert response.status_code == 202
    assert response.json()["kind"] == "artifact_verify"
    assert response.json()["status"] == "queued"
    job_id = response.json()["id"]

    artifacts_verify_task.apply(args=[job_id])
    job = Job.objects.get(pk=job_id)
    first_finish = job.finished_at
    good.refresh_from_db()
    verified_at = good.verified_at
    artifacts_verify_task.apply(args=[job_id])  # a redelivered message does nothing more

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"checked": 3, "ok": 1, "mismatched": ["tampered.bin"], "missing": ["gone.bin"]}
    assert job.finished_at == first_finish
    assert job.attempts == 1
    assert verified_at is not None
    good.refresh_from_db()
    assert good.verified_at == verified_at
    assert Artifact.objects.filter(verified_at__isnull=False).count() == 1
    polled = editor.get(f"/api/v1/jobs/{job_id}/").json()
    assert polled["result"]["mismatched"] == ["tampered.bin"]


# --- S3-compatible storage -------------------------------------------------


@pytest.fixture
def s3_artifacts(settings):
    """The artifacts storage on an S3 bucket, served in-process by moto."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        client = boto3.client("s3", region_name="us-east-1", **credentials)
        client.create_bucket(Bucket="steward-artifacts")
        settings.STORAGES = {
            **settings.STORAGES,
            "artifacts": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": "steward-artifacts",
                    "region_name": "us-east-1",
                    "access_key": "testing",
                    "secret_key": "testing",
                    "file_overwrite": True,
                },
            },
        }
        yield client


def test_s3_storage_round_trip_and_verification(editor, run, s3_artifacts):
    # Over boto3's 8 MiB multipart threshold, so the upload goes in parts.
    data = os.urandom(9 * 1024 * 1024 + 5)
    assert put(editor, run, "model/weights.bin", data).status_code == 201
    assert put(editor, run, "notes.txt", b"hello", content_type="text/plain").status_code == 201
    assert put(editor, run, "gone.txt", b"bye").status_code == 201
    stored = {a.path: a for a in Artifact.objects.filter(run=run)}
    head = s3_artifacts.head_object(Bucket="steward-artifacts", Key=stored["model/weights.bin"].storage_name)
    assert head["ContentLength"] == len(data)

    download = editor.get(url(run, "model/weights.bin"))
    assert download.status_code == 200
    assert download["Content-Length"] == str(len(data))
    assert b"".join(download.streaming_content) == data

    s3_artifacts.put_object(Bucket="steward-artifacts", Key=stored["notes.txt"].storage_name, Body=b"HELLO")
    s3_artifacts.delete_object(Bucket="steward-artifacts", Key=stored["gone.txt"].storage_name)
    job_id = editor.post(f"/api/v1/runs/{run.pk}/artifacts-verify/").json()["id"]
    artifacts_verify_task.apply(args=[job_id])

    assert Job.objects.get(pk=job_id).result == {
        "checked": 3, "ok": 1, "mismatched": ["notes.txt"], "missing": ["gone.txt"]
    }


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_verifies_artifacts_from_the_broker(queue, start_worker):
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.EDITOR)
    run = RunFactory(experiment=ExperimentFactory(project=project))
    upload(run, "model.bin", b"weights")
    tampered = upload(run, "data.csv", b"a,b\n1,2\n")
    Path(storages["artifacts"].path(tampered.storage_name)).write_bytes(b"a,b\n9,9\n")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {account_services.api_token_create(user=user)[1]}")
    worker = start_worker(queue)

    job_id = client.post(f"/api/v1/runs/{run.pk}/artifacts-verify/").json()["id"]
    job, _ = wait_for_job(job_id, lambda j: j.is_final, worker, "finished")

    assert job.status == JobStatus.SUCCEEDED, (job.error, worker.log())
    assert job.result == {"checked": 2, "ok": 1, "mismatched": ["data.csv"], "missing": []}
    assert Artifact.objects.get(run=run, path="model.bin").verified_at is not None
    assert Artifact.objects.get(run=run, path="data.csv").verified_at is None


# --- streaming through a live server ---------------------------------------


class GeneratedBody:
    """``size`` bytes produced as they are read, so the client holds none of them."""

    def __init__(self, size: int):
        self.size = size
        self.sent = 0
        self.block = os.urandom(1024 * 1024)
        self.sha256 = hashlib.sha256()

    def __len__(self):
        return self.size

    def read(self, n=-1):
        wanted = len(self.block) if n is None or n < 0 else min(n, len(self.block))
        data = self.block[: min(wanted, self.size - self.sent)]
        self.sent += len(data)
        self.sha256.update(data)
        return data


def _kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_200_mb_goes_through_a_live_server_in_bounded_memory(live_server, artifact_root):
    project = ProjectFactory()
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.EDITOR)
    run = RunFactory(experiment=ExperimentFactory(project=project))
    _, token = account_services.api_token_create(user=user, name="live")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
    target = f"{live_server.url}/api/v1/runs/{run.pk}/artifacts/big/model.bin"
    size = 200 * 1024 * 1024
    body = GeneratedBody(size)

    # The server runs in a thread of this process, so this process's peak
    # resident memory bounds what the server held at once.
    _reset_peak_rss()
    baseline = _kib("VmRSS")
    uploaded = requests.put(target, data=body, headers=headers, timeout=120)
    upload_peak = _kib("VmHWM") - baseline

    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["size"] == size
    assert uploaded.json()["sha256"] == body.sha256.hexdigest()

    _reset_peak_rss()
    baseline = _kib("VmRSS")
    digest = hashlib.sha256()
    received = 0
    with requests.get(target, headers=headers, stream=True, timeout=120) as download:
        assert download.status_code == 200
        for chunk in download.iter_content(1024 * 1024):
            digest.update(chunk)
            received += len(chunk)
    download_peak = _kib("VmHWM") - baseline

    assert (received, digest.hexdigest()) == (size, body.sha256.hexdigest())
    # Far below the 200 MiB that went through each way.
    assert upload_peak < 40 * 1024, f"upload raised peak RSS by {upload_peak} KiB"
    assert download_peak < 40 * 1024, f"download raised peak RSS by {download_peak} KiB"
