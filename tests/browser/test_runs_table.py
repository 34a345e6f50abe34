"""The runs table when it is wider than the screen: the name stays, the sorted column is in view."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from accounts import services as account_services
from experiments import services
from experiments.services import MetricPoint
from tests.browser.conftest import login, screenshot
from tests.browser.seed import PASSWORD
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_wide_runs_table_keeps_the_name_and_shows_the_sorted_column(live_server, new_page):
    user = UserFactory(username="hal", password=PASSWORD)
    project = account_services.project_create(user=user, slug="wide", name="Wide")
    now = int(time.time() * 1000)
    for i in range(6):
        run = services.run_create(project=project, experiment="many", user=user, name=f"wide-run-{i}").run
        services.metrics_log(run=run, points=[MetricPoint(f"metric_{k:02d}_with_a_long_name", i + k, 0, now)
                                              for k in range(14)])
    experiment = run.experiment
    columns = "&".join(f"cols=metrics.metric_{k:02d}_with_a_long_name" for k in range(14))
    page = new_page()
    login(page, live_server, "hal", PASSWORD)
    last = "metrics.metric_13_with_a_long_name"
    page.goto(f"{live_server.url}/p/{project.slug}/e/{experiment.pk}/?cols_set=1&{columns}"
              f"&order_by=metrics.metric_13_with_a_long_name+DESC")
    wrap = page.locator(".table-wrap:has(#runs-table)")
    # The table scrolled sideways to the sorted (last) column on its own...
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")
    assert wrap.evaluate("el => el.scrollLeft") > 0
    header = page.locator(f"#runs-table thead a[data-sort='{last}']")
    expect(header).to_be_in_viewport()
    # ... and the run names are still visible beside it.
    name_cell = page.locator("#runs-table tbody tr").first.locator("td").nth(1)
    box, table_box = name_cell.bounding_box(), wrap.bounding_box()
    assert table_box["x"] <= box["x"] < table_box["x"] + 80
    expect(name_cell).to_contain_text("wide-run-")
    screenshot(page, "runs-table-wide")
