"""No mail after an unsubscribe is answered (``sending.hands``): subscribers who leave while a
batch holds their claimed rows get nothing that reaches the sink after their unsubscribe
committed; the rows the batch had not reached are skipped. Real aiosmtpd sink, SQLite and
PostgreSQL, one connection and a pool of three."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from sqlmodel import Session

from newsletter import db
from newsletter.audience import lifecycle
from newsletter.config import Settings
from newsletter.sending import counters, prepare
from newsletter.sending.batch import run_batch
from newsletter.transports.memory import MemoryTransport
from newsletter.transports.pool import TransportPool
from newsletter.transports.sink import Received, SMTPSink
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.unit.test_ledger import _rows, _start

#: each trigger's reply is held this long, so that its unsubscribes run while it is in flight
HOLD = 0.08
#: every other reply is held this long, so that the batch lasts a second or so
PACE = 0.003


@pytest.fixture(autouse=True)
def _fresh_template_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepare, "_templates", {})


class Leaving:
    """Unsubscribes some readers (each in a thread of its own, as the web app would) when a
    given reader's message reaches the sink; keeps every arrival's time and every answer's."""

    def __init__(self, settings: Settings, newsletter_id: int) -> None:
        self.settings, self.newsletter_id = settings, newsletter_id
        self.plan: dict[str, list[int]] = {}  # trigger email -> subscriber ids to unsubscribe
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.answered: dict[int, float] = {}
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def on_message(self, received: Received) -> None:
        now = time.monotonic()
        for to in received.rcpt_tos:
            with self.lock:
                self.arrivals[to].append(now)
            leaving = self.plan.get(to, [])
            for subscriber_id in leaving:
                thread = threading.Thread(target=self.unsubscribe, args=(subscriber_id,))
                thread.start()
                self.threads.append(thread)
            time.sleep(HOLD if leaving else PACE)  # the reply waits: the message is in flight

    def unsubscribe(self, subscriber_id: int) -> None:
        with db.session_scope(self.settings.database_url) as session:
            changed = lifecycle.unsubscribe(
                session,
                subscriber_id=subscriber_id,
                newsletter_id=self.newsletter_id,
                source="one-click",
            )
        assert changed == (self.newsletter_id,)
        with self.lock:
            self.answered[subscriber_id] = time.monotonic()  # committed: the answer goes now


@pytest.mark.parametrize("connections", [1, 3])
def test_nobody_is_mailed_after_their_unsubscribe_is_answered(
    session: Session, settings: Settings, connections: int
) -> None:
    st = _start(session, active=100)
    newsletter_id: int = st.fx.newsletter.id  # type: ignore[assignment]
    email_of = {p.id: p.email for p in st.active}
    order = [row.subscriber_id for row in _rows(session, st.issue_id)]  # claim order
    leaving = Leaving(settings, newsletter_id)
    # while a message is in flight: the next reader (in the same hand, or the next one), one a
    # few rows on, and at the first message readers near the end of the claim
    for at in (0, 12, 25, 40):
        leaving.plan[email_of[order[at]]] = [order[at + 1], order[at + 5]]
    leaving.plan[email_of[order[0]]] += order[90:95]
    targets = {i for ids in leaving.plan.values() for i in ids}
    with SMTPSink(on_message=leaving.on_message) as sink:
        config = SMTPConfig(host=sink.host, port=sink.port, timeout=10)
        pool = TransportPool(lambda: SMTPTransport(config), connections)
        try:
            result = run_batch(
                settings,
                issue_id=st.issue_id,
                transport=SMTPTransport(config),
                pool=pool if connections > 1 else None,
            )
        finally:
            pool.close()
        for thread in leaving.threads:
            thread.join(30)
    assert result.claimed == 100
    assert set(leaving.answered) == targets
    arrivals = {email_of[i]: leaving.arrivals.get(email_of[i], []) for i in order}
    late = {
        email_of[i]: [t - leaving.answered[i] for t in arrivals[email_of[i]]]
        for i in targets
        if any(t >= leaving.answered[i] for t in arrivals[email_of[i]])
    }
    assert late == {}, "mailed after the unsubscribe was answered (seconds after)"
    statuses = {row.subscriber_id: row.status for row in _rows(session, st.issue_id)}
    skipped = {i for i in targets if statuses[i] == "skipped"}
    assert {statuses[i] for i in targets} <= {"sent", "skipped"}
    assert skipped  # claimed before they left, never sent
    if settings.database_url.startswith("postgresql"):
        # a row lock holds up only the readers in hand; SQLite's one write lock is not fair
        # (hands.SQLITE_PAUSE), so there the ones at the end may wait until after them
        assert set(order[90:95]) <= skipped
    assert all(arrivals[email_of[i]] == [] for i in skipped)
    stayed = [i for i in order if i not in targets]
    assert {statuses[i] for i in stayed} == {"sent"}
    assert all(len(arrivals[email_of[i]]) == 1 for i in stayed)
    kept, scanned = counters.check(session, st.issue_id)
    assert kept == scanned
    assert result.skipped == len(skipped)


def test_an_unsubscribe_waits_for_the_message_in_hand(session: Session, settings: Settings) -> None:
    """The reader's own message is in flight when they unsubscribe: the answer comes after the
    server's reply, and the ledger says sent."""
    st = _start(session, active=3)
    newsletter_id: int = st.fx.newsletter.id  # type: ignore[assignment]
    reader = st.active[1]
    leaving = Leaving(settings, newsletter_id)
    leaving.plan[reader.email] = [reader.id]  # type: ignore[list-item]
    replied: list[float] = []

    class Timed(MemoryTransport):
        def send(self, envelope_from: str, to: str, data: bytes) -> str:
            reply = inner.send(envelope_from, to, data)
            if to == reader.email:
                replied.append(time.monotonic())
            return reply

    with SMTPSink(on_message=leaving.on_message) as sink:
        inner = SMTPTransport(SMTPConfig(host=sink.host, port=sink.port, timeout=10))
        run_batch(settings, issue_id=st.issue_id, transport=Timed())
        for thread in leaving.threads:
            thread.join(30)
    assert len(replied) == 1
    assert leaving.answered[reader.id] > replied[0]  # type: ignore[index]
    statuses = {row.subscriber_id: row.status for row in _rows(session, st.issue_id)}
    assert statuses[reader.id] == "sent"  # type: ignore[index]
