"""The run page of a running run: its live JSON, and metrics logged once shown as values."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from experiments import services
from experiments.models import RunStatus
from experiments.services import MetricPoint
from tests.factories import ExperimentFactory, MembershipFactory, RunFactory, UserFactory

T0 = 1_700_000_000_000


@pytest.fixture
def run(project):
    return RunFactory(experiment=ExperimentFactory(project=project, name="live"), name="training")


def _client(project, role=Role.VIEWER) -> Client:
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def _log(run, key, values, first_step=0):
    services.metrics_log(run=run, points=[
        MetricPoint(key, value, first_step + i, T0 + first_step + i) for i, value in enumerate(values)
    ])


def test_live_json_follows_new_points_and_the_end_of_the_run(project, run):
    client = _client(project)
    url = reverse("experiments:run-live", args=[run.pk])
    _log(run, "loss", [0.9, 0.8])
    body = client.get(url).json()
    assert body["status"] == "RUNNING" and body["active"] is True
    assert body["duration"] != "—"  # a running run shows its time so far
    assert body["metrics"] == [
        {"key": "loss", "display": "0.8", "step": 1, "count": 2, "timestamp": T0 + 1},
    ]

    _log(run, "loss", [0.7, 0.6, 0.5], first_step=2)
    _log(run, "test_acc", [0.91])
    body = client.get(url).json()
    assert [(m["key"], m["count"], m["step"], m["display"]) for m in body["metrics"]] == [
        ("loss", 5, 4, "0.5"), ("test_acc", 1, 0, "0.91"),
    ]

    services.run_update(run=run, status=RunStatus.FINISHED)
    body = client.get(url).json()
    assert body["status"] == "FINISHED" and body["active"] is False
    assert client.get(url)["Cache-Control"] == "no-store"


def test_live_json_is_a_404_for_outsiders(project, run):
    outsider = Client()
    outsider.force_login(UserFactory())
    assert outsider.get(reverse("experiments:run-live", args=[run.pk])).status_code == 404


def test_one_point_metrics_are_values_and_only_series_are_charted(project, run):
    _log(run, "loss", [0.9, 0.8, 0.7])
    _log(run, "test_acc", [0.9375])
    page = _client(project).get(reverse("experiments:run", args=[run.pk]))
    html = page.content.decode()
    assert page.context["chart_config"]["keys"] == ["loss"]
    assert page.context["chart_config"]["state"]["active"] is True
    assert 'data-metric-key="loss"' in html
    assert 'data-metric-key="test_acc"' not in html
    assert '<div class="value-tile" data-key="test_acc">' in html
    assert "0.9375" in html


def test_a_run_with_only_single_values_says_why_there_is_no_chart(project, run):
    _log(run, "auc", [0.8])
    html = _client(project).get(reverse("experiments:run", args=[run.pk])).content.decode()
    assert "Every metric has one value so far" in html
    assert "data-metric-key" not in html
