"""Segments through the admin API and the CLI, and a send to a segment through a real Celery
worker and SMTP sink: the ledger holds exactly the segment's active subscribers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from newsletter.access import api_tokens
from newsletter.api import create_app
from newsletter.cli import app as cli_app
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.models import Delivery, Subscriber, SubscriberTag, SubscriptionStatus
from newsletter.sending import start
from newsletter.transports.sink import SMTPSink
from tests.conftest import celery_worker, make_issue, make_subscribers
from tests.integration.test_celery_delivery import wait_until_sent

REDIS_DB = 2
CITY = {"conditions": [{"kind": "attribute", "key": "city", "op": "equals", "value": "Minsk"}]}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, dispatch=lambda _issue_id: None)) as c:
        yield c


@pytest.fixture
def auth(session: Session) -> dict[str, str]:
    token = api_tokens.create(session, "tests")
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def _people(session: Session, newsletter: object, n: int, city: str, **kw: object) -> list[int]:
    people = make_subscribers(session, newsletter, n, **kw)  # type: ignore[arg-type]
    for p in people:
        p.attributes = {"city": city}
        session.add(p)
    session.commit()
    return [p.id or 0 for p in people]


def test_crud_count_and_tags_over_the_api(
    client: TestClient, auth: dict[str, str], session: Session
) -> None:
    fx = make_issue(session)
    minsk = _people(session, fx.newsletter, 4, "Minsk")
    _people(session, fx.newsletter, 2, "Minsk", status=SubscriptionStatus.unsubscribed)
    _people(session, fx.newsletter, 3, "Brest")

    preview = client.post("/api/segments/count", json={"rules": CITY}, headers=auth)
    assert preview.json() == {"count": 6}  # every subscriber matching
    slug = fx.newsletter.slug
    preview = client.post(
        "/api/segments/count", json={"rules": CITY, "newsletter": slug}, headers=auth
    )
    assert preview.json() == {"count": 4}  # the newsletter's recipients matching

    made = client.post(
        "/api/segments", json={"name": "Minsk", "rules": CITY, "newsletter": slug}, headers=auth
    )
    assert made.status_code == 201, made.text
    seg = made.json()
    assert seg["size"] == 4
    assert client.get(f"/api/segments/{seg['id']}", headers=auth).json()["size"] == 4
    assert [s["name"] for s in client.get("/api/segments", headers=auth).json()] == ["Minsk"]

    tagged = client.post(
        "/api/segments/tags", json={"tag": "city-desk", "segment": seg["id"]}, headers=auth
    )
    assert tagged.json() == {"tag": "city-desk", "added": 4, "removed": 0}
    again = client.post(
        "/api/segments/tags", json={"tag": "city-desk", "segment": seg["id"]}, headers=auth
    )
    assert again.json()["added"] == 0  # insert-or-ignore
    holders = session.exec(select(SubscriberTag.subscriber_id)).all()
    assert sorted(holders) == sorted(minsk)

    search = client.post(
        "/api/segments/tags",
        json={"tag": "city-desk", "remove": True, "email": "reader0", "status": "active"},
        headers=auth,
    )
    assert search.json()["removed"] == 1  # reader0 of the active Minsk people only

    bad = client.post("/api/segments", json={"name": "x", "rules": {"match": "some"}}, headers=auth)
    assert bad.status_code == 422 and "rules" in bad.json()["error"]
    changed = client.patch(
        f"/api/segments/{seg['id']}",
        json={"rules": {"conditions": [{"kind": "tag", "tag": "city-desk"}]}},
        headers=auth,
    )
    assert changed.json()["size"] == 3
    assert client.delete(f"/api/segments/{seg['id']}", headers=auth).status_code == 204
    assert client.get(f"/api/segments/{seg['id']}", headers=auth).status_code == 404


def test_cli_create_count_show_list_and_send(session: Session, settings: Settings) -> None:
    fx = make_issue(session)
    minsk = _people(session, fx.newsletter, 3, "Minsk")
    _people(session, fx.newsletter, 2, "Gomel")
    runner = CliRunner()
    made = runner.invoke(cli_app, ["segments", "create", "Minsk", "--rules", json.dumps(CITY)])
    assert made.exit_code == 0, made.output
    assert "(3 now)" in made.output
    seg_id = made.output.split()[1].rstrip(":")
    assert runner.invoke(cli_app, ["segments", "count", seg_id]).output.strip() == "3"
    rules = json.dumps({"conditions": [{"kind": "attribute", "key": "city", "op": "exists"}]})
    counted = runner.invoke(cli_app, ["segments", "count", "--rules", rules])
    assert counted.output.strip() == "5"
    assert "Minsk" in runner.invoke(cli_app, ["segments", "list"]).output
    assert '"Minsk"' in runner.invoke(cli_app, ["segments", "show", seg_id]).output
    refused = runner.invoke(cli_app, ["segments", "create", "x", "--rules", "{nope"])
    assert isinstance(refused.exception, InvalidInput)  # main() prints it as one red line
    assert "rules are not JSON" in str(refused.exception)

    sent = runner.invoke(cli_app, ["issues", "send", str(fx.issue.id), "--segment", seg_id])
    assert sent.exit_code == 0, sent.output
    assert "3 recipients" in sent.output
    assert start.fill_prepared(session, issue_id=fx.issue.id) is not None  # the worker's part
    session.commit()
    ledger = session.exec(select(Delivery.subscriber_id).where(Delivery.issue_id == fx.issue.id))
    assert sorted(ledger.all()) == sorted(minsk)


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as running:
        yield running


def test_a_send_to_a_segment_reaches_exactly_its_active_subscribers(
    session: Session,
    settings: Settings,
    redis_url: str,
    sink: SMTPSink,
    monkeypatch: pytest.MonkeyPatch,
    auth: dict[str, str],
) -> None:
    from worker.tasks import dispatch

    fx = make_issue(session)
    minsk = _people(session, fx.newsletter, 12, "Minsk")
    _people(session, fx.newsletter, 3, "Minsk", status=SubscriptionStatus.unsubscribed)
    _people(session, fx.newsletter, 9, "Brest")
    with celery_worker(redis_url, REDIS_DB, sink, monkeypatch, batch_size="5") as current:
        with TestClient(create_app(current, dispatch=dispatch.delay)) as client:
            seg = client.post(
                "/api/segments", json={"name": "Minsk", "rules": CITY}, headers=auth
            ).json()
            sent = client.post(
                f"/api/issues/{fx.issue.id}/send", json={"segment": seg["id"]}, headers=auth
            )
            assert sent.status_code == 200, sent.text
            assert (sent.json()["recipients"], sent.json()["skipped"]) == (12, 12)
        state = wait_until_sent(current, fx.issue.id or 0)
    assert state.counts == {"sent": 12}
    ledger = session.exec(select(Delivery.subscriber_id).where(Delivery.issue_id == fx.issue.id))
    assert sorted(ledger.all()) == sorted(minsk)
    emails = {s.email for s in session.exec(select(Subscriber)) if s.id in minsk}
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == sorted(emails)
