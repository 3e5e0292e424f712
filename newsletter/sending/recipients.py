"""What is personal in one reader's copy: their values and their signed links."""

from __future__ import annotations

from newsletter.analytics import tokens
from newsletter.audience.links import Purpose, make_token
from newsletter.config import Settings
from newsletter.mail.message import Recipient, unsubscribe_mailto
from newsletter.models import Issue, Newsletter
from newsletter.sending.prepare import Prepared
from newsletter.statuses import IssueKind


def personal_links(
    settings: Settings, *, subscriber_id: int, newsletter_id: int, issue_id: int | None = None
) -> dict[str, str]:
    """The reader's unsubscribe (naming the issue, for its report), preferences and mailto."""
    base = settings.base_url.rstrip("/")
    unsubscribe = make_token(
        settings.secret_key, Purpose.unsubscribe, subscriber_id, newsletter_id, issue_id
    )
    preferences = make_token(settings.secret_key, Purpose.preferences, subscriber_id, None)
    return {
        "unsubscribe_url": f"{base}/unsubscribe/{unsubscribe}",
        "preferences_url": f"{base}/preferences/{preferences}",
        "unsubscribe_mailto": unsubscribe_mailto(settings.unsubscribe_mailbox, unsubscribe),
    }


def archive_url(settings: Settings, newsletter: Newsletter, issue: Issue) -> str:
    """The issue in the archive; a standing welcome issue is never there: the newsletter's page."""
    if issue.kind == IssueKind.welcome:
        return f"{settings.base_url.rstrip('/')}/archive/{newsletter.slug}"
    return f"{settings.base_url.rstrip('/')}/archive/{newsletter.slug}/{issue.number}"


def recipient_values(
    settings: Settings,
    newsletter: Newsletter,
    issue: Issue,
    *,
    subscriber_id: int,
    email: str,
    name: str,
) -> tuple[dict[str, str], dict[str, str]]:
    """(template values, personal links) for one reader; the preview uses it too."""
    links = personal_links(
        settings,
        subscriber_id=subscriber_id,
        newsletter_id=newsletter.id,  # type: ignore[arg-type]
        issue_id=issue.id,
    )
    first = name.split()[0] if name.strip() else ""
    values = {
        "name": name,
        "greeting": f"Dear {first}," if first else "Dear reader,",
        "email": email,
        "unsubscribe_url": links["unsubscribe_url"],
        "preferences_url": links["preferences_url"],
        "view_url": archive_url(settings, newsletter, issue),
        "track_token": tokens.make_token(settings.secret_key, issue.id or 0, subscriber_id),
    }
    return values, links


def recipient(
    settings: Settings,
    prep: Prepared,
    *,
    subscriber_id: int,
    email: str,
    name: str,
    variant: int | None = None,
) -> Recipient:
    values, links = recipient_values(
        settings, prep.newsletter, prep.issue, subscriber_id=subscriber_id, email=email, name=name
    )
    return Recipient(
        subscriber_id=subscriber_id,
        email=email,
        name=name,
        values=values,
        unsubscribe_url=links["unsubscribe_url"],
        unsubscribe_mailto=links["unsubscribe_mailto"],
        variant=variant,
    )
