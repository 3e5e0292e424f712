"""Which stories a drafted issue gets, in which sections and order, and which one leads.

The candidates are the articles the newsletter's sources hold, published since its last sent
issue began sending (with none sent yet: within the look-back), and in no earlier issue of the
newsletter that went out or is set to (scheduled, preparing, sending, paused, sent). A story
that was in last week's email is never repeated; one in a draft nobody sent is offered again.

``plan`` is plain data in, plain data out: each candidate goes to the section of the first
mapping pair whose tag matches one of its tags or its category (its ``section``), ignoring case;
the unmatched go to the "rest" section, or are left out when there is none. Each section is
ordered (newest first, or the priority tag's stories first, newest first among them) and cut
at N; the lead story (the newest, or the first with the priority tag) opens the first section.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from newsletter.autopilot import sources
from newsletter.models import Article, Autopilot, Issue, IssueItem, IssueSection
from newsletter.statuses import IssueKind, IssueStatus

#: an issue in one of these went out, or is set to: its stories are not offered again
GONE_OUT = (
    IssueStatus.scheduled,
    IssueStatus.preparing,
    IssueStatus.sending,
    IssueStatus.paused,
    IssueStatus.sent,
)
_OLDEST = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Plan:
    """The sections (title, stories in order), the lead story first; empty: nothing new."""

    sections: list[tuple[str, list[Article]]]
    lead: Article | None

    @property
    def stories(self) -> int:
        return sum(len(stories) for _title, stories in self.sections)


def since(session: Session, pilot: Autopilot, *, now: datetime) -> datetime:
    """When the last sent issue began sending; with none, ``now`` less the look-back."""
    started = session.exec(
        select(func.max(Issue.send_started_at)).where(
            Issue.newsletter_id == pilot.newsletter_id,
            Issue.kind == IssueKind.issue,
            col(Issue.status).in_([IssueStatus.sending, IssueStatus.paused, IssueStatus.sent]),
        )
    ).one()
    return started or now - timedelta(days=pilot.lookback_days)


def already_out(session: Session, newsletter_id: int) -> set[int]:
    """Articles of the newsletter's issues that went out or are set to."""
    rows = session.exec(
        select(IssueItem.article_id)
        .join(IssueSection, col(IssueSection.id) == IssueItem.section_id)
        .join(Issue, col(Issue.id) == IssueSection.issue_id)
        .where(Issue.newsletter_id == newsletter_id, col(Issue.status).in_(GONE_OUT))
    ).all()
    return set(rows)


def candidates(session: Session, pilot: Autopilot, *, now: datetime) -> list[Article]:
    """The new stories of the newsletter's sources (see the module's docstring)."""
    start = since(session, pilot, now=now)
    found = sources.article_ids(session, pilot.newsletter_id, since=start)
    fresh = found - already_out(session, pilot.newsletter_id)
    if not fresh:
        return []
    query = select(Article).where(col(Article.id).in_(fresh), col(Article.published_at) <= now)
    return list(session.exec(query).all())


def plan(stories: Sequence[Article], pilot: Autopilot) -> Plan:
    """Group, order, cap and pick the lead (see the module's docstring)."""
    titles = list(dict.fromkeys(title for _tag, title in pilot.sections))
    if pilot.other_section and pilot.other_section not in titles:
        titles.append(pilot.other_section)
    grouped: dict[str, list[Article]] = {title: [] for title in titles}
    for story in stories:
        title = section_of(story, pilot)
        if title:
            grouped[title].append(story)
    for title, group in grouped.items():
        grouped[title] = sorted(group, key=lambda a: _rank(a, pilot.ordering, pilot))
        grouped[title] = grouped[title][: pilot.per_section]
    chosen = [story for group in grouped.values() for story in group]
    if not chosen:
        return Plan([], None)
    lead = min(chosen, key=lambda a: _rank(a, pilot.lead, pilot))
    return Plan(_lead_first(grouped, lead), lead)


def section_of(story: Article, pilot: Autopilot) -> str | None:
    """The section title of the first mapping pair that matches the story, else the rest's."""
    labels = {t.casefold() for t in story.tags or []}
    if story.section:
        labels.add(story.section.casefold())
    for tag, title in pilot.sections:
        if tag.casefold() in labels:
            return title
    return pilot.other_section or None


def _rank(story: Article, rule: str, pilot: Autopilot) -> tuple[bool, float, int]:
    """Sort key: (not the priority tag, when the rule is priority), newest first, then id."""
    priority = pilot.priority_tag.casefold()
    tagged = rule == "priority" and priority in {t.casefold() for t in story.tags or []}
    moment = story.published_at or _OLDEST
    return (not tagged if rule == "priority" else False, -moment.timestamp(), -(story.id or 0))


def _lead_first(
    grouped: dict[str, list[Article]], lead: Article
) -> list[tuple[str, list[Article]]]:
    out: list[tuple[str, list[Article]]] = []
    for title, group in grouped.items():
        if not group:
            continue
        if lead in group:
            out.insert(0, (title, [lead, *[s for s in group if s is not lead]]))
        else:
            out.append((title, group))
    return out
