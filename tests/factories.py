import factory
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import ApiToken, Membership, Project, Role
from experiments.models import Experiment, Run


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-Steward-123")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.EDITOR


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"experiment-{n}")


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    experiment = factory.SubFactory(ExperimentFactory)
    project = factory.LazyAttribute(lambda o: o.experiment.project)
    name = factory.Sequence(lambda n: f"run-{n}")


# Clients for access tests: a token (optionally expired or revoked), a member of a given role, a session.


def token_client(user, **token_fields) -> APIClient:
    """An API client sending a new token of ``user``; ``token_fields`` are then stored on the token
    (``expires_at=...``, ``revoked_at=...``)."""
    token, raw = account_services.api_token_create(user=user, name="test")
    if token_fields:
        ApiToken.objects.filter(pk=token.pk).update(**token_fields)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def member(project, role: Role | None, **user_fields):
    """A new user holding ``role`` in ``project`` (no membership for None)."""
    user = UserFactory(**user_fields)
    if role is not None:
        MembershipFactory(project=project, user=user, role=role)
    return user


def session_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def inactive_user_client(project) -> APIClient:
    """A client with a valid token of an editor whose account was then deactivated."""
    user = member(project, Role.EDITOR)
    client = token_client(user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    return client


def unknown_token_client(project) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer stw_no-such-token")
    return client
