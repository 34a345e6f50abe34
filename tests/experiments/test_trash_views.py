"""The trash in the browser: move a run or an experiment there, see it listed, restore it."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from experiments.models import Lifecycle, Run
from tests.experiments.test_views import experiment, member  # noqa: F401 - fixtures
from tests.factories import MembershipFactory, RunFactory, UserFactory


@pytest.mark.django_db
def test_a_run_moved_to_the_trash_leaves_the_table_and_is_restored_from_the_trash_page(
        member, experiment, project):  # noqa: F811
    editor = member(Role.EDITOR)
    kept, gone = RunFactory(experiment=experiment, name="kept-run"), RunFactory(experiment=experiment,
                                                                                   name="gone-run")
    page = editor.get(reverse("experiments:run", args=[gone.pk])).content.decode()
    assert 'id="run-delete"' in page and "csrfmiddlewaretoken" in page

    response = editor.post(reverse("experiments:run-delete", args=[gone.pk]), follow=True)
    assert response.redirect_chain[-1][0].endswith(f"/e/{experiment.pk}/")
    assert "moved to the trash" in response.content.decode()
    table = editor.get(reverse("experiments:experiment", args=[project.slug, experiment.pk])).content.decode()
    assert "kept-run" in table and "gone-run" not in table and "1 run" in table
    trash_page = editor.get(reverse("experiments:trash", args=[project.slug])).content.decode()
    assert "gone-run" in trash_page and "kept-run" not in trash_page
    assert "in the trash since" in editor.get(reverse("experiments:run", args=[gone.pk])).content.decode()

    editor.post(reverse("experiments:run-restore", args=[gone.pk]))
    assert Run.objects.get(pk=gone.pk).lifecycle == Lifecycle.ACTIVE
    assert kept.lifecycle == Lifecycle.ACTIVE


@pytest.mark.django_db
def test_an_experiment_in_the_trash_leaves_the_project_page(member, experiment, project):  # noqa: F811
    editor = member(Role.EDITOR)
    RunFactory(experiment=experiment)
    editor.post(reverse("experiments:experiment-delete", args=[project.slug, experiment.pk]))
    project_page = editor.get(reverse("experiments:project", args=[project.slug])).content.decode()
    assert f'/e/{experiment.pk}/"' not in project_page
    editor.post(reverse("experiments:experiment-restore", args=[project.slug, experiment.pk]))
    project_page = editor.get(reverse("experiments:project", args=[project.slug])).content.decode()
    assert f'/e/{experiment.pk}/"' in project_page


@pytest.mark.django_db
def test_viewers_see_no_delete_button_and_cannot_post_one(member, experiment):  # noqa: F811
    viewer = member(Role.VIEWER)
    run = RunFactory(experiment=experiment)
    assert 'id="run-delete"' not in viewer.get(reverse("experiments:run", args=[run.pk])).content.decode()
    assert viewer.post(reverse("experiments:run-delete", args=[run.pk])).status_code == 403
    assert Run.objects.get(pk=run.pk).lifecycle == Lifecycle.ACTIVE


@pytest.mark.django_db
def test_the_delete_form_needs_its_csrf_token(experiment, project):  # noqa: F811
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.EDITOR)
    run = RunFactory(experiment=experiment)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(reverse("experiments:run-delete", args=[run.pk])).status_code == 403
    assert Run.objects.get(pk=run.pk).lifecycle == Lifecycle.ACTIVE
