"""Outgoing webhooks against a real local HTTP receiver, on SQLite and on PostgreSQL.

The receiver (``http.server`` in a thread) records every request and answers with the statuses
it is told to, in order, then 200. Deliveries go through ``newsletter.webhooks.deliver`` and the
worker's task functions (called directly: no broker needed for them).

The receiver listens on 127.0.0.1, which the outbound guard refuses unless it is allowed: the
``receiver`` fixture allows 127.0.0.0/8 in the test's settings, and registrations pass ``LOCAL``.
Names like example.org never reach DNS: ``NAMED`` resolves them itself.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address, ip_network

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from newsletter import webhooks
from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.audience import lifecycle
from newsletter.config import Settings
from newsletter.content.qa import QAConfig
from newsletter.exceptions import InvalidInput
from newsletter.models import WebhookDelivery, WebhookStatus, utcnow
from newsletter.outbound import IPAddress, OutboundPolicy
from newsletter.sending import batch
from newsletter.sending.start import fill_ledger
from newsletter.tables import E
from newsletter.transports.sink import SMTPSink, free_port
from newsletter.transports.smtp import SMTPConfig, SMTPTransport
from tests.conftest import make_issue, make_subscribers
from worker import tasks


def resolve_as(table: dict[str, str]) -> Callable[[str], list[IPAddress]]:
    """A resolver knowing only ``table`` (name -> address)."""

    def resolve(host: str) -> list[IPAddress]:
        if host not in table:
            raise OSError(f"{host}: not in the test's table")
        return [ip_address(table[host])]

    return resolve


LOOPBACK = (ip_network("127.0.0.0/8"),)
#: what the receiver's registrations need: 127.0.0.0/8 allowed
LOCAL = OutboundPolicy(allowed_networks=LOOPBACK)
#: example.org as a public address, without asking DNS
NAMED = OutboundPolicy(resolver=resolve_as({"example.org": "93.184.215.14"}))


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
def loopback_allowed(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's settings (also what get_settings() gives the tasks) with 127.0.0.0/8 allowed."""
    monkeypatch.setattr(settings, "outbound_allow_networks", "127.0.0.0/8")
    return settings


@pytest.fixture
def receiver(loopback_allowed: Settings) -> Iterator[Receiver]:
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
    endpoint = webhooks.register(session, receiver.url, ["subscriber.unsubscribed"], policy=LOCAL)
    session.commit()

    assert lifecycle.unsubscribe(
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
    endpoint = webhooks.register(session, receiver.url, ["delivery.sent"], policy=LOCAL)
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
    session: Session, loopback_allowed: Settings
) -> None:
    settings = loopback_allowed
    dead = f"http://127.0.0.1:{free_port()}/nobody"  # nothing listens: connection refused
    webhooks.register(session, dead, ["delivery.failed"], policy=LOCAL)
    webhooks.emit(session, "delivery.failed", {"issue_id": 1})
    session.commit()
    (row,) = _rows(session)
    quick = settings.model_copy(update={"webhook_max_attempts": 2})
    first = webhooks.deliver(session, row.id, settings=quick)  # type: ignore[arg-type]
    assert first is not None and first.status == "pending" and first.status_code is None
    # the same words as for a timeout or a reset: the error does not map the network
    assert first.error == f"could not POST to {dead}: no answer from the server"
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
        webhooks.register(session, url, ["delivery.sent"], policy=NAMED)


def test_unknown_or_missing_events_are_rejected(session: Session) -> None:
    with pytest.raises(InvalidInput, match=r"unknown webhook event delivery\.opened"):
        webhooks.register(session, "https://example.org/hook", ["delivery.opened"], policy=NAMED)
    with pytest.raises(InvalidInput, match="at least one event"):
        webhooks.register(session, "https://example.org/hook", [], policy=NAMED)


def test_emit_without_endpoints_is_a_no_op(session: Session) -> None:
    assert webhooks.enabled_events(session) == frozenset()
    assert webhooks.emit(session, "delivery.sent", {"x": 1}) == 0
    assert _rows(session) == []


def test_a_real_send_emits_delivery_sent(
    session: Session, settings: Settings, receiver: Receiver
) -> None:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 3)
    endpoint = webhooks.register(
        session, receiver.url, ["delivery.sent", "delivery.bounced"], policy=LOCAL
    )
    other = webhooks.register(
        session, receiver.url + "/other", ["subscriber.confirmed"], policy=LOCAL
    )
    session.commit()
    issue_id = fx.issue.id
    assert issue_id is not None
    fill_ledger(session, issue_id=issue_id, checks=QAConfig())
    session.commit()

    with SMTPSink() as sink:
        transport = SMTPTransport(SMTPConfig(host=sink.host, port=sink.port, timeout=10))
        try:
            result = batch.run_batch(settings, issue_id=issue_id, transport=transport)
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
    token = api_tokens.create(session, "webhook-tests")
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
    endpoint = webhooks.register(
        session, "https://example.org/hook", ["delivery.sent"], policy=NAMED
    )
    session.commit()
    assert webhooks.enabled_events(session) == {"delivery.sent"}
    # another process deletes it: this process's cache still names it for a few seconds
    endpoint_id = endpoint.id
    session.execute(E.delete().where(E.c.id == endpoint_id))
    session.commit()
    assert webhooks.enabled_events(session) == {"delivery.sent"}
    assert webhooks.emit(session, "delivery.sent", {"x": 1}) == 0  # no row, no FK error
    webhooks.invalidate_cache()
    assert webhooks.enabled_events(session) == frozenset()


def test_confirm_emits_subscriber_confirmed(session: Session) -> None:
    from newsletter.audience.links import ConfirmData
    from newsletter.models import SubscriptionStatus

    fx = make_issue(session)
    (person,) = make_subscribers(session, fx.newsletter, 1, status=SubscriptionStatus.pending)
    webhooks.register(session, "https://example.org/hook", ["subscriber.confirmed"], policy=NAMED)
    session.commit()
    data = ConfirmData(person.id, (fx.newsletter.id,), "form", "2025-10", utcnow())  # type: ignore[arg-type]
    assert lifecycle.confirm(session, data=data, ip=None, user_agent=None).confirmed
    session.commit()
    (row,) = _rows(session)
    assert row.event_type == "subscriber.confirmed"
    assert row.payload["subscriber_id"] == person.id
    assert row.payload["newsletters"] == [fx.newsletter.slug]
    # a replayed link changes nothing and emits nothing
    lifecycle.confirm(session, data=data, ip=None, user_agent=None)
    session.commit()
    assert len(_rows(session)) == 1


def test_tick_dispatches_due_deliveries_in_batches(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[list[int]] = []
    monkeypatch.setattr(tasks.deliver_webhooks, "delay", queued.append)
    webhooks.register(session, "https://example.org/hook", ["delivery.sent"], policy=NAMED)
    session.commit()
    for i in range(webhooks.TASK_BATCH + 3):
        webhooks.emit(session, "delivery.sent", {"n": i})
    session.commit()
    assert tasks.dispatch_webhooks(settings) == webhooks.TASK_BATCH + 3
    assert [len(ids) for ids in queued] == [webhooks.TASK_BATCH, 3]
    assert tasks.dispatch_webhooks(settings) == 0  # claimed: not handed out twice


# ---------------------------------------------------------------- the outbound guard

INTERNAL_URLS = [
    "http://127.0.0.1/hook",
    "http://localhost:6379/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://2130706433/hook",  # 127.0.0.1 in decimal
    "http://10.0.0.8:8080/hook",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_registration_refuses_internal_addresses(
    session: Session, settings: Settings, url: str
) -> None:
    with pytest.raises(InvalidInput, match=r"not allowed \(not a public address\)"):
        webhooks.register(
            session, url, ["delivery.sent"], policy=OutboundPolicy.from_settings(settings)
        )
    assert webhooks.list_endpoints(session) == []


def test_registration_refuses_a_name_that_resolves_to_an_internal_address(
    session: Session,
) -> None:
    policy = OutboundPolicy(resolver=resolve_as({"hooks.example.com": "10.20.30.40"}))
    with pytest.raises(InvalidInput, match="not a public address"):
        webhooks.register(session, "https://hooks.example.com/x", ["delivery.sent"], policy=policy)


def test_api_registration_of_internal_addresses_is_a_422(
    client: TestClient, auth: dict[str, str], session: Session
) -> None:
    for url in INTERNAL_URLS:
        refused = client.post(
            "/api/webhooks", json={"url": url, "events": ["delivery.sent"]}, headers=auth
        )
        assert refused.status_code == 422, (url, refused.text)
        assert "not a public address" in refused.json()["error"]
    assert client.get("/api/webhooks", headers=auth).json() == []


def test_delivery_to_a_name_that_now_resolves_to_a_refused_address_does_not_connect(
    session: Session, settings: Settings, receiver: Receiver
) -> None:
    at_registration = OutboundPolicy(resolver=resolve_as({"hooks.example.com": "93.184.215.14"}))
    url = f"http://hooks.example.com:{receiver.port}/hooks"
    webhooks.register(session, url, ["delivery.sent"], policy=at_registration)
    webhooks.emit(session, "delivery.sent", {"issue_id": 1})
    session.commit()
    (row,) = _rows(session)

    # DNS changed: the name now points at the receiver's loopback address, which is not allowed
    rebound = OutboundPolicy(resolver=resolve_as({"hooks.example.com": "127.0.0.1"}))
    attempt = webhooks.deliver(session, row.id, settings=settings, policy=rebound)  # type: ignore[arg-type]
    session.commit()
    assert attempt is not None and attempt.status == WebhookStatus.pending
    assert (
        attempt.error
        == f"could not POST to {url}: the address is not allowed (not a public address)"
    )
    assert receiver.requests == []  # refused before connecting

    # with loopback allowed the same name is delivered to, by its vetted address, Host kept
    allowed = OutboundPolicy(allowed_networks=LOOPBACK, resolver=rebound.resolver)
    attempt = webhooks.deliver(session, row.id, settings=settings, policy=allowed)  # type: ignore[arg-type]
    session.commit()
    assert attempt is not None and attempt.status == WebhookStatus.delivered
    (req,) = receiver.requests
    assert req.headers["Host"] == f"hooks.example.com:{receiver.port}"


def test_delivery_uses_the_settings_allow_list(
    session: Session, settings: Settings, receiver: Receiver
) -> None:
    webhooks.register(session, receiver.url, ["delivery.sent"], policy=LOCAL)
    webhooks.emit(session, "delivery.sent", {"issue_id": 1})
    session.commit()
    (row,) = _rows(session)
    strict = settings.model_copy(update={"outbound_allow_networks": ""})
    attempt = webhooks.deliver(session, row.id, settings=strict)  # type: ignore[arg-type]
    assert attempt is not None and attempt.error is not None
    assert "not a public address" in attempt.error and receiver.requests == []
    attempt = webhooks.deliver(session, row.id, settings=settings)  # type: ignore[arg-type]
    assert attempt is not None and attempt.status == WebhookStatus.delivered


def test_a_redirect_is_the_answer_not_a_hop(
    session: Session, settings: Settings, receiver: Receiver
) -> None:
    webhooks.register(session, receiver.url, ["delivery.sent"], policy=LOCAL)
    webhooks.emit(session, "delivery.sent", {"issue_id": 1})
    session.commit()
    receiver.answers = [302]
    (row,) = _rows(session)
    attempt = webhooks.deliver(session, row.id, settings=settings)  # type: ignore[arg-type]
    assert attempt is not None and attempt.status_code == 302
    assert attempt.status == WebhookStatus.pending and len(receiver.requests) == 1
