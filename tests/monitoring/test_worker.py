"""A real Celery worker runs a drift report queued through the API, and delivers the alert it
opens by a signed webhook to a local receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from core.models import JobStatus
from monitoring.models import AlertDelivery
from tests.monitoring.conftest import credit_frame, send_traffic
from tests.monitoring.test_monitors import SHIFT
from tests.workers import wait_for_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SECRET = "a-shared-secret-of-the-receiver"


@pytest.fixture
def receiver():
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the standard library's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(
                {
                    "body": body,
                    "signature": self.headers["X-Steward-Signature"],
                    "event": self.headers["X-Steward-Event"],
                }
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    server.shutdown()


def test_worker_reports_drift_and_delivers_a_signed_webhook(
    editor, project, served, queue, start_worker, receiver, settings
):
    url, got = receiver
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on this machine
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the set-up trained in this process; now the worker works
    worker = start_worker(queue, env={"WEBHOOK_ALLOW_PRIVATE": "true"})
    body = editor.post(
        f"/api/v1/projects/{project.slug}/monitors/",
        {"model": "scorer", "alias": "live", "webhook_url": url, "webhook_secret": SECRET},
        format="json",
    )
    assert body.status_code == 201, body.json()
    send_traffic(editor, project, credit_frame(rows=600, seed=12, shift=SHIFT))

    response = editor.post(f"/api/v1/monitors/{body.json()['id']}/run/")
    assert response.status_code == 202
    job, seen = wait_for_job(response.json()["id"], lambda j: j.is_final, worker, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, worker.log())
    assert "running" in seen and job.progress == 100
    report = editor.get(f"/api/v1/monitor-reports/{job.result['report_id']}/").json()
    assert sorted(f["feature"] for f in report["features"] if f["drifted"]) == ["income", "region"]

    deadline = time.monotonic() + 60
    while not got and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(got) == 1, worker.log()
    delivered = got[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), delivered["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(delivered["signature"], expected)
    assert delivered["event"] == "monitor.alert.drift"
    payload = json.loads(delivered["body"])["payload"]
    assert (
        payload["kind"] == "drift" and payload["model"] == "scorer" and payload["report_id"] == report["id"]
    )
    deadline = time.monotonic() + 10
    while not AlertDelivery.objects.filter(delivered=True).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert AlertDelivery.objects.get(channel="webhook").status_code == 204


def test_worker_retrains_on_a_drift_alert_into_a_checked_version_and_no_alias_moves(
    editor, project, served, queue, start_worker, settings
):
    import time as clock

    from monitoring.models import Retraining
    from registry.models import ModelAlias, ModelVersion

    settings.CELERY_TASK_ALWAYS_EAGER = False
    worker = start_worker(queue)
    body = editor.post(
        f"/api/v1/projects/{project.slug}/monitors/",
        {"model": "scorer", "alias": "live", "retrain_on_alert": True},
        format="json",
    ).json()
    send_traffic(editor, project, credit_frame(rows=600, seed=12, shift=SHIFT))
    job_id = editor.post(f"/api/v1/monitors/{body['id']}/run/").json()["id"]
    job, _ = wait_for_job(job_id, lambda j: j.is_final, worker, "finished")
    assert job.status == JobStatus.SUCCEEDED, (job.error, worker.log())

    retraining = Retraining.objects.get()
    training, _ = wait_for_job(retraining.job_id, lambda j: j.is_final, worker, "retrained")
    assert training.status == JobStatus.SUCCEEDED, (training.error, worker.log())
    assert training.result["version"] == 2
    deadline = clock.monotonic() + 120
    new = ModelVersion.objects.get(model=served.model, version=2)
    while new.status == "pending_checks" and clock.monotonic() < deadline:
        clock.sleep(0.5)
        new.refresh_from_db()
    assert new.status == "ready", (new.status_message, worker.log())
    assert ModelAlias.objects.get(model=served.model, name="live").version_id == served.pk
