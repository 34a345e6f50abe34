"""Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

Every page a test opens records console errors and uncaught exceptions; the
``page`` fixture fails the test if any appeared.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls
# from a thread with a running loop unless told that this is intended.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # The machine is small and shared; Plotly's 4 MB script can take a few seconds to arrive.
    expect.set_options(timeout=30_000)

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageErrors(list):
    def attach(self, page) -> None:
        page.on("console", lambda msg: self.append(f"console: {msg.text} ({page.url})")
                if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.append(f"pageerror: {exc} ({page.url})"))
        # Any alert/confirm/prompt would mean injected script ran.
        page.on("dialog", lambda dialog: (self.append(f"dialog: {dialog.message} ({page.url})"),
                                          dialog.dismiss()))


@pytest.fixture
def page_errors():
    return PageErrors()


@pytest.fixture
def new_page(browser, page_errors):
    """new_page(viewport) -> a Playwright page in a fresh context; errors are collected."""
    contexts = []

    def make(viewport=DESKTOP):
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page_errors.attach(page)
        return page

    yield make
    for context in contexts:
        context.close()
    assert list(page_errors) == [], "JavaScript errors on the pages visited:\n" + "\n".join(page_errors)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    path = SCREENSHOTS / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


@pytest.fixture
def celery_worker(live_server, queues, start_worker):
    """A real Celery worker process (tests/workers.py) taking the jobs the live server queues."""
    queue = queues.new()
    queues.route(queue)
    return start_worker(queue)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
