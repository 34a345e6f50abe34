"""The web UI in a real browser: log in, browse, filter, sort, chart, compare, preview, progress."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts import services as account_services
from experiments.models import Run
from tests.browser.conftest import PHONE, login, painted_pixels, screenshot
from tests.browser.seed import PASSWORD, XSS_NAME, seed_demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(transactional_db):
    return seed_demo(username="alice", runs=12, points=300)


def test_browse_filter_sort_choose_columns_and_open_run(live_server, new_page, demo):
    page = new_page()
    login(page, live_server, "alice", PASSWORD)
    expect(page.get_by_role("link", name="Vision")).to_be_visible()
    screenshot(page, "projects")

    page.get_by_role("link", name="Vision").click()
    page.get_by_role("link", name="baseline").click()
    table = page.locator("#runs-table tbody tr")
    expect(table).to_have_count(12)
    screenshot(page, "runs-table")

    # Filter with the API's language; a bad filter is reported next to the box.
    expected = Run.objects.filter(
        params__key="optimizer", params__value="adam",
        latest_metrics__key="acc", latest_metrics__value__gt=0.93,
    ).count()
    assert 0 < expected < 12
    page.fill("input[name=filter]", "params.optimizer = 'adam' and metrics.acc > 0.93")
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(table).to_have_count(expected)
    page.fill("input[name=filter]", "metrics.acc >>> 3")
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page.locator("#filter-error")).to_contain_text("Filter error")
    page.fill("input[name=filter]", "")
    page.get_by_role("button", name="Filter", exact=True).click()

    # Sort by a metric column: descending first, then ascending.
    page.locator("#runs-table thead a[data-sort='metrics.loss']").click()
    expect(page).to_have_url(re.compile(r"order_by=metrics.loss\+DESC"))
    headers = page.locator("#runs-table thead th").all_inner_texts()
    column = next(i for i, h in enumerate(headers, start=1) if "loss" in h)
    cells = page.locator(f"#runs-table tbody tr td:nth-child({column})")
    losses = [float(x) for x in cells.all_inner_texts()]
    assert losses == sorted(losses, reverse=True)
    page.locator("#runs-table thead a[data-sort='metrics.loss']").click()
    expect(page).to_have_url(re.compile(r"order_by=metrics.loss\+ASC"))
    first_run = page.locator("#runs-table tbody tr td:nth-child(2)").first.inner_text()

    # Column chooser: show the optimizer param only.
    page.get_by_text("Columns", exact=True).click()
    for box in page.locator(".colchooser-panel input[type=checkbox]").all():
        box.set_checked(box.get_attribute("value") == "params.optimizer")
    page.get_by_role("button", name="Apply columns").click()
    headers = page.locator("#runs-table thead th").all_inner_texts()
    assert any("optimizer" in h for h in headers) and not any("loss" in h for h in headers)
    expect(page.locator("#runs-table tbody tr").first).to_contain_text(re.compile("adam|sgd"))

    # The run page draws each metric's chart from the history API.
    page.get_by_role("link", name=first_run).click()
    expect(page.locator("#run-name")).to_have_text(first_run)
    chart = page.locator(".chart[data-metric-key='loss']")
    expect(chart).to_have_attribute("data-chart-state", "drawn")
    assert int(chart.get_attribute("data-points")) == 300
    expect(chart).to_have_attribute("data-lines", "1")
    assert painted_pixels(chart) > 300  # the line is on the canvas, not only counted
    page.locator("[data-chart-log]").check()
    page.locator("[data-chart-smoothing]").fill("0.8")
    page.locator("[data-chart-x]").select_option("time")
    expect(chart).to_have_attribute("data-lines", "2")  # raw + smoothed
    expect(chart.locator(".u-legend")).to_contain_text("(raw)")
    chart.hover()
    screenshot(page, "run")


def test_compare_two_runs(live_server, new_page, demo):
    page = new_page()
    login(page, live_server, "alice", PASSWORD)
    experiment = demo["experiment"]
    page.goto(f"{live_server.url}/p/vision/e/{experiment.pk}/")
    button = page.locator("[data-compare-button]")
    expect(button).to_be_disabled()
    boxes = page.locator("#runs-table tbody input[name=runs]")
    boxes.nth(1).check()
    boxes.nth(2).check()
    expect(button).to_be_enabled()
    button.click()
    expect(page.get_by_role("heading", name="Compare 2 runs")).to_be_visible()
    expect(page.locator("#compare-params tr.differs")).to_have_count(3)  # lr, depth, optimizer
    for key in ("acc", "loss"):
        chart = page.locator(f"#compare-charts .chart[data-metric-key='{key}']")
        expect(chart).to_have_attribute("data-chart-state", "drawn")
        expect(chart).to_have_attribute("data-lines", "2")
        expect(chart.locator(".u-legend .u-series")).to_have_count(3)  # the x value and one per run
    expect(page.locator("#parcoords")).to_have_attribute("data-chart-state", "drawn")
    expect(page.locator("#scatter")).to_have_attribute("data-chart-state", "drawn")
    page.locator("[data-parcoords-metric]").select_option("loss")
    page.locator("[data-scatter-x]").select_option("params.optimizer")
    expect(page.locator("#scatter .scatterlayer .point")).to_have_count(2)
    screenshot(page, "compare")


def test_csv_artifact_preview(live_server, new_page, demo):
    page = new_page()
    login(page, live_server, "alice", PASSWORD)
    page.goto(f"{live_server.url}/runs/{demo['runs'][0].pk}/")
    page.get_by_role("button", name="eval/").click()
    page.get_by_role("link", name="metrics.csv").click()
    preview = page.locator("#artifact-preview table[data-csv-preview]")
    expect(preview.locator("thead th")).to_have_text(["epoch", "loss", "acc"])
    expect(preview.locator("tbody tr")).to_have_count(20)
    expect(page.locator("#artifact-preview a", has_text="Download")).to_have_attribute(
        "href", f"/api/v1/runs/{demo['runs'][0].pk}/artifacts/eval/metrics.csv"
    )
    page.locator("#artifact-preview").scroll_into_view_if_needed()
    screenshot(page, "artifact-csv")
    page.get_by_role("link", name="config.json").click()
    expect(page.locator("#artifact-preview pre")).to_contain_text('"model": "resnet"')
    screenshot(page, "run-artifacts")


def test_job_progress_reaches_100(live_server, new_page, demo, celery_worker):
    page = new_page()
    login(page, live_server, "alice", PASSWORD)
    page.goto(f"{live_server.url}/runs/{demo['runs'][0].pk}/")
    page.get_by_role("button", name="Summarise metrics").click()
    progress = page.locator("#summary-job .job-progress")
    expect(progress).to_be_visible()
    expect(progress).to_have_attribute("data-job-status", "succeeded", timeout=60_000)
    expect(progress.locator("progress")).to_have_attribute("value", "100")
    expect(progress.locator("[data-job-pct]")).to_have_text("100%")
    page.reload()
    expect(page.locator("#summary")).to_contain_text("300")  # points per metric, from the job's result
    screenshot(page, "job-progress")


def test_script_in_names_and_notes_stays_inert(live_server, new_page, demo):
    page = new_page()
    login(page, live_server, "alice", PASSWORD)
    xss_run = demo["runs"][-1]
    page.goto(f"{live_server.url}/p/vision/e/{demo['experiment'].pk}/")
    expect(page.get_by_role("link", name=XSS_NAME)).to_be_visible()
    page.get_by_role("link", name=XSS_NAME).click()
    expect(page.locator("#run-name")).to_have_text(XSS_NAME)
    notes = page.locator("#notes-rendered")
    expect(notes.locator("strong")).to_have_text("bold")
    link = notes.get_by_text("click me")
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href is None or not href.lower().startswith("javascript")
    assert notes.locator("img").count() == 0 or notes.locator("img[onerror]").count() == 0
    assert page.evaluate("document.querySelectorAll('script:not([src]):not([type])').length") == 0
    link.click()  # must not run anything (a dialog would fail the test)
    page.goto(f"{live_server.url}/runs/{xss_run.pk}/")
    screenshot(page, "xss-run")


def test_tokens_members_and_phone_layout(live_server, new_page, demo):
    page = new_page()
    login(page, live_server, "alice", PASSWORD)
    page.locator(".usermenu summary").click()
    page.get_by_role("link", name="API tokens").click()
    page.fill("input[name=name]", "laptop")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token-value").inner_text()
    assert token.startswith("stw_")
    page.get_by_role("button", name="Copy").click()
    screenshot(page, "tokens")
    page.reload()
    expect(page.locator("#new-token-value")).to_have_count(0)
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".flash-success")).to_contain_text("revoked")

    page.goto(f"{live_server.url}/p/vision/members/")
    page.fill("form.stack input[name=username]", "alice-viewer")
    page.locator("form.stack select[name=role]").select_option("editor")
    page.get_by_role("button", name="Add or change").click()
    expect(page.locator(".flash-success")).to_contain_text("alice-viewer is now editor")
    screenshot(page, "members")

    phone = new_page(PHONE)
    login(phone, live_server, "alice", PASSWORD)
    run = demo["runs"][0]
    pages = {
        "projects": "/", "project": "/p/vision/", "runs-table": f"/p/vision/e/{demo['experiment'].pk}/",
        "leaderboard": f"/p/vision/e/{demo['experiment'].pk}/?tab=leaderboard&metric=acc",
        "run": f"/runs/{run.pk}/",
        "compare": f"/p/vision/compare/?runs={run.pk}&runs={demo['runs'][1].pk}",
        "models": "/models/",
    }
    for name, path in pages.items():
        phone.goto(live_server.url + path)
        if name in ("run", "compare"):
            expect(phone.locator(".chart[data-metric-key='acc']").first).to_have_attribute(
                "data-chart-state", "drawn")
        # Nothing but the wide tables (which scroll inside their box) may overflow the phone width.
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than the phone"
        screenshot(phone, name)
    page.goto(f"{live_server.url}/p/vision/e/{demo['experiment'].pk}/?tab=leaderboard&metric=acc")
    expect(page.locator("#leaderboard tbody tr.best")).to_have_count(1)
    screenshot(page, "leaderboard")


def test_many_metrics_load_their_charts_when_scrolled_to(live_server, new_page, transactional_db):
    from experiments import services
    from experiments.services import MetricPoint
    from tests.factories import UserFactory

    user = UserFactory(username="bob", password=PASSWORD)
    project = account_services.project_create(user=user, slug="wide", name="Wide")
    run = services.run_create(project=project, experiment="many", user=user, name="many-metrics").run
    services.metrics_log(run=run, points=[
        MetricPoint(f"metric_{k:02d}", k + step / 10, step, 1_700_000_000_000 + step) for k in range(16)
        for step in range(20)
    ])
    page = new_page()
    login(page, live_server, "bob", PASSWORD)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    first = page.locator(".chart[data-metric-key='metric_00']")
    last = page.locator(".chart[data-metric-key='metric_15']")
    expect(first).to_have_attribute("data-chart-state", "drawn")
    assert last.get_attribute("data-chart-state") == "loading"
    last.scroll_into_view_if_needed()
    expect(last).to_have_attribute("data-chart-state", "drawn")
    assert last.get_attribute("data-points") == "20"
