"""The monitor page in a real browser: every chart draws from local Plotly, with no script error."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, Role
from tests.browser.conftest import login
from tests.factories import UserFactory
from tests.monitoring.conftest import credit_frame, send_traffic
from tests.monitoring.test_monitors import SHIFT, run_report

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}])
def test_monitor_page_draws_its_charts(live_server, new_page, project, editor, served, settings, viewport):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    body = editor.post(
        f"/api/v1/projects/{project.slug}/monitors/", {"model": "scorer", "alias": "live"}, format="json"
    ).json()
    send_traffic(editor, project, credit_frame(rows=600, seed=12, shift=SHIFT))
    run_report(editor, body["id"])
    viewer = UserFactory()
    Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)

    page = new_page(viewport)
    login(page, live_server, viewer.username, "pw-Steward-123")
    page.goto(f"{live_server.url}/monitors/")
    page.get_by_role("link", name="scorer@live").click()
    for name in ("drift", "heatmap", "alerts", "health"):
        expect(page.locator(f"[data-monitor-chart='{name}'] .main-svg").first).to_be_visible()
    expect(page.locator("[data-monitor-hist='income'] .main-svg").first).to_be_visible()
    expect(page.locator("[data-monitor-hist='region'] .main-svg").first).to_be_visible()
    expect(page.locator("[data-monitor-chart='performance']")).to_contain_text("No labels yet")
