"""Several SMTP relays (issue 17): weights, failover, a relay per newsletter, caps per domain group.

Real aiosmtpd sinks as the relays, a real Celery worker where the spread is measured, real
databases (both) for the ledger and the relays' health.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from newsletter.config import Settings, get_settings
from newsletter.content.qa import QAConfig
from newsletter.models import Delivery, DeliveryStatus, Newsletter
from newsletter.sending import batch, breaker, relay_checks, relays
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import SMTPSink
from tests.conftest import celery_worker, make_issue, make_newsletter, make_subscribers
from tests.integration.test_celery_delivery import wait_until_sent
from worker import celery_app

REDIS_DB = 11  # a database of its own on the shared server, flushed before each test


@pytest.fixture(autouse=True)
def _fresh_breakers() -> None:
    # each test's relays and issues start with no history in this process (issue ids repeat)
    relays._breakers.clear()
    breaker._breakers.clear()


@pytest.fixture
def two_sinks() -> Iterator[tuple[SMTPSink, SMTPSink]]:
    with SMTPSink() as a, SMTPSink() as b:
        yield a, b


def relay_json(*relays_: tuple[str, SMTPSink, int], caps: bool = False) -> str:
    return json.dumps(
        [
            {"name": name, "host": sink.host, "port": sink.port, "weight": weight, "caps": caps}
            for name, sink, weight in relays_
        ]
    )


def with_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """The test's settings with more NEWSLETTER_* variables (the worker tasks read them too)."""
    for key, value in env.items():
        monkeypatch.setenv(f"NEWSLETTER_{key.upper()}", value)
    get_settings.cache_clear()
    celery_app.forget_settings()
    return get_settings()


def start(session: Session, newsletter: Newsletter | None = None) -> int:
    fx = make_issue(session, newsletter=newsletter)
    return _started(session, fx.issue.id)  # type: ignore[arg-type]


def _started(session: Session, issue_id: int) -> int:
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()
    return issue_id


def run_until_done(settings: Settings, issue_id: int, transport: relays.RelaySet) -> None:
    """Batches in this process until the issue is sent (retries waited for)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = batch.run_batch(settings, issue_id=issue_id, transport=transport)
        if result.finished:
            return
        if not result.claimed:
            time.sleep(0.2)  # a retry waiting for its time
    raise AssertionError(f"issue {issue_id} not finished in 60 s")


def wait_for_state(settings: Settings, name: str, state: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(s.relay.name == name and s.state == state for s in relay_checks.statuses(settings)):
            return
        time.sleep(0.1)
    raise AssertionError(f"relay {name} not {state} in {timeout} s")


def recipients(*sinks: SMTPSink) -> Counter[str]:
    return Counter(m.rcpt_tos[0] for sink in sinks for m in sink.messages)


# ---------------------------------------------------------------- weights, through Celery


def test_two_relays_weighted_3_to_1_share_a_real_send_and_a_newsletter_may_name_one(
    session: Session,
    settings: Settings,
    redis_url: str,
    two_sinks: tuple[SMTPSink, SMTPSink],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worker.tasks import dispatch

    a, b = two_sinks
    spread = make_newsletter(session)
    people = make_subscribers(session, spread, 80)
    only_b = make_newsletter(session, relay="b")
    make_subscribers(session, only_b, 20)
    env = {"smtp_relays": relay_json(("a", a, 3), ("b", b, 1)), "batch_size": "10"}
    with celery_worker(redis_url, REDIS_DB, a, monkeypatch, **env) as current:
        first = start(session, spread)
        dispatch.delay(first)
        assert wait_until_sent(current, first).counts == {"sent": 80}
        on_a, on_b = len(a.messages), len(b.messages)
        # smooth weighted round robin per connection: 3 of every 4 to a (two worker threads,
        # each with its own turn; a batch ends where it ends, so allow a little either way)
        assert on_a + on_b == 80
        assert 56 <= on_a <= 64, (on_a, on_b)
        assert recipients(a, b) == Counter(p.email for p in people)

        second = start(session, only_b)
        dispatch.delay(second)
        assert wait_until_sent(current, second).counts == {"sent": 20}
        assert len(a.messages) == on_a  # the newsletter's relay alone
        assert len(b.messages) == on_b + 20


# ---------------------------------------------------------------- failover


def test_a_relay_that_stops_mid_send_fails_over_and_comes_back_when_it_is_restarted(
    session: Session,
    settings: Settings,
    two_sinks: tuple[SMTPSink, SMTPSink],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = two_sinks
    current = with_env(
        monkeypatch,
        smtp_relays=relay_json(("a", a, 1), ("b", b, 1)),
        batch_size="10",
        relay_cooldown_seconds="1",
        relay_cooldown_max_seconds="2",
        retry_base_seconds="0.2",
    )
    fx = make_issue(session)
    people = make_subscribers(session, fx.newsletter, 60)
    issue_id = _started(session, fx.issue.id)  # type: ignore[arg-type]

    transport = relays.relay_set(current)
    try:
        # b stops between two batches once it has 10 messages: its connection stays open and
        # finds the server gone on its next message, and no new one opens
        while len(b.messages) < 10:
            batch.run_batch(current, issue_id=issue_id, transport=transport)
        b.stop()
        run_until_done(current, issue_id, transport)
    finally:
        transport.close()

    got = recipients(a, b)
    assert got == Counter(p.email for p in people)  # every reader once: none lost, none twice
    assert 10 <= len(b.messages) < 60
    (status_b,) = [s for s in relay_checks.statuses(current) if s.relay.name == "b"]
    assert status_b.state in ("out", "due")
    assert "cannot connect" in status_b.reason and str(b.port) in status_b.reason

    restarted = SMTPSink(port=b.port).start()
    try:
        wait_for_state(current, "b", "due")  # its cool-down over (1 s, doubling up to 2 s)
        assert relay_checks.recheck_due(current) == {"b": None}
        (status_b,) = [s for s in relay_checks.statuses(current) if s.relay.name == "b"]
        assert status_b.state == "up" and status_b.reason.startswith("back after: cannot connect")
        # and it takes its share again
        more = start(session, fx.newsletter)
        transport = relays.relay_set(current)
        try:
            run_until_done(current, more, transport)
        finally:
            transport.close()
        assert len(restarted.messages) == 30
    finally:
        restarted.stop()


def test_every_relay_out_fails_temporarily_and_the_issue_breaker_pauses_the_send(
    session: Session,
    settings: Settings,
    two_sinks: tuple[SMTPSink, SMTPSink],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """... and uses up none of the messages' tries: with one try allowed, every row is still
    pending (its try given back) when the breaker pauses the send."""
    a, b = two_sinks
    current = with_env(
        monkeypatch,
        smtp_relays=relay_json(("a", a, 1), ("b", b, 1)),
        breaker_min_results="5",
        max_attempts="1",
    )
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 12)
    issue_id = _started(session, fx.issue.id)  # type: ignore[arg-type]
    a.stop()
    b.stop()
    transport = relays.relay_set(current)
    try:
        result = batch.run_batch(current, issue_id=issue_id, transport=transport)
    finally:
        transport.close()
    assert result.stopped and result.sent == 0 and result.retried >= 5
    session.expire_all()
    rows = session.exec(select(Delivery).where(Delivery.issue_id == issue_id)).all()
    assert len(rows) == 12
    assert {(r.status, r.attempts) for r in rows} == {(DeliveryStatus.pending, 0)}
    from newsletter.models import Issue, IssueStatus

    issue = session.get(Issue, issue_id)
    assert issue is not None and issue.status == IssueStatus.paused
    assert "no relay to send through" in (issue.status_reason or "")
    assert issue.breaker_probe_at is not None  # the relays down: a probe resumes it
    assert {s.relay.name: s.state for s in relay_checks.statuses(current)} == {
        "a": "out",
        "b": "out",
    }


# ---------------------------------------------------------------- caps per domain group


def test_a_capped_relay_opens_a_new_connection_after_each_groups_cap(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SMTPSink() as sink:
        caps = {"gmail": {"per_connection": 5}, "yahoo": {"per_connection": 3}}
        current = with_env(
            monkeypatch,
            smtp_relays=relay_json(("mx", sink, 1), caps=True),
            domain_caps=json.dumps(caps),
        )
        fx = make_issue(session)
        make_subscribers(session, fx.newsletter, 12, domain="gmail.com")
        make_subscribers(session, fx.newsletter, 7, domain="yahoo.co.uk")
        make_subscribers(session, fx.newsletter, 3, domain="example.org")
        issue_id = _started(session, fx.issue.id)  # type: ignore[arg-type]
        transport = relays.relay_set(current)
        try:
            run_until_done(current, issue_id, transport)
        finally:
            transport.close()
        assert len(sink.messages) == 22
        # gmail 12 at 5 a connection: 3; yahoo 7 at 3: 3; others (cap 100): 1
        assert sink.hellos == 7


def test_a_groups_rate_holds_over_the_span_measured(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrivals: list[float] = []
    with SMTPSink(on_message=lambda _r: arrivals.append(time.monotonic())) as sink:
        rate = 20.0  # a burst of 20, then 20 a second
        current = with_env(
            monkeypatch,
            smtp_relays=relay_json(("mx", sink, 1), caps=True),
            domain_caps=json.dumps({"gmail": {"rate": rate}}),
        )
        fx = make_issue(session)
        make_subscribers(session, fx.newsletter, 50, domain="gmail.com")
        issue_id = _started(session, fx.issue.id)  # type: ignore[arg-type]
        transport = relays.relay_set(current)
        began = time.monotonic()
        try:
            run_until_done(current, issue_id, transport)
        finally:
            transport.close()
    assert len(arrivals) == 50
    # a token bucket hands out at most its burst plus the rate times the span measured
    # between the first and the last arrival (1 token of clock slack): 50 take at least 1.45 s
    span = max(arrivals) - min(arrivals)
    assert len(arrivals) <= 20 + rate * span + 1, span
    assert max(arrivals) - began < 10  # and the send did go on at about that rate
