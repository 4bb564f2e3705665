"""Browser fixtures: Debian's chromium driven by Playwright against pytest-django's live server.

Every page a test opens records the browser console; a test fails if any page logged a
Content-Security-Policy violation or threw a script error, whatever else it checked.
"""

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connections
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

# The live server listens on the loopback address only.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@dataclass
class ConsoleLog:
    """What the browser reported while a test ran: console messages and uncaught errors."""

    messages: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    # Substrings of console errors a test expects, e.g. the failed load of a page it expects a 403 on.
    expected: list[str] = field(default_factory=list)

    def expect_error(self, text: str) -> None:
        self.expected.append(text)

    def record(self, message: ConsoleMessage) -> None:
        self.messages.append(f"[{message.type}] {message.text} ({message.location.get('url', '')})")

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.messages if "Content Security Policy" in m or "Content-Security-Policy" in m]

    @property
    def errors(self) -> list[str]:
        errors = [m for m in self.messages if m.startswith("[error]")]
        return [m for m in errors if not any(text in m for text in self.expected)] + self.page_errors


@pytest.fixture
def playwright_instance(monkeypatch: pytest.MonkeyPatch) -> Iterator[Playwright]:
    """Playwright for one test only. Its sync API leaves an asyncio loop running in this thread, and
    with a running loop Django (1) refuses ORM calls as async-unsafe unless told otherwise and
    (2) keeps its database connections in a separate, context-local slot. Scoped to one test, both
    end before pytest-django flushes and re-seeds the database on its usual connection."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        yield playwright
        # Close the connections the test body opened in the loop's slot, or they outlive the test.
        connections.close_all()


@pytest.fixture
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run bin/setup test (it installs it with apt).")
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(autouse=True)
def _database_for_the_live_server(django_db_serialized_rollback: None, live_server: object) -> None:
    """The live server reads committed data, so browser tests flush the database afterwards; the
    serialized rollback puts the migrations' seed (roles, categories) back for the tests after.
    allauth's login rate limits live in the cache, which outlives the database: start clean."""
    cache.clear()


@pytest.fixture
def console() -> ConsoleLog:
    return ConsoleLog()


def _new_page(browser: Browser, console: ConsoleLog, *, javascript: bool = True) -> Page:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, java_script_enabled=javascript)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("console", console.record)
    page.on("pageerror", lambda error: console.page_errors.append(str(error)))
    return page


@pytest.fixture
def page(browser: Browser, console: ConsoleLog, live_server: object) -> Iterator[Page]:
    """A fresh browser context (no cookies) on a 1366 by 900 laptop screen."""
    page = _new_page(browser, console)
    yield page
    page.context.close()
    violations = console.csp_violations
    assert violations == [], "Content-Security-Policy violations:\n" + "\n".join(violations)
    assert console.errors == [], "Browser errors:\n" + "\n".join(console.errors)


@pytest.fixture
def page_without_javascript(browser: Browser, console: ConsoleLog, live_server: object) -> Iterator[Page]:
    page = _new_page(browser, console, javascript=False)
    yield page
    page.context.close()


@pytest.fixture
def screenshot() -> "Screenshot":
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return Screenshot()


class Screenshot:
    """Saves full-page screenshots under var/screenshots/ (CI artifacts, never committed) to look at."""

    def __call__(self, page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def totp_code(secret: str) -> str:
    """The current code of an authenticator app holding ``secret``, computed as allauth checks it."""
    from allauth.mfa import app_settings
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    period = app_settings.TOTP_PERIOD
    # A code read in the last seconds of its window expires before the form reaches the server
    # (allauth accepts the current window only): wait for the next window, as a person would.
    if period - time.time() % period < 3:
        time.sleep(period - time.time() % period + 0.1)
    return format_hotp_value(hotp_value(secret, int(time.time()) // period))


def accept_content_warning(page: Page) -> None:
    """Accept a campaign's content warning by keyboard, as a person does: once the accept button
    has the focus (Chromium applies ``autofocus`` on a rendering step after the load event)."""
    expect(page.locator("#accept-warning")).to_be_focused()
    page.keyboard.press("Enter")
