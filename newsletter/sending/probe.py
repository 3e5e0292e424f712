"""The circuit breaker's half-open state: probe the relay of a paused send, resume it when it
answers.

When the breaker pauses a send because the relay is down (``breaker.Verdict.relay_down``), the
issue's ``breaker_probe_at`` says when to look again. The periodic tick (``scheduler.tick``)
calls ``probe_due``: for each such issue whose time came it first moves the time on, as if the
probe were going to fail (one guarded UPDATE, so two ticks never probe one issue twice and a
worker killed mid-probe leaves a later time behind), then opens an SMTP connection to the relay
(EHLO + NOOP, through a ``Probe`` callable so tests can give their own) of the relay the
issue's newsletter sends through (its own relay, or any of them when it has none: a send
routed to a relay that is still down stays paused while another relay answers), and when it
answers resumes the send the way an operator does (``controls.resume``), with a reason that
says when it paused, why, and when the relay answered. The waits double from
``breaker_probe_seconds`` up to ``breaker_probe_max_seconds``; the n-th probe waits as long as
the pause lasted so far plus the first wait, which is that doubling, read off the pause time
(``status_changed_at``) with nothing more to store.

An issue an operator paused (or held: ``controls.pause`` of a breaker pause) has no probe time
and is never resumed here; an operator may resume, hold or cancel a breaker pause at any time.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.exceptions import InvalidState
from newsletter.models import IssueStatus, utcnow
from newsletter.sending import breaker, controls
from newsletter.tables import NL, I
from newsletter.transports.smtp import SMTPConfig

log = logging.getLogger(__name__)

#: the longest a probe waits for the relay (the tick waits for it)
PROBE_TIMEOUT = 10.0


class RelayDown(Exception):
    """The probe got no proper answer from the relay."""


#: opens a connection to the relay and says hello; returns its answer or raises ``RelayDown``
RelayProbe = Callable[[], str]
#: a newsletter's relay choice ("" any relay, by weight) -> the answer of a relay of that choice,
#: or ``RelayDown`` when none answers
Probe = Callable[[str], str]


def smtp_probe(config: SMTPConfig) -> RelayProbe:
    """EHLO and NOOP on a new connection to the relay (with STARTTLS and login when the sends
    use them), then QUIT."""
    timeout = min(config.timeout, PROBE_TIMEOUT)

    def probe() -> str:
        try:
            with smtplib.SMTP(config.host, config.port, timeout=timeout) as conn:
                conn.ehlo()
                if config.starttls:
                    conn.starttls(context=ssl.create_default_context())
                    conn.ehlo()
                if config.username:
                    conn.login(config.username, config.password or "")
                code, message = conn.noop()
        except (OSError, smtplib.SMTPException) as exc:
            raise RelayDown(f"{config.host}:{config.port}: {exc}") from exc
        answer = f"{code} {message.decode('utf-8', 'replace')}".strip()
        if code != 250:
            raise RelayDown(f"{config.host}:{config.port} answered NOOP with {answer}")
        return answer

    return probe


def first_probe_at(settings: Settings, paused_at: datetime) -> datetime | None:
    """When to probe a relay first after the breaker paused a send for it; None: never."""
    if settings.breaker_probe_seconds <= 0:
        return None
    return paused_at + timedelta(seconds=settings.breaker_probe_seconds)


def next_probe_at(*, paused_at: datetime, now: datetime, first: float, longest: float) -> datetime:
    """After a probe at ``now`` of a send paused at ``paused_at``: the next one. The waits go
    ``first``, 2x, 4x ... up to ``longest`` (the pause so far plus the first wait)."""
    so_far = max(0.0, (now - paused_at).total_seconds())
    return now + timedelta(seconds=min(longest, so_far + first))


def probe_due(
    session: Session, settings: Settings, probe: Probe, *, now: datetime | None = None
) -> list[int]:
    """Probe the relay for each breaker pause whose time came; the ids of the sends resumed
    (committed; the caller starts their batches)."""
    now = now or utcnow()
    rows = session.execute(
        select(I.c.id, I.c.status_changed_at, I.c.status_reason, NL.c.relay)
        .join(NL, NL.c.id == I.c.newsletter_id)
        .where(
            I.c.status == IssueStatus.paused,
            controls.awaiting_probe(),
            I.c.breaker_probe_at <= now,
        )
    ).all()
    resumed = []
    answers: dict[str, str | RelayDown] = {}  # one probe a tick per relay choice
    for row in rows:
        paused_at = _aware(row.status_changed_at) or now
        later = next_probe_at(
            paused_at=paused_at,
            now=now,
            first=settings.breaker_probe_seconds,
            longest=settings.breaker_probe_max_seconds,
        )
        if not _claim(session, row.id, now, later):
            continue  # another tick probes it, or an operator stepped in
        if row.relay not in answers:
            try:
                answers[row.relay] = probe(row.relay)
            except RelayDown as exc:
                answers[row.relay] = exc
        answer = answers[row.relay]
        if isinstance(answer, RelayDown):
            log.warning(
                "issue %s: the relay still does not answer (%s); next probe at %s UTC",
                row.id,
                answer,
                f"{later.astimezone(UTC):%H:%M:%S}",
                extra={"issue_id": row.id},
            )
            continue
        if _resume(session, row.id, breaker.resumed_text(row.status_reason, paused_at, utcnow())):
            resumed.append(row.id)
            log.info(
                "issue %s: the relay answered (%s); sending again",
                row.id,
                answer,
                extra={"issue_id": row.id},
            )
    return resumed


def _claim(session: Session, issue_id: int, now: datetime, later: datetime) -> bool:
    """Move the probe time on before probing; False when it is not this tick's to probe."""
    result = session.execute(
        update(I)
        .where(
            I.c.id == issue_id,
            I.c.status == IssueStatus.paused,
            controls.awaiting_probe(),
            I.c.breaker_probe_at <= now,
        )
        .values(breaker_probe_at=later)
    )
    session.commit()  # before the probe: no transaction stays open while it waits
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _resume(session: Session, issue_id: int, reason: str) -> bool:
    try:
        controls.resume(session, issue_id=issue_id, reason=reason, automatic=True)
    except InvalidState:  # resumed, held or cancelled by an operator while the probe ran
        session.rollback()
        return False
    session.commit()
    return True


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
