import os
import shutil
from contextlib import suppress
from pathlib import Path

import pytest
from django.core.cache import cache
from kombu import Exchange, Queue
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from mlplatform.celery import app as celery_app
from tests import workers
from tests.factories import MembershipFactory, ProjectFactory, UserFactory


@pytest.fixture
def project(db):
    return ProjectFactory()


def _client_for(user) -> APIClient:
    _, raw = account_services.api_token_create(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.user = user
    return client


@pytest.fixture
def member_client(project):
    """Return a factory: member_client(role) -> an API client of a member with that role."""

    def make(role: Role = Role.EDITOR, username: str | None = None) -> APIClient:
        kwargs = {"username": username} if username else {}
        user = UserFactory(**kwargs)
        MembershipFactory(project=project, user=user, role=role)
        return _client_for(user)

    return make


@pytest.fixture
def editor(member_client):
    return member_client(Role.EDITOR)


@pytest.fixture
def viewer(member_client):
    return member_client(Role.VIEWER)


@pytest.fixture
def outsider(db):
    return _client_for(UserFactory())


@pytest.fixture(autouse=True)
def _no_failed_tokens_counted():
    # Every test client comes from 127.0.0.1: one test's bad tokens must not throttle the next.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The default hasher costs most of a second per user; tests need no strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def artifact_root(settings, tmp_path, monkeypatch):
    """Artifacts stored in a folder of this test's own, which worker processes it starts use too."""
    root = tmp_path / "artifacts"
    settings.STORAGES = {**settings.STORAGES, "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    monkeypatch.setenv("ARTIFACT_ROOT", str(root))  # read by tests/workers.py's subprocesses
    yield root
    # pytest keeps recent tmp folders; do not leave large blobs in them.
    shutil.rmtree(root, ignore_errors=True)


# Real Celery workers (tests/workers.py): queues of the test's own and workers reading them.
@pytest.fixture
def queues():
    before = celery_app.conf.task_routes
    made = workers.Queues()
    yield made
    celery_app.conf.update(task_routes=before)  # rebuilds the router
    # Drop the override so the app reads CELERY_TASK_ROUTES from Django's settings again.
    celery_app.conf.changes.pop("task_routes", None)
    # Best effort: drop the (empty) queues so the broker keeps no trace of the test.
    with suppress(Exception), celery_app.connection_for_write() as conn:
        for name in made.names:
            queue = Queue(name, Exchange(name, type="direct"), routing_key=name)(conn.default_channel)
            queue.declare()  # so the channel knows the binding it must remove
            queue.delete()


@pytest.fixture
def queue(queues):
    """A queue of this test's own, with the tasks this process sends routed to it."""
    name = queues.new()
    queues.route(name)
    return name


@pytest.fixture
def start_worker(tmp_path, transactional_db):
    started: list[workers.Worker] = []

    def start(queue: str, pool: str = "solo", env: dict[str, str] | None = None) -> workers.Worker:
        worker = workers.Worker(queue, tmp_path / f"worker-{len(started)}.log", pool=pool, env=env)
        started.append(worker)
        worker.start()
        return worker

    yield start
    for worker in started:
        worker.kill()


# Browser tests (tests/browser/ and elsewhere): Playwright's sync API driving Debian's Chromium.
# Defined here, once, so every folder's browser tests share the session's one browser.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls
    # from a thread with a running loop unless told that this is intended.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import expect, sync_playwright

    # The machine is small and shared; Plotly's 4 MB script can take a few seconds to arrive.
    expect.set_options(timeout=30_000)

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageErrors(list):
    def attach(self, page) -> None:
        page.on("console", lambda msg: self.append(f"console: {msg.text} ({page.url})")
                if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.append(f"pageerror: {exc} ({page.url})"))
        # Any alert/confirm/prompt would mean injected script ran.
        page.on("dialog", lambda dialog: (self.append(f"dialog: {dialog.message} ({page.url})"),
                                          dialog.dismiss()))


@pytest.fixture
def page_errors():
    return PageErrors()


@pytest.fixture
def new_page(browser, page_errors):
    """new_page(viewport) -> a Playwright page in a fresh context; errors are collected."""
    contexts = []

    def make(viewport=DESKTOP):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page_errors.attach(page)
        return page

    yield make
    for context in contexts:
        context.close()
    assert list(page_errors) == [], "JavaScript errors on the pages visited:\n" + "\n".join(page_errors)
