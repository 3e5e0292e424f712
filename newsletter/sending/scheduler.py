"""The periodic tick (Celery beat, every few seconds, and every ``dispatch`` task): what needs
starting or restarting.

Issues an editor sent ("send now": ``preparing``) get their ledger filled
(``start.fill_prepared``, exactly once: a guarded move in the fill's transaction), then
PostgreSQL's statistics refreshed after a large fill. Scheduled issues whose time came are
started (unless the DKIM key cannot sign: they wait, and the log says why); rows whose lease
ran out (a killed worker) go back to pending; a send the circuit breaker paused for a relay that
was down is probed when its time came, and resumed when the relay answers (``probe``); a sending
issue with due rows and no batch in flight gets its chains restarted; a finished one is marked
sent. Rows that go out one by one (a welcome, the latest issue sent with it) are started the same
way while their issue stays as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import exists, select
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.db import get_engine
from newsletter.exceptions import NewsletterError
from newsletter.mail.dkim import signer_from_settings
from newsletter.models import DeliveryStatus, IssueStatus
from newsletter.sending import controls, counters, ledger, probe, relay_checks, start, subject_pick
from newsletter.sending.checks import qa_config
from newsletter.tables import D, I

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickResult:
    requeued: int
    batches: dict[int, int]  # issue id -> batch chains to start
    started: list[int] = field(default_factory=list)  # scheduled issues whose time came
    resumed: list[int] = field(default_factory=list)  # breaker pauses whose relay answered


def tick(
    settings: Settings, *, parallelism: int, relay_probe: probe.Probe | None = None
) -> TickResult:
    """The periodic look: ledgers of issues sent now filled; due scheduled issues started;
    expired leases back to pending; relays whose cool-down ended checked; breaker pauses probed
    (``relay_probe``, by default EHLO + NOOP to the relays of the newsletter's choice, one
    answering is enough) and resumed; idle sending issues restarted."""
    with Session(get_engine(settings.database_url)) as session:
        _fill_prepared(session)
        started = _start_due(session, settings)
        session.commit()
        if started:
            filled = sum(sum(c.values()) for c in counters.counts_of(session, started).values())
            start.refresh_statistics(session, filled=filled)
        requeued = ledger.requeue_expired(session)
        session.commit()
        subject_pick.decide_due(session)  # a test's wait over: the winner's rows become due
        relay_checks.recheck_due(settings)  # relays whose cool-down ended: back if they answer
        resumed = probe.probe_due(
            session, settings, relay_probe or relay_checks.any_relay(settings)
        )
        batches: dict[int, int] = {}
        for issue_id in ledger.sending_issue_ids(session):
            if ledger.finish_if_done(session, issue_id=issue_id):
                continue
            ready = ledger.ready_count(session, issue_id=issue_id)
            if ready and not ledger.in_flight(session, issue_id=issue_id):
                batches[issue_id] = chains(ready, settings.batch_size, parallelism)
        for issue_id in late_issue_ids(session):  # welcomes, and issues sent with them
            ready = ledger.ready_count(session, issue_id=issue_id)
            if ready and not ledger.in_flight(session, issue_id=issue_id):
                batches[issue_id] = chains(ready, settings.batch_size, parallelism)
        session.commit()
    return TickResult(requeued, batches, started, resumed)


def _fill_prepared(session: Session) -> list[int]:
    """Fill the ledger of each issue sent now (``preparing``), one transaction each."""
    filled = []
    for issue_id in start.preparing_issue_ids(session):
        done = start.fill_prepared(session, issue_id=issue_id)
        session.commit()
        if done is not None:
            filled.append(issue_id)
            start.refresh_statistics(session, filled=done.recipients)
    return filled


def _start_due(session: Session, settings: Settings) -> list[int]:
    """Scheduled issues whose time came, unless the DKIM key cannot sign (they wait for a fix)."""
    try:
        signer_from_settings(settings)
    except NewsletterError as exc:
        if controls.due_issue_ids(session):
            log.error("scheduled issues not started: %s", exc)
        return []
    return controls.start_due(session, checks=qa_config(settings))


def chains(ready: int, batch_size: int, parallelism: int) -> int:
    """How many batch chains to start for ``ready`` rows."""
    return max(1, min(parallelism, -(-ready // batch_size)))


def late_issue_ids(session: Session) -> list[int]:
    """Issues not sending whose rows go out one by one (welcomes, and the latest issue sent with
    them) and that hold a pending row: one EXISTS per issue on the ledger's index."""
    waiting = exists().where(D.c.issue_id == I.c.id, D.c.status == DeliveryStatus.pending)
    stmt = select(I.c.id).where(ledger.claimable(), I.c.status != IssueStatus.sending, waiting)
    return list(session.execute(stmt).scalars().all())
