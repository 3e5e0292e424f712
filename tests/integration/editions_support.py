# ruff: noqa: RUF001 - Belarusian and Russian text
"""An issue with editions in Belarusian and Russian, translated, and readers of each language."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

from sqlmodel import Session

from newsletter.content import editions, issues
from newsletter.models import Subscriber
from newsletter.transports.sink import SMTPSink
from tests.conftest import IssueFixture, make_issue

#: language -> (subject, intro, title), written by the editors of each edition
TEXT = {
    "en": ("Minsk talks to Kyiv", "Welcome to this week's issue.", "This week in Belarus"),
    "be": ("Мінск гаворыць з Кіевам", "Вітаем у сённяшнім выпуску.", "Гэты тыдзень у Беларусі"),
    "ru": ("Минск говорит с Киевом", "Добро пожаловать в этот выпуск.", "Эта неделя в Беларуси"),
}


def issue_with_editions(session: Session, *, translate: bool = True) -> IssueFixture:
    """A draft with be and ru editions: subject, intro, title, and (``translate``) every story
    (headline, blurb, image alt text)."""
    fx = make_issue(session, layout=(2, 1))
    issue_id = fx.issue.id
    assert issue_id is not None
    subject, intro, _ = TEXT["en"]
    issues.update_issue(session, issue_id=issue_id, subject=subject, intro_md=intro)
    for lang in ("be", "ru"):
        editions.add_edition(session, issue_id=issue_id, language=lang)
        subject, intro, title = TEXT[lang]
        values = {"subject": subject, "intro_md": intro, "title": title}
        editions.set_fields(session, issue_id=issue_id, language=lang, values=values)
        for n, section in enumerate(fx.sections if translate else []):
            editions.set_section(
                session,
                issue_id=issue_id,
                language=lang,
                section_id=section.id,  # type: ignore[arg-type]
                title=f"{lang} section {n}",
            )
        for n, item in enumerate(fx.items if translate else []):
            editions.set_item(
                session,
                issue_id=issue_id,
                language=lang,
                item_id=item.id,  # type: ignore[arg-type]
                headline=f"{lang} headline {n}",
                blurb=f"{lang} blurb {n}.",
                image_alt=f"{lang} picture {n}",
            )
    session.commit()
    return fx


def speaking(session: Session, readers: list[Subscriber], languages: list[str | None]) -> None:
    for reader, lang in zip(readers, languages, strict=True):
        reader.language = lang
        session.add(reader)
    session.commit()


def received(sink: SMTPSink) -> dict[str, list[EmailMessage]]:
    """Each recipient's messages, parsed."""
    got: dict[str, list[EmailMessage]] = {}
    for m in sink.messages:
        parsed = message_from_bytes(m.data, policy=default_policy)
        got.setdefault(m.rcpt_tos[0], []).append(parsed)  # type: ignore[arg-type]
    return got


def body(message: EmailMessage, kind: str = "plain") -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]
