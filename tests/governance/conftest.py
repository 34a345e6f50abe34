import pytest

from accounts.models import Role
from governance.models import AuditEvent
from tests.registry import conftest as registry
from tests.registry.conftest import register, store_model

# The registry tests' fixtures, shared.
_artifacts_of_its_own = registry._artifacts_of_its_own
serving_state = registry.serving_state
admin, owner, pickles_on, run = registry.admin, registry.owner, registry.pickles_on, registry.run
cancer_data, forest, iris_logreg = registry.cancer_data, registry.forest, registry.iris_logreg


@pytest.fixture
def reviewer(member_client):
    return member_client(Role.REVIEWER)


@pytest.fixture
def ready_version(project, run, editor, iris_logreg):
    model, X = iris_logreg
    store_model(run, model, example=X)
    return register(project=project, run=run, user=editor.user)


def actions(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("id").values_list("action", flat=True))


def browser_for(project, role, **user_fields):
    from django.test import Client

    from tests.factories import MembershipFactory, UserFactory

    user = UserFactory(**user_fields)
    if role is not None:
        MembershipFactory(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    client.user = user
    return client
