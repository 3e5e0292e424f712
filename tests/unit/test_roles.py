"""What each role may do, written out from the issue's words, checked against the one table."""

from __future__ import annotations

import pytest

from newsletter.access.permissions import Actor, require
from newsletter.access.roles import Action, Role, can, parse_role
from newsletter.exceptions import Forbidden, InvalidInput

A = Action
EVERYONE = {A.read}
DRAFTING = {A.articles_write, A.issues_draft, A.issues_comment}
SENDING = {A.issues_review, A.issues_send}
AUDIENCE = {
    A.subscribers_read,
    A.subscribers_write,
    A.subscribers_import,
    A.subscribers_export,
    A.subscribers_erase,
}
ANALYTICS = {A.analytics_read}  # counts about issues: not a writer's
RUNNING = {A.newsletters_manage, A.users_manage, A.tokens_manage, A.webhooks_manage, A.audit_read}
EXPECTED = {
    Role.writer: EVERYONE | DRAFTING,
    Role.editor: EVERYONE | DRAFTING | SENDING | ANALYTICS,
    Role.audience: EVERYONE | AUDIENCE | ANALYTICS,
    Role.admin: EVERYONE | DRAFTING | SENDING | AUDIENCE | ANALYTICS | RUNNING,
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_each_role_may_do_exactly_its_share(role: Role, action: Action) -> None:
    assert can(role, action) is (action in EXPECTED[role])


def test_every_action_is_someones() -> None:
    assert set().union(*EXPECTED.values()) == set(Action)


def test_a_per_newsletter_role_counts_for_that_newsletters_issues_only() -> None:
    actor = Actor("editor", 1, "w@example.org", Role.writer, {7: Role.editor})
    require(actor, A.issues_send, newsletter_id=7)
    with pytest.raises(Forbidden, match="writer"):
        require(actor, A.issues_send, newsletter_id=8)
    with pytest.raises(Forbidden):
        require(actor, A.issues_send)
    # a per-newsletter role never reaches beyond issues: subscribers stay the account's business
    audience_there = Actor("editor", 2, "a@example.org", Role.writer, {7: Role.admin})
    with pytest.raises(Forbidden):
        require(audience_there, A.subscribers_export, newsletter_id=7)


def test_role_names_are_forgiving_about_case_and_strict_about_the_rest() -> None:
    assert parse_role(" Editor ") is Role.editor
    with pytest.raises(InvalidInput, match="writer, editor, audience, admin"):
        parse_role("owner")
