"""The segment engagement rule (issue 15): opened / clicked by a human in the last N sent issues
of a newsletter, compiled to SQL over ``engagement_event``, on crafted events (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.api.admin.segment_form import rows_of, rules_from_rows
from newsletter.audience import segment_rules, segments
from newsletter.config import Settings
from newsletter.content import issues
from newsletter.exceptions import InvalidInput
from newsletter.models import EngagementEvent, Issue, Newsletter, Subscriber
from tests.conftest import make_newsletter, make_subscribers

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def sent_issues(session: Session, newsletter: Newsletter, count: int) -> list[Issue]:
    """``count`` issues whose sends started a week apart (oldest first), and a draft after."""
    made = []
    for week in range(count + 1):
        issue = issues.create_issue(session, newsletter=newsletter.slug, title=f"Week {week}")
        if week < count:
            issue.send_started_at = T0 + timedelta(weeks=week)
            issue.status = "sent"
        session.add(issue)
        made.append(issue)
    session.commit()
    return made[:count]


def event(
    session: Session, issue: Issue, who: Subscriber, kind: str, verdict: str = "human"
) -> None:
    assert issue.id is not None and who.id is not None
    session.add(
        EngagementEvent(issue_id=issue.id, subscriber_id=who.id, kind=kind, verdict=verdict)
    )


def matching(session: Session, rules: dict[str, object]) -> set[int]:
    group = segments.check_rules(rules)
    return set(session.execute(segment_rules.select_ids(group)).scalars())


def test_engaged_in_the_last_n_issues_counts_human_events_only(session: Session) -> None:
    weekly, other = make_newsletter(session), make_newsletter(session)
    old, mid, latest = sent_issues(session, weekly, 3)
    (elsewhere,) = sent_issues(session, other, 1)
    opener, clicker, scanned, stranger, quiet = make_subscribers(session, weekly, 5)
    event(session, latest, opener, "open")
    event(session, old, clicker, "click")
    event(session, mid, clicker, "open", verdict="machine")  # Apple's proxy: not a human
    event(session, latest, scanned, "click", verdict="machine")  # a link scanner
    event(session, elsewhere, stranger, "click")  # another newsletter's issue
    session.commit()
    nl = weekly.id

    def rule(action: str, last: int, has: bool = True) -> dict[str, object]:
        cond = {"kind": "engagement", "action": action, "newsletter": nl, "last": last, "has": has}
        return {"conditions": [cond]}

    assert matching(session, rule("opened", 1)) == {opener.id}
    assert matching(session, rule("opened", 3)) == {opener.id}  # the machine open is not one
    assert matching(session, rule("clicked", 2)) == set()  # the click was three issues ago
    assert matching(session, rule("clicked", 3)) == {clicker.id}
    people = {opener.id, clicker.id, scanned.id, stranger.id, quiet.id}
    not_clicked = matching(session, rule("clicked", 3, has=False)) & people
    assert not_clicked == people - {clicker.id}
    group = segments.check_rules(rule("opened", 3))
    assert segments.count_rules(session, group, newsletter_id=nl) == 1


def test_the_segment_editor_names_the_newsletter_and_refuses_an_unknown_one(
    session: Session,
) -> None:
    morning = make_newsletter(session, name="Minsk Morning")
    rules = rules_from_rows("all", ["engagement"], ["minsk morning"], ["not_clicked"], ["3"])
    assert rules["conditions"] == [
        {"kind": "engagement", "action": "clicked", "has": False, "newsletter": "minsk morning"}
        | {"last": 3}
    ]
    saved = segments.create(session, name="Lapsed", rules=rules)
    assert saved.rules["conditions"][0]["newsletter"] == morning.id  # stored as the id
    match, rows, nested = rows_of(saved.rules, {morning.id: morning.name})  # type: ignore[dict-item]
    assert (match, nested) == ("all", False)
    assert rows == [
        {"kind": "engagement", "key": "Minsk Morning", "op": "not_clicked", "value": "3"}
    ]
    for ref in (morning.slug, str(morning.id), morning.id):
        cond = {"kind": "engagement", "action": "opened", "newsletter": ref}
        checked = segments.check_rules({"conditions": [cond]}, session)
        assert checked.conditions[0].newsletter == morning.id  # type: ignore[union-attr]

    unknown = rules_from_rows("all", ["engagement"], ["Nowhere Daily"], ["opened"], ["1"])
    with pytest.raises(
        InvalidInput, match=r"no newsletter 'Nowhere Daily'; choose one of: .*minsk"
    ):
        segments.check_rules(unknown, session)
    with pytest.raises(InvalidInput, match="choose the newsletter"):
        rules_from_rows("all", ["engagement"], [""], ["opened"], ["1"])


def test_an_unknown_newsletter_in_an_engagement_rule_is_a_4xx_with_the_reason_over_the_api(
    session: Session, settings: Settings
) -> None:
    weekly = make_newsletter(session, name="Belarus Weekly")
    auth = {"Authorization": f"Bearer {api_tokens.create(session, 'seg')}"}
    session.commit()
    ghost = {"kind": "engagement", "action": "clicked", "newsletter": 999_999}
    named = {"kind": "engagement", "action": "clicked", "newsletter": "Belarus Weekly"}
    with TestClient(create_app(settings, dispatch=lambda _issue_id: None)) as client:
        refused = client.post(
            "/api/segments/count", json={"rules": {"conditions": [ghost]}}, headers=auth
        )
        assert refused.status_code in (400, 422)
        assert "no newsletter '999999'" in refused.text
        made = client.post(
            "/api/segments",
            json={"name": "Clickers", "rules": {"conditions": [named]}},
            headers=auth,
        )
        assert made.status_code == 201, made.text
        assert made.json()["rules"]["conditions"][0]["newsletter"] == weekly.id
