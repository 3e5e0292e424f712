"""The digest autopilot end to end: a feed served by a real HTTP server on 127.0.0.1, fetched
through the outbound guard, drafted into the next issue before its run, the editors told
through a real SMTP sink. The clock is frozen a few hours before next week's run (real time
underneath, so a scheduled issue is in the future as ``controls.schedule`` wants)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from newsletter import db
from newsletter.access import editors
from newsletter.autopilot import beat, drafting, rules, schedule, sources
from newsletter.config import Settings
from newsletter.content import issues, review
from newsletter.models import (
    Article,
    AutopilotRun,
    Issue,
    Newsletter,
    Source,
    SourceArticle,
    utcnow,
)
from newsletter.sending.checks import qa_config
from newsletter.statuses import IssueStatus
from newsletter.transports.sink import SMTPSink
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.conftest import make_newsletter
from tests.integration.autopilot_support import FeedState, Story, feed_server, rss

RULE, ZONE = "mon 08:00", "Europe/Warsaw"
MAPPING = [["politics", "Politics"], ["economy", "Economy"]]


@pytest.fixture
def feed(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FeedState]]:
    monkeypatch.setattr(settings, "outbound_allow_networks", "127.0.0.0/8")
    with feed_server() as served:
        yield served


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


def next_run() -> datetime:
    """Next week's Monday 08:00 in Warsaw, at least a day away."""
    return schedule.parse(RULE, ZONE).next_run(utcnow() + timedelta(days=1))


def weekly(session: Session, feed_url: str, **pilot: object) -> Newsletter:
    """A newsletter with an editor, a writer, the feed as its source and the autopilot on."""
    nl = make_newsletter(session, time_zone=ZONE, default_sections=["Top stories"])
    editors.create_user(
        session, email=f"ed-{nl.slug}@example.org", password="x" * 12, role="editor"
    )
    editors.create_user(
        session, email=f"wr-{nl.slug}@example.org", password="x" * 12, role="writer"
    )
    sources.add_feed(session, newsletter=nl.id, url=feed_url)  # type: ignore[arg-type]
    settings = {"enabled": True, "rule": RULE, "lead_hours": 12, "sections": MAPPING, **pilot}
    rules.update_autopilot(session, nl, settings)
    session.commit()
    return nl


def sent_issue(session: Session, nl: Newsletter, urls: list[str], started: datetime) -> Issue:
    """An issue of ``nl`` holding these articles, sent (its send began at ``started``)."""
    issue = issues.create_issue(session, newsletter=nl.id, title="Last week")  # type: ignore[arg-type]
    section = issues.add_section(session, issue_id=issue.id, title="News")  # type: ignore[arg-type]
    for url in urls:
        article = session.exec(select(Article).where(Article.url == url)).one()
        issues.add_item(session, section_id=section.id, article_id=article.id)  # type: ignore[arg-type]
    issue.status, issue.send_started_at, issue.sent_at = IssueStatus.sent, started, started
    session.add(issue)
    session.commit()
    return issue


def transport_to(sink: SMTPSink) -> SMTPTransport:
    return SMTPTransport(SMTPConfig(sink.host, sink.port))


def the_beat(settings: Settings, sink: SMTPSink, now: datetime) -> beat.BeatResult:
    return beat.run(
        settings, checks=qa_config(settings), transport=lambda: transport_to(sink), now=now
    )


def outline_of(session: Session, issue_id: int) -> list[tuple[str, list[str]]]:
    outline = issues.load_outline(session, issue_id)
    return [(s.section.title, [i.article.title for i in s.items]) for s in outline.sections]


def week(run: datetime) -> list[Story]:
    """The newsroom's feed the week before ``run``."""
    day = timedelta(days=1)
    return [
        # in last week's issue (the feed dates it after that send: an edit moved its date)
        Story("sent-before", "Talks on prisoners resume", run - 6 * day, "politics"),
        Story(
            "tertel-dialogue",
            "KGB chief says ready for dialogue with Kyiv",
            run - day,
            "politics",
            author="olga@news.example.org (Olga Varabei)",
            image="https://images.example.org/tertel.jpg",
            credit="Photo: Example Agency",
        ),
        Story(
            "belavia", "Belavia resumes flights after sanctions lifted", run - 2 * day, "economy"
        ),
        Story(
            "zapad", "Zapad exercises end with claims of 100,000 troops", run - 3 * day, "politics"
        ),
        Story("theatre", "Kupala theatre opens its season in exile", run - day, "culture"),
        Story("old-news", "An old story from a month ago", run - 20 * day, "politics"),
    ]


# ---------------------------------------------------------------- sources


def test_feed_items_become_articles_once_and_a_304_changes_nothing(
    session: Session, settings: Settings, feed: tuple[str, FeedState]
) -> None:
    url, state = feed
    nl = weekly(session, url)
    run = next_run()
    state.serve(rss(week(run)))
    source = sources.list_sources(session, nl.id)[0]  # type: ignore[arg-type]
    policy = sources.outbound.OutboundPolicy.from_settings(settings)

    first = sources.fetch(session, source, policy)
    session.commit()
    assert (first.created, first.updated, first.not_modified) == (6, 0, False)
    tertel = session.exec(select(Article).where(col(Article.url).contains("tertel"))).one()
    assert tertel.author == "Olga Varabei"  # "olga@... (Olga Varabei)": never the address
    assert tertel.image_url == "https://images.example.org/tertel.jpg"
    assert tertel.image_credit == "Photo: Example Agency"
    assert tertel.tags == ["politics"]
    assert "<script" not in tertel.summary + tertel.body_html
    stamp = tertel.updated_at

    again = sources.fetch(session, source, policy)  # the server sees our ETag: 304
    session.commit()
    assert again.not_modified and state.answers == [200, 304]
    assert state.requests[1]["if-none-match"] == state.etag
    session.refresh(tertel)
    assert tertel.updated_at == stamp
    assert session.exec(select(SourceArticle)).all().__len__() == 6
    assert source.last_result == "not modified"

    changed = week(run)
    changed[1].title = "KGB chief: ready for talks with Kyiv"
    state.serve(rss(changed))  # a new body, a new ETag: fetched, updated, not duplicated
    third = sources.fetch(session, source, policy)
    session.commit()
    assert (third.created, third.updated) == (0, 6)
    assert (
        session.exec(select(Article).where(col(Article.url).contains("tertel"))).one().title
        == "KGB chief: ready for talks with Kyiv"
    )
    assert len(session.exec(select(SourceArticle)).all()) == 6


def test_a_json_feed_is_read_with_names_for_bylines(
    session: Session, settings: Settings, feed: tuple[str, FeedState]
) -> None:
    url, state = feed
    nl = weekly(session, url)
    state.serve(
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "Newsroom", "items": ['
        b'{"id": "1", "url": "https://news.example.org/json-one", "title": "One",'
        b' "content_html": "<p>Body</p><script>x</script>", "summary": "In brief.",'
        b' "date_published": "2026-11-20T08:00:00+01:00", "tags": ["economy"],'
        b' "image": "https://images.example.org/one.jpg",'
        b' "authors": [{"name": "ana@example.org"}, {"name": "Ana Costa"}]}]}',
        "application/feed+json",
    )
    source = sources.list_sources(session, nl.id)[0]  # type: ignore[arg-type]
    fetched = sources.fetch(
        session, source, sources.outbound.OutboundPolicy.from_settings(settings)
    )
    session.commit()
    assert fetched.created == 1
    one = session.exec(
        select(Article).where(Article.url == "https://news.example.org/json-one")
    ).one()
    assert one.author == "Ana Costa" and one.tags == ["economy"]
    assert one.body_html == "<p>Body</p>"
    assert one.published_at == datetime.fromisoformat("2026-11-20T07:00:00+00:00")


# ---------------------------------------------------------------- drafting


def test_the_autopilot_drafts_only_the_new_stories_in_their_sections(
    session: Session, settings: Settings, feed: tuple[str, FeedState], sink: SMTPSink
) -> None:
    url, state = feed
    nl = weekly(session, url)
    run = next_run()
    state.serve(rss(week(run)))
    sources.fetch(
        session,
        sources.list_sources(session, nl.id)[0],  # type: ignore[arg-type]
        sources.outbound.OutboundPolicy.from_settings(settings),
    )
    session.commit()
    sent_issue(session, nl, ["https://news.example.org/2026/sent-before"], run - timedelta(7))

    early = the_beat(settings, sink, run - timedelta(hours=12, minutes=1))
    assert early.drafted == []  # the lead time has not begun
    result = the_beat(settings, sink, run - timedelta(hours=11))

    assert [d.outcome for d in result.drafted] == ["drafted"]
    issue = session.get(Issue, result.drafted[0].issue_id)
    assert issue is not None and issue.status == IssueStatus.draft
    assert outline_of(session, issue.id) == [  # type: ignore[arg-type]
        (
            "Politics",
            [
                "KGB chief says ready for dialogue with Kyiv",
                "Zapad exercises end with claims of 100,000 troops",
            ],
        ),
        ("Economy", ["Belavia resumes flights after sanctions lifted"]),
    ]  # not last week's story, nor the unmapped culture one, nor the month-old one
    assert issues.load_outline(session, issue.id).subject == (  # type: ignore[arg-type]
        "KGB chief says ready for dialogue with Kyiv"
    )
    # the editor is told, with the composer's link; the writer is not
    assert [m.rcpt_tos for m in sink.messages] == [[f"ed-{nl.slug}@example.org"]]
    note = sink.messages[0].parse()
    assert "is a draft" in note["Subject"]
    assert f"https://news.example.org/admin/issues/{issue.id}" in note.get_payload()  # type: ignore[operator]

    # another beat for the same run: no second issue, no second note
    assert the_beat(settings, sink, run - timedelta(hours=10)).drafted == []
    count = session.exec(select(Issue).where(Issue.newsletter_id == nl.id)).all()
    assert len(count) == 2 and len(sink.messages) == 1


def test_a_week_with_nothing_new_is_skipped_or_gets_a_note(
    session: Session, settings: Settings, feed: tuple[str, FeedState], sink: SMTPSink
) -> None:
    url, state = feed
    nl = weekly(session, url)
    run = next_run()
    state.serve(rss(week(run)))
    drafted = the_beat(settings, sink, run - timedelta(hours=11)).drafted[0]
    issue = session.get(Issue, drafted.issue_id)
    assert issue is not None
    issue.status, issue.send_started_at = IssueStatus.sent, run  # it went out on Monday
    session.add(issue)
    session.commit()

    following = run + timedelta(days=7)
    skipped = the_beat(settings, sink, following - timedelta(hours=11))  # the same feed: 304
    assert state.answers[-1] == 304
    assert [(d.outcome, d.issue_id) for d in skipped.drafted] == [("skipped", None)]
    assert len(session.exec(select(Issue).where(Issue.newsletter_id == nl.id)).all()) == 1
    assert len(sink.messages) == 1  # the first week's note only

    rules.update_autopilot(session, nl, {"nothing_new": "note", "note_text": "Quiet week."})
    session.commit()
    third = run + timedelta(days=14)
    noted = the_beat(settings, sink, third - timedelta(hours=11)).drafted
    assert [d.outcome for d in noted] == ["noted"]
    note_issue = session.get(Issue, noted[0].issue_id)
    assert note_issue is not None and note_issue.intro_md == "Quiet week."
    assert outline_of(session, note_issue.id) == []  # type: ignore[arg-type]


def test_a_newsletter_that_requires_review_gets_its_draft_in_review(
    session: Session, settings: Settings, feed: tuple[str, FeedState], sink: SMTPSink
) -> None:
    url, state = feed
    nl = weekly(session, url, auto_schedule=True)  # review wins over scheduling by itself
    nl.requires_review = True
    session.add(nl)
    session.commit()
    run = next_run()
    state.serve(rss(week(run)))
    drafted = the_beat(settings, sink, run - timedelta(hours=11)).drafted[0]
    issue = session.get(Issue, drafted.issue_id)
    assert issue is not None and issue.status == IssueStatus.in_review
    assert issue.scheduled_at is None
    assert "waiting for review" in sink.messages[0].parse()["Subject"]
    # the autopilot is its author: any editor may approve it
    approved = review.approve(session, issue.id, reviewer=f"ed-{nl.slug}@example.org")  # type: ignore[arg-type]
    assert approved.status == IssueStatus.approved


def test_where_allowed_the_draft_is_scheduled_for_the_run(
    session: Session, settings: Settings, feed: tuple[str, FeedState], sink: SMTPSink
) -> None:
    url, state = feed
    weekly(session, url, auto_schedule=True)
    run = next_run()
    stories = week(run)
    stories[1].image = ""  # the one image had no alt text, which QA refuses
    state.serve(rss(stories))
    drafted = the_beat(settings, sink, run - timedelta(hours=11)).drafted[0]
    issue = session.get(Issue, drafted.issue_id)
    run_row = session.get(AutopilotRun, drafted.run_id)
    assert run_row is not None and run_row.detail == {}
    assert issue is not None and issue.status == IssueStatus.scheduled
    assert issue.scheduled_at == run
    assert "is scheduled" in sink.messages[0].parse()["Subject"]


def test_a_draft_qa_blocks_stays_a_draft_and_the_note_says_why(
    session: Session, settings: Settings, feed: tuple[str, FeedState], sink: SMTPSink
) -> None:
    url, state = feed
    weekly(session, url, auto_schedule=True)
    run = next_run()
    state.serve(rss(week(run)))  # the feed's image has no alt text
    drafted = the_beat(settings, sink, run - timedelta(hours=11)).drafted[0]
    issue = session.get(Issue, drafted.issue_id)
    assert issue is not None and issue.status == IssueStatus.draft
    body = sink.messages[0].parse().get_payload()
    assert "It was not scheduled: QA blocks sending" in body  # type: ignore[operator]
    assert "image has no alt text" in body  # type: ignore[operator]


def test_two_beats_at_once_draft_one_issue(
    session: Session, settings: Settings, feed: tuple[str, FeedState]
) -> None:
    url, state = feed
    nl = weekly(session, url)
    run = next_run()
    state.serve(rss(week(run)))
    sources.fetch(
        session,
        sources.list_sources(session, nl.id)[0],  # type: ignore[arg-type]
        sources.outbound.OutboundPolicy.from_settings(settings),
    )
    session.commit()
    now = run - timedelta(hours=11)
    gate = threading.Barrier(2)
    outcomes: list[object] = []

    def one_beat() -> None:
        gate.wait()
        try:
            with db.session_scope(settings.database_url) as own:
                outcomes.append(drafting.draft_due(own, nl.id, checks=qa_config(settings), now=now))  # type: ignore[arg-type]
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=one_beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o is None for o in outcomes) == [False, True], outcomes
    assert len(session.exec(select(Issue).where(Issue.newsletter_id == nl.id)).all()) == 1
    # on a Sunday or a Monday the frozen clock leaps over this week's run, which the beats
    # record as missed (once: the same unique pair); the run they drafted is claimed once
    claimed = session.exec(select(AutopilotRun).where(AutopilotRun.outcome != "missed")).all()
    assert [r.run_at for r in claimed] == [run]


def test_a_failing_feed_is_recorded_and_the_others_go_on(
    session: Session, settings: Settings, feed: tuple[str, FeedState], sink: SMTPSink
) -> None:
    url, state = feed
    nl = weekly(session, url)
    broken = sources.add_feed(session, newsletter=nl.id, url=url.replace("/feed", "/gone"))  # type: ignore[arg-type]
    state.serve(b"<html>not a feed</html>", "text/html")
    session.commit()
    result = the_beat(settings, sink, utcnow())
    assert len(result.failed) == 2  # both answer the same page, which is not a feed
    session.refresh(broken)
    assert broken.last_result.startswith("failed: ") and "not an RSS or Atom feed" in (
        broken.last_result
    )
    assert session.get(Source, broken.id).checked_at is not None  # type: ignore[union-attr]


def test_the_beat_task_drafts_and_tells_the_editors_over_the_configured_relay(
    session: Session,
    settings: Settings,
    feed: tuple[str, FeedState],
    sink: SMTPSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from newsletter.config import get_settings
    from worker import celery_app, tasks

    url, state = feed
    nl = weekly(session, url, rule="daily 06:00", lead_hours=144)  # due at any time of day
    state.serve(rss(week(utcnow())))
    monkeypatch.setenv("NEWSLETTER_SMTP_HOST", sink.host)
    monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(sink.port))
    monkeypatch.setenv("NEWSLETTER_OUTBOUND_ALLOW_NETWORKS", "127.0.0.0/8")
    get_settings.cache_clear()
    celery_app.forget_settings()
    assert "autopilot" in celery_app.celery_conf(get_settings())["beat_schedule"]
    assert tasks.autopilot() == 1  # the task as the beat calls it, in this process
    assert tasks.autopilot() == 0  # the same run again: nothing
    drafted = session.exec(select(Issue).where(Issue.newsletter_id == nl.id)).all()
    assert len(drafted) == 1 and [m.rcpt_tos for m in sink.messages] == [
        [f"ed-{nl.slug}@example.org"]
    ]
