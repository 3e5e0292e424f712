"""Assemble issues: sections, ordered items, intro and subject, and the outline they render from.

The QA report is ``qa``; rendering the outline is ``rendering`` (which imports this module,
never the other way round).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from newsletter import text
from newsletter.content import review
from newsletter.exceptions import InvalidInput, InvalidState, NotFound
from newsletter.models import Article, Issue, IssueItem, IssueSection, Newsletter, SubjectTest
from newsletter.newsletters import get_newsletter
from newsletter.statuses import NOT_STARTED

#: longest subject accepted; inboxes show about 60-90 characters, and a header line must fit 998
SUBJECT_MAX = 200
TITLE_MAX = 200
PREHEADER_MAX = 300


@dataclass(frozen=True)
class OutlineItem:
    item: IssueItem
    article: Article

    @property
    def blurb(self) -> str:
        return self.item.blurb or self.article.summary


@dataclass(frozen=True)
class OutlineSection:
    section: IssueSection
    items: list[OutlineItem]


@dataclass(frozen=True)
class IssueOutline:
    """An issue with everything needed to render it, in order."""

    newsletter: Newsletter
    issue: Issue
    sections: list[OutlineSection]
    test_subjects: tuple[str, ...] = ()  # a subject test's subjects, for QA (variant n: n-th)
    language: str | None = None  # an edition's (``edition_render``); None: the newsletter's

    @property
    def items(self) -> list[OutlineItem]:
        return [it for sec in self.sections for it in sec.items]

    @property
    def lead(self) -> OutlineItem | None:
        items = self.items
        return items[0] if items else None

    @property
    def subject(self) -> str:
        """The editor's subject, else the lead headline (the From line already names the
        newsletter; repeating it spends the part of the subject a phone shows)."""
        if self.issue.subject:
            return self.issue.subject
        lead = self.lead
        return lead.article.title if lead else ""


# ---------------------------------------------------------------- lookups


def get_issue(session: Session, issue_id: int) -> Issue:
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotFound(f"no issue with id {issue_id}")
    return issue


def _editable_issue(session: Session, issue_id: int) -> Issue:
    """An issue not started yet; an approved one goes back to review (it changes now)."""
    issue = get_issue(session, issue_id)
    if issue.status not in NOT_STARTED:
        raise InvalidState(
            f"issue {issue_id} is {issue.status}; only issues not yet scheduled or sent can be "
            "edited"
        )
    review.reopen(session, issue)
    return issue


def _get_item(session: Session, item_id: int) -> tuple[IssueItem, IssueSection]:
    item = session.get(IssueItem, item_id)
    if item is None:
        raise NotFound(f"no issue item with id {item_id}")
    section = session.get(IssueSection, item.section_id)
    assert section is not None  # foreign key
    _editable_issue(session, section.issue_id)
    return item, section


# ---------------------------------------------------------------- issues


def create_issue(
    session: Session,
    *,
    newsletter: str | int,
    title: str,
    subject: str | None = None,
    preheader: str = "",
    intro_md: str = "",
) -> Issue:
    """Create a draft, numbered 1, 2, 3... per newsletter, with the newsletter's default
    sections (empty, in its order)."""
    title = _title(title)
    subject = _subject(subject) if subject is not None else None
    preheader = _preheader(preheader)
    intro_md = text.multiline(intro_md, field="intro")
    nl = get_newsletter(session, newsletter)
    numbered = (Issue.newsletter_id == nl.id, Issue.number > 0)  # welcomes are numbered -1, -2..
    last = session.exec(select(func.max(Issue.number)).where(*numbered)).one()
    issue = Issue(
        newsletter_id=nl.id,  # type: ignore[arg-type]
        number=(last or 0) + 1,
        title=title,
        subject=(subject or None),
        preheader=preheader,
        intro_md=intro_md,
    )
    session.add(issue)
    session.flush()
    for position, section_title in enumerate(nl.default_sections or []):
        session.add(
            IssueSection(issue_id=issue.id, title=_section_title(section_title), position=position)  # type: ignore[arg-type]
        )
    session.flush()
    return issue


def update_issue(
    session: Session,
    *,
    issue_id: int,
    title: str | None = None,
    subject: str | None = None,
    preheader: str | None = None,
    intro_md: str | None = None,
) -> Issue:
    issue = _editable_issue(session, issue_id)
    if title is not None:
        issue.title = _title(title)
    if subject is not None:
        issue.subject = _subject(subject) or None  # empty string restores the default subject
    if preheader is not None:
        issue.preheader = _preheader(preheader)
    if intro_md is not None:
        issue.intro_md = text.multiline(intro_md, field="intro")
    session.add(issue)
    session.flush()
    return issue


def _title(value: str) -> str:
    if not value.strip():
        raise InvalidInput("an issue needs a title")
    return text.one_line(value, field="title", max_length=TITLE_MAX)


def _subject(value: str) -> str:
    return text.one_line(value, field="subject", max_length=SUBJECT_MAX)


def _preheader(value: str) -> str:
    return text.one_line(value, field="preheader", max_length=PREHEADER_MAX)


def _section_title(value: str) -> str:
    if not value.strip():
        raise InvalidInput("a section needs a title")
    return text.one_line(value, field="section title", max_length=TITLE_MAX)


def load_outline(session: Session, issue_id: int) -> IssueOutline:
    issue = get_issue(session, issue_id)
    newsletter = session.get(Newsletter, issue.newsletter_id)
    assert newsletter is not None
    sections = session.exec(
        select(IssueSection)
        .where(IssueSection.issue_id == issue_id)
        .order_by(col(IssueSection.position))
    ).all()
    rows = session.exec(
        select(IssueItem, Article)
        .join(Article, col(Article.id) == IssueItem.article_id)
        .where(col(IssueItem.section_id).in_([s.id for s in sections]))
        .order_by(col(IssueItem.position))
    ).all()
    by_section: dict[int, list[OutlineItem]] = {s.id: [] for s in sections if s.id is not None}
    for item, article in rows:
        by_section[item.section_id].append(OutlineItem(item, article))
    test = session.get(SubjectTest, issue_id)
    return IssueOutline(
        newsletter=newsletter,
        issue=issue,
        sections=[OutlineSection(s, by_section[s.id]) for s in sections if s.id is not None],
        test_subjects=tuple(str(v["subject"]) for v in test.variants) if test else (),
    )


# ---------------------------------------------------------------- sections and items


def _renumber(rows: list[IssueSection] | list[IssueItem]) -> None:
    for position, row in enumerate(rows):
        row.position = position


def add_section(
    session: Session, *, issue_id: int, title: str, position: int | None = None
) -> IssueSection:
    """A new section, at the end unless a 0-based position is given."""
    _editable_issue(session, issue_id)
    section = IssueSection(issue_id=issue_id, title=_section_title(title), position=0)
    rows = _issue_sections(session, issue_id)
    rows.insert(_clamp(position, len(rows)), section)
    _renumber(rows)
    session.add_all(rows)
    session.flush()
    return section


def _get_section(session: Session, section_id: int) -> IssueSection:
    section = session.get(IssueSection, section_id)
    if section is None:
        raise NotFound(f"no section with id {section_id}")
    _editable_issue(session, section.issue_id)
    return section


def _issue_sections(session: Session, issue_id: int) -> list[IssueSection]:
    return list(
        session.exec(
            select(IssueSection)
            .where(IssueSection.issue_id == issue_id)
            .order_by(col(IssueSection.position))
        ).all()
    )


def move_section(session: Session, *, section_id: int, position: int) -> IssueSection:
    """Move a section to a 0-based position among its issue's sections."""
    section = _get_section(session, section_id)
    rest = [s for s in _issue_sections(session, section.issue_id) if s.id != section.id]
    rest.insert(_clamp(position, len(rest)), section)
    _renumber(rest)
    session.add_all(rest)
    session.flush()
    return section


def rename_section(session: Session, *, section_id: int, title: str) -> IssueSection:
    section = _get_section(session, section_id)
    section.title = _section_title(title)
    session.add(section)
    session.flush()
    return section


def remove_section(session: Session, *, section_id: int, with_items: bool = True) -> int:
    """Delete a section with its items (the articles stay in the library); returns how many
    items went. With ``with_items=False`` a section that holds items is refused (InvalidInput)."""
    section = _get_section(session, section_id)
    items = _section_items(session, section_id)
    if items and not with_items:
        count = f"{len(items)} item" + ("s" if len(items) != 1 else "")
        raise InvalidInput(f"section {section_id} ({section.title!r}) holds {count}")
    for item in items:
        session.delete(item)
    session.delete(section)
    session.flush()
    rest = _issue_sections(session, section.issue_id)
    _renumber(rest)
    session.add_all(rest)
    session.flush()
    return len(items)


def find_section(session: Session, *, issue_id: int, title: str) -> IssueSection | None:
    """The issue's section of that title (surrounding spaces ignored), if it has one."""
    get_issue(session, issue_id)
    return session.exec(
        select(IssueSection).where(
            IssueSection.issue_id == issue_id, IssueSection.title == title.strip()
        )
    ).first()


def section_by_title(
    session: Session, *, issue_id: int, title: str, position: int | None = None
) -> IssueSection:
    """The section of that title, created (at ``position``, else at the end) if there is none."""
    found = find_section(session, issue_id=issue_id, title=title)
    return found or add_section(session, issue_id=issue_id, title=title, position=position)


def _section_items(session: Session, section_id: int) -> list[IssueItem]:
    return list(
        session.exec(
            select(IssueItem)
            .where(IssueItem.section_id == section_id)
            .order_by(col(IssueItem.position))
        ).all()
    )


def _clamp(position: int | None, size: int) -> int:
    if position is None:
        return size
    return max(0, min(position, size))


def add_item(
    session: Session,
    *,
    section_id: int,
    article_id: int,
    position: int | None = None,
    blurb: str | None = None,
) -> IssueItem:
    """Put an article in a section (at the end unless a 0-based position is given)."""
    section = session.get(IssueSection, section_id)
    if section is None:
        raise NotFound(f"no section with id {section_id}")
    _editable_issue(session, section.issue_id)
    if session.get(Article, article_id) is None:
        raise NotFound(f"no article with id {article_id}")
    if article_id in _issue_article_ids(session, section.issue_id):
        raise InvalidInput(f"article {article_id} is already in this issue")
    items = _section_items(session, section_id)
    item = IssueItem(section_id=section_id, article_id=article_id, position=0, blurb=blurb)
    items.insert(_clamp(position, len(items)), item)
    _renumber(items)
    session.add_all(items)
    session.flush()
    return item


def _issue_article_ids(session: Session, issue_id: int) -> set[int]:
    return set(
        session.exec(
            select(IssueItem.article_id)
            .join(IssueSection, col(IssueSection.id) == IssueItem.section_id)
            .where(IssueSection.issue_id == issue_id)
        ).all()
    )


def move_item(
    session: Session, *, item_id: int, position: int, section_id: int | None = None
) -> IssueItem:
    """Move an item to a 0-based position, in its own section or in another of the same issue."""
    item, section = _get_item(session, item_id)
    target_id = section_id if section_id is not None else section.id
    assert target_id is not None
    if target_id != section.id:
        target = session.get(IssueSection, target_id)
        if target is None or target.issue_id != section.issue_id:
            raise InvalidInput(f"section {target_id} is not in the same issue")
        source_items = [i for i in _section_items(session, section.id) if i.id != item.id]  # type: ignore[arg-type]
        _renumber(source_items)
        session.add_all(source_items)
        item.section_id = target_id
    items = [i for i in _section_items(session, target_id) if i.id != item.id]
    items.insert(_clamp(position, len(items)), item)
    _renumber(items)
    session.add_all(items)
    session.flush()
    return item


def remove_item(session: Session, *, item_id: int) -> None:
    item, section = _get_item(session, item_id)
    session.delete(item)
    session.flush()
    rest = _section_items(session, section.id)  # type: ignore[arg-type]
    _renumber(rest)
    session.add_all(rest)
    session.flush()


def set_blurb(session: Session, *, item_id: int, blurb: str | None) -> IssueItem:
    item, _ = _get_item(session, item_id)
    item.blurb = blurb or None
    session.add(item)
    session.flush()
    return item
