"""The public archive over HTTP, on SQLite and PostgreSQL, after a real send through SMTP.

An issue goes to three subscribers through ``sender.run_batch`` and an aiosmtpd sink; the
"view in browser" link of the email that arrived is the archive URL this test then opens. The
archived page is the sent HTML (every literal part of the frozen email is in it) with no
placeholder, no personal link or token, no address and no name left. Drafts and issues still
sending are 404s, like unknown numbers and newsletters.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from newsletter.api import create_app
from newsletter.audience.links import Purpose, make_token
from newsletter.config import Settings
from newsletter.content.rendering import _TOKEN_RE
from newsletter.models import Issue, IssueStatus, Newsletter, RenderedIssue, Subscriber
from newsletter.sending.checks import qa_config
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import SMTPSink
from tests.conftest import make_issue, make_subscribers
from tests.integration.send_support import send_issue

ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass
class Archived:
    newsletter: Newsletter
    sent: Issue
    sending: Issue
    draft: Issue
    people: list[Subscriber]
    received: list[Message]


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    def no_dispatch(_issue_id: int) -> None:
        raise AssertionError("the archive queues nothing")

    with TestClient(create_app(settings, dispatch=no_dispatch)) as c:
        yield c


@pytest.fixture
def archived(session: Session, settings: Settings, caplog: pytest.LogCaptureFixture) -> Archived:
    """Issue #1 sent to three readers; #2 started but not sent; #3 a draft."""
    first = make_issue(session)
    newsletter = first.newsletter
    people = make_subscribers(session, newsletter, 3)
    second = make_issue(session, newsletter=newsletter).issue
    third = make_issue(session, newsletter=newsletter).issue
    with SMTPSink() as sink, caplog.at_level(logging.INFO, logger="newsletter"):
        assert send_issue(session, settings, first.issue.id, sink) == 3  # type: ignore[arg-type]
        received = [m.parse() for m in sink.messages]
    fill_ledger(session, issue_id=second.id, checks=qa_config(settings))  # type: ignore[arg-type]
    session.commit()
    for issue in (first.issue, second, third):
        session.refresh(issue)
    assert (first.issue.status, second.status, third.status) == ("sent", "sending", "draft")
    batch_logs = [r for r in caplog.records if getattr(r, "issue_id", None) == first.issue.id]
    assert any("batch done" in r.getMessage() and r.sent == 3 for r in batch_logs)  # type: ignore[attr-defined]
    return Archived(newsletter, first.issue, second, third, people, received)


def html_part(message: Message) -> str:
    """The HTML part decoded, its line ends as LF again: quoted-printable carries them as CRLF
    (text's canonical form on the wire), the frozen HTML has LF."""
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8").replace("\r\n", "\n")
    raise AssertionError("no text/html part")


def view_in_browser(html: str) -> str:
    match = re.search(r'<a href="([^"]+)"[^>]*>\s*View in browser', html)
    assert match, "the email has no 'View in browser' link"
    return match.group(1)


def personal_bits(settings: Settings, archived: Archived) -> list[str]:
    """Everything that would identify a reader: addresses, names, their links' tokens."""
    nid = archived.newsletter.id
    bits: list[str] = []
    for p in archived.people:
        assert p.id is not None
        bits += [p.email, p.name, f"Dear {p.name.split()[0]},"]
        bits.append(make_token(settings.secret_key, Purpose.unsubscribe, p.id, nid))
        bits.append(make_token(settings.secret_key, Purpose.preferences, p.id, None))
    return bits


def test_view_in_browser_opens_the_sent_html_without_personal_bits(
    client: TestClient, session: Session, settings: Settings, archived: Archived
) -> None:
    assert len(archived.received) == 3
    email_html = html_part(archived.received[0])
    link = view_in_browser(email_html)
    path = f"/archive/{archived.newsletter.slug}/{archived.sent.number}"
    assert link == f"https://news.example.org{path}"
    # the email itself carries personal links: the archive must be the one without them
    assert "/unsubscribe/" in email_html and "/preferences/" in email_html

    response = client.get(urlsplit(link).path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert page.lstrip().lower().startswith("<!doctype html")

    frozen = session.get(RenderedIssue, archived.sent.id)
    assert frozen is not None
    # the exact HTML that was sent: every literal between two placeholders, in order
    literals = [part for part in _TOKEN_RE.split(frozen.html)[0::2] if part]
    position = 0
    for literal in literals:
        found = page.find(literal, position)
        assert found >= 0, f"sent HTML missing from the archive near {literal[:80]!r}"
        assert literal in email_html
        position = found + len(literal)

    assert "__NL_" not in page
    assert "/unsubscribe/" not in page and "/preferences/" not in page
    for bit in personal_bits(settings, archived):
        assert bit not in page, bit
    assert "Dear reader," in page
    assert f'href="{link}"' in page  # "view in browser" is the page itself
    assert "https://news.example.org/subscribe?newsletter=" in page
    assert "script-src" not in response.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in response.headers["content-security-policy"]


def test_the_archive_lists_only_sent_issues(client: TestClient, archived: Archived) -> None:
    slug = archived.newsletter.slug
    for path in (f"/archive/{slug}", "/archive"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        links = re.findall(r'href="https://news\.example\.org(/archive/[^"]+)"', response.text)
        issue_links = [p for p in links if re.fullmatch(rf"/archive/{slug}/\d+", p)]
        assert issue_links == [f"/archive/{slug}/{archived.sent.number}"], path
        assert f"/archive/{slug}/feed.atom" in links
        for person in archived.people:
            assert person.email not in response.text


@pytest.mark.parametrize("which", ["sending", "draft", "unknown", "not-a-number", "other"])
def test_unsent_and_unknown_issues_are_404(
    client: TestClient, archived: Archived, which: str
) -> None:
    slug = archived.newsletter.slug
    path = {
        "sending": f"/archive/{slug}/{archived.sending.number}",
        "draft": f"/archive/{slug}/{archived.draft.number}",
        "unknown": f"/archive/{slug}/999",
        "not-a-number": f"/archive/{slug}/1abc",
        "other": f"/archive/no-such-newsletter/{archived.sent.number}",
    }[which]
    response = client.get(path)
    assert response.status_code == 404
    assert "__NL_" not in response.text
    assert archived.sending.status == IssueStatus.sending


def test_unknown_newsletter_index_and_feed_are_404(client: TestClient, archived: Archived) -> None:
    assert client.get("/archive/no-such-newsletter").status_code == 404
    assert client.get("/archive/no-such-newsletter/feed.atom").status_code == 404


def _entries(feed: ET.Element) -> list[dict[str, str]]:
    out = []
    for entry in feed.findall(f"{ATOM}entry"):
        link = entry.find(f"{ATOM}link")
        assert link is not None
        out.append(
            {
                "id": entry.findtext(f"{ATOM}id", ""),
                "title": entry.findtext(f"{ATOM}title", ""),
                "updated": entry.findtext(f"{ATOM}updated", ""),
                "summary": entry.findtext(f"{ATOM}summary", ""),
                "link": link.get("href", ""),
            }
        )
    return out


@pytest.mark.parametrize("scope", ["newsletter", "all"])
def test_the_atom_feed_has_the_sent_issues(
    client: TestClient, session: Session, archived: Archived, scope: str
) -> None:
    slug = archived.newsletter.slug
    path = f"/archive/{slug}/feed.atom" if scope == "newsletter" else "/archive/feed.atom"
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}id")
    assert feed.findtext(f"{ATOM}title")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", feed.findtext(f"{ATOM}updated", ""))
    self_links = [el.get("href") for el in feed.findall(f"{ATOM}link") if el.get("rel") == "self"]
    assert self_links == [f"https://news.example.org{path}"]
    assert feed.find(f"{ATOM}author/{ATOM}name") is not None

    frozen = session.get(RenderedIssue, archived.sent.id)
    assert frozen is not None
    url = f"https://news.example.org/archive/{slug}/{archived.sent.number}"
    mine = [e for e in _entries(feed) if e["id"] == url]
    assert len(mine) == 1
    assert mine[0]["title"] == frozen.subject
    assert mine[0]["link"] == url
    assert mine[0]["summary"] == (frozen.preheader or archived.sent.title)
    assert mine[0]["updated"] == feed.findtext(f"{ATOM}updated") or scope == "all"
    for e in _entries(feed):  # only sent issues, never the one sending or the draft
        assert not e["id"].endswith((f"/{archived.sending.number}", f"/{archived.draft.number}"))
    for person in archived.people:
        assert person.email not in response.text
