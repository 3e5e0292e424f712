"""An issue's editions by language: add, list, set their text, and pick one for a reader.

The default edition is the issue itself, in its newsletter's language; every other edition is an
``Edition`` row whose empty fields are not translated yet. A reader gets the edition of their
language (``Subscriber.language``; none: the newsletter's), matched exactly, then by the primary
language ("be-BY" reads "be"); a language without an edition reads the default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlmodel import Session, col, delete, select

from newsletter import text
from newsletter.content import issues, review
from newsletter.exceptions import InvalidInput, InvalidState, NotFound
from newsletter.models import Edition, EditionItem, Issue, IssueItem, IssueSection, Newsletter
from newsletter.newsletters import language_tag
from newsletter.statuses import NOT_STARTED

#: an edition's fields an editor sets, as on the issue
FIELDS = ("subject", "preheader", "intro_md", "title")
ALT_MAX = 300  # an image's alt text: a sentence, read aloud in place of the picture


@dataclass
class EditionText:
    """One edition's text, with its stories' overrides by issue item id."""

    edition: Edition
    items: dict[int, EditionItem] = field(default_factory=dict)


def primary(language: str) -> str:
    return language.split("-")[0].lower()


def pick(available: Iterable[str], language: str | None, default: str) -> str | None:
    """The edition a reader of ``language`` gets among ``available``; None: the default one."""
    wanted = language or default
    choices = list(available)
    for lang in choices:
        if lang.lower() == wanted.lower():
            return lang
    for lang in choices:
        if primary(lang) == primary(wanted):
            return lang
    return None


def _editable(session: Session, issue_id: int) -> Issue:
    """An issue not started yet; an approved one goes back to review (its text changes)."""
    issue = issues.get_issue(session, issue_id)
    if issue.status not in NOT_STARTED:
        raise InvalidState(
            f"issue {issue_id} is {issue.status}; only issues not yet scheduled or sent can be "
            "edited"
        )
    review.reopen(session, issue)
    return issue


def list_editions(session: Session, issue_id: int) -> list[EditionText]:
    """The issue's other-language editions, by language, with their stories' overrides."""
    issues.get_issue(session, issue_id)
    rows = session.exec(
        select(Edition).where(Edition.issue_id == issue_id).order_by(col(Edition.language))
    ).all()
    found = {e.id: EditionText(e) for e in rows}
    overrides = session.exec(
        select(EditionItem).where(col(EditionItem.edition_id).in_(list(found)))
    ).all()
    for o in overrides:
        found[o.edition_id].items[o.item_id] = o
    return list(found.values())


def get_edition(session: Session, *, issue_id: int, language: str) -> Edition:
    tag = language_tag(language)
    row = session.exec(
        select(Edition).where(Edition.issue_id == issue_id, Edition.language == tag)
    ).first()
    if row is None:
        raise NotFound(f"issue {issue_id} has no {tag} edition")
    return row


def add_edition(session: Session, *, issue_id: int, language: str) -> Edition:
    """A new, untranslated edition; the newsletter's own language is the default edition."""
    issue = _editable(session, issue_id)
    tag = language_tag(language)
    newsletter = session.get(Newsletter, issue.newsletter_id)
    assert newsletter is not None  # foreign key
    if primary(tag) == primary(newsletter.language):
        raise InvalidInput(
            f"{tag} is the newsletter's language: the issue itself is its {tag} edition"
        )
    taken = session.exec(
        select(Edition).where(Edition.issue_id == issue_id, Edition.language == tag)
    ).first()
    if taken is not None:
        raise InvalidInput(f"issue {issue_id} already has a {tag} edition")
    edition = Edition(issue_id=issue_id, language=tag)
    session.add(edition)
    session.flush()
    return edition


def remove_edition(session: Session, *, issue_id: int, language: str) -> None:
    _editable(session, issue_id)
    edition = get_edition(session, issue_id=issue_id, language=language)
    session.exec(delete(EditionItem).where(col(EditionItem.edition_id) == edition.id))
    session.exec(delete(Edition).where(col(Edition.id) == edition.id))
    session.expunge(edition)


def set_fields(
    session: Session, *, issue_id: int, language: str, values: dict[str, str]
) -> Edition:
    """Set some of an edition's ``FIELDS`` ("" : not translated, the default's text is used)."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown edition fields: {', '.join(unknown)}")
    _editable(session, issue_id)
    edition = get_edition(session, issue_id=issue_id, language=language)
    for name, value in values.items():
        if name == "intro_md":
            edition.intro_md = text.multiline(value, field="intro")
        else:
            limit = {"subject": issues.SUBJECT_MAX, "preheader": issues.PREHEADER_MAX}
            one = text.one_line(value, field=name, max_length=limit.get(name, issues.TITLE_MAX))
            setattr(edition, name, one)
    session.add(edition)
    session.flush()
    return edition


def set_section(
    session: Session, *, issue_id: int, language: str, section_id: int, title: str
) -> Edition:
    """A section's title in an edition ("" : untranslated)."""
    _editable(session, issue_id)
    edition = get_edition(session, issue_id=issue_id, language=language)
    section = session.get(IssueSection, section_id)
    if section is None or section.issue_id != issue_id:
        raise NotFound(f"issue {issue_id} has no section {section_id}")
    one = text.one_line(title, field="section title", max_length=issues.TITLE_MAX)
    titles = {k: v for k, v in edition.section_titles.items() if k != str(section_id)}
    edition.section_titles = titles | ({str(section_id): one} if one else {})
    session.add(edition)
    session.flush()
    return edition


def set_item(
    session: Session,
    *,
    issue_id: int,
    language: str,
    item_id: int,
    headline: str | None = None,
    blurb: str | None = None,
    image_alt: str | None = None,
) -> EditionItem:
    """One story's headline, blurb and image alt text in an edition (its links stay the
    article's)."""
    _editable(session, issue_id)
    edition = get_edition(session, issue_id=issue_id, language=language)
    item = session.get(IssueItem, item_id)
    section = session.get(IssueSection, item.section_id) if item is not None else None
    if section is None or section.issue_id != issue_id:
        raise NotFound(f"issue {issue_id} has no item {item_id}")
    row = session.get(EditionItem, (edition.id, item_id)) or EditionItem(
        edition_id=edition.id,  # type: ignore[arg-type]
        item_id=item_id,
    )
    if headline is not None:
        row.headline = text.one_line(headline, field="headline", max_length=issues.TITLE_MAX)
    if blurb is not None:
        row.blurb = text.multiline(blurb, field="blurb")
    if image_alt is not None:
        row.image_alt = text.one_line(image_alt, field="alt text", max_length=ALT_MAX)
    session.add(row)
    session.flush()
    return row
