"""In a real browser: an owner asks to unprotect an alias, another reviewer approves it on the
page, and the audit log and the model card show what happened, with no script errors (CSP)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, Role
from registry.models import RegisteredModel
from tests.browser.conftest import login
from tests.factories import UserFactory
from tests.governance.conftest import register, store_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reviewer_approves_an_unprotection_and_the_audit_log_shows_it(live_server, new_page, project, run,
                                                                         editor, iris_logreg):
    model, X = iris_logreg
    store_model(run, model, example=X)
    register(project=project, run=run, user=editor.user)
    owner, reviewer = UserFactory(), UserFactory()
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    base = f"{live_server.url}/p/{project.slug}/models/credit-scorer"

    page = new_page()
    login(page, live_server, owner.username, "pw-Steward-123")
    page.goto(f"{base}/")
    page.click("#protection-link")
    form = page.locator("#protection-request-form")
    form.locator("select[name=alias]").select_option("production")
    form.locator("textarea[name=justification]").fill("The production slot is retired.")
    form.locator("button[type=submit]").click()
    expect(page.locator(".flash-success")).to_contain_text("a reviewer other than you decides it")
    expect(page.locator("#protection-requests button[value=approve]")).to_have_count(0)

    other = new_page()
    login(other, live_server, reviewer.username, "pw-Steward-123")
    other.goto(f"{base}/protection/")
    other.locator("#protection-requests button[value=approve]").click()
    expect(other.locator(".flash-success")).to_contain_text("'production' is no longer protected")
    assert RegisteredModel.objects.get(project=project).protected_aliases == ["champion"]

    other.goto(f"{live_server.url}/p/{project.slug}/audit/?action=protection_change")
    rows = other.locator("#audit-events tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("protection_change.approved")
    expect(rows.nth(1)).to_contain_text(owner.username)

    other.goto(f"{base}/v/1/card/")
    expect(other.locator("#card-lineage")).to_contain_text("Seed")
