"""One issue's report: what reached readers, what they did, per article and per link.

Human figures and machine figures are kept apart: a verdict "machine" (a link scanner, Apple's
Mail Privacy Protection opening every message) never counts as a reader. Rates are distinct
human readers over the messages delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from sqlalchemy import func, select
from sqlmodel import Session

from newsletter.analytics import figures, outcomes, variants
from newsletter.analytics.figures import IL, Count
from newsletter.analytics.variants import VariantRow
from newsletter.content import issues
from newsletter.models import Article, Issue
from newsletter.models_analytics import EngagementKind, Verdict
from newsletter.sending import subject_tests
from newsletter.tables import table_of

__all__ = ["ArticleRow", "IssueReport", "LinkRow", "issue_report", "rate"]

A = table_of(Article)
HUMAN, MACHINE = Verdict.human.value, Verdict.machine.value
CLICK, OPEN = EngagementKind.click.value, EngagementKind.open.value
MPP = "apple_mpp"  # the verdicts' rule for Apple Mail Privacy Protection's proxy


def rate(part: int, whole: int) -> float:
    """``part / whole`` rounded to four places; 0 when nothing was delivered."""
    return round(part / whole, 4) if whole else 0.0


@dataclass
class ArticleRow:
    article_id: int
    title: str
    url: str
    section: str | None
    position: int | None
    clicks: int  # human clicks
    clickers: int  # distinct human clickers
    ctr: float  # clickers / delivered
    machine_clicks: int


@dataclass
class LinkRow:
    n: int
    url: str
    kind: str
    article_id: int | None
    section: str | None
    position: int | None
    clicks: int  # human clicks
    clickers: int
    share: float  # of the issue's human clicks
    machine_clicks: int


@dataclass
class IssueReport:
    issue_id: int
    newsletter_id: int
    number: int
    title: str
    status: str
    send_started_at: str | None
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    human_openers: int = 0
    human_opens: int = 0
    machine_openers: int = 0
    machine_opens: int = 0
    human_clickers: int = 0
    human_clicks: int = 0
    machine_clickers: int = 0
    machine_clicks: int = 0
    articles: list[ArticleRow] = field(default_factory=list)
    links: list[LinkRow] = field(default_factory=list)
    machine_rules: list[tuple[str, str, int, int]] = field(default_factory=list)
    variants: list[VariantRow] = field(default_factory=list)  # a subject test's, side by side

    @property
    def open_rate(self) -> float:
        return rate(self.human_openers, self.delivered)

    @property
    def click_rate(self) -> float:
        return rate(self.human_clickers, self.delivered)

    @property
    def machine_open_share(self) -> float:
        """The share of all opens recorded that were machines' (Apple MPP and the like)."""
        return rate(self.machine_opens, self.machine_opens + self.human_opens)

    @property
    def mpp_opens(self) -> int:
        """Opens by Apple Mail Privacy Protection's proxy (a machine rule of its own)."""
        return sum(e for kind, rule, e, _ in self.machine_rules if (kind, rule) == (OPEN, MPP))

    @property
    def mpp_share(self) -> float:
        """Apple MPP's share of all opens recorded, shown apart from the readers."""
        return rate(self.mpp_opens, self.machine_opens + self.human_opens)

    def summary(self) -> dict[str, object]:
        tables = ("articles", "links", "machine_rules", "variants")
        found = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in tables}
        found.update(
            open_rate=self.open_rate,
            click_rate=self.click_rate,
            machine_open_share=self.machine_open_share,
            mpp_opens=self.mpp_opens,
            mpp_share=self.mpp_share,
        )
        return found


def issue_report(session: Session, issue_id: int) -> IssueReport:
    """The whole report of one issue (NotFound for an unknown id)."""
    issue = issues.get_issue(session, issue_id)
    figures.sort_in_memory(session)
    started = issue.send_started_at.isoformat() if issue.send_started_at else None
    report = IssueReport(
        issue_id, issue.newsletter_id, issue.number, issue.title, issue.status, started
    )
    done = outcomes.outcomes(session, [issue_id])[issue_id]
    report.delivered, report.bounced = done.delivered, done.bounced
    report.complained, report.unsubscribed = done.complained, done.unsubscribed
    _engagement(session, report)
    report.articles = _articles(session, issue, report.delivered)
    report.links = _links(session, issue_id, report.human_clicks)
    report.machine_rules = figures.machine_rules(session, issue_id)
    tested = subject_tests.subjects(session, issue_id)
    report.variants = variants.variant_rows(session, issue_id, tested)
    return report


def _engagement(session: Session, report: IssueReport) -> None:
    counts = figures.by_issue(session, [report.issue_id])

    def get(kind: str, verdict: str) -> Count:
        return counts.get((report.issue_id, kind, verdict), Count())

    report.human_openers, report.human_opens = get(OPEN, HUMAN).uniques, get(OPEN, HUMAN).events
    report.machine_openers = get(OPEN, MACHINE).uniques
    report.machine_opens = get(OPEN, MACHINE).events
    report.human_clickers = get(CLICK, HUMAN).uniques
    report.human_clicks = get(CLICK, HUMAN).events
    report.machine_clickers = get(CLICK, MACHINE).uniques
    report.machine_clicks = get(CLICK, MACHINE).events


def _articles(session: Session, issue: Issue, delivered: int) -> list[ArticleRow]:
    """Every article the issue links to (clicked or not), in the issue's order."""
    assert issue.id is not None
    placed = session.execute(
        select(IL.c.article_id, func.min(IL.c.position), func.max(IL.c.section), A.c.title, A.c.url)
        .select_from(IL.join(A, A.c.id == IL.c.article_id))
        .where(IL.c.issue_id == issue.id)
        .group_by(IL.c.article_id, A.c.title, A.c.url)
        .order_by(func.min(IL.c.position), IL.c.article_id)
    ).all()
    counts = figures.by_link_group(session, [issue.id], ["article_id"])
    rows = []
    for article_id, position, section, title, url in placed:
        human = counts.get((issue.id, article_id, HUMAN), Count())
        machine = counts.get((issue.id, article_id, MACHINE), Count())
        rows.append(
            ArticleRow(
                int(article_id),
                str(title),
                str(url),
                section,
                position,
                human.events,
                human.uniques,
                rate(human.uniques, delivered),
                machine.events,
            )
        )
    return rows


def _links(session: Session, issue_id: int, human_clicks: int) -> list[LinkRow]:
    """Every tracked link of the issue in the email's order, with its share of human clicks."""
    links = session.execute(
        select(IL.c.id, IL.c.n, IL.c.url, IL.c.kind, IL.c.article_id, IL.c.section, IL.c.position)
        .where(IL.c.issue_id == issue_id)
        .order_by(IL.c.n)
    ).all()
    counts = figures.by_link_group(session, [issue_id], ["id"])
    rows = []
    for link_id, n, url, kind, article_id, section, position in links:
        human = counts.get((issue_id, link_id, HUMAN), Count())
        machine = counts.get((issue_id, link_id, MACHINE), Count())
        rows.append(
            LinkRow(
                int(n),
                str(url),
                str(kind),
                article_id,
                section,
                position,
                human.events,
                human.uniques,
                rate(human.events, human_clicks),
                machine.events,
            )
        )
    return rows
