"""The one permission check: who is acting (an ``Actor``) and whether their role allows an action.

The editor UI, the admin API and the CLI all ask ``require``; the table of what each role may do
is ``roles.GRANTS``. An editor's role may differ per newsletter (``EditorNewsletterRole``): for
the actions on a newsletter's issues (``roles.PER_NEWSLETTER``) that role counts, elsewhere the
account's own. The CLI is the operator at the machine, who holds the database already: admin.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlmodel import Session, select

from newsletter.access import editors
from newsletter.access.roles import PER_NEWSLETTER, Action, Role, can, parse_role
from newsletter.exceptions import Forbidden, NotFound
from newsletter.models import (
    ApiToken,
    EditorNewsletterRole,
    EditorUser,
    Issue,
    IssueItem,
    IssueSection,
)
from newsletter.newsletters import get_newsletter


@dataclass(frozen=True)
class Actor:
    """Who acts: an editor in the UI, an API token, or the operator's CLI."""

    kind: str  # editor | token | cli
    id: int | None
    label: str
    role: Role
    per_newsletter: Mapping[int, Role] = field(default_factory=dict)
    ip: str | None = None

    def role_for(self, action: Action, newsletter_id: int | None) -> Role:
        if newsletter_id is not None and action in PER_NEWSLETTER:
            return self.per_newsletter.get(newsletter_id, self.role)
        return self.role

    def can(self, action: Action, newsletter_id: int | None = None) -> bool:
        return can(self.role_for(action, newsletter_id), action)


def require(actor: Actor, action: Action, *, newsletter_id: int | None = None) -> None:
    """Raise Forbidden unless ``actor`` may take ``action`` (on ``newsletter_id``'s issues)."""
    if not actor.can(action, newsletter_id):
        role = actor.role_for(action, newsletter_id)
        raise Forbidden(f"a {role} may not do this ({action}); ask an admin")


def editor_actor(session: Session, user_id: int, *, ip: str | None = None) -> Actor:
    user = session.get(EditorUser, user_id)
    if user is None or user.id is None:
        raise NotFound(f"no editor {user_id}")
    return signed_in_actor(session, user.id, user.email, user.role, ip=ip)


def signed_in_actor(
    session: Session, user_id: int, email: str, role: str, *, ip: str | None = None
) -> Actor:
    """The Actor of an editor whose account the session lookup has read already: only their
    per-newsletter roles are read here."""
    rows = session.exec(
        select(EditorNewsletterRole).where(EditorNewsletterRole.user_id == user_id)
    ).all()
    overrides = {row.newsletter_id: Role(row.role) for row in rows}
    return Actor("editor", user_id, email, Role(role), overrides, ip)


def token_actor(token: ApiToken, *, ip: str | None = None) -> Actor:
    return Actor("token", token.id, f"token {token.name}", Role(token.role), {}, ip)


def cli_actor() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's numeric user)
        who = "?"
    return Actor("cli", None, f"cli {who}", Role.admin)


def issue_of(
    session: Session,
    *,
    issue_id: int | None = None,
    section_id: int | None = None,
    item_id: int | None = None,
) -> tuple[int | None, int | None]:
    """(issue, newsletter) an issue, a section or an item belongs to (Nones when it does not
    exist: the route answers 404 itself)."""
    if item_id is not None:
        item = session.get(IssueItem, item_id)
        section_id = item.section_id if item is not None else None
    if section_id is not None:
        section = session.get(IssueSection, section_id)
        issue_id = section.issue_id if section is not None else None
    if issue_id is not None:
        issue = session.get(Issue, issue_id)
        if issue is not None:
            return issue_id, issue.newsletter_id
    return None, None


def set_role(
    session: Session, *, email: str, role: str, newsletter: str | None = None
) -> EditorUser:
    """Give an editor a role, for every newsletter or (``newsletter``) for one of them."""
    chosen = parse_role(role)
    user = editors.get_user(session, email)
    assert user.id is not None  # a stored row
    if newsletter is None:
        user.role = chosen.value
        session.add(user)
    else:
        newsletter_id = get_newsletter(session, newsletter).id
        assert newsletter_id is not None
        row = session.exec(
            select(EditorNewsletterRole).where(
                EditorNewsletterRole.user_id == user.id,
                EditorNewsletterRole.newsletter_id == newsletter_id,
            )
        ).first() or EditorNewsletterRole(user_id=user.id, newsletter_id=newsletter_id, role="")
        row.role = chosen.value
        session.add(row)
    session.flush()
    return user
