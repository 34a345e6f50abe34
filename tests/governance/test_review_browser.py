"""In a real browser: a reviewer finds the request in the Reviews inbox, approves it from the review
page and sees the protected alias move."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from governance import promotions
from registry.models import ModelAlias
from tests.browser.conftest import login, screenshot
from tests.governance.conftest import make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reviewer_approves_from_the_review_page_and_sees_the_alias_move(live_server, new_page, project, model,
                                                                         people, policy):
    version = make_version(model, author=people["author"], metrics={"accuracy": 0.93})
    request = promotions.promotion_request_create(model=model, version=version, alias="champion",
                                                  justification="Recall up four points.",
                                                  user=people["requester"])

    page = new_page()
    login(page, live_server, people["alice"].username, "pw-Steward-123")
    page.get_by_role("link", name="Reviews").click()
    page.locator("#waiting").get_by_role("link", name=f"#{request.pk}").click()
    expect(page.locator("#justification")).to_contain_text("Recall up four points.")
    expect(page.locator("#current-alias")).to_contain_text("no version")
    expect(page.locator("#checks")).to_contain_text("four-fifths")
    screenshot(page, "review-page")

    page.locator("#decide textarea[name=comment]").fill("Audit and explanation look right.")
    page.locator("#decide").get_by_role("button", name="Approve").click()
    expect(page.locator(".flash")).to_contain_text("now points at v1")
    expect(page.locator("#request-status [data-status]")).to_have_attribute("data-status", "approved")
    expect(page.locator("#current-alias")).to_contain_text("v1")
    expect(page.locator("#decide")).to_have_count(0)
    assert ModelAlias.objects.get(model=model, name="champion").version_id == version.pk

    # The registry's model page shows the alias on the approved version.
    page.goto(f"{live_server.url}/p/{project.slug}/models/{model.name}/")
    expect(page.locator("body")).to_contain_text("champion")
