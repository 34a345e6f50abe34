"""The run page in a real browser: it follows a running run, and a 12-chart page draws fast cold."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
import steward
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import expect

from accounts import services as account_services
from experiments import services
from experiments.models import Run
from experiments.services import MetricPoint
from tests.browser.conftest import login, painted_pixels, screenshot, wait_for
from tests.browser.seed import PASSWORD
from tests.factories import UserFactory
from tests.workers import worker_database_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Where the time went: the page's HTML, the charts' script started, the page's scripts parsed
# (DOMContentLoaded).
PHASES_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const charts = document.querySelectorAll('.chart[data-metric-key]');
  const asked = Array.from(charts, el => +el.dataset.requestedAt);
  return {html: Math.round(nav.responseEnd), firstRequest: Math.round(Math.min(...asked)),
          scriptsParsed: Math.round(nav.domContentLoadedEventEnd)};
}"""


def test_running_run_page_grows_while_a_script_logs(live_server, new_page, transactional_db):
    user = UserFactory(username="dana", password=PASSWORD)
    account_services.project_create(user=user, slug="live", name="Live")
    _, token = account_services.api_token_create(user=user, name="script")
    client = steward.Client(url=live_server.url, token=token, project="live")
    run = client.start_run(experiment="mnist", name="growing")
    for step in range(5):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.log_metric("epochs_planned", 3)
    run.flush()

    page = new_page()
    login(page, live_server, "dana", PASSWORD)
    page.goto(f"{live_server.url}/runs/{run.id}/")
    chart = page.locator(".chart[data-metric-key='loss']")
    expect(chart).to_have_attribute("data-points", "5")
    # Logged once: a value, not a chart.
    expect(page.locator(".value-tile[data-key='epochs_planned']")).to_contain_text("3")
    expect(page.locator(".chart[data-metric-key='epochs_planned']")).to_have_count(0)
    expect(page.locator("[data-live-note]")).to_be_visible()

    # The script keeps logging while the page is open: no reload, the chart grows.
    for step in range(5, 12):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.log_metric("accuracy", 0.5, step=0)
    run.log_metric("accuracy", 0.7, step=1)
    run.flush()
    expect(chart).to_have_attribute("data-points", "12", timeout=20_000)
    expect(page.locator("#latest-metrics tr[data-key='loss'] td").first).to_have_text(f"{1 / 12:.6g}")
    # A metric that appeared during the run gets its chart.
    expect(page.locator(".chart[data-metric-key='accuracy']")).to_have_attribute("data-points", "2",
                                                                                   timeout=20_000)
    duration_before = page.locator("td[data-run-duration]").inner_text()
    wait_for(lambda: page.locator("td[data-run-duration]").inner_text() != duration_before, timeout=15)

    run.end()
    expect(page.locator("td[data-run-status]")).to_have_text("FINISHED", timeout=20_000)
    expect(page.locator("[data-live-note]")).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-run-active", "0")
    screenshot(page, "run-live")
    client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def production_server(tmp_path, transactional_db):
    """gunicorn as `make run` starts it, on the test database, with freshly collected static files."""
    static_root = tmp_path / "static"
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "SECRET_KEY": settings.SECRET_KEY,
           "STATIC_ROOT": str(static_root), "DEBUG": "false"}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env,
                   cwd=settings.BASE_DIR, check=True)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mlplatform.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--no-control-socket"],
        env=env, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=(tmp_path / "web.log").open("w"),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), timeout=60, interval=0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _run_with_twelve_metrics() -> Run:
    user = UserFactory(username="erin")
    # The server process checks passwords with the installation's hashers, not the tests' fast one.
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
    user.save(update_fields=["password"])
    project = account_services.project_create(user=user, slug="speed", name="Speed")
    run = services.run_create(project=project, experiment="cold", user=user, name="twelve").run
    now = int(time.time() * 1000)
    services.metrics_log(run=run, points=[
        MetricPoint(f"metric_{k:02d}", math.sin(step / (k + 3)) + k, step, now + step)
        for k in range(12) for step in range(500)
    ])
    services.run_update(run=run, status="FINISHED")
    return run


def test_static_files_are_compressed_and_cached_for_a_year(production_server):
    page = requests.get(production_server + "/accounts/login/", timeout=10).text
    css = next(part.split('"')[0] for part in page.split('href="')[1:] if "steward." in part.split('"')[0])
    assert css != "/static/css/steward.css"  # a hashed name
    response = requests.get(production_server + css, headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "max-age=315360000" in response.headers["Cache-Control"]
    assert "immutable" in response.headers["Cache-Control"]


def test_cold_run_page_with_twelve_charts_draws_every_chart(production_server, new_page, transactional_db):
    run = _run_with_twelve_metrics()
    page = new_page()
    page.goto(f"{production_server}/accounts/login/")
    page.fill("input[name=username]", "erin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{production_server}/")
    timings, phases = [], []
    for attempt in range(3):
        # Cold: a new browser context each time, with an empty cache.
        cold = new_page()
        cold.context.add_cookies(page.context.cookies())
        cold.goto(f"{production_server}/runs/{run.pk}/")
        charts = cold.locator(".chart[data-metric-key]")
        expect(charts).to_have_count(12)
        for i in range(12):
            expect(charts.nth(i)).to_have_attribute("data-chart-state", "drawn")
        # From the start of navigation to the last chart drawn.
        elapsed = cold.evaluate(
            "() => Math.max(...Array.from(document.querySelectorAll('.chart[data-metric-key]'),"
            " el => parseFloat(el.dataset.requestedAt) + parseFloat(el.dataset.drawMs)))")
        timings.append(elapsed)
        phases.append(cold.evaluate(PHASES_JS))
        if attempt == 0:
            screenshot(cold, "run-twelve-charts")
        assert painted_pixels(charts.nth(11)) > 300
    print(f"cold run page, 12 charts drawn after (ms): {[round(t) for t in timings]}; phases {phases}")
    # The budget is judged on what the page itself does, from its charts' script starting to the last
    # chart drawn (the server's and the network's share depends on what else this machine runs), on
    # the best of three loads; the whole cold time is printed (run with -s).
    in_page = [t - p["firstRequest"] for t, p in zip(timings, phases, strict=True)]
    assert min(in_page) < 500, (timings, phases)
    assert all(t > 0 for t in timings), timings
