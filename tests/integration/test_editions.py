"""Editions by language (issue 16, part 4), on SQLite and PostgreSQL: each edition frozen once,
QA per edition (block or fall back), and each reader's message from the edition of their
language, sent for real to an aiosmtpd sink."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.content import editions
from newsletter.content.qa import QAConfig
from newsletter.exceptions import InvalidInput, InvalidState, QABlocked
from newsletter.models import RenderedEdition, RenderedIssue
from newsletter.sending.start import freeze
from newsletter.transports.sink import SMTPSink
from tests.conftest import make_subscribers
from tests.integration.editions_support import (
    TEXT,
    body,
    issue_with_editions,
    received,
    speaking,
)
from tests.integration.send_support import send_issue


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


def frozen_editions(session: Session, issue_id: int) -> dict[str, RenderedEdition]:
    rows = session.exec(select(RenderedEdition).where(RenderedEdition.issue_id == issue_id))
    return {r.language: r for r in rows}


def test_a_reader_gets_the_edition_of_their_language_else_the_default() -> None:
    have = ["be", "ru"]
    assert editions.pick(have, "be", "en") == "be"
    assert editions.pick(have, "be-BY", "en") == "be"  # the primary language matches
    assert editions.pick(have, "RU", "en") == "ru"
    assert editions.pick(have, None, "ru") == "ru"  # no language: the newsletter's
    assert editions.pick(have, "de", "en") is None  # no such edition: the default
    assert editions.pick([], "be", "en") is None


def test_each_edition_is_frozen_once_with_its_own_text(session: Session) -> None:
    fx = issue_with_editions(session)
    issue_id = fx.issue.id
    assert issue_id is not None
    freeze(session, issue_id, checks=QAConfig())
    session.commit()
    found = frozen_editions(session, issue_id)
    assert sorted(found) == ["be", "ru"]
    for lang, row in found.items():
        subject, intro, title = TEXT[lang]
        assert row.subject == subject
        assert intro in row.html and title in row.html and f"{lang} headline 0" in row.html
        assert f"{lang} blurb 2." in row.text
        assert f'lang="{lang}"' in row.html
        assert fx.articles[0].url in row.html  # the story links stay the article's
        assert fx.articles[0].title not in row.html
        # no English words; the greeting stays the reader's own, worded when it is sent
        assert "Dear" not in row.text and "__NL_GREETING__" in row.html
        assert f"{lang} section 1" in row.html and "Section 1" not in row.html
        # the pictures described in the edition's language, not the article's English
        assert f'alt="{lang} picture 0"' in row.html
        assert f'alt="{fx.articles[0].image_alt}"' not in row.html
    default = session.get(RenderedIssue, issue_id)
    assert default is not None and default.subject == TEXT["en"][0]
    assert fx.articles[0].title in default.html and "be headline" not in default.html


def test_an_untranslated_story_falls_back_to_the_default_text(session: Session) -> None:
    fx = issue_with_editions(session, translate=False)
    issue_id = fx.issue.id
    assert issue_id is not None
    freeze(session, issue_id, checks=QAConfig())
    be = frozen_editions(session, issue_id)["be"]
    assert be.subject == TEXT["be"][0]
    assert fx.articles[0].title in be.html  # the default's headline, not an empty one
    assert f'alt="{fx.articles[0].image_alt}"' in be.html  # and its alt text


def test_an_untranslated_story_blocks_when_the_newsletter_says_so(session: Session) -> None:
    fx = issue_with_editions(session, translate=False)
    fx.newsletter.missing_translation = "block"
    session.add(fx.newsletter)
    session.commit()
    with pytest.raises(QABlocked) as caught:
        freeze(session, fx.issue.id, checks=QAConfig())  # type: ignore[arg-type]
    findings = caught.value.findings
    assert f"be edition: not translated: story {fx.articles[0].title!r}: headline" in findings
    assert f"be edition: not translated: story {fx.articles[0].title!r}: image alt text" in findings
    assert any(f.startswith("ru edition: not translated") for f in findings)
    assert session.get(RenderedIssue, fx.issue.id) is None


def test_the_newsletters_language_and_a_second_edition_are_refused(session: Session) -> None:
    fx = issue_with_editions(session)
    issue_id = fx.issue.id
    assert issue_id is not None
    with pytest.raises(InvalidInput, match="the newsletter's language"):
        editions.add_edition(session, issue_id=issue_id, language="en-GB")
    with pytest.raises(InvalidInput, match="already has a be edition"):
        editions.add_edition(session, issue_id=issue_id, language="be")
    with pytest.raises(InvalidInput, match="BCP 47"):
        editions.add_edition(session, issue_id=issue_id, language="not a tag")
    with pytest.raises(InvalidInput, match="unknown edition fields"):
        editions.set_fields(session, issue_id=issue_id, language="be", values={"html": "x"})


def test_each_reader_receives_one_message_in_their_language(
    session: Session, settings: Settings, sink: SMTPSink
) -> None:
    fx = issue_with_editions(session)
    readers = make_subscribers(session, fx.newsletter, 4)
    speaking(session, readers, ["be", "ru-RU", None, "de"])
    assert send_issue(session, settings, fx.issue.id, sink) == 4  # type: ignore[arg-type]
    got = received(sink)
    expected = {0: "be", 1: "ru", 2: "en", 3: "en"}
    for index, lang in expected.items():
        messages = got[readers[index].email]
        assert len(messages) == 1
        subject, intro, _ = TEXT[lang]
        assert messages[0]["Subject"] == subject
        assert intro in body(messages[0])
    session.expire_all()  # the send moved the issue with Core updates
    with pytest.raises(InvalidState):  # a sent issue's editions are frozen
        editions.set_fields(session, issue_id=fx.issue.id, language="be", values={"subject": "x"})  # type: ignore[arg-type]


def test_a_tracked_newsletters_editions_share_the_issues_link_numbers(session: Session) -> None:
    fx = issue_with_editions(session)
    fx.newsletter.track_clicks = True
    session.add(fx.newsletter)
    session.commit()
    issue_id = fx.issue.id
    assert issue_id is not None
    freeze(session, issue_id, checks=QAConfig())
    default = session.get(RenderedIssue, issue_id)
    be = frozen_editions(session, issue_id)["be"]
    assert default is not None and "/r/" in default.html
    tracked = sorted(set(re.findall(r"/r/\d+/(\d+)/", default.html)))
    assert tracked and sorted(set(re.findall(r"/r/\d+/(\d+)/", be.html))) == tracked
