"""The editors' notification of a drafted run: one plain e-mail each, with a link to the composer.

Who gets it: every editor account not disabled whose role for the newsletter may review or send
its issues (editor or admin, per newsletter where one is set). It goes over the same transport
as every other message (DKIM-signed when configured), marked ``Auto-Submitted``. A run is
notified once: ``claim`` stamps the run before the messages are handed over, so a second beat
finds it done (a crash between the two loses the note, never doubles it: the issue itself is
in the composer's list either way).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid

from sqlalchemy import update
from sqlmodel import Session, col, select

from newsletter.access.roles import Action, Role, can
from newsletter.config import Settings
from newsletter.exceptions import PermanentFailure
from newsletter.mail.dkim import signer_from_settings
from newsletter.models import (
    AutopilotRun,
    EditorNewsletterRole,
    EditorUser,
    Issue,
    Newsletter,
    RunOutcome,
    utcnow,
)
from newsletter.tables import table_of
from newsletter.transports import Transport

log = logging.getLogger(__name__)
RUN = table_of(AutopilotRun)
STATUS_WORDS = {
    "in_review": "is waiting for review",
    "scheduled": "is scheduled",
    "draft": "is a draft",
}


@dataclass(frozen=True)
class Note:
    to: str
    data: bytes


def editors(session: Session, newsletter_id: int) -> list[str]:
    """Addresses of the accounts that may review or send this newsletter's issues."""
    own = {
        row.user_id: row.role
        for row in session.exec(
            select(EditorNewsletterRole).where(EditorNewsletterRole.newsletter_id == newsletter_id)
        ).all()
    }
    users = session.exec(select(EditorUser).where(col(EditorUser.disabled_at).is_(None))).all()
    return sorted(
        user.email
        for user in users
        if can(Role(own.get(user.id or 0, user.role)), Action.issues_review)
    )


def claim(session: Session, run_id: int) -> bool:
    """Stamp the run as notified; False when it was already (or it drafted nothing)."""
    done = session.execute(
        update(RUN)
        .where(
            RUN.c.id == run_id,
            RUN.c.notified_at.is_(None),
            RUN.c.outcome != RunOutcome.skipped,
        )
        .values(notified_at=utcnow())
    )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


def build(settings: Settings, session: Session, run_id: int) -> list[Note]:
    """The notes of a run, one per editor (none for a skipped run)."""
    run = session.get(AutopilotRun, run_id)
    if run is None or run.issue_id is None:
        return []
    issue = session.get(Issue, run.issue_id)
    newsletter = session.get(Newsletter, run.newsletter_id)
    assert issue is not None and newsletter is not None
    link = f"{settings.base_url.rstrip('/')}/admin/issues/{issue.id}"
    state = STATUS_WORDS.get(issue.status, f"is {issue.status}")
    what = f"{run.stories} new stories" if run.outcome == RunOutcome.drafted else "a short note"
    subject = f"Autopilot: {newsletter.name} issue #{issue.number} {state}"
    body = (
        f"The autopilot drafted issue #{issue.number} of {newsletter.name} ({what}) for the run "
        f"of {run.run_at:%Y-%m-%d %H:%M} UTC. It {state}.\n\n"
        f"Open it in the composer: {link}\n"
    )
    if run.detail.get("late"):
        body += f"\nIt was drafted late: {run.detail['late']}\n"
    if run.detail.get("not_scheduled"):
        body += f"\nIt was not scheduled: {run.detail['not_scheduled']}\n"
    return [_message(newsletter, to, subject, body) for to in editors(session, newsletter.id)]  # type: ignore[arg-type]


def _message(newsletter: Newsletter, to: str, subject: str, body: str) -> Note:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr(("Newsletter autopilot", newsletter.from_email))
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid(domain=newsletter.from_email.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return Note(to, msg.as_bytes())


def send(settings: Settings, notes: list[Note], transport: Transport) -> int:
    """Hand the notes over; a refused address is logged, not retried. The number sent."""
    signer = signer_from_settings(settings)
    sent = 0
    for note in notes:
        data = signer.sign(note.data) if signer is not None else note.data
        try:
            transport.send(settings.bounce_address, note.to, data)
        except PermanentFailure as exc:
            log.warning("autopilot notification to %s refused: %s", note.to, exc)
            continue
        sent += 1
    return sent
