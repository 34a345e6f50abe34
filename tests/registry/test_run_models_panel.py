"""The run page links the model versions registered from the run, and offers "Register model"."""

import pytest
from django.test import Client

from accounts.models import Role
from tests.factories import MembershipFactory, UserFactory
from tests.registry.conftest import register, store_model

pytestmark = pytest.mark.django_db


def _client(project, role):
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_run_page_loads_a_models_panel_linking_versions_and_registering_files(project, run, editor,
                                                                             iris_logreg):
    model, X = iris_logreg
    store_model(run, model, example=X)
    store_model(run, model, folder="candidate", example=X)
    register(project=project, run=run, user=editor.user)

    editor_client = _client(project, Role.EDITOR)
    page = editor_client.get(f"/runs/{run.pk}/").content.decode()
    assert f'hx-get="/runs/{run.pk}/models-panel/"' in page

    panel = editor_client.get(f"/runs/{run.pk}/models-panel/").content.decode()
    assert f'href="/p/{project.slug}/models/credit-scorer/v/1/">credit-scorer v1</a>' in panel
    assert "model/model.skops <span class=\"badge badge-finished\">registered</span>" in panel
    register_url = f"/p/{project.slug}/register-model/?run={run.pk}&amp;artifact_path=candidate/model.skops"
    assert register_url in panel

    # The register page opens with that file chosen.
    form = editor_client.get(register_url.replace("&amp;", "&")).content.decode()
    assert '<option value="candidate/model.skops" selected>' in form

    viewer_panel = _client(project, Role.VIEWER).get(f"/runs/{run.pk}/models-panel/").content.decode()
    assert "credit-scorer v1" in viewer_panel and "Register model" not in viewer_panel


def test_models_panel_is_a_404_for_outsiders(run):
    stranger = Client()
    stranger.force_login(UserFactory())
    assert stranger.get(f"/runs/{run.pk}/models-panel/").status_code == 404
