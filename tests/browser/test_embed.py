"""The sign-up box on an article page of ANOTHER origin (issue 14, item 6), in Chromium.

A second local HTTP server (``http.server`` in a thread, on ``localhost`` and its own port, while
the service is on ``127.0.0.1``) serves an "article page" that frames ``/embed/<slug>``. A reader
signs up through the frame, the real worker sends the confirmation, the reader confirms, and the
subscription records the article's address as its consent source. A bot that fills the honeypot
and one that sends the box back at once get the same answer in the frame, and nothing is stored
or sent for them. Screenshots of the box framed at 320, 375 and 700 px and of the settings page's
"Sign-up box" panel at 1200 and 375 px.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from sqlmodel import select

from newsletter.models import IssueStatus, Newsletter, Subscriber, Subscription, utcnow
from newsletter.transports.sink import free_port
from tests.browser.conftest import Live, screenshot, sign_in
from tests.conftest import make_issue
from tests.integration.public_support import confirm_link, parse

FILL_SECONDS = 1.5  # the minimum fill time of this test's service
PITCH = "The week in Belarus, every Friday, in five minutes"


class Article(BaseHTTPRequestHandler):
    """The newsroom's article page: a story, then the sign-up box in an iframe."""

    def __init__(self, box: str, *args: Any) -> None:
        self.box = box
        super().__init__(*args)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        width = self.path.rsplit("w=", 1)[1] if "w=" in self.path else "700"
        host = self.headers.get("Host", "")
        here = f"http://{host}{path}"
        body = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<title>City hall passes the budget</title></head>"
            "<body style='margin:0;padding:10px;font-family:Georgia,serif;background:#f4f1ea'>"
            "<h1 style='font-size:22px'>City hall passes the budget</h1>"
            "<p>The story ends here. Get the next one in your inbox:</p>"
            f"<iframe id='box' src='{self.box}?source={quote(here, safe='')}' "
            "title='Sign up' referrerpolicy='no-referrer-when-downgrade' "
            f"style='width:{width}px;height:320px;border:0;display:block;background:#fff'>"
            "</iframe></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def fill_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read by the service the ``live`` fixture starts after this (autouse: set up first)."""
    monkeypatch.setenv("NEWSLETTER_SIGNUP_MIN_FILL_SECONDS", str(FILL_SECONDS))


@pytest.fixture
def newsroom(fill_time: None, live: Live) -> Iterator[tuple[str, Newsletter]]:
    """The article site on another origin, and the newsletter its box is for (pitch, a sent
    issue for the lead headline)."""
    with live.session() as s:
        nl = s.exec(select(Newsletter).where(Newsletter.slug == "belarus-weekly")).one()
        nl.signup_pitch = PITCH
        s.add(nl)
        s.commit()
        sent = make_issue(s, newsletter=nl, layout=(1,))
        sent.articles[0].title = "Minsk's budget: where the money goes"
        sent.issue.status, sent.issue.sent_at = IssueStatus.sent, utcnow()
        s.add_all([sent.articles[0], sent.issue])
        s.commit()
    port = free_port()
    box = f"{live.url}/embed/belarus-weekly"
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(Article, box))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}/2026/11/28/city-hall-budget", nl
    finally:
        server.shutdown()
        thread.join(5)


def subscriber(live: Live, email: str) -> tuple[Subscriber | None, list[Subscription]]:
    with live.session() as s:
        person = s.exec(select(Subscriber).where(Subscriber.email == email)).first()
        if person is None:
            return None, []
        subs = s.exec(select(Subscription).where(Subscription.subscriber_id == person.id)).all()
        return person, list(subs)


def messages_to(live: Live, email: str) -> list[Any]:
    return [m for m in live.sink.messages if email in m.rcpt_tos]


def open_box(page: Any, article: str) -> tuple[Any, float]:
    page.goto(article)
    frame = page.frame_locator("#box")
    frame.get_by_role("button", name="Subscribe").wait_for()
    return frame, time.monotonic()


def answer_of(frame: Any) -> str:
    return str(frame.locator("body").inner_text())


def test_a_reader_signs_up_through_the_box_on_another_origin_and_bots_get_nowhere(
    browser: Any, live: Live, newsroom: tuple[str, Newsletter]
) -> None:
    article, _ = newsroom
    assert urlsplit(article).netloc != urlsplit(live.url).netloc  # another origin
    context = browser.new_context(viewport={"width": 900, "height": 700})
    context.set_default_timeout(15_000)
    page = context.new_page()

    # a bot that fills the honeypot (a person never sees it: off screen, aria-hidden, no tab stop)
    frame, _ = open_box(page, article)
    trap = frame.locator("input[name=website]")
    assert trap.get_attribute("tabindex") == "-1" and trap.get_attribute("autocomplete") == "off"
    frame.get_by_label("Email address").fill("honeypot-bot@example.org")
    trap.evaluate("e => { e.value = 'http://cheap-pills.example' }")
    time.sleep(FILL_SECONDS + 0.2)
    frame.get_by_role("button", name="Subscribe").click()
    frame.get_by_role("heading", name="Check your inbox").wait_for()
    honeypot_answer = answer_of(frame)

    # a bot that sends the box back at once, faster than anyone types
    frame, served = open_box(page, article)
    frame.get_by_label("Email address").fill("fast-bot@example.org")
    frame.get_by_role("button", name="Subscribe").click()
    frame.get_by_role("heading", name="Check your inbox").wait_for()
    assert time.monotonic() - served < FILL_SECONDS  # it really was too fast
    fast_answer = answer_of(frame)

    # a person
    frame, served = open_box(page, article)
    assert PITCH in answer_of(frame) and "Minsk's budget: where the money goes" in answer_of(frame)
    frame.get_by_label("Email address").fill("reader@example.org")
    time.sleep(max(0.0, FILL_SECONDS + 0.2 - (time.monotonic() - served)))
    frame.get_by_role("button", name="Subscribe").click()
    frame.get_by_role("heading", name="Check your inbox").wait_for()
    assert answer_of(frame) == honeypot_answer == fast_answer  # nothing tells the bots apart

    person, subs = subscriber(live, "reader@example.org")
    assert person is not None
    assert [(s.status, s.consent_source) for s in subs] == [("pending", article)]

    deadline = time.monotonic() + 45  # a loaded machine: the worker may be slow to start
    while not messages_to(live, "reader@example.org"):
        assert time.monotonic() < deadline, "no confirmation email reached the sink"
        time.sleep(0.2)
    page.goto(confirm_link(parse(messages_to(live, "reader@example.org")[0].data)))
    page.get_by_role("button", name="Yes, subscribe me").click()
    page.get_by_text("now receives").wait_for()
    _, subs = subscriber(live, "reader@example.org")
    assert [(s.status, s.consent_source) for s in subs] == [("active", article)]

    for bot in ("honeypot-bot@example.org", "fast-bot@example.org"):
        assert subscriber(live, bot) == (None, [])
        assert messages_to(live, bot) == []  # the reader's email came through; theirs never
    context.close()


#: how the box and the panel look does not depend on the database: SQLite only
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_box_fits_320_to_700_px_and_the_settings_panel_offers_it_with_a_preview(
    browser: Any, page: Any, live: Live, newsroom: tuple[str, Newsletter]
) -> None:
    article, nl = newsroom
    for width in (320, 375, 700):
        box_fits(browser, article, width)

    sign_in(page)
    for width in (1200, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"/admin/newsletters/{nl.id}")
        panel = page.get_by_role("region", name="Sign-up box")
        iframe_code = panel.get_by_label("The box, as an iframe").input_value()
        form_code = panel.get_by_label("A plain form (no JavaScript, no iframe)").input_value()
        assert f'src="{live.url}/embed/belarus-weekly?source=ARTICLE_URL"' in iframe_code
        assert f'action="{live.url}/subscribe"' in form_code and 'name="website"' in form_code
        page.frame_locator("iframe.box-preview").get_by_text(PITCH).wait_for()
        screenshot(page, f"embed-settings-{width}.png")
        panel.screenshot(path=str(screenshot_path(f"embed-settings-panel-{width}.png")))

    page.get_by_label("Pitch").fill("Minsk in five minutes, every Friday")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved.").wait_for()
    page.frame_locator("iframe.box-preview").get_by_text(
        "Minsk in five minutes, every Friday"
    ).wait_for()
    form_code = page.get_by_label("A plain form (no JavaScript, no iframe)").input_value()
    assert "Minsk in five minutes, every Friday" in form_code


def box_fits(browser: Any, article: str, width: int) -> None:
    """The box framed ``width`` px wide: no sideways overflow, the pasted height enough."""
    context = browser.new_context(viewport={"width": width + 40, "height": 500})
    page = context.new_page()
    page.goto(f"{article}?w={width}")
    page.frame_locator("#box").get_by_role("button", name="Subscribe").wait_for()
    inner = page.frame(url=re.compile(r"/embed/"))
    assert inner is not None
    scroll_w, client_w, scroll_h = inner.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
        " document.documentElement.scrollHeight]"
    )
    page.locator("#box").screenshot(path=str(screenshot_path(f"embed-box-{width}.png")))
    assert client_w == width and scroll_w <= client_w, "the box overflows sideways"
    assert scroll_h <= 320, f"the box needs {scroll_h} px: more than the pasted iframe's 320"
    button = inner.get_by_role("button", name="Subscribe").bounding_box()
    email = inner.get_by_label("Email address").bounding_box()
    assert button["width"] > 60 and email["width"] > 120
    assert abs(button["y"] - email["y"]) < 5, "the button wrapped under the address field"
    context.close()


def screenshot_path(name: str) -> Any:
    from tests.browser.conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
