"""Real headless Chromium (Debian's, never a downloaded one) against pytest-django's live server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread, so Django's async-unsafe guard would
# refuse the ORM calls that the tests make between page actions; nothing here is really async.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000  # generous for a loaded CI box; every wait is on a DOM state, not a clock


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
        )
    sync_api.expect.set_options(timeout=TIMEOUT_MS)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can tell that a test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def new_page(
    browser: Any, live_server: Any, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Any]]:
    """Open a page in a fresh context (own cookies, empty cache); closed after the test.

    What the pages said (console errors, uncaught exceptions, answers of 400 and up) is printed
    when the test fails: a browser test failing on a loaded CI box must say why.
    """
    contexts: list[Any] = []
    events: list[str] = []

    def make() -> Any:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1400, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                message.type in ("error", "warning")
                and events.append(f"console {message.type}: {message.text}")
            ),
        )
        page.on("pageerror", lambda error: events.append(f"page error: {error}"))
        page.on(
            "response",
            lambda response: (
                response.status >= 400
                and events.append(f"{response.status} {response.request.method} {response.url}")
            ),
        )
        page.on(
            "framenavigated",
            lambda frame: frame.parent_frame is None and events.append(f"at {frame.url}"),
        )
        return page

    yield make
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print("What the browser saw, in order:\n  " + "\n  ".join(events or ["(nothing)"]))
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Any]) -> Any:
    return new_page()


@pytest.fixture
def login() -> Callable[[Any, str], None]:
    """Log in through the real form, as a reader would."""
    from playwright.sync_api import expect

    def log_in(page: Any, username: str) -> None:
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(f"{username}-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("form.logout span")).to_have_text(username)

    return log_in
