"""Training plots on the run page: a readable confusion matrix and feature names without prefixes."""

from __future__ import annotations

import io
import json

import pytest
from playwright.sync_api import expect

from accounts import services as account_services
from experiments import artifacts, services
from tests.browser.conftest import login, screenshot
from tests.browser.seed import PASSWORD
from tests.factories import UserFactory
from training.models import TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _upload(run, path, figure):
    data = json.dumps(figure).encode()
    artifacts.artifact_upload(run=run, path=path, stream=io.BytesIO(data), content_length=len(data),
                              content_type="application/json")


def test_confusion_matrix_and_feature_importances_read_well(live_server, new_page):
    user = UserFactory(username="gil", password=PASSWORD)
    project = account_services.project_create(user=user, slug="wine", name="Wine")
    run = services.run_create(project=project, experiment="train", user=user, name="forest").run
    TrainingRun.objects.create(run=run, spec={"target": "class"})
    # As the training job writes them: integer class labels, counts from 0 to 40, prefixed names.
    cm = [[40, 1, 0], [2, 35, 3], [0, 0, 19]]
    _upload(run, "plots/confusion_matrix.json", {
        "data": [{"type": "heatmap", "z": cm, "x": ["0", "1", "2"], "y": ["0", "1", "2"],
                  "colorscale": "Blues", "text": cm, "texttemplate": "%{text}"}],
        "layout": {"title": {"text": "Confusion matrix (test split)"}, "yaxis": {"autorange": "reversed"}}})
    names = ["num__proline", "num__color_intensity", "cat__region_north_of_the_river_valley"]
    _upload(run, "plots/feature_importances.json", {
        "data": [{"type": "bar", "orientation": "h", "x": [0.1, 0.2, 0.4], "y": names}],
        "layout": {"title": {"text": "Feature importances"}, "margin": {"l": 200}}})
    services.run_update(run=run, status="FINISHED")

    page = new_page()
    login(page, live_server, "gil", PASSWORD)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    plots = page.locator("[data-plot-url]")
    expect(plots).to_have_count(2)
    matrix = page.locator("[data-plot-url$='confusion_matrix.json']")
    importances = page.locator("[data-plot-url$='feature_importances.json']")
    expect(matrix).to_have_attribute("data-plot-state", "drawn")
    expect(importances).to_have_attribute("data-plot-state", "drawn")

    # One tick per class, labelled with the class, on both axes.
    assert matrix.locator(".xtick text").all_text_contents() == ["0", "1", "2"]
    assert sorted(matrix.locator(".ytick text").all_text_contents()) == ["0", "1", "2"]
    # Every count is written, white on the dark cells and dark on the light ones.
    counts = matrix.locator(".annotation-text")
    expect(counts).to_have_count(9)
    fills = {t.text_content(): t.evaluate("el => getComputedStyle(el).fill") for t in counts.all()}
    assert fills["40"] == "rgb(255, 255, 255)" and fills["1"] != "rgb(255, 255, 255)"

    # Feature names without the pipeline's prefixes, and none clipped by the plot's edge.
    labels = importances.locator(".ytick text")
    assert sorted(labels.all_text_contents()) == [
        "color_intensity", "proline", "region_north_of_the_river_valley"]
    plot_left = importances.bounding_box()["x"]
    for label in labels.all():
        assert label.bounding_box()["x"] >= plot_left - 1
    screenshot(page, "training-plots")
