"""The Models page of the top navigation: every model the user can see, across projects."""

import pytest
from django.test import Client

from accounts.models import Role
from registry import services
from tests.factories import ExperimentFactory, MembershipFactory, ProjectFactory, RunFactory, UserFactory
from tests.registry.conftest import register, store_model

pytestmark = pytest.mark.django_db


def test_models_page_lists_every_visible_model_with_latest_version_aliases_and_status(
        project, run, editor, iris_logreg):
    model, X = iris_logreg
    store_model(run, model, example=X)
    register(project=project, run=run, user=editor.user)
    v2 = register(project=project, run=run, user=editor.user)
    services.alias_set(model=v2.model, alias="staging", version=v2, user=editor.user, via="test")
    # A second project of the same user, whose model's checks have not run yet.
    other = ProjectFactory(name="Forecasting")
    MembershipFactory(project=other, user=editor.user, role=Role.EDITOR)
    other_run = RunFactory(experiment=ExperimentFactory(project=other))
    store_model(other_run, model, example=X)
    register(project=other, run=other_run, user=editor.user, name="demand", check=False)
    # A project the user is not in.
    hidden = ProjectFactory(name="Secret")
    hidden_run = RunFactory(experiment=ExperimentFactory(project=hidden))
    store_model(hidden_run, model, example=X)
    register(project=hidden, run=hidden_run, user=UserFactory(), name="secret-model", check=False)

    client = Client()
    client.force_login(editor.user)
    response = client.get("/models/")
    assert response.status_code == 200
    html = response.content.decode()
    rows = {row["model"].name: row for row in response.context["rows"]}
    assert set(rows) == {"credit-scorer", "demand"}
    assert rows["credit-scorer"]["latest"].version == 2
    assert [a.name for a in rows["credit-scorer"]["aliases"]] == ["staging"]
    assert f'href="/p/{project.slug}/models/credit-scorer/v/2/"' in html
    assert "staging → v2" in html
    assert '<span class="badge badge-succeeded">ready</span>' in html
    assert '<span class="badge badge-queued">pending checks</span>' in html
    assert "Forecasting" in html and "secret-model" not in html and "Secret" not in html
    # The nav link goes here.
    assert 'href="/models/" aria-current="page"' in html

    found = client.get("/models/?q=dema").context["rows"]
    assert [r["model"].name for r in found] == ["demand"]


def test_models_page_without_models_says_how_to_register_one(db):
    client = Client()
    client.force_login(UserFactory())
    html = client.get("/models/").content.decode()
    assert "No registered models yet" in html
