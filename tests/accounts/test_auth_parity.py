"""The REST API and serving answer every credential the same way (accounts.selectors).

Each case asks twice: a project-scoped GET of the API (the model's detail) and a
prediction from that model. No usable credentials is 401 before anything about
the project is looked at; a user who may not read the project is 404, as is a
project that does not exist.
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from sklearn.linear_model import LogisticRegression

from accounts import services as account_services
from accounts.models import ApiToken, Role
from registry import prediction_log, serving
from tests.factories import (
    ExperimentFactory,
    MembershipFactory,
    RunFactory,
    UserFactory,
    inactive_user_client,
    member,
    session_client,
    token_client,
    unknown_token_client,
)
from tests.registry.conftest import register, store_model

pytestmark = pytest.mark.django_db

MODEL = "parity-model"
ROW = {"a": 0.5, "b": -1.0}


@pytest.fixture
def served(project, artifact_root, settings):
    settings.PREDICTION_LOG_BACKGROUND = False
    serving.predictor_cache_clear()
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 2)), columns=["a", "b"])
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    owner = UserFactory()
    MembershipFactory(project=project, user=owner, role=Role.OWNER)
    run = RunFactory(experiment=ExperimentFactory(project=project))
    store_model(run, model, example=frame)
    version = register(project=project, run=run, user=owner, name=MODEL)
    assert version.status == "ready", version.status_message
    yield version
    serving.predictor_cache_clear()
    prediction_log._drain()


def _expired(project):
    return token_client(member(project, Role.EDITOR), expires_at=timezone.now() - dt.timedelta(seconds=1))


def _revoked(project):
    return token_client(member(project, Role.EDITOR), revoked_at=timezone.now())


# (case, how its client is made, the status both paths must answer)
CASES = [
    ("editor token", lambda p: token_client(member(p, Role.EDITOR)), 200),
    ("viewer token", lambda p: token_client(member(p, Role.VIEWER)), 200),
    ("owner token", lambda p: token_client(member(p, Role.OWNER)), 200),
    ("staff token, no membership", lambda p: token_client(member(p, None, is_staff=True)), 200),
    ("expired token", _expired, 401),
    ("revoked token", _revoked, 401),
    ("token of an inactive user", inactive_user_client, 401),
    ("inactive staff", lambda p: token_client(member(p, None, is_staff=True, is_active=False)), 401),
    ("unknown token", unknown_token_client, 401),
    ("no credentials", lambda p: APIClient(), 401),
    ("non-member token", lambda p: token_client(member(p, None)), 404),
    ("viewer session", lambda p: session_client(member(p, Role.VIEWER)), 200),
    ("staff session", lambda p: session_client(member(p, None, is_staff=True)), 200),
    ("non-member session", lambda p: session_client(member(p, None)), 404),
]


def _api_get(client, slug: str):
    return client.get(f"/api/v1/projects/{slug}/models/{MODEL}/")


def _predict(client, slug: str):
    return client.post(f"/api/v1/serve/{slug}/{MODEL}/1/predict", {"records": [ROW]},
                       content_type="application/json")


@pytest.mark.parametrize(("case", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_api_and_serving_give_the_same_answer(project, served, case, make, expected):
    client = make(project)
    api, served_answer = _api_get(client, project.slug), _predict(client, project.slug)
    assert api.status_code == expected, (case, api.content)
    assert served_answer.status_code == expected, (case, served_answer.content)
    if expected == 200:
        assert api.json()["name"] == MODEL
        assert served_answer.json()["model_version"] == 1
    else:
        assert served_answer.json()["error"]["code"] == api.json()["error"]["code"]


@pytest.mark.parametrize(("case", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_missing_project_is_404_to_whoever_may_ask_and_401_to_others(project, served, case, make,
                                                                         expected):
    client = make(project)
    missing = 401 if expected == 401 else 404
    assert _api_get(client, "no-such-project").status_code == missing, case
    assert _predict(client, "no-such-project").status_code == missing, case


def test_a_token_used_for_serving_records_its_use_like_the_api(project, served):
    user = member(project, Role.VIEWER)
    token, raw = account_services.api_token_create(user=user, name="use")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert _predict(client, project.slug).status_code == 200
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    # Written at most once a minute, on either path.
    assert _api_get(client, project.slug).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - dt.timedelta(minutes=5))
    assert _predict(client, project.slug).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first
