"""A version page's "try it" form in a real browser: the page's session and CSRF token reach the
predict endpoint, and a bad value comes back as a 400 naming its column."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.factories import UserFactory
from tests.registry.conftest import register, store_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_try_it_predicts_with_the_session_and_names_a_bad_column(live_server, new_page, page_errors,
                                                                 project, run, editor, forest, cancer_data):
    from accounts.models import Membership, Role

    X, _ = cancer_data
    store_model(run, forest, example=X.sample(50, random_state=1))
    register(project=project, run=run, user=editor.user)
    viewer = UserFactory()
    Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)

    page = new_page()
    login(page, live_server, viewer.username, "pw-Steward-123")
    page.goto(f"{live_server.url}/p/{project.slug}/models/credit-scorer/v/1/")
    form = page.locator("#try-form")
    # The form starts filled with an example row.
    row = {name: float(form.locator(f"[name='{name}']").input_value()) for name in X.columns}
    form.locator("button[type=submit]").click()
    result = page.locator("#try-result")
    expect(result).to_have_attribute("data-status", "200")
    body = json.loads(result.locator(".try-json").text_content())
    expected = pd.DataFrame([row], columns=X.columns)
    assert body["predictions"] == forest.predict(expected).tolist()
    assert body["model_version"] == 1
    # Shown as a table: the prediction and each class's probability, the likeliest marked.
    table = result.locator("table.try-table")
    assert table.locator("thead th").all_inner_texts() == ["Row", "Prediction", "P(0)", "P(1)"]
    cells = table.locator("tbody tr").first.locator("td").all_inner_texts()
    assert cells[1] == str(body["predictions"][0])
    probabilities = forest.predict_proba(expected)[0]
    assert [float(c) for c in cells[2:]] == pytest.approx(list(probabilities), abs=1e-4)
    expect(table.locator("td.best-cell")).to_have_count(1)

    form.locator("[name='mean area']").fill("big")
    form.locator("[name='mean radius']").fill("huge")
    form.locator("button[type=submit]").click()
    expect(result).to_have_attribute("data-status", "400")
    # Every bad field, in words, not raw JSON.
    refused = result.locator("[role=alert]")
    expect(refused.locator("li[data-field='mean area']")).to_be_visible()
    expect(refused.locator("li[data-field='mean radius']")).to_be_visible()
    assert "{" not in refused.inner_text()
    # Chromium reports that refused request on the console; it is the answer this test asked for.
    page_errors[:] = [e for e in page_errors if "status of 400" not in e]
