"""List health: event counts per week and per day (SQL buckets on both databases), the
confirmation backlog, and the dashboard's SVG chart with its table of figures."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session

from newsletter.api.admin import dashboard
from newsletter.audience import list_health
from newsletter.models import Subscriber, SubscriberEvent, Subscription, SubscriptionStatus
from tests.conftest import make_newsletter
from tests.integration.admin_support import Editor  # fixtures: tests/integration/conftest.py

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # a Thursday; its week starts Monday 23 Nov


def _reader(session: Session, email: str) -> int:
    person = Subscriber(email=email)
    session.add(person)
    session.flush()
    assert person.id is not None
    return person.id


def _event(session: Session, sid: int, nid: int | None, kind: str, at: datetime) -> None:
    session.add(SubscriberEvent(subscriber_id=sid, newsletter_id=nid, kind=kind, at=at))


def test_bucket_starts_are_mondays_or_days_ending_now() -> None:
    weeks = list_health.bucket_starts("week", 3, NOW)
    assert weeks == [date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23)]
    days = list_health.bucket_starts("day", 2, NOW)
    assert days == [date(2026, 11, 25), date(2026, 11, 26)]


def test_counts_per_week_and_day_match_the_events(session: Session) -> None:
    weekly, daily = make_newsletter(session), make_newsletter(session)
    assert weekly.id is not None and daily.id is not None
    a, b = _reader(session, "a@health.example.org"), _reader(session, "b@health.example.org")
    monday = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # the first instant of this week
    sunday = datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)  # the last of the week before
    for at in (monday, monday + timedelta(hours=5), NOW):
        _event(session, a, weekly.id, "signup", at)
    _event(session, a, weekly.id, "confirm", sunday)
    _event(session, b, weekly.id, "unsubscribe", datetime(2026, 11, 10, 12, tzinfo=UTC))
    _event(session, b, daily.id, "signup", monday)
    _event(session, a, weekly.id, "signup", datetime(2026, 8, 1, tzinfo=UTC))  # out of range
    _event(session, a, weekly.id, "preferences", NOW)  # not charted
    # an address-wide hard bounce counts for each newsletter the address is on
    session.add(Subscription(subscriber_id=b, newsletter_id=weekly.id, status="bounced"))
    session.add(Subscription(subscriber_id=b, newsletter_id=daily.id, status="bounced"))
    _event(session, b, None, "bounce", sunday - timedelta(days=1))
    session.commit()

    health = list_health.list_health(session, [weekly.id, daily.id], periods=3, now=NOW)
    w, d = health[weekly.id], health[daily.id]
    assert w.starts == [date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23)]
    assert w.counts == {
        "signup": [0, 0, 3],
        "confirm": [0, 1, 0],
        "unsubscribe": [1, 0, 0],
        "bounce": [0, 1, 0],
    }
    assert d.counts == {"signup": [0, 0, 1], "confirm": [0, 0, 0], "unsubscribe": [0, 0, 0],
                        "bounce": [0, 1, 0]}  # fmt: skip

    by_day = list_health.list_health(session, [weekly.id], unit="day", periods=5, now=NOW)
    days = by_day[weekly.id]
    assert days.starts[0] == date(2026, 11, 22)
    assert days.counts["signup"] == [0, 2, 0, 0, 1]
    assert days.counts["confirm"] == [1, 0, 0, 0, 0]
    assert days.counts["bounce"] == [0, 0, 0, 0, 0]  # the 21st is before these five days


def test_the_backlog_counts_pending_and_those_past_the_link(session: Session) -> None:
    weekly = make_newsletter(session)
    assert weekly.id is not None
    ages = {"fresh": 1, "old": 9, "older": 30}
    for name, days_ago in ages.items():
        sid = _reader(session, f"{name}@backlog.example.org")
        session.add(
            Subscription(
                subscriber_id=sid,
                newsletter_id=weekly.id,
                status=SubscriptionStatus.pending,
                created_at=NOW - timedelta(days=40),
                confirmation_sent_at=NOW - timedelta(days=days_ago),
            )
        )
    sid = _reader(session, "active@backlog.example.org")
    session.add(Subscription(subscriber_id=sid, newsletter_id=weekly.id, status="active"))
    session.commit()
    health = list_health.list_health(
        session, [weekly.id], now=NOW, confirmation_max_age=timedelta(days=7)
    )[weekly.id]
    assert (health.pending, health.expired, health.active) == (3, 2, 1)


def test_bad_units_and_periods_are_refused(session: Session) -> None:
    from newsletter.exceptions import InvalidInput

    with pytest.raises(InvalidInput):
        list_health.list_health(session, [1], unit="month")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        list_health.list_health(session, [1], periods=0)


def _cells(editor: Editor, week: str) -> dict[str, str]:
    html = editor.client.get("/admin/").text
    row = re.search(rf'<tr data-start="{week}">(.*?)</tr>', html)
    assert row, html
    return dict(re.findall(r'data-kind="(\w+)">([\d,]+)</td>', row[1]))


def test_the_dashboard_draws_the_chart_with_its_figures(
    editor: Editor, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    weekly = make_newsletter(session)
    assert weekly.id is not None
    now = datetime.now(UTC)
    sid = _reader(session, "chart@health.example.org")
    for _ in range(4):
        _event(session, sid, weekly.id, "signup", now)
    _event(session, sid, weekly.id, "unsubscribe", now)
    session.add(Subscription(subscriber_id=sid, newsletter_id=weekly.id, status="pending"))
    session.commit()

    page = editor.client.get("/admin/")
    assert page.status_code == 200, page.text
    html = page.text
    chart = re.search(r'<svg class="chart".*?</svg>', html, re.S)
    assert chart, html
    assert f'<title id="chart-t-{weekly.id}">' in chart[0] and "<desc" in chart[0]
    assert chart[0].count("<polyline") == 4
    # the current week's row of the fallback table holds the figures
    this_week = list_health.bucket_starts("week", 1, now)[0].isoformat()
    row = re.search(rf'<tr data-start="{this_week}">(.*?)</tr>', html)
    assert row, html
    cells = dict(re.findall(r'data-kind="(\w+)">([\d,]+)</td>', row[1]))
    assert cells == {"signup": "4", "confirm": "0", "unsubscribe": "1", "bounce": "0"}
    assert "<strong>1</strong> waiting for confirmation" in html
    # counted once a minute: a new event shows after that (here: at once, with no minute)
    _event(session, sid, weekly.id, "unsubscribe", now)
    session.commit()
    assert _cells(editor, this_week)["unsubscribe"] == "1"
    monkeypatch.setattr(dashboard, "HEALTH_SECONDS", 0.0)
    assert _cells(editor, this_week)["unsubscribe"] == "2"
    by_day = editor.client.get("/admin/", params={"by": "day"})
    assert by_day.status_code == 200 and "Figures per day" in by_day.text
    assert editor.client.get("/admin/", params={"by": "year"}).status_code == 422
