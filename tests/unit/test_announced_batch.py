"""A batch over SMTP with PIPELINING: on PostgreSQL each message's end opens the next one's
transaction (``SMTPTransport.send_then``), so a message costs one round trip. The row announced
is let in (status, rate, lease, hand) before the message before it leaves; when it does not go
after all (the breaker tripped on that message, or its own message could not be built) its
connection goes, and the server never gets an empty message. On SQLite nothing is announced.
Against a real aiosmtpd server that records every command."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.models import Subscriber, Subscription, SubscriptionStatus
from newsletter.sending import prepare, send_loop
from newsletter.sending.batch import run_batch
from newsletter.sending.breaker import CircuitBreaker
from newsletter.transports.sink import free_port
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.unit.test_ledger import _rows, _start, _statuses
from tests.unit.test_smtp_pipelining import Script, _ScriptedHandler


@pytest.fixture(autouse=True)
def _fresh_template_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepare, "_templates", {})


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def transport(script: Script) -> Iterator[SMTPTransport]:
    controller = Controller(_ScriptedHandler(script), hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp = SMTPTransport(SMTPConfig(host="127.0.0.1", port=controller.port, timeout=5))
    try:
        yield smtp
    finally:
        smtp.close()
        controller.stop()


@pytest.fixture
def alone(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each MAIL FROM written on its own (not after a message's dot), and each connection."""
    events: list[str] = []
    send, connect = smtplib.SMTP.send, smtplib.SMTP.connect

    def logged_send(self: smtplib.SMTP, s: Any) -> None:
        if (s.decode() if isinstance(s, bytes) else s).upper().startswith("MAIL FROM"):
            events.append("commands")
        send(self, s)

    def logged_connect(self: smtplib.SMTP, *args: Any, **kw: Any) -> tuple[int, bytes]:
        events.append("connect")
        return connect(self, *args, **kw)

    monkeypatch.setattr(smtplib.SMTP, "send", logged_send)
    monkeypatch.setattr(smtplib.SMTP, "connect", logged_connect)
    return events


def _postgres(settings: Settings) -> bool:
    return settings.database_url.startswith("postgresql")


def _claim_order(session: Session, active: int) -> tuple[int, list[Subscriber]]:
    """A started issue with ``active`` subscribers: its id, and them in the claim's order."""
    st = _start(session, active=active)
    people = {p.id: p for p in st.active}
    order = [r.subscriber_id for r in _rows(session, st.issue_id)]
    return st.issue_id, [people[i] for i in order if i in people]


def _failing_to_build(
    monkeypatch: pytest.MonkeyPatch, subscriber: Subscriber, error: Exception
) -> None:
    """Building ``subscriber``'s message raises ``error``."""
    build = send_loop.recipient

    def failing(settings: Settings, prep: Any, **kw: Any) -> Any:
        if kw["subscriber_id"] == subscriber.id:
            raise error
        return build(settings, prep, **kw)

    monkeypatch.setattr(send_loop, "recipient", failing)


def test_each_message_announces_the_next_and_every_row_goes_once(
    session: Session, settings: Settings, transport: SMTPTransport, script: Script, alone: list[str]
) -> None:
    issue_id, claim = _claim_order(session, 30)
    left = claim[8]  # a row in the middle of the claim
    subscription = session.exec(
        select(Subscription).where(Subscription.subscriber_id == left.id)
    ).one()
    subscription.status = SubscriptionStatus.unsubscribed  # after the fill: skipped at sending
    session.add(subscription)
    session.commit()

    result = run_batch(settings, issue_id=issue_id, transport=transport)

    mailed = [p for p in claim if p is not left]
    assert sorted(r[0] for _, r, _ in script.accepted) == sorted(p.email for p in mailed)
    assert all(content for _, _, content in script.accepted)
    assert script.seen.count("DATA") == len(mailed)  # no DATA ended but for a message
    statuses = _statuses(session, issue_id)
    assert {statuses[p.id] for p in mailed} == {"sent"}  # type: ignore[index]
    assert statuses[left.id] == "skipped"  # type: ignore[index]
    assert (result.sent, result.skipped) == (29, 1)
    assert alone.count("connect") == 1
    if _postgres(settings):
        # the first message's commands, and those of the one after the skipped row: every
        # other message's were written after the dot of the message before it
        assert alone.count("commands") == 2
    else:
        assert alone.count("commands") == 29


def test_a_breaker_tripped_by_a_message_drops_the_announced_next_one_unsent(
    session: Session, settings: Settings, transport: SMTPTransport, script: Script, alone: list[str]
) -> None:
    issue_id, claim = _claim_order(session, 8)
    script.data[claim[2].email.encode()] = "451 4.3.0 try again later"
    breaker = CircuitBreaker(window=10, min_results=3, threshold=0.3)  # trips on the third

    result = run_batch(settings, issue_id=issue_id, transport=transport, breaker=breaker)

    assert result.stopped
    assert [r[0] for _, r, _ in script.accepted] == [claim[0].email, claim[1].email]
    assert script.seen.count("DATA") == 3  # two delivered, one refused: none ended empty
    statuses = _statuses(session, issue_id)
    assert [statuses[p.id] for p in claim[:2]] == ["sent", "sent"]  # type: ignore[index]
    # the refused one waits for its retry; the announced one and the rest were released
    assert {statuses[p.id] for p in claim[2:]} == {"pending"}  # type: ignore[index]
    if _postgres(settings):
        assert script.seen.count(f"RCPT {claim[3].email}") == 1  # announced, never ended
        assert alone.count("connect") == 1
        transport.send(settings.bounce_address, claim[3].email, b"Subject: later\r\n\r\nhi\r\n")
        assert alone.count("connect") == 2  # its connection went: a new one for what comes
    else:
        assert script.seen.count(f"RCPT {claim[3].email}") == 0


def test_an_announced_row_whose_message_cannot_be_built_fails_alone_and_the_batch_goes_on(
    session: Session,
    settings: Settings,
    transport: SMTPTransport,
    script: Script,
    alone: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issue_id, claim = _claim_order(session, 6)
    broken = claim[2]
    _failing_to_build(monkeypatch, broken, InvalidInput("a personal value that cannot be written"))

    result = run_batch(settings, issue_id=issue_id, transport=transport)

    mailed = [p for p in claim if p is not broken]
    assert [r[0] for _, r, _ in script.accepted] == [p.email for p in mailed]
    assert script.seen.count("DATA") == len(mailed)
    statuses = _statuses(session, issue_id)
    assert statuses[broken.id] == "failed"  # type: ignore[index]
    assert {statuses[p.id] for p in mailed} == {"sent"}  # type: ignore[index]
    assert (result.sent, result.failed) == (5, 1)
    if _postgres(settings):
        assert script.seen.count(f"RCPT {broken.email}") == 1  # announced, then dropped
        assert alone.count("connect") == 2
    else:
        assert script.seen.count(f"RCPT {broken.email}") == 0
        assert alone.count("connect") == 1


def test_a_message_built_ahead_that_raised_raises_at_its_own_turn_after_the_one_before_landed(
    session: Session,
    settings: Settings,
    transport: SMTPTransport,
    script: Script,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issue_id, claim = _claim_order(session, 5)
    broken = claim[2]
    _failing_to_build(monkeypatch, broken, RuntimeError("a bug in building a message"))

    with pytest.raises(RuntimeError, match="a bug in building"):
        run_batch(settings, issue_id=issue_id, transport=transport)

    # the message whose send built the broken one ahead was delivered and recorded first
    assert [r[0] for _, r, _ in script.accepted] == [claim[0].email, claim[1].email]
    assert script.seen.count("DATA") == 2
    statuses = _statuses(session, issue_id)
    assert [statuses[p.id] for p in claim[:2]] == ["sent", "sent"]  # type: ignore[index]
    assert statuses[broken.id] == "sending"  # type: ignore[index]  # back after its lease
