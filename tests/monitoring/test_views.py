"""Monitor pages: the overview with state badges, a monitor's page with its charts' data."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from monitoring.models import Alert, Monitor
from tests.factories import MembershipFactory, UserFactory
from tests.monitoring.conftest import credit_frame, send_traffic
from tests.monitoring.test_monitors import SHIFT, run_report

pytestmark = pytest.mark.django_db


def browser_client(project, role):
    user = UserFactory()
    if role is not None:
        MembershipFactory(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def drifted(editor, project, served):
    body = editor.post(
        f"/api/v1/projects/{project.slug}/monitors/", {"model": "scorer", "alias": "live"}, format="json"
    ).json()
    send_traffic(editor, project, credit_frame(rows=600, seed=12, shift=SHIFT))
    run_report(editor, body["id"])
    return Monitor.objects.get(pk=body["id"])


def test_the_nav_link_leads_to_the_overview_with_a_state_badge(project, drifted):
    viewer = browser_client(project, Role.VIEWER)
    page = viewer.get("/").content.decode()
    assert f'href="{reverse("monitoring:index")}"' in page
    overview = viewer.get(reverse("monitoring:index")).content.decode()
    assert "scorer@live" in overview and "monitor-state-alert" in overview
    assert "Nothing here yet" not in overview


def test_the_monitor_page_shows_the_report_and_hands_the_charts_their_data(project, drifted):
    viewer = browser_client(project, Role.VIEWER)
    response = viewer.get(reverse("monitoring:monitor", args=[drifted.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "dataset drift" in page and 'class="drifted"' in page
    assert "monitoring-charts.js" in page and "vendor/plotly/plotly.min.js" in page
    start = page.index('<script id="monitor-data" type="application/json">') + len(
        '<script id="monitor-data" type="application/json">'
    )
    data = json.loads(page[start : page.index("</script>", start)])
    assert sorted(data["drifted"]) == ["income", "region"]
    assert set(data["histograms"]) == {"income", "age", "debt", "region"}
    assert data["heatmap"]["features"] == ["age", "debt", "income", "region"]
    assert sum(data["health"]["rows"]) == 600
    assert data["alerts"][0]["kind"] == "drift"
    # A viewer gets no buttons that change anything.
    assert "Run a report now" not in page and "Acknowledge" not in page


def test_outsiders_get_404_and_viewers_cannot_act(project, drifted):
    outsider = browser_client(project, None)
    assert outsider.get(reverse("monitoring:monitor", args=[drifted.pk])).status_code == 404
    assert "scorer@live" not in outsider.get(reverse("monitoring:index")).content.decode()
    viewer = browser_client(project, Role.VIEWER)
    assert viewer.post(reverse("monitoring:run", args=[drifted.pk])).status_code == 403
    alert = Alert.objects.get()
    assert viewer.post(reverse("monitoring:alert-action", args=[alert.pk, "acknowledge"])).status_code == 403


def test_an_editor_runs_a_report_and_acknowledges_an_alert_from_the_page(project, drifted):
    editor = browser_client(project, Role.EDITOR)
    response = editor.post(reverse("monitoring:run", args=[drifted.pk]))
    assert response.status_code == 302 and "/jobs/" in response["Location"]
    alert = Alert.objects.get()
    editor.post(reverse("monitoring:alert-action", args=[alert.pk, "acknowledge"]))
    alert.refresh_from_db()
    assert alert.status == "acknowledged"


def test_a_monitor_is_created_from_the_form(project, served):
    editor = browser_client(project, Role.EDITOR)
    page = editor.get(reverse("monitoring:new", args=[project.slug])).content.decode()
    assert "scorer@live" in page and 'value="reference_plus_labelled"' in page
    response = editor.post(
        reverse("monitoring:new", args=[project.slug]),
        {"target": "scorer@live", "schedule_minutes": "15", "alert_emails": "ops@example.com",
         "retrain_on_alert": "on", "retrain_data": "reference_plus_labelled"},
    )
    monitor = Monitor.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "monitoring:monitor", args=[monitor.pk]
    )
    assert monitor.schedule_minutes == 15 and monitor.alert_emails == ["ops@example.com"]
    assert monitor.retrain_on_alert and monitor.retrain_data == "reference_plus_labelled"
    shown = editor.get(response["Location"]).content.decode()
    assert "trains on the reference plus the window&#x27;s labelled predictions" in shown
    bad = editor.post(reverse("monitoring:new", args=[project.slug]), {"target": "scorer@live"}, follow=True)
    assert "already has a monitor" in bad.content.decode()
