import pytest
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
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
