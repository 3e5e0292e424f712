"""The confirmation outbox's claims (newsletter.audience.outbox), on SQLite and PostgreSQL.

The beat's relay claims due rows under a lease (two claimers never take one row); the task that
sends a row claims it for sending (of two tasks with one row, one sends); the web app's try marks
the row relayed or leaves it due with the error.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from newsletter import db
from newsletter.audience import outbox
from newsletter.audience.outbox import Claim, ConfirmationRequest
from newsletter.config import Settings
from newsletter.models import ConfirmationOutbox, Newsletter, utcnow
from newsletter.tables import OB
from tests.conftest import make_newsletter, make_subscribers, reloaded


def _aware(value: datetime | None) -> datetime:
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _requests(session: Session, count: int) -> tuple[Newsletter, list[ConfirmationRequest]]:
    nl = make_newsletter(session)
    people = make_subscribers(session, nl, count)
    return nl, [ConfirmationRequest(p.id or 0, (nl.id or 0,), "form", "2025-10") for p in people]


def _record(session: Session, count: int, *, now: datetime) -> list[int]:
    _, requests = _requests(session, count)
    ids = []
    for request in requests:
        recorded = outbox.record(session, request, now=now)
        assert recorded is not None and recorded.outbox_id is not None
        ids.append(recorded.outbox_id)
    session.commit()
    return ids


def test_a_recorded_request_is_a_row_with_its_id_and_nothing_is_no_row(session: Session) -> None:
    now = utcnow()
    _, (request,) = _requests(session, 1)

    assert outbox.record(session, None, now=now) is None
    recorded = outbox.record(session, request, now=now)
    session.commit()

    assert recorded is not None and recorded.outbox_id is not None
    assert recorded == replace(request, outbox_id=recorded.outbox_id)
    (row,) = session.exec(select(ConfirmationOutbox)).all()
    assert row.id == recorded.outbox_id
    assert (row.subscriber_id, row.newsletter_ids) == (
        request.subscriber_id,
        [request.newsletter_ids[0]],
    )
    assert (row.source, row.consent_text_version, row.attempts) == ("form", "2025-10", 0)
    assert row.relayed_at is None and row.sent_at is None
    # the web app's own try comes first: the beat leaves the row alone for the grace
    assert _aware(row.next_attempt_at) == now + timedelta(seconds=outbox.GRACE_SECONDS)


def test_the_beat_claims_due_rows_once_in_order_after_the_grace(session: Session) -> None:
    now = utcnow()
    ids = _record(session, 3, now=now)

    assert outbox.claim_due(session, now=now) == []  # within the grace: the web app's turn
    later = now + timedelta(seconds=outbox.GRACE_SECONDS)
    first = outbox.claim_due(session, limit=2, now=later)
    session.commit()
    second = outbox.claim_due(session, limit=2, now=later)
    session.commit()
    again = outbox.claim_due(session, limit=2, now=later)
    session.commit()

    assert [r.outbox_id for r in first] == ids[:2]
    assert [r.outbox_id for r in second] == ids[2:]
    assert again == []  # under the claim's lease: nobody takes them again
    assert first[0].newsletter_ids and first[0].source == "form"
    assert reloaded(session, ConfirmationOutbox, ids[0]).attempts == 1


def test_rows_a_dead_claimer_left_are_due_again_after_the_lease(session: Session) -> None:
    now = utcnow()
    (oid,) = _record(session, 1, now=now - timedelta(minutes=1))
    assert [r.outbox_id for r in outbox.claim_due(session, now=now)] == [oid]
    session.commit()

    lease = timedelta(seconds=outbox.RELAY_LEASE_SECONDS)
    assert outbox.claim_due(session, now=now + lease - timedelta(seconds=1)) == []
    assert [r.outbox_id for r in outbox.claim_due(session, now=now + lease)] == [oid]
    session.commit()
    assert reloaded(session, ConfirmationOutbox, oid).attempts == 2


def test_relayed_rows_are_never_claimed(session: Session, settings: Settings) -> None:
    now = utcnow()
    (oid,) = _record(session, 1, now=now)
    published: list[ConfirmationRequest] = []

    assert outbox.relay(settings.database_url, _request(session, oid), published.append)

    assert [r.outbox_id for r in published] == [oid]
    assert reloaded(session, ConfirmationOutbox, oid).relayed_at is not None
    assert outbox.claim_due(session, now=now + timedelta(hours=1)) == []


def _request(session: Session, oid: int) -> ConfirmationRequest:
    row = reloaded(session, ConfirmationOutbox, oid)
    return ConfirmationRequest(
        row.subscriber_id, tuple(row.newsletter_ids), row.source, row.consent_text_version, oid
    )


def test_a_failed_publish_leaves_the_row_due_with_the_error(
    session: Session, settings: Settings
) -> None:
    now = utcnow()
    (oid,) = _record(session, 1, now=now)

    def down(_request: ConfirmationRequest) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    assert not outbox.relay(settings.database_url, _request(session, oid), down)

    row = reloaded(session, ConfirmationOutbox, oid)
    assert row.relayed_at is None and row.attempts == 1
    assert (
        row.last_error
        == "ConnectionError: Error 111 connecting to 127.0.0.1:1. Connection refused."
    )
    # due for the beat's next run, not after the grace
    assert [r.outbox_id for r in outbox.claim_due(session, now=utcnow())] == [oid]


def test_the_beats_relay_stops_at_the_first_failure_and_leaves_the_rest_due(
    session: Session, settings: Settings
) -> None:
    ids = _record(session, 4, now=utcnow() - timedelta(minutes=1))
    published: list[int] = []

    def flaky(request: ConfirmationRequest) -> None:
        if len(published) == 1:
            published.append(-1)
            raise ConnectionError("broker gone")
        published.append(request.outbox_id or 0)

    run = outbox.relay_due(settings.database_url, flaky, batch=10)

    assert (run.relayed, run.failed) == (1, 1)
    rows = [reloaded(session, ConfirmationOutbox, i) for i in ids]
    assert rows[0].relayed_at is not None
    assert rows[1].relayed_at is None and rows[1].last_error == "ConnectionError: broker gone"
    assert all(r.relayed_at is None and r.attempts == 0 for r in rows[2:])  # released
    due = [r.outbox_id for r in outbox.claim_due(session, now=utcnow())]
    assert due == ids[2:]  # the failed one waits for its lease; the released ones are due now

    session.commit()
    # (within the stale time of the first row's relay: that one is not relayed again)
    everything = outbox.relay_due(
        settings.database_url, lambda r: None, now=utcnow() + timedelta(minutes=4)
    )
    assert everything.relayed == 3
    assert all(reloaded(session, ConfirmationOutbox, i).relayed_at is not None for i in ids)


def test_the_beats_relay_drains_a_backlog_batch_by_batch(
    session: Session, settings: Settings
) -> None:
    ids = _record(session, 7, now=utcnow() - timedelta(minutes=1))
    published: list[int] = []

    run = outbox.relay_due(
        settings.database_url, lambda r: published.append(r.outbox_id or 0), batch=3
    )

    assert run.relayed == 7
    assert published == ids
    with db.session_scope(settings.database_url) as s:
        assert outbox.waiting(s) == 0


def test_two_claimers_at_once_take_disjoint_rows_on_postgresql(settings: Settings) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: the claims cannot overlap there")
    engine = db.get_engine(settings.database_url)
    with Session(engine) as setup:
        ids = _record(setup, 6, now=utcnow() - timedelta(minutes=1))
    with Session(engine) as one, Session(engine) as two:
        first = outbox.claim_due(one, limit=3)  # its transaction holds its rows' locks
        second = outbox.claim_due(two, limit=5)  # skips them instead of waiting
        one.commit()
        two.commit()
    taken = [r.outbox_id for r in first] + [r.outbox_id for r in second]
    assert sorted(taken) == ids
    assert len(set(taken)) == 6


def test_of_two_tasks_with_one_row_one_sends(session: Session) -> None:
    (oid,) = _record(session, 1, now=utcnow())

    first = outbox.claim_send(session, oid, lease_seconds=300)
    second = outbox.claim_send(session, oid, lease_seconds=300)
    assert first.state is Claim.go and first.token
    assert second.state is Claim.busy and second.token is None

    assert outbox.finish_send(session, oid, first.token)
    assert outbox.claim_send(session, oid, lease_seconds=300).state is Claim.sent
    assert outbox.claim_send(session, oid + 1000, lease_seconds=300).state is Claim.gone
    assert reloaded(session, ConfirmationOutbox, oid).sent_at is not None


def test_a_temporary_failure_releases_the_row_and_a_dead_senders_lease_runs_out(
    session: Session,
) -> None:
    now = utcnow()
    (oid,) = _record(session, 1, now=now)
    held = outbox.claim_send(session, oid, lease_seconds=60, now=now)
    assert held.token is not None

    outbox.release_send(session, oid, held.token)  # the SMTP server said 4xx: the retry sends
    retry = outbox.claim_send(session, oid, lease_seconds=60, now=now)
    assert retry.state is Claim.go and retry.token is not None

    # that retry's worker died: another task takes the row once the lease ran out
    assert outbox.claim_send(session, oid, lease_seconds=60, now=now).state is Claim.busy
    late = outbox.claim_send(session, oid, lease_seconds=60, now=now + timedelta(seconds=60))
    assert late.state is Claim.go and late.token is not None
    # the dead task's token no longer marks nor releases the row
    outbox.release_send(session, oid, retry.token)
    assert outbox.claim_send(session, oid, lease_seconds=60, now=now).state is Claim.busy
    assert outbox.finish_send(session, oid, late.token)
    assert not outbox.finish_send(session, oid, retry.token)


def test_a_row_relayed_later_than_its_beat_claim_is_not_claimed_again(session: Session) -> None:
    # the web app's publish succeeded after a beat took the row (a slow broker): both published,
    # the row is relayed once, and the send guard makes it one email
    (oid,) = _record(session, 1, now=utcnow() - timedelta(minutes=1))
    assert outbox.claim_due(session)
    session.execute(update(OB).where(OB.c.id == oid).values(relayed_at=utcnow()))
    session.commit()
    assert outbox.claim_due(session, now=utcnow() + timedelta(hours=1)) == []


def test_rows_relayed_long_ago_are_pruned_by_the_beats_relay(
    session: Session, settings: Settings
) -> None:
    now = utcnow()
    old, recent, waiting = _record(session, 3, now=now - timedelta(minutes=1))
    long_ago = now - timedelta(days=outbox.KEEP_DAYS, seconds=1)
    session.execute(update(OB).where(OB.c.id == old).values(relayed_at=long_ago))
    session.execute(update(OB).where(OB.c.id == recent).values(relayed_at=now))
    session.commit()

    outbox.relay_due(settings.database_url, lambda r: None, batch=10, now=now)

    session.expire_all()
    assert session.get(ConfirmationOutbox, old) is None
    assert session.get(ConfirmationOutbox, recent) is not None
    # relayed by this run, kept
    assert reloaded(session, ConfirmationOutbox, waiting).relayed_at is not None


def test_a_row_relayed_and_never_sent_is_relayed_again_once_it_is_stale(
    session: Session, settings: Settings
) -> None:
    # a killed worker's confirmation: Redis would hand its message back only after an hour
    now = utcnow()
    stale = now - timedelta(seconds=outbox.STALE_SECONDS + 1)
    lost, sending, sent, recent, expired, tired = _record(session, 6, now=stale)
    session.execute(update(OB).values(relayed_at=stale))
    session.execute(
        update(OB).where(OB.c.id == sending).values(send_lease_until=now + timedelta(seconds=30))
    )
    session.execute(update(OB).where(OB.c.id == sent).values(sent_at=stale))
    session.execute(update(OB).where(OB.c.id == recent).values(relayed_at=now))
    session.execute(update(OB).where(OB.c.id == expired).values(relayed_at=now - timedelta(days=8)))
    session.execute(update(OB).where(OB.c.id == tired).values(attempts=outbox.MAX_ATTEMPTS))
    session.commit()
    published: list[int] = []

    run = outbox.relay_due(
        settings.database_url,
        lambda r: published.append(r.outbox_id or 0),
        valid_seconds=7 * 86_400,
        now=now,
    )

    assert published == [lost] and run.relayed == 1
    row = reloaded(session, ConfirmationOutbox, lost)
    assert row.relayed_at is not None and row.sent_at is None and row.attempts == 1
    assert row.last_error is None  # relayed: the note about the lost task is cleared
    # relayed again just now: the next beats leave it alone until it is stale once more
    assert (
        outbox.relay_due(settings.database_url, lambda r: published.append(0), now=now).relayed == 0
    )
    assert published == [lost]


def test_a_re_relayed_row_that_was_only_slow_is_still_one_email(session: Session) -> None:
    now = utcnow()
    (oid,) = _record(session, 1, now=now)
    first = outbox.claim_send(session, oid, lease_seconds=60, now=now)  # the slow first copy
    assert first.token is not None and outbox.finish_send(session, oid, first.token, now=now)
    session.commit()
    # its mark came in: the re-relay's copy finds the row sent and sends nothing
    assert outbox.requeue_stale(session, now=now + timedelta(hours=1)) == 0
    assert outbox.claim_send(session, oid, lease_seconds=60, now=now).state is Claim.sent
