"""Links and panels higher apps add to lower apps' pages (core.links), as the pages show them."""

import pytest

from accounts.models import Role
from experiments.models import Experiment, Run
from tests.factories import member, session_client

pytestmark = pytest.mark.django_db


def _buttons(html: str, *labels: str) -> list[str]:
    return [label for label in labels if f">{label}</a>" in html]


def test_project_page_shows_each_apps_link_in_order(project):
    html = session_client(member(project, Role.VIEWER)).get(f"/p/{project.slug}/").content.decode()
    shown = _buttons(html, "Models", "Datasets", "Sweeps", "Audit log")
    assert shown == ["Models", "Datasets", "Sweeps", "Audit log"]
    positions = [html.index(f">{label}</a>") for label in shown]
    assert positions == sorted(positions)


def test_a_link_that_needs_a_role_is_shown_only_to_that_role(project):
    url = f"/p/{project.slug}/datasets/"
    viewer = session_client(member(project, Role.VIEWER)).get(url).content.decode()
    editor = session_client(member(project, Role.EDITOR)).get(url).content.decode()
    assert _buttons(viewer, "Sweeps", "Train a model") == ["Sweeps"]
    assert _buttons(editor, "Sweeps", "Train a model") == ["Sweeps", "Train a model"]
    assert f'href="/p/{project.slug}/train/"' in editor


def test_the_run_page_loads_the_panels_of_training_and_the_registry(project):
    user = member(project, Role.VIEWER)
    experiment = Experiment.objects.create(project=project, name="e")
    run = Run.objects.create(experiment=experiment, project=project, name="r", author=user)
    html = session_client(user).get(f"/runs/{run.pk}/").content.decode()
    training = html.index(f'hx-get="/runs/{run.pk}/datasets-panel/"')
    registry = html.index(f'hx-get="/runs/{run.pk}/models-panel/"')
    assert training < registry
