"""Rows for the analytics tests: a sent issue with its ledger, numbered links, frozen email and
engagement events, written directly (the tracking side has its own tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from newsletter.content.rendering import PLACEHOLDERS
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    EngagementTally,
    IssueLink,
    IssueStatus,
    Newsletter,
    RenderedIssue,
    Subscriber,
)
from tests.conftest import IssueFixture, make_issue, make_subscribers

BASE = "https://news.example.org"


@dataclass
class SentIssue:
    """An issue sent to ``readers`` (the first ``failed`` of them refused), with links: per
    article a headline and a "Read more" link (in the issue's order), then a trap link."""

    fx: IssueFixture
    readers: list[Subscriber]
    started: datetime
    links: dict[tuple[int, str], IssueLink] = field(default_factory=dict)  # (position, kind)
    trap: IssueLink | None = None

    @property
    def id(self) -> int:
        assert self.fx.issue.id is not None
        return self.fx.issue.id

    def link(self, position: int, kind: str = "headline") -> IssueLink:
        """The link of the story at ``position`` (1 = the lead)."""
        return self.links[(position, kind)]

    def click(
        self,
        session: Session,
        reader: int,
        link: IssueLink,
        *,
        verdict: str = "human",
        rule: str = "",
        times: int = 1,
    ) -> None:
        for k in range(times):
            session.add(
                EngagementEvent(
                    issue_id=self.id,
                    subscriber_id=self.readers[reader].id,  # type: ignore[arg-type]
                    link_id=link.id,
                    kind="click",
                    verdict=verdict,
                    rule=rule,
                    at=self.started + timedelta(minutes=30 + k),
                )
            )
        session.commit()

    def open(
        self, session: Session, reader: int, *, verdict: str = "human", rule: str = ""
    ) -> None:
        session.add(
            EngagementEvent(
                issue_id=self.id,
                subscriber_id=self.readers[reader].id,  # type: ignore[arg-type]
                kind="open",
                verdict=verdict,
                rule=rule,
                at=self.started + timedelta(minutes=5),
            )
        )
        session.commit()

    def tally(
        self,
        session: Session,
        kind: str,
        verdict: str,
        events: int,
        uniques: int,
        link: IssueLink | None = None,
    ) -> None:
        session.add(
            EngagementTally(
                issue_id=self.id,
                link_id=link.id if link else None,
                kind=kind,
                verdict=verdict,
                events=events,
                uniques=uniques,
            )
        )
        session.commit()


def tracked_href(issue_id: int, n: int) -> str:
    return f"{BASE}/r/{issue_id}/{n}/{PLACEHOLDERS['track_token']}"


def sent_issue(
    session: Session,
    *,
    newsletter: Newsletter | None = None,
    readers: int = 10,
    failed: int = 0,
    layout: tuple[int, ...] = (2, 1),
    started: datetime | None = None,
    segment_id: int | None = None,
) -> SentIssue:
    fx = make_issue(session, newsletter=newsletter, layout=layout)
    people = make_subscribers(session, fx.newsletter, readers)
    started = started or datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
    issue = fx.issue
    issue.status, issue.send_started_at = IssueStatus.sent, started
    issue.sent_at, issue.segment_id = started + timedelta(minutes=2), segment_id
    session.add(issue)
    for i, person in enumerate(people):
        refused = i < failed
        session.add(
            Delivery(
                issue_id=issue.id,  # type: ignore[arg-type]
                subscriber_id=person.id,  # type: ignore[arg-type]
                status=DeliveryStatus.failed if refused else DeliveryStatus.sent,
                sent_at=None if refused else started + timedelta(seconds=i),
            )
        )
    sent = SentIssue(fx, people, started)
    _links(session, sent)
    session.commit()
    return sent


def _links(session: Session, sent: SentIssue) -> None:
    n, html = 0, [f"<html><body><h1>This week</h1><p>{PLACEHOLDERS['greeting']}</p>"]
    items = [
        (s.title, it) for s in sent.fx.sections for it in sent.fx.items if it.section_id == s.id
    ]
    for position, (section, item) in enumerate(items, start=1):
        article = next(a for a in sent.fx.articles if a.id == item.article_id)
        for kind in ("headline", "read_more"):
            n += 1
            link = IssueLink(
                issue_id=sent.id,
                n=n,
                url=f"{article.url}#{kind}",
                kind=kind,
                article_id=article.id,
                section=section,
                position=position,
            )
            session.add(link)
            sent.links[(position, kind)] = link
            text = article.title if kind == "headline" else "Read more"
            html.append(f'<p><a href="{tracked_href(sent.id, n)}">{text}</a></p>')
    n += 1
    sent.trap = IssueLink(issue_id=sent.id, n=n, url=f"{BASE}/", kind="trap")
    session.add(sent.trap)
    html.append(f'<a href="{tracked_href(sent.id, n)}" style="display:none"></a>')
    html.append(f'<p><a href="{PLACEHOLDERS["unsubscribe_url"]}">Unsubscribe</a></p></body></html>')
    session.add(
        RenderedIssue(issue_id=sent.id, subject="This week", html="".join(html), text="This week")
    )
    session.flush()
