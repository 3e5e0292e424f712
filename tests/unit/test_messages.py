"""Tests for newsletter.mail.message: the MIME bytes one recipient gets, and what is stable in
them."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session

from newsletter.audience.links import Purpose, read_token
from newsletter.config import Settings
from newsletter.content import issues
from newsletter.content.qa import QAConfig
from newsletter.content.rendering import CompiledIssue
from newsletter.mail import message
from newsletter.mail.message import MessageTemplate
from newsletter.models import Subscriber
from newsletter.sending import prepare, recipients
from newsletter.sending.start import fill_ledger
from tests.conftest import IssueFixture, make_issue, make_subscribers

UNSUBSCRIBE_HTTPS = re.compile(r"<(https://news\.example\.org/unsubscribe/[^>]+)>")


@pytest.fixture(autouse=True)
def _fresh_template_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """sender.prepared caches per issue id for the process; ids repeat across test databases."""
    monkeypatch.setattr(prepare, "_templates", {})


@pytest.fixture
def started(session: Session) -> IssueFixture:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 2)
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    return fx


def _start(session: Session, *, subject: str | None = None) -> IssueFixture:
    fx = make_issue(session)
    if subject is not None:
        issues.update_issue(session, issue_id=fx.issue.id, subject=subject)  # type: ignore[arg-type]
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    session.commit()
    return fx


def _render(
    session: Session,
    settings: Settings,
    fx: IssueFixture,
    *,
    subscriber_id: int = 101,
    email_addr: str = "eve@example.org",
    name: str = "Eve Adams",
) -> tuple[str, bytes]:
    prep = prepare.prepared(session, fx.issue.id, settings)  # type: ignore[arg-type]
    person = recipients.recipient(
        settings, prep, subscriber_id=subscriber_id, email=email_addr, name=name
    )
    return prep.template.render(person)


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _bodies(msg: EmailMessage) -> tuple[str, str]:
    """(text, html) decoded; the wire format's CRLF line ends become "\n" for easy matching."""
    text_part, html_part = list(msg.iter_parts())
    text = str(text_part.get_content())  # type: ignore[attr-defined]
    html = str(html_part.get_content())  # type: ignore[attr-defined]
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def _unsubscribe_url(msg: EmailMessage) -> str:
    match = UNSUBSCRIBE_HTTPS.search(str(msg["List-Unsubscribe"]))
    assert match is not None, msg["List-Unsubscribe"]
    return match.group(1)


# ---------------------------------------------------------------- structure


def test_message_is_multipart_alternative_text_then_html(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    msg = _parse(_render(session, settings, started)[1])
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_message_has_from_to_subject_and_date(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    msg = _parse(_render(session, settings, started)[1])
    assert getaddresses([str(msg["From"])]) == [("Belarus Weekly", "weekly@news.example.org")]
    assert getaddresses([str(msg["To"])]) == [("Eve Adams", "eve@example.org")]
    assert msg["Subject"] == started.articles[0].title
    assert msg["Date"].datetime.utcoffset() is not None  # type: ignore[union-attr]


def test_message_id_is_in_the_headers_and_returned(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    mid, data = _render(session, settings, started)
    assert re.fullmatch(rf"<{started.issue.id}\.101\.[0-9a-f]{{16}}@news\.example\.org>", mid)
    assert _parse(data)["Message-ID"] == mid


def test_message_has_list_id(session: Session, settings: Settings, started: IssueFixture) -> None:
    msg = _parse(_render(session, settings, started)[1])
    assert msg["List-Id"] == f"Belarus Weekly <{started.newsletter.slug}.news.example.org>"


def test_list_unsubscribe_has_https_and_mailto(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    header = str(_parse(_render(session, settings, started)[1])["List-Unsubscribe"])
    assert UNSUBSCRIBE_HTTPS.search(header)
    assert re.search(
        r"<mailto:unsubscribe@newsletter\.example\.org\?subject=unsubscribe%20[^>]+>", header
    )


def test_list_unsubscribe_post_is_one_click(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    msg = _parse(_render(session, settings, started)[1])
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_every_line_ends_with_crlf(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    data = _render(session, settings, started)[1]
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")


def test_no_line_is_longer_than_998_octets(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    data = _render(session, settings, started)[1]
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_bodies_decode_to_the_personalised_issue(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    text, html = _bodies(_parse(_render(session, settings, started)[1]))
    headline = started.articles[0].title
    assert f"\n{headline}\n" in text and "Dear Eve," in text
    assert f">{headline}</a>" in html and "Dear Eve," in html
    assert "__NL_" not in text and "__NL_" not in html


# ---------------------------------------------------------------- Message-ID stability


def test_message_id_is_the_same_when_rendered_twice(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    first, _ = _render(session, settings, started)
    second, _ = _render(session, settings, started)
    assert first == second


def test_message_id_is_the_same_from_a_second_template(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    prep = prepare.prepared(session, started.issue.id, settings)  # type: ignore[arg-type]
    person = recipients.recipient(settings, prep, subscriber_id=7, email="a@example.org", name="A")
    frozen = prep.template
    other = MessageTemplate(
        compiled=CompiledIssue("s", "", "<p>other</p>", "other"),
        newsletter=prep.newsletter,
        issue_id=started.issue.id,  # type: ignore[arg-type]
        secret=settings.secret_key,
    )
    assert other is not frozen
    assert other.render(person)[0] == frozen.render(person)[0]


def test_message_id_differs_between_subscribers(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    first, _ = _render(session, settings, started, subscriber_id=101)
    second, _ = _render(session, settings, started, subscriber_id=102)
    assert first != second


# ---------------------------------------------------------------- unsubscribe link


def test_header_unsubscribe_url_is_the_one_in_both_bodies(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    msg = _parse(_render(session, settings, started)[1])
    url = _unsubscribe_url(msg)
    text, html = _bodies(msg)
    assert f"Unsubscribe: {url}\n" in text
    assert re.search(rf'<a href="{re.escape(url)}"[^>]*>Unsubscribe</a>', html)


def test_unsubscribe_token_names_the_subscriber_and_newsletter(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    people: list[Subscriber] = make_subscribers(session, started.newsletter, 1)
    person = people[0]
    msg = _parse(
        _render(
            session,
            settings,
            started,
            subscriber_id=person.id,  # type: ignore[arg-type]
            email_addr=person.email,
            name=person.name,
        )[1]
    )
    token = _unsubscribe_url(msg).rsplit("/", 1)[1]
    data = read_token(settings.secret_key, Purpose.unsubscribe, token)
    assert (data.subscriber_id, data.newsletter_id) == (person.id, started.newsletter.id)


# ---------------------------------------------------------------- names and subjects


def test_non_ascii_name_is_rfc2047_encoded_and_decodes_back(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    data = _render(session, settings, started, name="Łukasz Żółw")[1]
    raw_to = next(line for line in data.split(b"\r\n") if line.startswith(b"To: "))
    assert raw_to.isascii()
    assert b"=?utf-8?" in raw_to.lower()
    assert getaddresses([str(_parse(data)["To"])]) == [("Łukasz Żółw", "eve@example.org")]


def test_line_break_in_name_cannot_inject_a_header(
    session: Session, settings: Settings, started: IssueFixture
) -> None:
    data = _render(session, settings, started, name="Eve\r\nBcc: x@evil.example")[1]
    msg = _parse(data)
    assert msg["Bcc"] is None
    assert not any(line.lower().startswith(b"bcc:") for line in data.split(b"\r\n"))
    assert [addr for _, addr in getaddresses([str(msg["To"])])] == ["eve@example.org"]


def test_non_ascii_subject_round_trips(session: Session, settings: Settings) -> None:
    subject = "Беларусь за тыдзень: «выбары» — Łódź, Żółw & café"
    fx = _start(session, subject=subject)
    data = _render(session, settings, fx)[1]
    raw_subject = next(line for line in data.split(b"\r\n") if line.startswith(b"Subject: "))
    assert raw_subject.isascii()
    assert _parse(data)["Subject"] == subject


def test_date_is_stamped_when_each_message_is_rendered_not_when_the_template_was_built(
    session: Session, settings: Settings, started: IssueFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _render(session, settings, started)  # builds and caches the template now
    later = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    monkeypatch.setattr(message, "utcnow", lambda: later)
    msg = _parse(_render(session, settings, started, subscriber_id=102)[1])
    assert msg["Date"].datetime == later  # type: ignore[union-attr]


@given(token=st.text(st.characters(codec="utf-8")))
def test_the_unsubscribe_mailto_names_the_mailbox_and_carries_the_token_in_its_subject(
    token: str,
) -> None:
    url = message.unsubscribe_mailto("unsubscribe@news.example.org", token)
    parts = urlsplit(url)
    assert (parts.scheme, parts.path) == ("mailto", "unsubscribe@news.example.org")
    assert parse_qs(parts.query, keep_blank_values=True) == {"subject": ["unsubscribe " + token]}
