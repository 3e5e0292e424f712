"""Which frozen edition a reader's message is built from (the batch asks per row).

A process builds each edition's ``MessageTemplate`` once, like the issue's (``prepare``), and
keeps them with the issue's frozen time. A reader's language comes with the claimed row
(``ledger.Claimed.language``, read in the claim's own query): the subscriber's language, else
the newsletter's (``editions.pick``; none that matches: the default edition). No query per
message.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from newsletter import i18n
from newsletter.config import Settings
from newsletter.content import editions
from newsletter.content.rendering import CompiledIssue
from newsletter.db import get_engine
from newsletter.mail.message import MessageTemplate, Recipient
from newsletter.models import RenderedEdition
from newsletter.sending import subject_tests
from newsletter.sending.prepare import Prepared

#: (issue id, frozen at) -> language -> its template; a few issues, as ``prepare`` keeps
_templates: dict[tuple[int, datetime], dict[str, MessageTemplate]] = {}
_KEPT = 8


def _build(settings: Settings, prep: Prepared) -> dict[str, MessageTemplate]:
    issue_id: int = prep.issue.id  # type: ignore[assignment]
    with Session(get_engine(settings.database_url)) as session:
        rows = (
            session.exec(
                select(RenderedEdition).where(col(RenderedEdition.issue_id) == issue_id)  # type: ignore[call-overload]
            )
            .scalars()
            .all()
        )
        variants = subject_tests.subjects(session, issue_id)
    return {
        row.language: MessageTemplate(
            compiled=CompiledIssue(row.subject, row.preheader, row.html, row.text),
            newsletter=prep.newsletter,
            issue_id=issue_id,
            secret=settings.secret_key,
            # a subject test tries the default edition's subjects; an edition keeps its own
            subjects={n: row.subject for n in variants},
        )
        for row in rows
    }


def _templates_of(settings: Settings, prep: Prepared) -> dict[str, MessageTemplate]:
    key = (prep.issue.id or 0, prep.compiled_at)
    if key not in _templates:
        while len(_templates) >= _KEPT:
            del _templates[next(iter(_templates))]
        _templates[key] = _build(settings, prep)
    return _templates[key]


def template_for(
    settings: Settings, prep: Prepared, language: str | None
) -> tuple[MessageTemplate, str]:
    """The template of the edition a reader of ``language`` gets (the issue's own when it has
    none), and its language (the newsletter's for the issue's own)."""
    templates = _templates_of(settings, prep)
    if not templates:
        return prep.template, prep.newsletter.language
    picked = editions.pick(templates, language, prep.newsletter.language)
    if picked is None:
        return prep.template, prep.newsletter.language
    return templates[picked], picked


def greeted(person: Recipient, language: str) -> Recipient:
    """The reader's greeting in their message's language ("Прывітанне, Olga!"); English, the
    source language, keeps ``recipients``' own ("Dear Olga,")."""
    locale = i18n.negotiate(language)
    if locale == i18n.SOURCE:
        return person
    first = person.name.split()[0] if person.name.strip() else ""
    with i18n.use(locale):
        words = (
            i18n.gettext("Dear %(first)s,") % {"first": first}
            if first
            else i18n.gettext("Dear reader,")
        )
    return replace(person, values={**person.values, "greeting": words})
