"""The public archive: the issues a newsletter has sent, as they were sent, minus the personal bits.

The archive shows ``RenderedIssue.html``, the frozen email every recipient got, with its
per-recipient placeholders filled with values that name nobody: no name, no address, the generic
greeting; the unsubscribe and preference links (signed tokens, capabilities of one subscriber)
become the public sign-up page, and "view in browser" is the archive page itself. Only issues
whose status is ``sent`` are listed or shown: drafts, scheduled issues and sends in progress stay
private (a 404, the same as an unknown number).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from sqlmodel import Session, col, select

from newsletter.analytics import tokens
from newsletter.config import Settings
from newsletter.content.rendering import RECIPIENT_FIELDS, Personaliser
from newsletter.exceptions import NotFound
from newsletter.models import Issue, IssueStatus, Newsletter, RenderedIssue

ATOM_NS = "http://www.w3.org/2005/Atom"
#: entries in a feed
FEED_LIMIT = 50


@dataclass(frozen=True)
class ArchivedIssue:
    newsletter: Newsletter
    issue: Issue
    subject: str
    preheader: str
    sent_at: datetime
    url: str


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def base_url(settings: Settings) -> str:
    return settings.base_url.rstrip("/")


def issue_url(settings: Settings, newsletter: Newsletter, issue: Issue) -> str:
    """The same URL as ``sender.archive_url``: the emails' "view in browser" link."""
    return f"{base_url(settings)}/archive/{newsletter.slug}/{issue.number}"


def newsletter_url(settings: Settings, newsletter: Newsletter) -> str:
    return f"{base_url(settings)}/archive/{newsletter.slug}"


def get_newsletter(session: Session, slug: str) -> Newsletter:
    found = session.exec(select(Newsletter).where(Newsletter.slug == slug)).first()
    if found is None:
        raise NotFound(f"no newsletter {slug!r}")
    return found


def newsletters(session: Session) -> list[Newsletter]:
    return list(session.exec(select(Newsletter).order_by(col(Newsletter.name))).all())


def sent_issues(
    session: Session,
    settings: Settings,
    *,
    newsletter: Newsletter | None = None,
    limit: int | None = None,
) -> list[ArchivedIssue]:
    """Sent issues, newest first (of one newsletter, or of all)."""
    query = (
        select(Issue, RenderedIssue, Newsletter)
        .join(RenderedIssue, col(RenderedIssue.issue_id) == col(Issue.id))
        .join(Newsletter, col(Newsletter.id) == col(Issue.newsletter_id))
        .where(Issue.status == IssueStatus.sent, col(Issue.sent_at).is_not(None))
        .order_by(col(Issue.sent_at).desc(), col(Issue.id).desc())
    )
    if newsletter is not None:
        query = query.where(Issue.newsletter_id == newsletter.id)
    if limit is not None:
        query = query.limit(limit)
    return [
        ArchivedIssue(
            newsletter=nl,
            issue=issue,
            subject=frozen.subject,
            preheader=frozen.preheader,
            sent_at=_aware(issue.sent_at),  # type: ignore[arg-type]
            url=issue_url(settings, nl, issue),
        )
        for issue, frozen, nl in session.exec(query).all()
    ]


def archive_values(settings: Settings, newsletter: Newsletter, issue: Issue) -> dict[str, str]:
    """What the archive puts where each recipient's own values went."""
    public = f"{base_url(settings)}/subscribe?newsletter={newsletter.slug}"
    values = dict.fromkeys(RECIPIENT_FIELDS, "")  # anything not named below: empty
    values.update(
        greeting="Dear reader,",
        unsubscribe_url=public,
        preferences_url=public,
        view_url=issue_url(settings, newsletter, issue),
        # the tracked links redirect for nobody: the archive's clicks are not counted
        track_token=tokens.make_token(settings.secret_key, issue.id or 0, tokens.NOBODY),
    )
    return values


def get_archived(
    session: Session, settings: Settings, slug: str, number: int
) -> tuple[ArchivedIssue, RenderedIssue]:
    """One sent issue; NotFound for an unknown newsletter or number and for unsent issues."""
    newsletter = get_newsletter(session, slug)
    issue = session.exec(
        select(Issue).where(Issue.newsletter_id == newsletter.id, Issue.number == number)
    ).first()
    frozen = session.get(RenderedIssue, issue.id) if issue is not None else None
    if issue is None or frozen is None or issue.status != IssueStatus.sent or not issue.sent_at:
        raise NotFound(f"no issue {number} in the archive of {slug!r}")
    entry = ArchivedIssue(
        newsletter=newsletter,
        issue=issue,
        subject=frozen.subject,
        preheader=frozen.preheader,
        sent_at=_aware(issue.sent_at),
        url=issue_url(settings, newsletter, issue),
    )
    return entry, frozen


def archived_html(settings: Settings, entry: ArchivedIssue, frozen: RenderedIssue) -> str:
    """The email's HTML document as sent, with archive-safe values in its placeholders."""
    values = archive_values(settings, entry.newsletter, entry.issue)
    return Personaliser(frozen.html, html_escape=True)(values)


# ---------------------------------------------------------------- Atom (RFC 4287)


def _atom_time(value: datetime) -> str:
    return _aware(value).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def atom_feed(
    settings: Settings,
    entries: list[ArchivedIssue],
    *,
    feed_id: str,
    title: str,
    self_url: str,
    alternate_url: str,
    author: str,
    subtitle: str = "",
    fallback_updated: datetime | None = None,
) -> bytes:
    """An Atom feed of archived issues; each entry links to its archive page."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _sub(feed, "id", feed_id)
    _sub(feed, "title", title)
    if subtitle:
        _sub(feed, "subtitle", subtitle)
    updated = entries[0].sent_at if entries else (fallback_updated or datetime.now(UTC))
    _sub(feed, "updated", _atom_time(updated))
    _sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    _sub(feed, "link", rel="alternate", type="text/html", href=alternate_url)
    _sub(_sub(feed, "author"), "name", author)
    _sub(feed, "generator", "newsletter")
    for item in entries:
        entry = _sub(feed, "entry")
        _sub(entry, "id", item.url)
        _sub(entry, "title", item.subject)
        _sub(entry, "updated", _atom_time(item.sent_at))
        _sub(entry, "published", _atom_time(item.sent_at))
        _sub(entry, "link", rel="alternate", type="text/html", href=item.url)
        _sub(_sub(entry, "author"), "name", item.newsletter.from_name or item.newsletter.name)
        _sub(entry, "summary", item.preheader or item.issue.title)
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def newsletter_feed(session: Session, settings: Settings, newsletter: Newsletter) -> bytes:
    home = newsletter_url(settings, newsletter)
    return atom_feed(
        settings,
        sent_issues(session, settings, newsletter=newsletter, limit=FEED_LIMIT),
        feed_id=home,
        title=newsletter.name,
        subtitle=newsletter.description,
        self_url=f"{home}/feed.atom",
        alternate_url=home,
        author=newsletter.from_name or newsletter.name,
        fallback_updated=_aware(newsletter.created_at),
    )


def site_feed(session: Session, settings: Settings) -> bytes:
    home = f"{base_url(settings)}/archive"
    return atom_feed(
        settings,
        sent_issues(session, settings, limit=FEED_LIMIT),
        feed_id=home,
        title="Newsletter archive",
        self_url=f"{home}/feed.atom",
        alternate_url=home,
        author="newsletter",
    )
