"""One issue in three editions through the real Celery worker (on Redis) to a real SMTP sink:
each reader gets exactly one message, in their language: subject, intro and localised footer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.sending.start import start_send
from newsletter.transports.sink import SMTPSink
from tests.conftest import celery_worker, make_subscribers
from tests.integration.editions_support import TEXT, body, issue_with_editions, received, speaking
from tests.integration.test_celery_delivery import wait_until_sent
from tests.unit.test_locales import catalogue

REDIS_DB = 12  # a database of its own on the shared server, flushed before the test


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


@pytest.fixture
def worker_settings(
    settings: Settings, redis_url: str, sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    with celery_worker(redis_url, REDIS_DB, sink, monkeypatch, batch_size="4") as current:
        yield current


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the worker test's CI time
def test_three_editions_reach_each_reader_once_in_their_language(
    session: Session, worker_settings: Settings, sink: SMTPSink
) -> None:
    from worker.dispatch import celery_dispatch

    fx = issue_with_editions(session)
    readers = make_subscribers(session, fx.newsletter, 9)
    languages: list[str | None] = ["be", "be-BY", "ru", "ru", None, "en", "de", "be", "ru"]
    speaking(session, readers, languages)
    issue_id = fx.issue.id
    assert issue_id is not None
    start_send(worker_settings, session, issue_id=issue_id, dispatch=celery_dispatch)
    state = wait_until_sent(worker_settings, issue_id)

    assert state.counts == {"sent": 9}
    got = received(sink)
    assert sorted(got) == sorted(r.email for r in readers)
    for reader, asked in zip(readers, languages, strict=True):
        lang = asked.split("-")[0] if asked in ("be", "be-BY", "ru") else "en"
        (message,) = got[reader.email]  # exactly one
        subject, intro, title = TEXT[lang]
        assert message["Subject"] == subject
        text, html = body(message), body(message, "html")
        assert intro in text and title in html
        first = reader.name.split()[0]  # the greeting is the reader's own, in their language
        if lang == "en":
            assert f"Dear {first}," in text
        else:
            assert catalogue(lang)["Dear %(first)s,"] % {"first": first} in text
        if lang != "en":
            words = catalogue(lang)
            assert f"{words['Unsubscribe']}:" in text and words["Manage preferences"] in html
            assert f"?lang={lang}" in text  # view in browser: the edition's archive page
        else:
            assert "Unsubscribe:" in text and "?lang=" not in text
