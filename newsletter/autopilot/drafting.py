"""Drafting the next issue before its run: the autopilot's one verb, called on the beat.

For each newsletter whose autopilot is on, ``draft_due`` looks at the next run of its schedule;
when the run is within the lead time it claims the run (one ``AutopilotRun`` row per newsletter
and run time, a unique pair: a second beat, or a second worker, finds it taken and does
nothing) and, in the same transaction, drafts the issue from ``selection``: its sections, its
stories, the lead story first (its headline is the issue's default subject). Nothing new: the
run is recorded as skipped, or a short note is drafted (the newsletter's setting).

Where the newsletter requires review the draft goes to review; where the autopilot may
schedule by itself it is scheduled for the run (QA runs as for any schedule; a blocked issue
stays a draft, with the reason on the run); otherwise it waits as a draft. A run the beat
missed and caught up late (``runs``) is never scheduled by itself. The editors' notification
is sent after the commit (``notify``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter.access import audit
from newsletter.access.permissions import Actor
from newsletter.access.roles import Role
from newsletter.autopilot import rules, runs, schedule, selection
from newsletter.autopilot.selection import Plan
from newsletter.content import issues, qa, review
from newsletter.exceptions import InvalidState, QABlocked
from newsletter.models import Autopilot, AutopilotRun, Issue, Newsletter, RunOutcome, utcnow
from newsletter.sending import controls

ACTOR = Actor("autopilot", None, "autopilot", Role.editor)


@dataclass(frozen=True)
class Drafted:
    """What one run came to: its row, the outcome and the issue drafted (None: skipped)."""

    run_id: int
    newsletter_id: int
    run_at: datetime
    outcome: RunOutcome
    issue_id: int | None
    status: str | None  # the issue's status: draft | in_review | scheduled


def draft_due(
    session: Session,
    newsletter_id: int,
    *,
    checks: qa.QAConfig,
    now: datetime | None = None,
    missed: list[AutopilotRun] | None = None,
) -> Drafted | None:
    """Draft the newsletter's next issue if its time has come and no one has yet, or the run
    the beat missed, late (``runs``); flushes, the caller commits (the claim and the draft are
    one transaction). The runs recorded as missed are appended to ``missed`` when given."""
    now = now or utcnow()
    newsletter = session.get(Newsletter, newsletter_id)
    pilot = rules.get_autopilot(session, newsletter_id)
    if newsletter is None or not pilot.enabled:
        return None
    due = runs.due(session, pilot, newsletter, now=now, missed=missed)
    if due is None:
        return None
    run = _claim(session, newsletter_id, due.run_at)
    if run is None:
        return None
    if due.late is not None:  # a run the beat missed, caught up: never scheduled by itself
        run.detail = {"late": runs.late_text(due.late)}
    stories = selection.plan(selection.candidates(session, pilot, now=now), pilot)
    if not stories.sections and pilot.nothing_new == "skip":
        return _record(session, run, RunOutcome.skipped, None)
    issue = _draft(session, newsletter, pilot, stories, due.run_at)
    outcome = RunOutcome.drafted if stories.sections else RunOutcome.noted
    run.stories = stories.stories
    _hand_over(session, run, pilot, newsletter, issue, checks)
    return _record(session, run, outcome, issue)


def _claim(session: Session, newsletter_id: int, run_at: datetime) -> AutopilotRun | None:
    """The run's row, new; None when another beat has it (the unique pair refuses a second)."""
    run = AutopilotRun(newsletter_id=newsletter_id, run_at=run_at, outcome=RunOutcome.skipped)
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        return None
    return run


def _draft(
    session: Session, newsletter: Newsletter, pilot: Autopilot, stories: Plan, run_at: datetime
) -> Issue:
    """A new issue holding the plan's sections in order (the newsletter's empty default
    sections dropped); the note's intro when there are no stories."""
    assert newsletter.id is not None
    day = run_at.astimezone(schedule.zone_of(newsletter.time_zone))
    title = f"{newsletter.name}, {day:%d %B %Y}"
    intro = "" if stories.sections else (pilot.note_text or rules.DEFAULT_NOTE)
    issue = issues.create_issue(session, newsletter=newsletter.id, title=title, intro_md=intro)
    assert issue.id is not None
    for position, (section_title, group) in enumerate(stories.sections):
        section = issues.section_by_title(session, issue_id=issue.id, title=section_title)
        issues.move_section(session, section_id=section.id, position=position)  # type: ignore[arg-type]
        for story in group:
            issues.add_item(session, section_id=section.id, article_id=story.id)  # type: ignore[arg-type]
    outline = issues.load_outline(session, issue.id)
    for empty in (s for s in outline.sections if not s.items):
        issues.remove_section(session, section_id=empty.section.id)  # type: ignore[arg-type]
    audit.record(
        session,
        ACTOR,
        "issue.create",
        target_type="issue",
        target_id=issue.id,
        newsletter_id=newsletter.id,
        detail=f"drafted by the autopilot for {run_at:%Y-%m-%d %H:%M} UTC",
    )
    return issue


def _hand_over(
    session: Session,
    run: AutopilotRun,
    pilot: Autopilot,
    newsletter: Newsletter,
    issue: Issue,
    checks: qa.QAConfig,
) -> None:
    """To review where the newsletter requires it; scheduled for the run where allowed."""
    assert issue.id is not None
    if newsletter.requires_review:
        review.request(session, issue.id)
    elif pilot.auto_schedule and not run.detail.get("late"):
        try:
            with session.begin_nested():
                controls.schedule(session, issue_id=issue.id, at=run.run_at, checks=checks)
        except (QABlocked, InvalidState) as exc:
            run.detail = {**run.detail, "not_scheduled": str(exc)[:1000]}
    session.refresh(issue)


def _record(
    session: Session, run: AutopilotRun, outcome: RunOutcome, issue: Issue | None
) -> Drafted:
    assert run.id is not None
    run.outcome = outcome
    run.issue_id = issue.id if issue is not None else None
    session.add(run)
    session.flush()
    status = issue.status if issue is not None else None
    return Drafted(run.id, run.newsletter_id, run.run_at, outcome, run.issue_id, status)


def run_text(run: AutopilotRun) -> str:
    """One line for a run: its outcome, its issue, and why when it was missed or late."""
    issue = f", issue {run.issue_id}" if run.issue_id else ""
    stories = f", {run.stories} stories" if run.stories else ""
    why = "; ".join(
        str(run.detail[k]) for k in ("missed", "late", "not_scheduled") if k in run.detail
    )
    return f"{run.outcome}{stories}{issue}" + (f" ({why})" if why else "")


def recent_runs(session: Session, newsletter_id: int, limit: int = 10) -> list[AutopilotRun]:
    """The newsletter's latest runs, newest first (the autopilot page's list)."""
    return list(
        session.exec(
            select(AutopilotRun)
            .where(AutopilotRun.newsletter_id == newsletter_id)
            .order_by(col(AutopilotRun.run_at).desc())
            .limit(limit)
        ).all()
    )
