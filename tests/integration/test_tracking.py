"""Click and open tracking on both databases: the links rewritten once at freeze, the /r/
redirect (never an open redirect), the pixel, the recorded verdicts, GDPR erase/export, the
retention fold, the metrics, and the newsletter's switches."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import Session, col, select

from newsletter.analytics import links as tracking
from newsletter.analytics import recording, retention, tokens
from newsletter.api.app import create_app
from newsletter.audience import gdpr
from newsletter.config import Settings
from newsletter.content import issues, rendering
from newsletter.mail.message import MessageTemplate, Recipient
from newsletter.models import Issue, IssueStatus, RenderedIssue, Subscriber, utcnow
from newsletter.models_analytics import EngagementEvent, EngagementTally, IssueLink
from newsletter.sending import recipients
from newsletter.sending.checks import qa_config
from newsletter.sending.start import fill_ledger, freeze
from newsletter.tables import D
from tests.conftest import make_issue, make_newsletter, make_subscribers

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
PERSON = {"User-Agent": CHROME, "Accept": "text/html"}


@dataclass
class Sent:
    issue_id: int
    people: list[Subscriber]
    links: dict[int, IssueLink]  # by n


@pytest.fixture(autouse=True)
def _fresh_link_cache() -> Iterator[None]:
    recording.forget()
    yield
    recording.forget()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as http:
        yield http


def sent_issue(
    session: Session, settings: Settings, *, opens: bool = True, ago: float = 60.0
) -> Sent:
    """A tracked issue, its ledger filled and marked sent ``ago`` seconds back."""
    newsletter = make_newsletter(session, track_clicks=True, track_opens=opens)
    fx = make_issue(session, newsletter=newsletter, layout=(2, 2))
    people = make_subscribers(session, newsletter, 3)
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=qa_config(settings))
    at = utcnow() - timedelta(seconds=ago)
    session.execute(update(D).where(D.c.issue_id == issue_id).values(status="sent", sent_at=at))
    session.execute(
        update(Issue).where(col(Issue.id) == issue_id).values(status=IssueStatus.sent, sent_at=at)
    )
    session.commit()
    rows = session.exec(select(IssueLink).where(IssueLink.issue_id == issue_id)).all()
    return Sent(issue_id, people, {row.n: row for row in rows})


def token(settings: Settings, sent: Sent, who: int) -> str:
    return tokens.make_token(settings.secret_key, sent.issue_id, who)


def events(session: Session, issue_id: int) -> list[EngagementEvent]:
    session.expire_all()
    stmt = select(EngagementEvent).where(EngagementEvent.issue_id == issue_id)
    return list(session.exec(stmt.order_by(col(EngagementEvent.id))).all())


# ---------------------------------------------------------------- rewriting at freeze


def test_tracking_off_leaves_the_message_byte_identical(
    session: Session, settings: Settings
) -> None:
    fx = make_issue(session)
    frozen = freeze(session, fx.issue.id, checks=qa_config(settings))  # type: ignore[arg-type]
    compiled = rendering.compile_issue(issues.load_outline(session, fx.issue.id))  # type: ignore[arg-type]
    assert (frozen.html, frozen.text) == (compiled.html, compiled.text)
    assert "/r/" not in frozen.html and "__NL_TRACK_TOKEN__" not in frozen.html
    assert session.exec(select(IssueLink).where(IssueLink.issue_id == fx.issue.id)).all() == []
    # the per-recipient token is a value no untracked message has a hole for
    values, links = recipients.recipient_values(
        settings, fx.newsletter, fx.issue, subscriber_id=7, email="a@example.org", name="A"
    )
    template = MessageTemplate(
        compiled=compiled, newsletter=fx.newsletter, issue_id=fx.issue.id or 0, secret="s"
    )

    def message(values: dict[str, str]) -> bytes:
        person = Recipient(7, "a@example.org", "A", values, links["unsubscribe_url"], "mailto:x")
        return re.sub(rb"Date: [^\r]*", b"", template.render(person)[1])

    without = {k: v for k, v in values.items() if k != "track_token"}
    assert message(values) == message(without)


def test_a_tracked_issue_is_rewritten_once_with_one_placeholder_per_link(
    session: Session, settings: Settings
) -> None:
    sent = sent_issue(session, settings)
    frozen = session.get(RenderedIssue, sent.issue_id)
    assert frozen is not None
    hrefs = re.findall(r'<a\b[^>]*?\shref="([^"]*)"', frozen.html)
    tracked = [h for h in hrefs if "/r/" in h]
    base = f"{settings.base_url}/r/{sent.issue_id}/"
    assert tracked == [f"{base}{n}/__NL_TRACK_TOKEN__" for n in range(1, len(sent.links) + 1)]
    # the personal links are never rewritten; the text part keeps the real URLs
    for placeholder in ("UNSUBSCRIBE_URL", "PREFERENCES_URL", "VIEW_URL"):
        assert f'href="__NL_{placeholder}__"' in frozen.html
    assert "/r/" not in frozen.text and "__NLTAG" not in frozen.html
    kinds = [(sent.links[n].kind, sent.links[n].position) for n in sorted(sent.links)]
    lead = [k for k in kinds if k[1] == 1]
    assert sorted(lead) == [("brief", 1), ("headline", 1), ("image", 1), ("read_more", 1)]
    assert {p for _, p in kinds if p} == {1, 2, 3, 4}
    assert kinds[-1] == ("trap", None)
    assert kinds[0] == ("other", None)  # the masthead
    story = next(r for r in sent.links.values() if r.position == 3)
    assert story.section == "Section 2" and story.article_id is not None
    # the trap: hidden from people and screen readers, the last link; the pixel
    trap = re.search(r'<a href="[^"]*/r/\d+/(\d+)/[^"]*"([^>]*)></a>', frozen.html)
    assert trap is not None and int(trap[1]) == max(sent.links)
    assert 'aria-hidden="true"' in trap[2] and "display:none" in trap[2]
    assert f'src="{settings.base_url}/o/{sent.issue_id}/__NL_TRACK_TOKEN__.gif"' in frozen.html
    # frozen again (a restarted send): the rows are updated in place, not added
    freeze(session, sent.issue_id, checks=qa_config(settings))
    session.commit()
    again = session.exec(select(IssueLink).where(IssueLink.issue_id == sent.issue_id)).all()
    assert sorted(r.id for r in again) == sorted(r.id for r in sent.links.values())


def test_qa_counts_the_links_as_the_rewriter_sends_them(
    session: Session, settings: Settings
) -> None:
    from dataclasses import replace

    from newsletter.content import qa

    fx = make_issue(session)
    outline = issues.load_outline(session, fx.issue.id)  # type: ignore[arg-type]
    compiled = rendering.compile_issue(outline)
    checks = replace(qa_config(settings), size_warn=1000, size_limit=10**7)

    def size() -> int:
        report = qa.qa_report(outline, compiled=compiled, checks=checks)
        [found] = [f.message for f in report.findings if f.code == "html-large"]
        return int(re.search(r"is ([0-9,]+) bytes", found)[1].replace(",", ""))  # type: ignore[index]

    plain = size()
    fx.newsletter.track_clicks = True
    links = [h for h in compiled.links() if tracking.tracked(h)]
    sample = tracking.click_url(settings.base_url, 1_000_000, 100, "1000000.100000000." + "x" * 16)
    assert len(links) > 10
    assert size() - plain == sum(len(sample) - len(h) for h in links)


# ---------------------------------------------------------------- the redirect


def test_a_click_redirects_and_records_one_human_event(
    session: Session, settings: Settings, client: TestClient
) -> None:
    sent = sent_issue(session, settings)
    reader = sent.people[0].id or 0
    link = next(r for r in sent.links.values() if r.kind == "headline")
    answer = client.get(
        f"/r/{sent.issue_id}/{link.n}/{token(settings, sent, reader)}", headers=PERSON
    )
    assert answer.status_code == 302
    assert answer.headers["location"] == link.url
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in answer.headers["cache-control"]
    [event] = events(session, sent.issue_id)
    assert (event.subscriber_id, event.link_id, event.kind) == (reader, link.id, "click")
    assert (event.verdict, event.rule) == ("human", "human")


def test_bad_links_get_a_plain_404_and_record_nothing(
    session: Session, settings: Settings, client: TestClient
) -> None:
    sent = sent_issue(session, settings)
    other = sent_issue(session, settings)
    good = token(settings, sent, sent.people[0].id or 0)
    foreign = token(settings, other, other.people[0].id or 0)
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    issue = sent.issue_id
    for path in (
        f"/r/{issue}/1/{flipped}",  # altered MAC
        f"/r/{issue}/1/{foreign}",  # another issue's token
        f"/r/{other.issue_id}/1/{good}",  # this token on the other issue's path
        f"/r/{issue}/999/{good}",  # no such link
        f"/r/{issue}/x/{good}",
        f"/r/99999999999/1/{good}",
        f"/r/{issue}/1/{issue}.{sent.people[0].id}.",
        f"/o/{issue}/{flipped}.gif",
        f"/o/{other.issue_id}/{good}.gif",
    ):
        answer = client.get(path, headers=PERSON)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "location" not in answer.headers
    assert events(session, issue) == [] and events(session, other.issue_id) == []


def test_the_archive_and_non_recipients_redirect_without_a_record(
    session: Session, settings: Settings, client: TestClient
) -> None:
    sent = sent_issue(session, settings)
    stranger = make_subscribers(session, make_newsletter(session), 1)[0]
    for who in (tokens.NOBODY, stranger.id or 0):
        answer = client.get(f"/r/{sent.issue_id}/2/{token(settings, sent, who)}", headers=PERSON)
        assert answer.status_code == 302 and answer.headers["location"] == sent.links[2].url
        pixel = client.get(f"/o/{sent.issue_id}/{token(settings, sent, who)}.gif")
        assert pixel.status_code == 200
    assert events(session, sent.issue_id) == []


def test_no_token_or_path_redirects_outside_the_issue(
    session: Session, settings: Settings, client: TestClient
) -> None:
    """Forged tokens on any path: a 302 only ever to a URL of the path's own issue."""
    sent = sent_issue(session, settings)
    allowed = {r.url for r in sent.links.values()}
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    ids = st.one_of(st.integers(-5, 10**11), st.sampled_from([sent.issue_id]), st.text(max_size=8))

    @hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @example(issue="\x00", n=1, who=0, tail="")  # a NUL in the URL: refused before the route
    @given(
        issue=ids,
        n=st.one_of(st.integers(-5, 50), st.text(max_size=6)),
        who=st.integers(0, 2**31),
        tail=st.text(alphabet=alphabet, max_size=24),
    )
    def check(issue: int | str, n: int | str, who: int, tail: str) -> None:
        for candidate in (
            f"{sent.issue_id}.{who}.{tail}",
            tail,
            token(settings, sent, who)[: -len(tail) or None] + tail,
        ):
            path = "/".join(quote(str(p), safe="") for p in (issue, n, candidate))
            answer = client.head(f"/r/{path}")
            if answer.status_code == 302:
                assert str(issue) == str(sent.issue_id)
                assert answer.headers["location"] in allowed
            elif "\x00" in f"{issue}{n}{candidate}":  # the app refuses a NUL in any URL
                assert answer.status_code == 422, answer.status_code
            else:
                assert answer.status_code in (404, 405), answer.status_code

    check()


# ---------------------------------------------------------------- verdicts as recorded


def test_scanner_requests_are_machine_and_a_burst_marks_its_earlier_clicks(
    session: Session, settings: Settings, client: TestClient
) -> None:
    sent = sent_issue(session, settings, ago=120)
    reader = token(settings, sent, sent.people[1].id or 0)
    head = client.head(f"/r/{sent.issue_id}/2/{reader}", headers=PERSON)
    prefetch = client.get(
        f"/r/{sent.issue_id}/3/{reader}", headers={**PERSON, "Sec-Purpose": "prefetch"}
    )
    assert head.status_code == prefetch.status_code == 302
    assert [(e.verdict, e.rule) for e in events(session, sent.issue_id)] == [
        ("machine", "head"),
        ("machine", "prefetch"),
    ]
    # a scanner on an unknown network, two minutes after delivery, clicks every link
    scanner = token(settings, sent, sent.people[2].id or 0)
    for n in sorted(sent.links):
        assert client.get(f"/r/{sent.issue_id}/{n}/{scanner}", headers=PERSON).status_code == 302
    clicks = [e for e in events(session, sent.issue_id) if e.subscriber_id == sent.people[2].id]
    assert len(clicks) == len(sent.links)
    assert {(e.verdict, e.rule) for e in clicks} == {("machine", "burst"), ("machine", "trap")}
    # the MPP proxy's open is machine, a person's open human
    mpp = client.get(f"/o/{sent.issue_id}/{reader}.gif", headers={"User-Agent": "Mozilla/5.0"})
    assert mpp.content[:6] == b"GIF89a" and mpp.headers["content-type"] == "image/gif"
    client.get(f"/o/{sent.issue_id}/{reader}.gif", headers=PERSON)
    opens = [e for e in events(session, sent.issue_id) if e.kind == "open"]
    assert [(e.verdict, e.rule, e.link_id) for e in opens] == [
        ("machine", "apple_mpp", None),
        ("human", "human", None),
    ]


def test_a_click_right_after_delivery_is_too_fast(
    session: Session, settings: Settings, client: TestClient
) -> None:
    sent = sent_issue(session, settings, ago=1)
    reader = token(settings, sent, sent.people[0].id or 0)
    client.get(f"/r/{sent.issue_id}/2/{reader}", headers=PERSON)
    [event] = events(session, sent.issue_id)
    assert (event.verdict, event.rule) == ("machine", "too_fast")


# ---------------------------------------------------------------- privacy


def test_erase_deletes_the_events_and_export_lists_them(
    session: Session, settings: Settings, client: TestClient
) -> None:
    sent = sent_issue(session, settings)
    one, two = sent.people[0].id or 0, sent.people[1].id or 0
    for who in (one, two):
        client.get(f"/r/{sent.issue_id}/2/{token(settings, sent, who)}", headers=PERSON)
        client.get(f"/o/{sent.issue_id}/{token(settings, sent, who)}.gif", headers=PERSON)
    exported = gdpr.export_subscriber(session, one)["engagement"]
    assert [(e["kind"], e["link"], e["verdict"]) for e in exported] == [
        ("click", sent.links[2].url, "human"),
        ("open", None, "human"),
    ]
    erased = gdpr.erase_subscriber(session, one)
    session.commit()
    assert erased.engagement == 2
    assert {e.subscriber_id for e in events(session, sent.issue_id)} == {two}
    # an erased reader's old links still redirect and record nothing
    answer = client.get(f"/r/{sent.issue_id}/2/{token(settings, sent, one)}", headers=PERSON)
    assert answer.status_code == 302
    assert {e.subscriber_id for e in events(session, sent.issue_id)} == {two}


def test_past_retention_events_fold_into_tallies_and_links_still_redirect(
    session: Session, settings: Settings, client: TestClient
) -> None:
    sent = sent_issue(session, settings)
    a, b = (token(settings, sent, p.id or 0) for p in sent.people[:2])
    for reader, n in ((a, 2), (a, 3), (a, 2), (b, 2)):
        client.get(f"/r/{sent.issue_id}/{n}/{reader}", headers=PERSON)
    client.head(f"/r/{sent.issue_id}/3/{b}")
    client.get(f"/o/{sent.issue_id}/{a}.gif", headers=PERSON)
    days = settings.track_retention_days
    assert retention.fold_due(session, retention_days=days) == 0  # not yet
    later = utcnow() + timedelta(days=days + 1)
    assert retention.fold_due(session, retention_days=days, now=later) == 6
    session.commit()
    assert events(session, sent.issue_id) == []
    tallies = session.exec(select(EngagementTally).where(EngagementTally.issue_id == sent.issue_id))
    got = {(t.link_id, t.kind, t.verdict): (t.events, t.uniques) for t in tallies}
    two, three = sent.links[2].id, sent.links[3].id
    assert got == {
        (two, "click", "human"): (3, 2),
        (three, "click", "human"): (1, 1),
        (three, "click", "machine"): (1, 1),
        (None, "click", "human"): (4, 2),  # the issue's unique human clickers
        (None, "click", "machine"): (1, 1),
        (None, "open", "human"): (1, 1),
    }
    # an issue past retention ("archived") redirects and records nothing
    session.execute(
        update(D)
        .where(D.c.issue_id == sent.issue_id)
        .values(sent_at=utcnow() - timedelta(days=days + 1))
    )
    session.commit()
    assert client.get(f"/r/{sent.issue_id}/2/{a}", headers=PERSON).status_code == 302
    assert events(session, sent.issue_id) == []
    metrics = client.get("/metrics").text
    assert 'newsletter_engagement_events_total{kind="click",verdict="human"} 4.0' in metrics
    assert 'newsletter_engagement_events_total{kind="open",verdict="machine"} 0.0' in metrics


# ---------------------------------------------------------------- the switches


def test_the_switches_and_the_sign_up_notice(
    session: Session, settings: Settings, client: TestClient
) -> None:
    from newsletter import newsletters

    newsletter = make_newsletter(session)
    page = client.get("/subscribe").text
    assert "counts which links" not in page
    newsletters.update_newsletter(
        session, newsletter.slug, newsletters.parse_typed({"track_clicks": "yes"})
    )
    session.commit()
    page = client.get("/subscribe").text
    assert f"{newsletter.name} counts which links in its emails I click" in page
    assert "13 months" in page
