"""The fairness and SHAP charts draw on a version page in a real browser, under the page's CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, Role
from tests.browser.conftest import login
from tests.factories import UserFactory
from tests.governance.conftest import register_checked, train

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_viewer_sees_the_fairness_chart_and_both_shap_plots(live_server, new_page, project, editor, owner,
                                                             eager):
    run, _ = train(editor, project, eager, estimator="RandomForestClassifier", pii_sex=True, owner=owner,
                   params={"n_estimators": 20, "max_depth": 4})
    register_checked(project, run, editor.user, eager)
    viewer = UserFactory()
    Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)

    page = new_page()
    login(page, live_server, viewer.username, "pw-Steward-123")
    page.goto(f"{live_server.url}/p/{project.slug}/models/credit/v/1/")
    for chart in ("#fairness-chart", "#shap-bar", "#shap-beeswarm"):
        expect(page.locator(f"{chart} .main-svg").first).to_be_visible()
    groups = page.locator("#fairness-groups")
    expect(groups).to_contain_text("group 1")  # 'sex' is PII: a viewer sees placeholders
    assert "sex & housing" in groups.text_content()
    for value in ("\nF\n", ">F<"):
        assert value not in page.content().split('id="fairness-groups"')[1].split("</table>")[0]
    expect(page.locator("#additivity")).to_contain_text("holds")
    expect(page.locator("#explanation")).to_contain_text("probability")
