"""The circuit breaker's half-open state: the probe schedule (an injected clock), which pauses get
probed, and the resume a probe makes. SQLite and PostgreSQL; the probes are callables here
(tests/integration/test_breaker_recovery.py probes a real SMTP sink through a real worker)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.exceptions import InvalidState
from newsletter.models import Issue, IssueStatus, Newsletter
from newsletter.sending import breaker, controls, probe, progress, relay_checks
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import SMTPSink, free_port
from newsletter.transports.smtp import SMTPConfig
from tests.conftest import make_issue, make_subscribers

T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def test_the_probe_schedule_doubles_up_to_the_cap() -> None:
    # a relay that never answers: each probe at the time the previous one set
    times, now = [], T0 + timedelta(seconds=30)
    for _ in range(8):
        times.append(now)
        now = probe.next_probe_at(paused_at=T0, now=now, first=30, longest=600)
    waits = [(b - a).total_seconds() for a, b in zip(times, [*times[1:], now], strict=True)]
    assert waits == [60, 120, 240, 480, 600, 600, 600, 600]
    # a tick that comes late (beat down for a while): the wait goes on from the probe's time
    late = T0 + timedelta(seconds=100)
    assert probe.next_probe_at(paused_at=T0, now=late, first=30, longest=600) == late + timedelta(
        seconds=130
    )


def test_the_first_probe_comes_after_the_cool_down_or_never(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert probe.first_probe_at(settings, T0) == T0 + timedelta(seconds=30)
    monkeypatch.setenv("NEWSLETTER_BREAKER_PROBE_SECONDS", "0")
    assert probe.first_probe_at(Settings(), T0) is None


def test_the_verdict_says_relay_down_only_when_most_failures_were_temporary() -> None:
    tripper = breaker.CircuitBreaker(window=10, min_results=4, threshold=0.5)
    for _ in range(3):
        tripper.record(1, T0, failed=True, reply="cannot connect")
    down = tripper.record(1, T0, failed=True, reply="451 4.3.0 later")
    assert down.tripped and down.relay_down
    for _ in range(3):
        tripper.record(2, T0, failed=True, reply="554 5.7.1 policy", permanent=True)
    refused = tripper.record(2, T0, failed=True, reply="451 4.3.0 later")
    assert refused.tripped and not refused.relay_down


def _sending(session: Session) -> int:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 3)
    assert fx.issue.id is not None
    fill_ledger(session, issue_id=fx.issue.id, checks=QAConfig())
    session.commit()
    return fx.issue.id


def _issue(session: Session, issue_id: int) -> Issue:
    session.expire_all()
    issue = session.get(Issue, issue_id)
    assert issue is not None
    return issue


def _aware(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Relay:
    """A probe that answers as told (``up``: every relay choice; ``up_only``: those), and
    counts its calls and the relay choices it was asked about."""

    def __init__(self, up: bool, up_only: frozenset[str] = frozenset()) -> None:
        self.up, self.up_only, self.calls, self.asked = up, up_only, 0, list[str]()

    def __call__(self, choice: str) -> str:
        self.calls += 1
        self.asked.append(choice)
        if not (self.up or choice in self.up_only):
            raise probe.RelayDown("127.0.0.1:1: [Errno 111] Connection refused")
        return "250 OK"


def test_a_breaker_pause_is_probed_on_time_pushed_back_then_resumed(
    session: Session, settings: Settings
) -> None:
    issue_id = _sending(session)
    reason = "circuit breaker: 20 of the last 20 sends failed (last: cannot connect)"
    tripped = _aware(_issue(session, issue_id).created_at)  # any time: the trip sets its own
    assert controls.trip(session, issue_id=issue_id, reason=reason, probe_at=T0)
    session.commit()
    paused_at = _aware(_issue(session, issue_id).status_changed_at)
    assert paused_at >= tripped

    state = progress.progress(session, issue_id=issue_id)
    assert state.awaiting_probe and state.next_probe_at == T0
    assert state.reason == (
        f"paused by the circuit breaker at {paused_at:%H:%M:%S} UTC: 20 of the last 20 sends "
        "failed (last: cannot connect); next probe of the relay at 12:00:00 UTC"
    )
    assert controls.status(session, issue_id=issue_id).as_dict()["next_probe_at"] == (
        T0.isoformat()
    )

    relay = Relay(up=False)
    early = T0 - timedelta(seconds=1)
    assert probe.probe_due(session, settings, relay, now=early) == []
    assert relay.calls == 0  # not its time yet

    now = paused_at + timedelta(seconds=40)  # T0 is long past: due
    assert probe.probe_due(session, settings, relay, now=now) == []
    assert relay.calls == 1
    issue = _issue(session, issue_id)
    assert issue.status == IssueStatus.paused
    assert _aware(issue.breaker_probe_at) == now + timedelta(seconds=40 + 30)  # pushed back
    # a second tick at the same time probes nothing: the time moved on
    assert probe.probe_due(session, settings, relay, now=now) == []
    assert relay.calls == 1

    relay.up = True
    later = _aware(issue.breaker_probe_at)
    assert probe.probe_due(session, settings, relay, now=later) == [issue_id]
    issue = _issue(session, issue_id)
    assert issue.status == IssueStatus.sending and issue.breaker_probe_at is None
    assert issue.status_reason is not None
    assert issue.status_reason.startswith("resumed automatically after the relay answered again")
    assert issue.status_reason.endswith(
        f"(paused at {paused_at:%H:%M:%S} UTC: 20 of the last 20 sends failed (last: cannot "
        "connect))"
    )
    assert progress.progress(session, issue_id=issue_id).reason == issue.status_reason


def test_an_operator_pause_is_never_probed_and_a_hold_stops_probing(
    session: Session, settings: Settings
) -> None:
    by_hand, held, refused = _sending(session), _sending(session), _sending(session)
    controls.pause(session, issue_id=by_hand, reason="paused by hand")
    controls.trip(session, issue_id=held, reason="circuit breaker: down", probe_at=T0)
    # the breaker's pause for refusals (5xx) and the other guards' pauses have no probe time
    controls.trip(session, issue_id=refused, reason="circuit breaker: 554 5.7.1")
    session.commit()
    issue = controls.pause(session, issue_id=held, reason="held by an operator")
    session.commit()
    assert issue.status == IssueStatus.paused and issue.status_reason == "held by an operator"
    with pytest.raises(InvalidState, match=r"cannot pause issue .*: it is paused"):
        controls.pause(session, issue_id=by_hand)  # an operator's pause stays as it is

    relay = Relay(up=True)
    far = T0 + timedelta(days=3650)
    assert probe.probe_due(session, settings, relay, now=far) == []
    assert relay.calls == 0
    for issue_id in (by_hand, held, refused):
        assert _issue(session, issue_id).status == IssueStatus.paused
        assert not progress.progress(session, issue_id=issue_id).awaiting_probe


def test_an_operator_resume_before_the_probe_ends_the_probing(
    session: Session, settings: Settings
) -> None:
    issue_id = _sending(session)
    controls.trip(session, issue_id=issue_id, reason="circuit breaker: down", probe_at=T0)
    session.commit()
    controls.resume(session, issue_id=issue_id)
    session.commit()
    issue = _issue(session, issue_id)
    assert issue.status == IssueStatus.sending and issue.breaker_probe_at is None
    assert issue.status_reason is None
    # and the automatic resume refuses an issue that waits for no probe
    controls.pause(session, issue_id=issue_id)
    with pytest.raises(InvalidState):
        controls.resume(session, issue_id=issue_id, reason="x", automatic=True)


def test_the_smtp_probe_says_hello_to_a_real_relay_and_fails_on_a_closed_port() -> None:
    with SMTPSink() as sink:
        answer = probe.smtp_probe(SMTPConfig("127.0.0.1", sink.port, timeout=5))()
    assert answer.startswith("250")
    closed = free_port()
    with pytest.raises(probe.RelayDown, match=f"127.0.0.1:{closed}"):
        probe.smtp_probe(SMTPConfig("127.0.0.1", closed, timeout=5))()


def test_a_send_routed_to_a_relay_is_resumed_when_that_relay_answers_not_another(
    session: Session, settings: Settings
) -> None:
    routed, anyone = _sending(session), _sending(session)
    newsletter = session.get(Newsletter, _issue(session, routed).newsletter_id)
    assert newsletter is not None
    newsletter.relay = "eu"
    session.add(newsletter)
    for issue_id in (routed, anyone):
        controls.trip(session, issue_id=issue_id, reason="circuit breaker: down", probe_at=T0)
    session.commit()

    relay = Relay(up=False, up_only=frozenset({""}))  # some relay answers; "eu" does not
    assert probe.probe_due(session, settings, relay, now=T0) == [anyone]
    assert sorted(relay.asked) == ["", "eu"]  # one probe per relay choice
    assert _issue(session, routed).status == IssueStatus.paused

    relay.up_only = frozenset({"", "eu"})
    later = _aware(_issue(session, routed).breaker_probe_at)
    assert probe.probe_due(session, settings, relay, now=later) == [routed]


def test_the_relays_probe_asks_the_newsletters_relay_or_any(settings: Settings) -> None:
    closed = free_port()
    with SMTPSink() as sink:
        given = [
            {"name": "up", "host": "127.0.0.1", "port": sink.port},
            {"name": "down", "host": "127.0.0.1", "port": closed},
        ]
        probe_of = relay_checks.any_relay(
            settings.model_copy(update={"smtp_relays": json.dumps(given), "smtp_timeout": 5})
        )

        assert probe_of("") == "up answered"  # any relay: one answering is enough
        assert probe_of("up") == "up answered"
        with pytest.raises(probe.RelayDown, match=f"down: 127.0.0.1:{closed}"):
            probe_of("down")  # the newsletter's own relay, still down
        with pytest.raises(probe.RelayDown, match="'gone' is not configured"):
            probe_of("gone")
