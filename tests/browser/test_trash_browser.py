"""Delete and restore in a real browser: a run leaves the table for the trash and comes back."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts import services as account_services
from experiments import services
from tests.browser.conftest import login
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-Steward-123"


def test_move_a_run_to_the_trash_and_restore_it(live_server, new_page):
    user = UserFactory(username="carol", password=PASSWORD)
    project = account_services.project_create(user=user, slug="trash-demo", name="Trash demo")
    for name in ("keep-me", "drop-me"):
        services.run_create(project=project, experiment="baseline", user=user, name=name)

    page = new_page()
    login(page, live_server, "carol", PASSWORD)
    page.goto(f"{live_server.url}/p/trash-demo/")
    page.get_by_role("link", name="baseline").click()
    rows = page.locator("#runs-table tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_role("link", name="drop-me").click()
    page.locator("#run-delete").click()

    # Back on the experiment: the run is gone from the table, and the page says where it went.
    expect(page.get_by_text("moved to the trash")).to_be_visible()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("keep-me")

    page.goto(f"{live_server.url}/p/trash-demo/trash/")
    trash_rows = page.locator("#trash-runs tbody tr")
    expect(trash_rows).to_have_count(1)
    expect(trash_rows.first).to_contain_text("drop-me")
    trash_rows.first.get_by_role("button", name="Restore").click()

    expect(page.locator("#run-name")).to_have_text("drop-me")
    page.goto(f"{live_server.url}/p/trash-demo/trash/")
    expect(page.get_by_text("No deleted runs.")).to_be_visible()
