"""An edition as an outline to render: the issue's with the edition's text over it.

The edition's empty fields are untranslated: with the newsletter's ``missing_translation`` at
"fallback" they read the default edition's text; at "block" QA names each one and blocks the send
(``missing``). The copies are detached rows, so rendering an edition never writes to the issue.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.content.editions import EditionText
from newsletter.content.issues import IssueOutline, OutlineItem, OutlineSection
from newsletter.models import Article, Issue, IssueItem, IssueSection


@dataclass(frozen=True)
class EditionOutline:
    language: str
    outline: IssueOutline
    missing: list[str]  # what is not translated (and reads the default's text)

    @property
    def blocked(self) -> bool:
        return bool(self.missing) and self.outline.newsletter.missing_translation == "block"


def _copy_issue(issue: Issue, text: EditionText, missing: list[str]) -> Issue:
    e = text.edition
    copy = Issue(**issue.model_dump())
    if e.title:
        copy.title = e.title
    else:
        missing.append("title")
    if e.subject:
        copy.subject = e.subject
    elif issue.subject:
        missing.append("subject")
    if e.preheader:
        copy.preheader = e.preheader
    elif issue.preheader:
        missing.append("preheader")
    if e.intro_md:
        copy.intro_md = e.intro_md
    elif issue.intro_md.strip():
        missing.append("intro")
    return copy


def _copy_item(entry: OutlineItem, text: EditionText, missing: list[str]) -> OutlineItem:
    override = text.items.get(entry.item.id or 0)
    article = Article(**entry.article.model_dump())
    item = IssueItem(**entry.item.model_dump())
    label = f"story {entry.article.title[:40]!r}"
    if override is not None and override.headline:
        article.title = override.headline
    else:
        missing.append(f"{label}: headline")
    if override is not None and override.blurb:
        item.blurb = override.blurb
        article.bullet = ""  # the English one-liner would read oddly in a translated brief
    elif entry.blurb.strip():
        missing.append(f"{label}: blurb")
    if override is not None and override.image_alt:
        article.image_alt = override.image_alt
    elif entry.article.image_url and (entry.article.image_alt or "").strip():
        missing.append(f"{label}: image alt text")
    return OutlineItem(item, article)


def _copy_section(entry: OutlineSection, text: EditionText, missing: list[str]) -> IssueSection:
    section = IssueSection(**entry.section.model_dump())
    title = text.edition.section_titles.get(str(section.id), "")
    if title:
        section.title = title
    else:
        missing.append(f"section {entry.section.title[:40]!r}: title")
    return section


def edition_outline(base: IssueOutline, text: EditionText) -> EditionOutline:
    """The outline ``text``'s edition renders from, and what it lacks."""
    missing: list[str] = []
    issue = _copy_issue(base.issue, text, missing)
    sections = [
        OutlineSection(
            _copy_section(s, text, missing), [_copy_item(i, text, missing) for i in s.items]
        )
        for s in base.sections
    ]
    outline = IssueOutline(base.newsletter, issue, sections, language=text.edition.language)
    return EditionOutline(text.edition.language, outline, missing)
