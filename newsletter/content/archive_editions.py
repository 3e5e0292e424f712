"""The archive's page of an issue in each of its editions, with a switch between them.

``/archive/<newsletter>/<number>?lang=be`` shows the Belarusian edition's frozen email (the
default edition for a language the issue lacks); above it, a line links every other edition,
each named in its own language ("Беларуская", "Русский"), the line itself in the edition's.
"""

from __future__ import annotations

from html import escape

from babel import Locale, UnknownLocaleError
from sqlmodel import Session, col, select

from newsletter import i18n
from newsletter.config import Settings
from newsletter.content import archive, editions
from newsletter.content.rendering import Personaliser
from newsletter.models import RenderedEdition, RenderedIssue


def language_name(tag: str) -> str:
    """A language named in itself ("Беларуская"); the tag when Babel does not know it."""
    try:
        name = Locale.parse(tag, sep="-").get_display_name(tag.replace("-", "_")) or tag
    except (UnknownLocaleError, ValueError):
        return tag
    return name[:1].upper() + name[1:]


def _editions(session: Session, issue_id: int) -> dict[str, RenderedEdition]:
    rows = session.exec(select(RenderedEdition).where(col(RenderedEdition.issue_id) == issue_id))
    return {r.language: r for r in rows}


def _switch(url: str, shown: str, languages: list[str]) -> str:
    links = " &middot; ".join(
        f'<a href="{escape(url)}?lang={escape(lang)}" hreflang="{escape(lang)}" '
        f'lang="{escape(lang)}">{escape(language_name(lang))}</a>'
        for lang in languages
        if lang != shown
    )
    with i18n.use(shown):
        label = escape(i18n.gettext("This issue in other languages:"))
    return (
        '<nav class="nl-editions" style="font:14px/1.5 Helvetica,Arial,sans-serif;'
        f'text-align:center;padding:8px 12px;background:#ffffff;">{label} {links}</nav>'
    )


def edition_page(
    session: Session,
    settings: Settings,
    entry: archive.ArchivedIssue,
    frozen: RenderedIssue,
    language: str | None,
) -> str:
    """The issue's page in ``language``'s edition (else the default's), with the switch."""
    issue_id = entry.issue.id or 0
    found = _editions(session, issue_id)
    if not found:
        return archive.archived_html(settings, entry, frozen)
    default = entry.newsletter.language
    picked = editions.pick(found, language, default) if language else None
    html = found[picked].html if picked else frozen.html
    values = archive.archive_values(settings, entry.newsletter, entry.issue)
    page = Personaliser(html, html_escape=True)(values)
    switch = _switch(entry.url, picked or default, [default, *sorted(found)])
    return _insert(page, switch)


def _insert(page: str, switch: str) -> str:
    """``switch`` right after the opening ``<body ...>`` tag."""
    start = page.find("<body")
    end = page.find(">", start) + 1 if start >= 0 else 0
    return page[:end] + switch + page[end:]
