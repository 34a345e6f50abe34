"""The Content Security Policy in a real browser: pages still draw, nothing is refused, and a
figure that names an outside image does not make the browser fetch it.

Every request the page makes is routed through the test: those for the live server go on,
any other is recorded and aborted, so even a failing run sends nothing off this machine.
``new_page`` fails the test on any console error, which is where Chromium reports a CSP
violation ("Refused to load …", "… violates the following Content Security Policy …").
"""

from __future__ import annotations

import base64
import io
import json
import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from accounts import services as account_services
from experiments import artifacts, services
from experiments.services import MetricPoint
from tests.browser.conftest import login, screenshot
from tests.browser.seed import PASSWORD
from tests.factories import UserFactory
from training import services as training
from training.models import TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SQUARE = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
          b'<rect width="10" height="10" fill="red"/></svg>')
DOT = "data:image/svg+xml;base64," + base64.b64encode(SQUARE).decode()
OUTSIDE = "http://images.example.invalid/pixel.png"  # .invalid never resolves; the route aborts it anyway

HOSTILE = {
    "data": [{"type": "scatter", "x": [1, 2, 3], "y": [2, 3, 1], "name": "uploaded"}],
    "layout": {
        "title": {"text": "A figure an editor uploaded"},
        "images": [
            {"source": OUTSIDE, "xref": "paper", "yref": "paper", "x": 0, "y": 1, "sizex": 0.3, "sizey": 0.3},
            {"source": DOT, "xref": "paper", "yref": "paper", "x": 0.6, "y": 1, "sizex": 0.2, "sizey": 0.2},
        ],
    },
}


def _store(run, path: str, data: bytes) -> None:
    artifacts.artifact_upload(run=run, path=path, stream=io.BytesIO(data), content_length=len(data),
                              content_type="application/json")


@pytest.fixture
def trained_run(transactional_db, artifact_root):
    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.linear_model import LogisticRegression, Ridge

    owner = UserFactory(username="olga", password=PASSWORD)
    UserFactory(username="vic", password=PASSWORD)
    project = account_services.project_create(user=owner, slug="figures", name="Figures")
    account_services.membership_set(project=project, username="vic", role="viewer")
    run = services.run_create(project=project, experiment="baseline", user=owner, name="trained").run
    now_ms = int(time.time() * 1000)
    services.metrics_log(run=run, points=[MetricPoint("loss", 1 / (s + 1), s, now_ms + s) for s in range(50)])
    TrainingRun.objects.create(run=run, spec={"estimator": "logistic_regression"})
    # The plots a training job stores (heat-map, ROC curve, WebGL scatter), and one an editor uploaded.
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    plots = training.classification_plots(LogisticRegression(max_iter=5000).fit(X, y), X, y)
    Xd, yd = load_diabetes(return_X_y=True, as_frame=True)
    plots.update(training.regression_plots(Ridge().fit(Xd, yd), Xd, yd, seed=0))
    plots["plots/uploaded.json"] = json.dumps(HOSTILE).encode()
    for path, data in plots.items():
        _store(run, path, data)
    return run, sorted(plots)


def guard_network(page, live_server) -> list[str]:
    allowed = urlsplit(live_server.url).hostname
    leaving: list[str] = []

    def route(route):
        if urlsplit(route.request.url).hostname == allowed:
            route.continue_()
        else:
            leaving.append(route.request.url)
            route.abort()

    page.context.route("**/*", route)
    return leaving


def test_a_run_page_draws_every_chart_under_the_policy_and_fetches_nothing_outside(
        live_server, new_page, trained_run):
    run, paths = trained_run
    page = new_page()
    leaving = guard_network(page, live_server)
    login(page, live_server, "vic", PASSWORD)

    response = page.goto(f"{live_server.url}/runs/{run.pk}/")
    policy = dict(d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self' 'unsafe-eval'" and policy["connect-src"] == "'self'"
    assert page.evaluate("htmx.config.allowEval") is False

    expect(page.locator(".chart[data-metric-key='loss']")).to_have_attribute("data-chart-state", "drawn")
    figures = page.locator("[data-plot-url]")
    expect(figures).to_have_count(len(paths))
    for i in range(len(paths)):
        expect(figures.nth(i).locator(".main-svg").first).to_be_attached()
        expect(figures.nth(i)).not_to_contain_text("Could not load")
        # Plotly's WebGL scatter (regression plots) says this when the policy refuses its eval.
        expect(figures.nth(i)).not_to_contain_text("WebGL is not supported")
    uploaded = page.locator("[data-plot-url$='plots/uploaded.json']")
    expect(uploaded.locator(".scatterlayer .trace")).to_have_count(1)
    # The inline image is drawn; the outside one is gone from the figure before Plotly sees it.
    expect(uploaded.locator("image")).to_have_count(1)
    hrefs = uploaded.locator("image").evaluate_all(
        "els => els.map(e => e.getAttribute('href') || e.getAttribute('xlink:href'))")
    assert [h[:22] for h in hrefs] == [DOT[:22]]
    screenshot(page, "run-figures-csp")
    page.wait_for_load_state("networkidle")
    assert leaving == []


def test_api_docs_and_admin_work_under_the_policy(live_server, new_page, transactional_db):
    UserFactory(username="root", password=PASSWORD, is_staff=True, is_superuser=True)
    page = new_page()
    leaving = guard_network(page, live_server)
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Steward API")
    expect(page.locator(".opblock").first).to_be_visible()

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    page.goto(f"{live_server.url}/admin/axes/accessattempt/")
    expect(page.locator("#changelist")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert leaving == []
