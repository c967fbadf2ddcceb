"""The UI tests: a real workspace made by the demo pipeline from the demo videos, the UI server on a free port,
and Debian's Chromium driven by Playwright (run.sh installs both).

Screenshots of every page go to $FACELAB_SCREENSHOTS (default: the pytest temp folder) — look at them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "test-token-0123456789"


@pytest.fixture
def ui(workspace):
    """The UI server on ``workspace`` (a free port, token TOKEN); yields its RunningUi."""
    from facelab.web.server import start

    running = start(workspace, "127.0.0.1", 0, TOKEN, background=True)
    yield running
    running.stop()


@pytest.fixture
def base_url(ui) -> str:
    return ui.url.split("/?")[0]


@pytest.fixture(scope="session")
def playwright_driver():
    """The one Playwright driver of the session (the sync API allows one at a time), for every browser."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run ./run.sh setup (it installs Debian's chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_driver):
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def page(browser, ui):
    """A fresh browser tab logged in with the token (the URL sets the cookie); JS errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(ui.url)
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def screenshot(tmp_path_factory):
    """screenshot(page, name): save a PNG of the page for a person to look at; returns its path."""
    folder = Path(os.environ.get("FACELAB_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def take(tab, name: str) -> Path:
        path = folder / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take
