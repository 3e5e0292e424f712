"""The sign-up box on article pages: the page a reader signed up on, and what the box shows.

A newsroom pastes the box (a plain form, or an iframe of ``GET /embed/<slug>``) into its article
template; the article's address comes with the sign-up (the form's hidden ``source`` field, the
iframe's ``?source=``, or else the Referer) and becomes the consent record's source
(``Subscription.consent_source`` and the sign-up event's ``source``). It is only kept when it is
an absolute http(s) URL of one line, without a user name or password, at most ``SOURCE_MAX``
characters; anything else is dropped (the sign-up goes on with the plain ``form`` source: a
newsroom's template mistake must not cost a reader their sign-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from newsletter import text
from newsletter.models import Article, Issue, IssueItem, IssueSection, IssueStatus

__all__ = ["SOURCE_MAX", "Latest", "latest_issue", "page_source"]

#: the longest page address kept: it rides in the confirmation link's signed token, which it
#: should not make unwieldy (the sign-up event's ``source`` column holds 2000)
SOURCE_MAX = 1000


def page_source(value: str | None) -> str | None:
    """``value`` when it is an address to record as the sign-up's page, else None."""
    if not value:
        return None
    url = value.strip()
    if not url or len(url) > SOURCE_MAX or text.has_controls(url) or " " in url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None  # a credential typed into an address is not for our records
    return url


@dataclass(frozen=True)
class Latest:
    """The newsletter's latest sent issue and its lead headline (its first article's title)."""

    number: int
    headline: str


def latest_issue(session: Session, newsletter_id: int) -> Latest | None:
    """The latest sent issue of the newsletter, or None before the first one."""
    issue = session.exec(
        select(Issue)
        .where(
            Issue.newsletter_id == newsletter_id,
            Issue.status == IssueStatus.sent,
            col(Issue.sent_at).is_not(None),
        )
        .order_by(col(Issue.sent_at).desc(), col(Issue.id).desc())
        .limit(1)
    ).first()
    if issue is None or issue.id is None:
        return None
    lead = session.exec(
        select(Article.title)
        .join(IssueItem, col(IssueItem.article_id) == col(Article.id))
        .join(IssueSection, col(IssueSection.id) == col(IssueItem.section_id))
        .where(IssueSection.issue_id == issue.id)
        .order_by(col(IssueSection.position), col(IssueItem.position), col(IssueItem.id))
        .limit(1)
    ).first()
    return Latest(issue.number, lead or issue.title)
