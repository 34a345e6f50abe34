"""Reviewers hear of requests in-app, by email and through the project's signed webhook; a real
worker delivers them after commit."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail

from core.webhooks import webhook_signature
from governance import notifications, promotions
from governance.models import Notification, Policy
from tests.governance.conftest import make_version
from tests.workers import JOB_TIMEOUT

SECRET = "hook-secret"


class Receiver:
    """A local HTTP endpoint that keeps what it is sent."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"body": body, "signature": self.headers["X-Steward-Signature"],
                                 "event": self.headers["X-Steward-Event"]})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


@pytest.mark.django_db
def test_delivery_emails_each_reviewer_and_signs_the_webhook(project, model, people, receiver, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on this machine
    Policy.objects.create(project=project, webhook_url=receiver.url, webhook_secret=SECRET)
    request = promotions.promotion_request_create(
        model=model, version=make_version(model, author=people["author"]), alias="champion",
        justification="Better recall.", user=people["requester"])
    ids = list(Notification.objects.filter(request=request).values_list("pk", flat=True))
    event = Notification.objects.get(pk=ids[0]).event

    result = notifications.notifications_deliver(request_id=request.pk, event=event, notification_ids=ids)
    assert result == {"emails": 3, "webhook": 204}
    assert sorted(m.to[0] for m in mail.outbox) == [f"{n}@example.com" for n in ("alice", "bob", "owner")]
    assert f"/reviews/{request.pk}/" in mail.outbox[0].body
    [hook] = receiver.received
    assert hook["signature"] == webhook_signature(body=hook["body"], secret=SECRET)
    payload = json.loads(hook["body"])["payload"]
    assert payload["request_id"] == request.pk and payload["alias"] == "champion" and payload["version"] == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_the_review_request(project, model, people, receiver, queue, start_worker,
                                                   tmp_path, settings):
    import time

    mail_dir = tmp_path / "mail"
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on this machine
    worker = start_worker(queue, env={"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                                      "EMAIL_FILE_PATH": str(mail_dir), "WEBHOOK_ALLOW_PRIVATE": "true"})
    Policy.objects.create(project=project, webhook_url=receiver.url, webhook_secret=SECRET)
    # Created outside a test transaction: the task is sent on commit, as in a web request.
    request = promotions.promotion_request_create(
        model=model, version=make_version(model, author=people["author"]), alias="champion",
        justification="Better recall.", user=people["requester"])

    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline and not receiver.received:
        if worker.process.poll() is not None:
            pytest.fail(f"The worker exited:\n{worker.log()}")
        time.sleep(0.1)
    assert receiver.received, worker.log()
    body = json.loads(receiver.received[0]["body"])
    assert body["event"] == "promotion.review_requested" and body["payload"]["request_id"] == request.pk
    messages = "".join(p.read_text() for p in mail_dir.glob("*.log"))
    for name in ("alice", "bob", "owner"):
        assert f"{name}@example.com" in messages
    assert "requester@example.com" not in messages
