"""The compare page with 20 runs and 10 params: sensible defaults and charts that stay readable."""

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

PARAMS = [f"preprocessing_step_{i}_parameter" for i in range(10)]


def _twenty_runs():
    user = UserFactory(username="fay", password=PASSWORD)
    project = account_services.project_create(user=user, slug="cmp", name="Cmp")
    now = int(time.time() * 1000)
    runs = []
    for i in range(20):
        run = services.run_create(project=project, experiment="grid", user=user, name=f"trial-{i:02d}").run
        services.params_log(run=run, pairs=[(p, str((i + j) % 4)) for j, p in enumerate(PARAMS)])
        points = [MetricPoint("accuracy", 0.7 + i / 100, 0, now),
                  MetricPoint("system/fit_seconds", 3.0 + i, 0, now)]
        if i == 0:
            points.append(MetricPoint("zz_only_first", 1.0, 0, now))
        services.metrics_log(run=run, points=points)
        runs.append(run)
    services.params_log(run=runs[1], pairs=[("only_second", "x")])
    return project, runs


def test_compare_twenty_runs_defaults_and_readable_parallel_coordinates(live_server, new_page):
    project, runs = _twenty_runs()
    page = new_page()
    login(page, live_server, "fay", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/compare/?" + "&".join(f"runs={r.pk}" for r in runs))
    expect(page.locator("h1")).to_have_text("Compare 20 runs")

    # The default metric is the model's (accuracy), not the first in the alphabet or a system timing.
    expect(page.locator("[data-parcoords-metric]")).to_have_value("accuracy")
    expect(page.locator("[data-scatter-y]")).to_have_value("metrics.accuracy")
    expect(page.locator("[data-scatter-x]")).to_have_value("params.only_second")  # the first that differs

    parcoords = page.locator("#parcoords")
    expect(parcoords).to_have_attribute("data-chart-state", "drawn")
    titles = parcoords.locator(".axis-title")
    expect(titles).to_have_count(12)  # 11 params and the metric
    first = titles.nth(1)
    assert first.get_attribute("data-full-name") == PARAMS[0]
    assert first.text_content().startswith("preprocessing") and "…" in first.text_content()
    assert first.locator("title").text_content().startswith(PARAMS[0])

    # A scatter with nothing to show says why.
    page.locator("[data-scatter-x]").select_option("params.only_second")
    page.locator("[data-scatter-y]").select_option("metrics.zz_only_first")
    expect(page.locator("#scatter")).to_have_attribute("data-chart-state", "empty")
    expect(page.locator("#scatter .annotation-text")).to_contain_text("None of these runs has both")
    page.locator("[data-scatter-y]").select_option("metrics.accuracy")
    expect(page.locator("#scatter")).to_have_attribute("data-chart-state", "drawn")
    screenshot(page, "compare-twenty")
