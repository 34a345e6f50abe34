"""Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

The ``browser``, ``page_errors`` and ``new_page`` fixtures live in tests/conftest.py, so
that a browser test in another folder shares the one Chromium of the session; every page a
test opens records console errors and uncaught exceptions, and ``new_page`` fails the test if
any appeared.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
PHONE = {"width": 390, "height": 844}


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    path = SCREENSHOTS / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def painted_pixels(chart) -> int:
    """How many pixels of a uPlot chart's canvas are not blank: its lines, points and grid."""
    return chart.evaluate("""el => {
      const canvas = el.querySelector('canvas');
      if (!canvas) return 0;
      const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
      return painted;
    }""")


def login(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


@pytest.fixture
def celery_worker(live_server, queue, start_worker):
    """A real Celery worker process (tests/workers.py) taking the jobs the live server queues."""
    return start_worker(queue)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
