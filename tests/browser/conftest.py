"""Browser tests: the real app under uvicorn, a real Celery worker on Redis, a real SMTP sink,
driven by Playwright in the machine's Chromium (Debian's ``chromium`` at /usr/bin/chromium;
nothing is downloaded). Missing Chromium or Playwright skips these tests with the reason, or
fails them under NEWSLETTER_REQUIRE_SERVICES=1.

Screenshots go to ``test-artifacts/`` (or ``$NEWSLETTER_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from newsletter import db, seeding
from newsletter.access import editors
from newsletter.config import Settings
from newsletter.transports.sink import SMTPSink, free_port
from tests.conftest import celery_worker, require
from worker.dispatch import celery_dispatch, celery_send_confirmation, celery_start_import

CHROMIUM = os.environ.get("NEWSLETTER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("NEWSLETTER_TEST_ARTIFACTS", "test-artifacts"))
REDIS_DB = 10  # the Celery broker of the browser tests (other suites use 9, 12, 13)
EDITOR = ("desk@news.example.org", "a long enough passphrase")
#: what the probe of this machine's kind found Chromium needs here: no sandbox as root, no GPU,
#: and no background connections (the network is closed; they would fail at every start)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        require("Playwright", str(exc))
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        require("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@dataclass
class Live:
    url: str
    settings: Settings
    sink: SMTPSink

    def session(self) -> Session:
        return Session(db.get_engine(self.settings.database_url), expire_on_commit=False)


@pytest.fixture
def live(settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """The whole service on this test's database: seeded, with one editor account."""
    import uvicorn

    from newsletter.api import create_app

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("NEWSLETTER_BASE_URL", url)
    # served over plain http on loopback, as a developer runs it (production requires https)
    monkeypatch.setenv("NEWSLETTER_ENVIRONMENT", "development")
    monkeypatch.setenv("NEWSLETTER_TWO_FACTOR_ROLES", "")  # the browser signs in with a password
    with (
        SMTPSink() as sink,
        celery_worker(redis_url, REDIS_DB, sink, monkeypatch, batch_size="10") as current,
    ):
        with db.session_scope(current.database_url) as s:
            seeding.seed(s)
            editors.create_user(s, email=EDITOR[0], password=EDITOR[1], name="Desk Editor")
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(
                    current,
                    dispatch=celery_dispatch,
                    send_confirmation=celery_send_confirmation,
                    start_import=celery_start_import,
                ),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="off",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        try:
            yield Live(url, current, sink)
        finally:
            server.should_exit = True
            thread.join(10)


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    context = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def sign_in(page: Any) -> None:
    page.goto("/admin/")
    page.get_by_label("Email address").fill(EDITOR[0])
    page.get_by_label("Password").fill(EDITOR[1])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
