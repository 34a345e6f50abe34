from contextlib import suppress

import pytest
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
def outsider(db):
    return _client_for(UserFactory())


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The default hasher costs most of a second per user; tests need no strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
def start_worker(tmp_path, transactional_db):
    started: list[workers.Worker] = []

    def start(queue: str, pool: str = "solo") -> workers.Worker:
        worker = workers.Worker(queue, tmp_path / f"worker-{len(started)}.log", pool=pool)
        started.append(worker)
        worker.start()
        return worker

    yield start
    for worker in started:
        worker.kill()
