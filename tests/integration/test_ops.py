"""/healthz, /readyz and /metrics over HTTP, on SQLite and PostgreSQL, with the real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from newsletter.api import create_app
from newsletter.config import Settings
from newsletter.sending.checks import qa_config
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import SMTPSink, free_port
from tests.conftest import make_issue, make_subscribers
from tests.integration.send_support import send_issue


@contextmanager
def client_for(settings: Settings) -> Iterator[TestClient]:
    def no_dispatch(_issue_id: int) -> None:
        raise AssertionError("nothing is queued here")

    with TestClient(create_app(settings, dispatch=no_dispatch)) as c:
        yield c


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_healthz_is_up_without_the_database(settings: Settings) -> None:
    dead = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"}
    )
    with client_for(dead) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_the_database_and_redis(settings: Settings, redis_url: str) -> None:
    with client_for(settings.model_copy(update={"redis_url": redis_url})) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_without_redis_configured_says_not_used(settings: Settings) -> None:
    assert settings.shared_redis_url is None  # the file-system broker
    with client_for(settings) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "not used"}


def test_readyz_is_503_when_redis_is_down(settings: Settings) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with client_for(settings.model_copy(update={"redis_url": dead})) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error: ")


def test_readyz_is_503_when_the_database_is_down(settings: Settings) -> None:
    dead = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"}
    )
    with client_for(dead) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("error: ")


def test_metrics_reflect_a_sent_issue_and_one_sending(
    settings: Settings, session: Session, redis_url: str
) -> None:
    fx = make_issue(session)
    make_subscribers(session, fx.newsletter, 3)
    with SMTPSink() as sink:
        assert send_issue(session, settings, fx.issue.id, sink) == 3  # type: ignore[arg-type]

    with_broker = settings.model_copy(update={"broker_url": redis_url})
    with client_for(with_broker) as client:
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        got = samples(response.text)
        assert got[("newsletter_messages_total", (("status", "sent"),))] == 3
        assert got[("newsletter_messages_total", (("status", "failed"),))] == 0
        assert got[("newsletter_deliveries", (("status", "pending"),))] == 0
        assert got[("newsletter_issues", (("status", "sent"),))] == 1
        assert got[("newsletter_queue_depth", ())] == 0
        assert got[("newsletter_send_rate", ())] == pytest.approx(0.3)  # 3 in the last 10 s
        assert got[("newsletter_celery_queue_length", (("queue", "newsletter.send"),))] >= 0

        # a second issue starts: its rows are due; the first issue's counts come from the cache
        second = make_issue(session, newsletter=fx.newsletter).issue
        fill_ledger(session, issue_id=second.id, checks=qa_config(settings))  # type: ignore[arg-type]
        session.commit()
        got = samples(client.get("/metrics").text)
    assert got[("newsletter_messages_total", (("status", "sent"),))] == 3
    assert got[("newsletter_deliveries", (("status", "pending"),))] == 3
    assert got[("newsletter_queue_depth", ())] == 3
    assert got[("newsletter_issues", (("status", "sending"),))] == 1
    assert got[("newsletter_issues", (("status", "draft"),))] == 0


def test_metrics_token_when_configured(settings: Settings) -> None:
    with client_for(settings.model_copy(update={"metrics_token": "scrape-me"})) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert right.status_code == 200
    assert "newsletter_messages_total" in right.text
