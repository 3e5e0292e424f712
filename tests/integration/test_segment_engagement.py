"""The segment engagement rule (issue 15): opened / clicked by a human in the last N sent issues
of a newsletter, compiled to SQL over ``engagement_event``, on crafted events (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from newsletter.api.admin.segment_form import rows_of, rules_from_rows
from newsletter.audience import segment_rules, segments
from newsletter.content import issues
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


def test_the_segment_editor_reads_and_writes_an_engagement_row() -> None:
    rules = rules_from_rows("all", ["engagement"], ["7"], ["not_clicked"], ["3"])
    assert rules["conditions"] == [
        {"kind": "engagement", "action": "clicked", "has": False, "newsletter": 7, "last": 3}
    ]
    segments.check_rules(rules)
    match, rows, nested = rows_of(rules)
    assert (match, nested) == ("all", False)
    assert rows == [{"kind": "engagement", "key": "7", "op": "not_clicked", "value": "3"}]
