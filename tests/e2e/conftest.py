"""Browser tests: headless Chromium from Debian's package driven by Playwright's sync API.

No browser download ever happens: Chromium is /usr/bin/chromium (apt-get install
chromium). Without it these tests skip with the reason, except with CI=true where
they fail. The app is served by pytest-django's ``live_server`` on Postgres; screenshots of
every page go to var/screenshots/, timings to var/e2e-timings.json.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import IN_CI

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
BASE_DIR = Path(__file__).resolve().parents[2]
SCREENSHOTS = BASE_DIR / "var" / "screenshots"
TIMINGS = BASE_DIR / "var" / "e2e-timings.json"
VIEWPORT = {"width": 1280, "height": 800}
WIDE = {"width": 1440, "height": 900}

pytestmark = pytest.mark.e2e



def pytest_collection_modifyitems(items):
    # The live server answers the browser's parallel requests from several threads, and
    # some of them write (thumbnails are made on first request): SQLite's shared in-memory
    # test database answers those with "table is locked", so these tests need Postgres.
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module. Playwright's sync API keeps an asyncio loop running
    in this thread while it is open, and Django refuses ORM calls under a running loop
    ("async context"); the loop is only Playwright's plumbing and the ORM calls here are
    plain synchronous test code, so the guard is lifted exactly while a browser is open
    (module scope: the rest of the suite runs with the guard in place)."""
    if not Path(CHROMIUM).exists():
        reason = f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - playwright is in requirements.txt
        if IN_CI:
            pytest.fail(f"CI=true: playwright is not installed ({exc})", pytrace=False)
        pytest.skip(f"playwright is not installed ({exc})")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class BrowserPage:
    """A page plus what the tests check on every page: no JS errors, no external requests."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self.external: list[str] = []
        host = urlparse(base_url).hostname
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))

        def on_request(request):
            parsed = urlparse(request.url)
            if parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname not in (host, "localhost", "127.0.0.1"):
                self.external.append(request.url)

        page.on("request", on_request)

    def goto(self, path: str):
        self.page.goto(self.base_url + path)

    def login(self, username: str, password: str | None = None, next_path: str = "/"):
        page = self.page
        self.goto(f"/login/?next={next_path}")
        page.fill("#username", username)
        page.fill("#password", password or f"{username}-password")
        page.click("button[type=submit]")
        page.wait_for_selector("#logout")

    def screenshot(self, name: str):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        self.check_no_stray_values()

    def check_no_stray_values(self):
        """No "null" or "undefined" shown as text of its own: a missing part of a page rendered as a
        word (outside logs and JSON, which may hold them)."""
        stray = self.page.evaluate(
            """() => {
                const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
                const found = [];
                for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                    const text = n.textContent.trim();
                    const parent = n.parentElement;
                    if ((text === 'null' || text === 'undefined') && parent && parent.offsetParent !== null
                        && !parent.closest('pre, code, textarea')) found.push(parent.outerHTML.slice(0, 160));
                }
                return found;
            }"""
        )
        assert not stray, f"stray null/undefined shown: {stray}"

    def api_get(self, path: str):
        """GET through the browser's session (what the logged-in user may see)."""
        return self.page.request.get(self.base_url + path)

    def check_labelled(self):
        """Every visible control has an accessible name (a label, aria-label or its text)."""
        unnamed = self.page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
                .filter(e => e.offsetParent !== null && e.type !== 'hidden')
                .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label')
                              || e.getAttribute('aria-labelledby') || (e.textContent || '').trim()))
                .map(e => e.outerHTML.slice(0, 120))"""
        )
        assert not unnamed, f"controls without a name: {unnamed}"

    def check_clean(self, allow: tuple[str, ...] = ()):
        errors = [e for e in self.errors if not any(a in e for a in allow)]
        assert not errors, "\n".join(errors)
        assert not self.external, f"external requests: {self.external}"


@pytest.fixture
def open_page(browser, live_server):
    """``open_page()`` -> a BrowserPage in a fresh 1280x800 context (own cookies); ``open_page(WIDE)``
    for 1440x900."""
    contexts = []

    def make(viewport: dict | None = None) -> BrowserPage:
        context = browser.new_context(viewport=viewport or VIEWPORT, device_scale_factor=1)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return BrowserPage(context.new_page(), live_server.url)

    yield make
    for context in contexts:
        context.close()


def record_timing(key: str, value) -> None:
    """Merge one measured figure into var/e2e-timings.json (and print it)."""
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    data[key] = value
    TIMINGS.write_text(json.dumps(data, indent=2, sort_keys=True))
    print(f"\n[e2e timing] {key} = {value}")
