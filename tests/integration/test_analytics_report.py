"""An issue's report and a newsletter's trends, counted from crafted events: people and
machines apart, tallies added to live events, bounces, complaints and unsubscribes attributed
to the issue they came from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from newsletter.analytics import heat, tables
from newsletter.analytics.issue_report import issue_report
from newsletter.analytics.trends import trends
from newsletter.api import create_app
from newsletter.audience import links as personal
from newsletter.cli import app as cli_app
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.models import BounceReceipt, Delivery, Segment, SubscriberEvent
from newsletter.sending.recipients import personal_links
from tests.integration.analytics_support import SentIssue, sent_issue


def _crowd(session: Session, sent: SentIssue) -> None:
    """Readers 0-3 open; 0-2 click the lead (0 twice), 3 the third story; a scanner clicks
    every link of reader 9's copy and Apple's proxy opens for readers 5-9."""
    for r in range(4):
        sent.open(session, r)
    sent.click(session, 0, sent.link(1), times=2)
    sent.click(session, 0, sent.link(1, "read_more"))
    sent.click(session, 1, sent.link(1))
    sent.click(session, 2, sent.link(1, "read_more"))
    sent.click(session, 3, sent.link(3))
    for link in [*sent.links.values(), sent.trap]:
        assert link is not None
        sent.click(session, 9, link, verdict="machine", rule="burst")
    for r in range(5, 10):
        sent.open(session, r, verdict="machine", rule="apple_mpp")


def test_the_report_counts_people_and_leaves_machines_apart(session: Session) -> None:
    sent = sent_issue(session, readers=10)
    _crowd(session, sent)
    report = issue_report(session, sent.id)
    assert (report.delivered, report.human_openers, report.human_opens) == (10, 4, 4)
    assert (report.human_clickers, report.human_clicks) == (4, 6)
    assert (report.machine_openers, report.machine_clickers, report.machine_clicks) == (5, 1, 7)
    assert report.machine_open_share == pytest.approx(5 / 9, abs=1e-4)
    lead, second, third = report.articles
    assert (lead.position, lead.section, lead.clicks, lead.clickers, lead.ctr) == (
        1,
        "Section 1",
        5,
        3,
        0.3,
    )
    assert (second.clicks, second.clickers, second.machine_clicks) == (0, 0, 2)
    assert (third.position, third.section, third.clickers, third.ctr) == (3, "Section 2", 1, 0.1)
    shares = {row.n: row.share for row in report.links}
    assert shares[1] == pytest.approx(3 / 6, abs=1e-4) and shares[7] == 0  # 7: the trap
    assert ("click", "burst", 7, 1) in report.machine_rules
    assert ("open", "apple_mpp", 5, 5) in report.machine_rules
    assert (report.mpp_opens, report.mpp_share) == (5, pytest.approx(5 / 9, abs=1e-4))


def test_tallies_of_folded_events_add_to_live_events(session: Session) -> None:
    sent = sent_issue(session, readers=10)
    sent.tally(session, "open", "human", events=9, uniques=6)
    sent.tally(session, "open", "machine", events=3, uniques=3)
    sent.tally(session, "click", "human", events=5, uniques=4)  # the issue-wide row
    sent.tally(session, "click", "human", events=3, uniques=3, link=sent.link(1))
    sent.tally(session, "click", "human", events=2, uniques=2, link=sent.link(1, "read_more"))
    sent.open(session, 7)
    sent.click(session, 7, sent.link(1))
    report = issue_report(session, sent.id)
    assert (report.human_openers, report.human_opens, report.machine_openers) == (7, 10, 3)
    assert (report.human_clickers, report.human_clicks) == (5, 6)
    lead = report.articles[0]
    # a folded article's readers: at least its most clicked link's (3), plus the live one
    assert (lead.clicks, lead.clickers) == (6, 4)
    assert [row.clicks for row in report.links[:2]] == [4, 2]


def test_bounces_complaints_and_unsubscribes_count_against_their_issue(session: Session) -> None:
    sent = sent_issue(session, readers=8, failed=1)
    later = sent_issue(session, newsletter=sent.fx.newsletter, readers=0)
    ids = [r.id for r in sent.readers]
    after = sent.started + timedelta(hours=1)
    session.add_all(
        [
            BounceReceipt(
                event_key="ses:1", source="ses", kind="hard", issue_id=sent.id, subscriber_id=ids[1]
            ),
            BounceReceipt(
                event_key="arf:2",
                source="arf",
                kind="complaint",
                issue_id=sent.id,
                subscriber_id=ids[2],
            ),
            SubscriberEvent(subscriber_id=ids[3], kind="bounce", at=after, detail={"type": "hard"}),
            SubscriberEvent(
                subscriber_id=ids[4],
                kind="complaint",
                at=after,
                newsletter_id=sent.fx.newsletter.id,
            ),
            SubscriberEvent(
                subscriber_id=ids[5],
                kind="unsubscribe",
                at=after,
                newsletter_id=sent.fx.newsletter.id,
                detail={"issue_id": sent.id},
            ),
            # not this issue's: an unsubscribe naming another issue, one naming none
            SubscriberEvent(
                subscriber_id=ids[6],
                kind="unsubscribe",
                at=after,
                newsletter_id=sent.fx.newsletter.id,
                detail={"issue_id": later.id},
            ),
            SubscriberEvent(
                subscriber_id=ids[7],
                kind="unsubscribe",
                at=after,
                newsletter_id=sent.fx.newsletter.id,
            ),
        ]
    )
    session.commit()
    report = issue_report(session, sent.id)
    assert (report.delivered, report.bounced, report.complained, report.unsubscribed) == (
        7,
        3,
        2,
        1,
    )


def test_a_bounce_after_a_later_issue_reached_the_reader_is_that_issues(session: Session) -> None:
    first = sent_issue(session, readers=1)
    second = sent_issue(session, newsletter=first.fx.newsletter, readers=0)
    reader = first.readers[0].id
    assert reader is not None
    week = first.started + timedelta(days=7)
    session.add(Delivery(issue_id=second.id, subscriber_id=reader, status="sent", sent_at=week))
    bounced = week + timedelta(days=1)
    session.add(SubscriberEvent(subscriber_id=reader, kind="bounce", at=bounced))
    session.commit()
    assert issue_report(session, first.id).bounced == 0
    assert issue_report(session, second.id).bounced == 1


def test_the_unsubscribe_link_of_an_issue_names_it_in_the_event(
    settings: Settings, session: Session
) -> None:
    sent = sent_issue(session, readers=2)
    reader = sent.readers[0].id
    assert reader is not None
    url = personal_links(
        settings,
        subscriber_id=reader,
        newsletter_id=sent.fx.newsletter.id,
        issue_id=sent.id,  # type: ignore[arg-type]
    )["unsubscribe_url"]
    with TestClient(create_app(settings)) as client:
        answer = client.post(
            url.removeprefix(settings.base_url), data={"List-Unsubscribe": "One-Click"}
        )
    assert answer.status_code == 200
    assert issue_report(session, sent.id).unsubscribed == 1


def test_unsubscribe_tokens_made_before_they_named_the_issue_still_verify() -> None:
    old = personal._serializer("k", personal.Purpose.unsubscribe).dumps([5, 7])
    assert personal.read_token("k", personal.Purpose.unsubscribe, old).issue_id is None
    new = personal.make_token("k", personal.Purpose.unsubscribe, 5, 7, 11)
    assert personal.read_token("k", personal.Purpose.unsubscribe, new) == personal.TokenData(
        5, 7, 11
    )


def test_the_heat_view_marks_each_tracked_link_with_its_share(session: Session) -> None:
    sent = sent_issue(session, readers=10)
    _crowd(session, sent)
    report = issue_report(session, sent.id)
    page = heat.heat_html(session, sent.id, report.links)
    assert page.count('<span data-link="') == 7  # 6 story links and the trap, not unsubscribe
    assert (
        '<span data-link="1" title="link 1: 3 human clicks (2 readers), 1 machine clicks"' in page
    )
    assert ">50.0%</span><a href=" in page
    assert "__NL_" not in page  # the reader's placeholders are filled, never shown raw


def test_trends_compare_positions_hours_and_segments(session: Session) -> None:
    first = sent_issue(session, readers=10, started=datetime(2026, 11, 2, 6, 0, tzinfo=UTC))
    newsletter = first.fx.newsletter
    newsletter.time_zone = "Europe/Minsk"  # UTC+3
    segment = Segment(newsletter_id=newsletter.id, name="Minsk readers", rules={})
    session.add_all([newsletter, segment])
    session.commit()
    second = sent_issue(
        session,
        newsletter=newsletter,
        readers=5,
        started=datetime(2026, 11, 9, 15, 0, tzinfo=UTC),
        segment_id=segment.id,
    )
    for r in range(4):
        first.click(session, r, first.link(1))
    first.click(session, 4, first.link(3))
    second.click(session, 0, second.link(1))
    second.click(session, 1, second.link(2), verdict="machine", rule="burst")
    second.open(session, 0)
    found = trends(session, newsletter.id)  # type: ignore[arg-type]
    assert [i["issue_id"] for i in found.issues] == [second.id, first.id]
    positions = {g.key: (g.issues, g.delivered, g.clickers) for g in found.positions}
    assert positions == {1: (2, 15, 5), 3: (1, 10, 1)}  # nobody (human) clicked a second story
    assert {g.label: (g.click_rate, g.open_rate) for g in found.hours} == {
        "09:00": (0.5, 0.0),
        "18:00": (0.2, 0.2),
    }
    assert {g.label: g.issues for g in found.segments} == {"Everyone": 1, "Minsk readers": 1}
    rows = tables.to_csv(tables.trend_table(found, "positions"), tables.TREND_HEADERS["positions"])
    assert rows.splitlines()[:2] == [
        "key,label,issues,delivered,human_openers,human_clickers,open_rate,click_rate",
        "1,#1,2,15,0,5,0.0,0.3333",
    ]
    with pytest.raises(InvalidInput):
        trends(session, newsletter.id, limit=0)  # type: ignore[arg-type]


def test_the_command_line_shows_the_report_and_writes_each_table_as_csv(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    sent = sent_issue(session, readers=10)
    _crowd(session, sent)
    session.commit()
    runner = CliRunner()

    shown = runner.invoke(cli_app, ["analytics", "report", str(sent.id)])
    assert shown.exit_code == 0, shown.output
    assert "opened 4 (40.0%)" in shown.output and "clicked 4 (40.0%)" in shown.output
    assert "Apple MPP 5 (55.6% of all opens)" in shown.output
    out = tmp_path / "articles.csv"
    wrote = runner.invoke(cli_app, ["analytics", "report", str(sent.id), "--out", str(out)])
    assert wrote.exit_code == 0, wrote.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("article_id,title,url,section,position,clicks,clickers,ctr")
    assert lines[1].split(",")[4:8] == ["1", "5", "3", "0.3"]  # the lead: place, clicks, CTR
    nl = str(sent.fx.newsletter.id)
    hours = runner.invoke(cli_app, ["analytics", "trends", nl, "--table", "hours", "--csv"])
    assert hours.exit_code == 0, hours.output
    assert hours.output.splitlines()[1].startswith("7,07:00,1,10,4,4,")
    refused = runner.invoke(cli_app, ["analytics", "report", str(sent.id), "--table", "nope"])
    assert isinstance(refused.exception, InvalidInput)  # main() prints it as one red line
    assert "choose summary, articles, links, machines, variants" in str(refused.exception)
