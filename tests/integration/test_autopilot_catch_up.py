"""Runs the beat missed while it was down (the machine off over the weekend): the latest one is
drafted late, once, if its time passed at most the catch-up time ago; the older ones are
recorded as missed with the reason, on the page and in the CLI. A frozen clock across the gap,
a feed served by a real HTTP server, both databases."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from newsletter import cli
from newsletter.autopilot import rules, schedule
from newsletter.config import Settings
from newsletter.models import AutopilotRun, Issue, Newsletter
from newsletter.statuses import IssueStatus
from newsletter.transports.sink import SMTPSink
from tests.conftest import make_newsletter
from tests.integration.admin_support import Editor
from tests.integration.autopilot_support import FeedState, Story, rss
from tests.integration.test_autopilot import feed, next_run, sink, the_beat, weekly
from tests.integration.test_autopilot_fetch_interval import api

__all__ = ["api", "feed", "sink"]  # the autopilot tests' fixtures, used by name

WEEK, HOUR = timedelta(days=7), timedelta(hours=1)


def news(run: datetime, tag: str) -> list[Story]:
    """Two stories published in the days before ``run`` (new URLs each time)."""
    return [
        Story(f"{tag}-talks", f"Talks resume ({tag})", run - 2 * 24 * HOUR, "politics"),
        Story(f"{tag}-belavia", f"Belavia adds a route ({tag})", run - 30 * HOUR, "economy"),
    ]


def set_up(session: Session, url: str, first: datetime, **pilot: object) -> Newsletter:
    """The autopilot of ``weekly``, set up the day before ``first`` (no earlier run is missed)."""
    nl = weekly(session, url, **pilot)
    row = rules.get_autopilot(session, nl.id)  # type: ignore[arg-type]
    row.updated_at = first - 24 * HOUR
    session.add(row)
    session.commit()
    return nl


def sent(session: Session, issue_id: int | None, at: datetime) -> None:
    issue = session.get(Issue, issue_id)
    assert issue is not None
    issue.status, issue.send_started_at, issue.sent_at = IssueStatus.sent, at, at
    session.add(issue)
    session.commit()


def runs_of(session: Session, nl: Newsletter) -> list[tuple[datetime, str, dict[str, object]]]:
    session.expire_all()
    found = session.exec(
        select(AutopilotRun)
        .where(AutopilotRun.newsletter_id == nl.id)
        .order_by(col(AutopilotRun.run_at))
    ).all()
    return [(r.run_at, r.outcome, r.detail) for r in found]


def test_the_latest_missed_run_is_drafted_late_once_and_the_older_one_recorded(
    session: Session,
    settings: Settings,
    feed: tuple[str, FeedState],
    sink: SMTPSink,
    editor: Editor,
) -> None:
    url, state = feed
    first = next_run()
    nl = set_up(session, url, first, auto_schedule=True)
    state.serve(rss(news(first, "w1")))
    on_time = the_beat(settings, sink, first - 11 * HOUR).drafted  # a normal week
    assert [d.run_at for d in on_time] == [first]
    sent(session, on_time[0].issue_id, first)

    # the beat is down for two weeks; it comes back on the third Monday at 11:00 Warsaw time
    missed, latest = first + WEEK, first + 2 * WEEK
    state.serve(rss(news(first, "w1") + news(missed, "w2") + news(latest, "w3")))
    back = the_beat(settings, sink, latest + 3 * HOUR)

    assert [(d.run_at, d.outcome) for d in back.drafted] == [(latest, "drafted")]
    late = session.get(Issue, back.drafted[0].issue_id)
    # late, it waits for an editor (it would be scheduled on time: auto_schedule is on)
    assert late is not None and late.status == IssueStatus.draft and late.scheduled_at is None
    assert sorted(a for _s, group in outline(session, late.id) for a in group) == sorted(
        s.title for s in news(missed, "w2") + news(latest, "w3")
    )  # the new stories of both weeks, in one issue
    reason = f"a later run ({latest:%Y-%m-%d %H:%M} UTC) was missed too: only the latest is drafted"
    assert back.missed == [
        f"newsletter {nl.id}, run {missed:%Y-%m-%d %H:%M} UTC: missed ({reason})"
    ]
    assert runs_of(session, nl) == [
        (first, "drafted", {}),
        (missed, "missed", {"missed": reason}),
        (
            latest,
            "drafted",
            {
                "late": "3 h after its run (the beat was not running at its draft time); "
                "not scheduled by itself"
            },
        ),
    ]
    note = sink.messages[-1].parse().get_payload()
    assert "It was drafted late: 3 h after its run" in note  # type: ignore[operator]

    again = the_beat(settings, sink, latest + 4 * HOUR)  # once: the next beat finds it done
    assert (again.drafted, again.missed) == ([], [])
    assert len(runs_of(session, nl)) == 3

    shown = CliRunner().invoke(cli.app, ["autopilot", "show", nl.slug], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert f"run {missed:%Y-%m-%d %H:%M} UTC: missed ({reason})" in shown.stdout
    assert "3 h after its run" in shown.stdout
    page = editor.client.get(f"/admin/newsletters/{nl.id}/autopilot").text
    assert "missed: a later run" in page and "caught up: 3 h after its run" in page


def test_a_run_missed_by_more_than_the_catch_up_time_is_recorded_not_drafted(
    session: Session, settings: Settings, feed: tuple[str, FeedState], sink: SMTPSink
) -> None:
    url, state = feed
    first = next_run()
    nl = set_up(session, url, first)
    state.serve(rss(news(first, "w1")))
    back = the_beat(settings, sink, first + 30 * HOUR)  # back on Tuesday afternoon: too late

    assert back.drafted == []
    reason = (
        "the beat was not running at its draft time, and came back 30 h after the run, later "
        "than the catch-up time (24 h)"
    )
    assert runs_of(session, nl) == [(first, "missed", {"missed": reason})]
    assert session.exec(select(Issue).where(Issue.newsletter_id == nl.id)).all() == []
    # the next week goes as ever, from the stories since (none sent: the look-back's week)
    state.serve(rss(news(first, "w1") + news(first + WEEK, "w2")))
    following = the_beat(settings, sink, first + WEEK - 11 * HOUR).drafted
    assert [(d.run_at, d.outcome) for d in following] == [(first + WEEK, "drafted")]


def test_the_catch_up_time_decides_and_zero_never_catches_up(
    session: Session, settings: Settings, feed: tuple[str, FeedState], sink: SMTPSink
) -> None:
    url, state = feed
    first = next_run()
    longer = set_up(session, url, first, catch_up_hours=48)
    state.serve(rss(news(first, "w1")))
    assert [d.run_at for d in the_beat(settings, sink, first + 30 * HOUR).drafted] == [first]

    never = set_up(session, url, first + WEEK, catch_up_hours=0)
    back = the_beat(settings, sink, first + WEEK + HOUR)
    assert [d.newsletter_id for d in back.drafted] == [longer.id]  # its own next run, late
    assert runs_of(session, never)[0][:2] == (first + WEEK, "missed")


def test_a_missed_run_gives_way_to_the_next_run_already_in_its_lead_time(
    session: Session, settings: Settings, feed: tuple[str, FeedState], sink: SMTPSink
) -> None:
    url, state = feed
    daily = schedule.parse("daily 08:00", "Europe/Warsaw")
    day = next_run()
    nl = set_up(session, url, day, rule="daily 08:00", lead_hours=12)
    state.serve(rss(news(day, "d1")))
    back = the_beat(settings, sink, day + 13 * HOUR)  # 21:00: tomorrow's draft is due too

    assert [(d.run_at, d.outcome) for d in back.drafted] == [(daily.next_run(day), "drafted")]
    reason = "the next run was already due to be drafted: only the latest run is drafted"
    assert runs_of(session, nl)[0] == (day, "missed", {"missed": reason})


def outline(session: Session, issue_id: int | None) -> list[tuple[str, list[str]]]:
    from tests.integration.test_autopilot import outline_of

    assert issue_id is not None
    return outline_of(session, issue_id)


def test_the_api_sets_the_catch_up_time_and_refuses_one_out_of_bounds(
    api: tuple[TestClient, dict[str, str]], session: Session
) -> None:
    client, auth = api
    nl = make_newsletter(session)
    base = f"/api/newsletters/{nl.id}/autopilot"
    assert client.get(base, headers=auth).json()["catch_up_hours"] == 24
    bad = client.patch(base, json={"catch_up_hours": 145}, headers=auth)
    assert bad.status_code == 422 and "less than or equal to 144" in bad.text
    changed = client.patch(base, json={"catch_up_hours": 0}, headers=auth)
    assert changed.status_code == 200 and changed.json()["catch_up_hours"] == 0
