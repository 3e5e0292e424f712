"""Outgoing webhooks against a real local HTTP receiver, on SQLite and on PostgreSQL.

The receiver (``http.server`` in a thread) records every request and answers with the statuses
it is told to, in order, then 200. Deliveries go through ``newsletter.webhooks.deliver`` and the
worker's task functions (called directly: no broker needed for them).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from newsletter import apitokens, delivery, sender, subscribers, webhooks
from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.models import WebhookDelivery, WebhookStatus, utcnow
from newsletter.sink import SMTPSink, free_port
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.conftest import make_issue, make_subscribers
from worker import tasks


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    answers: list[int] = field(default_factory=list)  # statuses to give first, then 200
    requests: list[Request] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(free_port())
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                state.requests.append(Request(self.path, dict(self.headers.items()), body))
                code = state.answers.pop(0) if state.answers else 200
            reply = b"ok" if code == 200 else b"receiver exploded"
            self.send_response(code)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _rows(session: Session) -> list[WebhookDelivery]:
    session.expire_all()
    return list(session.scalars(select(WebhookDelivery).order_by(col(WebhookDelivery.id))))


def test_signature_verifies_and_payload_arrives(
    session: Session, settings: Settings, receiver: Receiver
) -> None:
    fx = make_issue(session)
    (person,) = make_subscribers(session, fx.newsletter, 1)
    endpoint = webhooks.register(session, receiver.url, ["subscriber.unsubscribed"])
    session.commit()

    assert subscribers.unsubscribe(
        session, subscriber_id=person.id, newsletter_id=None, source="test"
    )
    session.commit()
    (row,) = _rows(session)
    assert row.event_type == "subscriber.unsubscribed"

    attempt = webhooks.deliver(session, row.id, settings=settings)  # type: ignore[arg-type]
    session.commit()
    assert attempt is not None and attempt.status == WebhookStatus.delivered

    (req,) = receiver.requests
    assert req.path == "/hooks"
    assert req.headers["X-Newsletter-Event"] == "subscriber.unsubscribed"
    assert req.headers["X-Newsletter-Delivery"] == str(row.id)
    timestamp, signature = (
        req.headers["X-Newsletter-Timestamp"],
        req.headers["X-Newsletter-Signature"],
    )
    assert signature.startswith("sha256=")
    assert webhooks.verify_signature(endpoint.secret, timestamp, req.body, signature)
    # a different secret, an altered body or an old timestamp do not verify
    assert not webhooks.verify_signature("whsec_other", timestamp, req.body, signature)
    assert not webhooks.verify_signature(endpoint.secret, timestamp, req.body + b" ", signature)
    assert not webhooks.verify_signature(
        endpoint.secret, timestamp, req.body, signature, now=int(timestamp) + 3600
    )
    document = json.loads(req.body)
    assert document["type"] == "subscriber.unsubscribed"
    assert document["data"]["email"] == person.email
    assert document["data"]["newsletters"] == [fx.newsletter.slug]

    (row,) = _rows(session)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
    assert row.delivered_at is not None


def test_a_500_is_retried_with_backoff_then_delivered(
    session: Session, settings: Settings, receiver: Receiver
) -> None:
    endpoint = webhooks.register(session, receiver.url, ["delivery.sent"])
    session.commit()
    assert webhooks.emit(session, "delivery.sent", {"issue_id": 1, "email": "a@example.org"}) == 1
    session.commit()
    receiver.answers = [500]

    # the tick's path: claim the due row, hand it to the task (called directly here)
    with Session(session.get_bind()) as s:
        due = webhooks.due_ids(s, lease_seconds=60)
        s.commit()
    assert len(due) == 1
    with Session(session.get_bind()) as s:
        assert webhooks.due_ids(s) == []  # claimed: the next tick leaves it alone
        s.commit()
    assert tasks.deliver_webhooks(due) == 0

    (row,) = _rows(session)
    assert row.status == WebhookStatus.pending
    assert (row.attempts, row.last_status_code) == (1, 500)
    assert row.last_error is not None and "HTTP 500" in row.last_error
    assert row.next_attempt_at is not None
    wait = row.next_attempt_at.replace(tzinfo=row.next_attempt_at.tzinfo or UTC) - utcnow()
    assert timedelta(seconds=10) < wait <= timedelta(seconds=settings.webhook_retry_base_seconds)

    # not due yet; once its time comes the next tick retries it
    with Session(session.get_bind()) as s:
        assert webhooks.due_ids(s) == []
        later = utcnow() + timedelta(seconds=settings.webhook_retry_base_seconds + 1)
        due = webhooks.due_ids(s, now=later)
        s.commit()
    assert due == [row.id]
    assert tasks.deliver_webhook(row.id) == "delivered"

    (row,) = _rows(session)
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == (
        "delivered",
        2,
        200,
        None,
    )
    assert len(receiver.requests) == 2
    first, second = receiver.requests
    # the same delivery id and body on both attempts: receivers can deduplicate
    assert first.headers["X-Newsletter-Delivery"] == second.headers["X-Newsletter-Delivery"]
    assert first.body == second.body
    for req in receiver.requests:
        assert webhooks.verify_signature(
            endpoint.secret,
            req.headers["X-Newsletter-Timestamp"],
            req.body,
            req.headers["X-Newsletter-Signature"],
        )


def test_gives_up_after_max_attempts_and_unreachable_is_recorded(
    session: Session, settings: Settings
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody"  # nothing listens: connection refused
    webhooks.register(session, dead, ["delivery.failed"])
    webhooks.emit(session, "delivery.failed", {"issue_id": 1})
    session.commit()
    (row,) = _rows(session)
    quick = settings.model_copy(update={"webhook_max_attempts": 2})
    first = webhooks.deliver(session, row.id, settings=quick)  # type: ignore[arg-type]
    assert first is not None and first.status == "pending" and first.status_code is None
    assert first.error is not None and "refused" in first.error.lower()
    second = webhooks.deliver(session, row.id, settings=quick)  # type: ignore[arg-type]
    session.commit()
    assert second is not None and second.status == "failed"
    (row,) = _rows(session)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, None)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "not a url",
        "http://",
        "http:///path-only",
        "https://user:secret@example.org/hook",
        "https://example.org/ho ok",
        "https://example.org:99999/hook",
        "javascript:alert(1)",
        "",
    ],
)
def test_a_bad_url_is_rejected_when_registered(session: Session, url: str) -> None:
    with pytest.raises(InvalidInput):
        webhooks.register(session, url, ["delivery.sent"])


def test_unknown_or_missing_events_are_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match=r"unknown webhook event delivery\.opened"):
        webhooks.register(session, "https://example.org/hook", ["delivery.opened"])
    with pytest.raises(InvalidInput, match="at least one event"):
        webhooks.register(session, "https://example.org/hook", [])


def test_emit_without_endpoints_is_a_no_op(session: Session) -> None:
    assert webhooks.enabled_events(session) == frozenset()
    assert webhooks.emit(session, "delivery.sent", {"x": 1}) == 0
    assert _rows(session) == []


def test_a_real_send_emits_delivery_sent(
    session: Session, settings: Settings, receiver: Receiver
) -> None:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 3)
    endpoint = webhooks.register(session, receiver.url, ["delivery.sent", "delivery.bounced"])
    other = webhooks.register(session, receiver.url + "/other", ["subscriber.confirmed"])
    session.commit()
    issue_id = fx.issue.id
    assert issue_id is not None
    delivery.start_send(session, issue_id=issue_id, size_limit=100_000)
    session.commit()

    with SMTPSink() as sink:
        transport = SMTPTransport(SMTPConfig(host=sink.host, port=sink.port, timeout=10))
        try:
            result = sender.run_batch(settings, issue_id=issue_id, transport=transport)
        finally:
            transport.close()
    assert result.sent == 3

    rows = _rows(session)
    assert [r.event_type for r in rows] == ["delivery.sent"] * 3
    assert {r.endpoint_id for r in rows} == {endpoint.id}  # not the endpoint for other events
    assert other.id not in {r.endpoint_id for r in rows}
    payload = rows[0].payload
    assert payload["issue_id"] == issue_id
    assert payload["message_id"] and payload["smtp_response"].startswith("250")

    # the periodic tick hands them to the webhook tasks; run those here
    with Session(session.get_bind()) as s:
        due = webhooks.due_ids(s)
        s.commit()
    assert sorted(due) == sorted(r.id for r in rows)  # type: ignore[type-var]
    assert tasks.deliver_webhooks(due) == 3
    assert len(receiver.requests) == 3
    assert {json.loads(r.body)["data"]["email"] for r in receiver.requests} == {
        r.payload["email"] for r in rows
    }


# ---------------------------------------------------------------- admin API


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, dispatch=lambda _id: None)) as c:
        yield c


@pytest.fixture
def auth(session: Session) -> dict[str, str]:
    token = apitokens.create(session, "webhook-tests")
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_api_register_list_deliveries_delete(
    client: TestClient,
    auth: dict[str, str],
    session: Session,
    settings: Settings,
    receiver: Receiver,
) -> None:
    assert (
        client.post("/api/webhooks", json={"url": receiver.url, "events": ["x"]}).status_code == 401
    )

    bad = client.post(
        "/api/webhooks",
        json={"url": "ftp://example.org/x", "events": ["delivery.sent"]},
        headers=auth,
    )
    assert bad.status_code == 422 and "http://" in bad.json()["error"]
    unknown = client.post(
        "/api/webhooks", json={"url": receiver.url, "events": ["nope"]}, headers=auth
    )
    assert unknown.status_code == 422 and "unknown webhook event" in unknown.json()["error"]

    created = client.post(
        "/api/webhooks",
        json={"url": receiver.url, "events": ["delivery.sent", "delivery.failed"]},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["events"] == [
        "delivery.sent",
        "delivery.failed",
    ]
    hook_id = body["id"]

    listed = client.get("/api/webhooks", headers=auth).json()
    assert [h["id"] for h in listed] == [hook_id] and "secret" not in listed[0]

    webhooks.emit(session, "delivery.failed", {"issue_id": 7})
    session.commit()
    receiver.answers = [503]
    (row,) = _rows(session)
    webhooks.deliver(session, row.id, settings=settings)  # type: ignore[arg-type]
    session.commit()

    deliveries = client.get(f"/api/webhooks/{hook_id}/deliveries", headers=auth)
    assert deliveries.status_code == 200
    (item,) = deliveries.json()
    assert (item["status"], item["attempts"], item["last_status_code"]) == ("pending", 1, 503)
    assert item["next_attempt_at"] is not None

    assert client.delete(f"/api/webhooks/{hook_id}", headers=auth).status_code == 204
    assert client.get("/api/webhooks", headers=auth).json() == []
    assert client.delete(f"/api/webhooks/{hook_id}", headers=auth).status_code == 404
    assert client.get(f"/api/webhooks/{hook_id}/deliveries", headers=auth).status_code == 404
    assert _rows(session) == []
    # after the delete, nothing is queued for that event any more
    assert webhooks.emit(session, "delivery.failed", {"issue_id": 8}) == 0


def test_cache_lets_emit_skip_a_deleted_endpoint(session: Session) -> None:
    endpoint = webhooks.register(session, "https://example.org/hook", ["delivery.sent"])
    session.commit()
    assert webhooks.enabled_events(session) == {"delivery.sent"}
    # another process deletes it: this process's cache still names it for a few seconds
    endpoint_id = endpoint.id
    session.execute(webhooks.E.delete().where(webhooks.E.c.id == endpoint_id))
    session.commit()
    assert webhooks.enabled_events(session) == {"delivery.sent"}
    assert webhooks.emit(session, "delivery.sent", {"x": 1}) == 0  # no row, no FK error
    webhooks.invalidate_cache()
    assert webhooks.enabled_events(session) == frozenset()


def test_confirm_emits_subscriber_confirmed(session: Session) -> None:
    from newsletter.models import SubscriptionStatus
    from newsletter.tokens import ConfirmData

    fx = make_issue(session)
    (person,) = make_subscribers(session, fx.newsletter, 1, status=SubscriptionStatus.pending)
    webhooks.register(session, "https://example.org/hook", ["subscriber.confirmed"])
    session.commit()
    data = ConfirmData(person.id, (fx.newsletter.id,), "form", "2025-10", utcnow())  # type: ignore[arg-type]
    assert subscribers.confirm(session, data=data, ip=None, user_agent=None).confirmed
    session.commit()
    (row,) = _rows(session)
    assert row.event_type == "subscriber.confirmed"
    assert row.payload["subscriber_id"] == person.id
    assert row.payload["newsletters"] == [fx.newsletter.slug]
    # a replayed link changes nothing and emits nothing
    subscribers.confirm(session, data=data, ip=None, user_agent=None)
    session.commit()
    assert len(_rows(session)) == 1


def test_tick_dispatches_due_deliveries_in_batches(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[list[int]] = []
    monkeypatch.setattr(tasks.deliver_webhooks, "delay", queued.append)
    webhooks.register(session, "https://example.org/hook", ["delivery.sent"])
    session.commit()
    for i in range(webhooks.TASK_BATCH + 3):
        webhooks.emit(session, "delivery.sent", {"n": i})
    session.commit()
    assert tasks.dispatch_webhooks(settings) == webhooks.TASK_BATCH + 3
    assert [len(ids) for ids in queued] == [webhooks.TASK_BATCH, 3]
    assert tasks.dispatch_webhooks(settings) == 0  # claimed: not handed out twice
