"""The metric a page shows first is the model's, not a system timing nor the first in the alphabet."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from experiments import services
from experiments.services import MetricPoint
from experiments.views import primary_metric
from tests.factories import ExperimentFactory, MembershipFactory, RunFactory, UserFactory


def test_primary_metric_skips_system_metrics():
    assert primary_metric(["system/fit_seconds", "accuracy", "f1"]) == "accuracy"
    assert primary_metric(["system/cpu"]) == "system/cpu"
    assert primary_metric([]) == ""


@pytest.mark.django_db
def test_compare_and_leaderboard_default_to_the_primary_metric(project):
    experiment = ExperimentFactory(project=project)
    runs = [RunFactory(experiment=experiment) for _ in range(2)]
    for i, run in enumerate(runs):
        services.metrics_log(run=run, points=[MetricPoint("system/a_time", 1.0 + i, 0, 1),
                                              MetricPoint("rmse", 0.5 + i, 0, 1)])
        services.params_log(run=run, pairs=[("alpha", str(i)), ("same", "1")])
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.VIEWER)
    client = Client()
    client.force_login(user)
    compare_url = reverse("experiments:compare", args=[project.slug])
    page = client.get(compare_url + f"?runs={runs[0].pk}&runs={runs[1].pk}")
    assert page.context["primary_metric"] == "rmse"
    assert page.context["scatter_x"] == "params.alpha"
    assert "<option selected>rmse</option>" in page.content.decode()
    board_url = reverse("experiments:experiment", args=[project.slug, experiment.pk])
    board = client.get(board_url + "?tab=leaderboard")
    assert board.context["metric"] == "rmse"


@pytest.mark.django_db
def test_runs_table_counts_filtered_runs_and_remembers_columns_per_user_and_experiment(project):
    experiment = ExperimentFactory(project=project)
    other = ExperimentFactory(project=project)
    for i in range(5):
        run = RunFactory(experiment=experiment)
        services.metrics_log(run=run, points=[MetricPoint("acc", i / 10, 0, 1)])
        services.params_log(run=run, pairs=[("lr", str(i)), ("depth", "3")])
    RunFactory(experiment=other)
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.VIEWER)
    client = Client()
    client.force_login(user)
    url = reverse("experiments:experiment", args=[project.slug, experiment.pk])

    page = client.get(url, {"filter": "metrics.acc > 0.25", "page_size": 25})
    assert page.context["matching"] == 2
    assert "<strong>2</strong> of 5 runs match this filter." in page.content.decode()
    assert client.get(url).context["matching"] is None

    chosen = client.get(url, {"cols_set": "1", "cols": ["params.depth"]})
    assert [c["id"] for c in chosen.context["columns"]] == ["params.depth"]
    # Back on the page without any column in the address: the same columns.
    again = client.get(url)
    assert [c["id"] for c in again.context["columns"]] == ["params.depth"]
    # Another experiment keeps its defaults, and so does another user.
    other_url = reverse("experiments:experiment", args=[project.slug, other.pk])
    assert client.get(other_url).status_code == 200
    stranger = UserFactory()
    MembershipFactory(project=project, user=stranger, role=Role.VIEWER)
    second = Client()
    second.force_login(stranger)
    for name, morsel in client.cookies.items():  # the same browser, another login
        if name.startswith("stw_cols_"):
            second.cookies[name] = morsel.value
    ids = [c["id"] for c in second.get(url).context["columns"]]
    assert "metrics.acc" in ids and "params.lr" in ids
