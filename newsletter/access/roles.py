"""Roles and what each may do: one table, read by the one permission check (``permissions``).

- ``writer``: articles and drafts (including test sends to a few addresses), comments
- ``editor``: a writer's work, plus reviewing (approving) and starting, scheduling and steering
  sends
- ``audience``: subscribers: view, add and change, import, export, erase; bounces
- ``admin``: everything, plus newsletters, editor accounts, API tokens, webhooks, the audit trail

Analytics (an issue's report, a newsletter's trends: counts, never a person) are for editors,
the audience desk and admins; a writer drafts without them.

Everyone signed in may read (dashboard, issues, previews, send progress).
"""

from __future__ import annotations

from enum import StrEnum

from newsletter.exceptions import InvalidInput


class Role(StrEnum):
    writer = "writer"
    editor = "editor"
    audience = "audience"
    admin = "admin"


class Action(StrEnum):
    read = "read"
    articles_write = "articles.write"
    issues_draft = "issues.draft"
    issues_comment = "issues.comment"
    issues_review = "issues.review"
    issues_send = "issues.send"
    subscribers_read = "subscribers.read"
    subscribers_write = "subscribers.write"
    subscribers_import = "subscribers.import"
    subscribers_export = "subscribers.export"
    subscribers_erase = "subscribers.erase"
    newsletters_manage = "newsletters.manage"
    users_manage = "users.manage"
    tokens_manage = "tokens.manage"
    webhooks_manage = "webhooks.manage"
    audit_read = "audit.read"
    analytics_read = "analytics.read"


_WRITER = frozenset(
    {Action.read, Action.articles_write, Action.issues_draft, Action.issues_comment}
)
_AUDIENCE = frozenset(
    {
        Action.read,
        Action.subscribers_read,
        Action.subscribers_write,
        Action.subscribers_import,
        Action.subscribers_export,
        Action.subscribers_erase,
    }
)

#: role -> the actions it may take
GRANTS: dict[Role, frozenset[Action]] = {
    Role.writer: _WRITER,
    Role.editor: _WRITER | {Action.issues_review, Action.issues_send, Action.analytics_read},
    Role.audience: _AUDIENCE | {Action.analytics_read},
    Role.admin: frozenset(Action),
}

#: actions about one newsletter's issues, where a per-newsletter role counts
PER_NEWSLETTER = frozenset(
    {
        Action.read,
        Action.issues_draft,
        Action.issues_comment,
        Action.issues_review,
        Action.issues_send,
        Action.analytics_read,
    }
)


def can(role: Role, action: Action) -> bool:
    return action in GRANTS[role]


def parse_role(value: str) -> Role:
    """A role from its name; InvalidInput names the choices."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"no role {value.strip()[:40]!r}: choose {', '.join(r.value for r in Role)}"
        ) from None
