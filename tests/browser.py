"""Headless Chromium for the workbench's end-to-end tests: Debian's ``/usr/bin/chromium``
driven by Playwright for Python (never ``playwright install``, which downloads a browser).

``.ci/run`` installs Chromium with apt when it is missing; where it cannot (no apt, not
root) the tests that need it skip, saying why.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("LOCARD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not CHROMIUM.is_file() and not shutil.which(str(CHROMIUM)):
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium chromium-driver; .ci/run does it)"
    return None


#: Mark for tests that drive the browser.
needs_chromium = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


@contextmanager
def chromium():
    """A headless Chromium browser (Playwright ``Browser``), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def signed_in(browser, base_url: str, key: str):
    """A fresh browser context (its own session storage) with the workbench open and signed in with
    ``key``; returns the page.  Every URL the page requests is kept in ``page.seen_urls``."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.seen_urls = []
    page.on("request", lambda r: page.seen_urls.append(r.url))
    page.goto(base_url + "/")
    page.fill("#api-key", key)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#who:not(:empty)")
    return page
