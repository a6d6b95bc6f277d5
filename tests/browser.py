"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, for the web app.
Never `playwright install`: the browser comes from the distribution, installed by `make test`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 1280, "height": 800}


@pytest.fixture
def playwright_driver():
    # Per test: the sync API keeps an event loop running in this thread while it is open, which
    # would stop other tests (and the CLI they run) from using asyncio.run.
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser_context(playwright_driver, tmp_path) -> Iterator[BrowserContext]:
    """A fresh profile per test (--user-data-dir), phone-sized, as an officer on patrol holds it."""
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(browser_context) -> Page:
    return browser_context.pages[0] if browser_context.pages else browser_context.new_page()


def sign_in(page: Page, base_url: str, username: str = "alice", password: str = "correct horse") -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def screenshot(page: Page, name: str) -> Path:
    """Phone and tablet screenshots, kept under test-artifacts/ for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}-{page.viewport_size['width']}x{page.viewport_size['height']}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
