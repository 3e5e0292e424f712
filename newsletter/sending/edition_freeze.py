"""Freeze an issue's editions at the start of a send: each compiled once, checked by QA.

``start.freeze`` freezes the default edition (``RenderedIssue``) and calls ``freeze_editions``
for the others (``RenderedEdition``, one row per language). Each edition's QA report blocks the
send as the default's does, its findings named by language; an untranslated field blocks too
when the newsletter says so (``missing_translation`` = "block"), else it reads the default's
text. A tracked newsletter's editions share the issue's link numbers by URL
(``analytics.link_numbers``): a link keeps its URL's number wherever a translation moves it, and
a URL only one edition has gets a number of its own, so each click counts for the address the
reader followed, and for its story. The "view in browser" link of
an edition is its archive page (``?lang=``): the same for every reader of it, so it is written
into the frozen email instead of per recipient. The greeting stays personal: each reader's is
worded in their message's language when it is sent (``edition_pick.greeted``: "Прывітанне,
Olga!"); a preview, which has no reader, shows the edition's nameless one.
"""

from __future__ import annotations

from html import escape

from sqlmodel import Session, col, delete

from newsletter import i18n
from newsletter.analytics import links as tracking
from newsletter.analytics.link_numbers import LinkNumbers, renumber
from newsletter.content import editions, qa
from newsletter.content.edition_render import EditionOutline, edition_outline
from newsletter.content.issues import IssueOutline
from newsletter.content.qa import QAConfig
from newsletter.content.rendering import PLACEHOLDERS, CompiledIssue
from newsletter.exceptions import QABlocked
from newsletter.models import RenderedEdition, utcnow
from newsletter.statuses import IssueKind


def edition_view_url(base_url: str, outline: IssueOutline, language: str) -> str:
    """An edition's page in the archive (``recipients.archive_url`` with its language)."""
    nl, issue = outline.newsletter, outline.issue
    base = f"{base_url.rstrip('/')}/archive/{nl.slug}"
    return base if issue.kind == IssueKind.welcome else f"{base}/{issue.number}?lang={language}"


def check(outline: EditionOutline, compiled: CompiledIssue | None, checks: QAConfig) -> list[str]:
    """The edition's blocking findings, each named by its language."""
    lang = outline.language
    found = [
        f.message for f in qa.qa_report(outline.outline, compiled=compiled, checks=checks).blocking
    ]
    if outline.blocked:
        found += [f"not translated: {what}" for what in outline.missing]
    return [f"{lang} edition: {message}" for message in found]


def edition_values(
    compiled: CompiledIssue, url: str, language: str, *, greeting: bool = False
) -> CompiledIssue:
    """The view-in-browser link, the same for every reader of the edition (and, ``greeting``,
    for a preview, the edition's nameless greeting)."""
    with i18n.use(language):
        nameless = i18n.gettext("Dear reader,")
    filled = [("view_url", url)] + ([("greeting", nameless)] if greeting else [])
    html, text = compiled.html, compiled.text
    for name, value in filled:
        html = html.replace(PLACEHOLDERS[name], escape(value))
        text = text.replace(PLACEHOLDERS[name], value)
    return CompiledIssue(compiled.subject, compiled.preheader, html, text)


def freeze_editions(
    session: Session,
    base: IssueOutline,
    *,
    issue_id: int,
    checks: QAConfig,
    links: list[tracking.LinkSpec],
) -> list[tracking.LinkSpec]:
    """Compile, check and store every edition; returns ``links`` with the editions' own added.
    QABlocked names every blocking finding of every edition."""
    frozen: list[RenderedEdition] = []
    blocking: list[str] = []
    numbers = LinkNumbers(list(links))
    for text in editions.list_editions(session, issue_id):
        outline = edition_outline(base, text)
        plain, compiled, specs = tracking.compile_tracked(
            outline.outline, base_url=checks.base_url, issue_id=issue_id
        )
        blocking += check(outline, plain, checks)
        compiled = renumber(compiled, issue_id, numbers.number(specs))
        url = edition_view_url(checks.base_url, base, outline.language)
        sent = edition_values(compiled, url, outline.language)
        frozen.append(
            RenderedEdition(
                issue_id=issue_id,
                language=outline.language,
                subject=sent.subject,
                preheader=sent.preheader,
                html=sent.html,
                text=sent.text,
                compiled_at=utcnow(),
            )
        )
    if blocking:
        raise QABlocked(blocking)
    session.exec(delete(RenderedEdition).where(col(RenderedEdition.issue_id) == issue_id))
    session.add_all(frozen)
    session.flush()
    return numbers.specs
