"""The public sign-up tells nobody whether an address is known: not by its answer, not by its
timing. The confirmation email is queued after the answer is sent, so a new address costs no
broker round trip more than an active one before the answer. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter import db
from newsletter.api import create_app
from newsletter.audience.lifecycle import ConfirmationRequest
from newsletter.config import Settings
from newsletter.models import SubscriptionStatus
from tests.conftest import make_newsletter, make_subscribers
from tests.integration.public_support import generous_limiter, unique_email

ROUTES = ["json", "form"]


class Timeline:
    """What happened, in order: the answer leaving the app, the confirmation being queued."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.queued: list[ConfirmationRequest] = []

    def send_confirmation(self, request: ConfirmationRequest) -> None:
        self.events.append("confirmation queued")
        self.queued.append(request)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
            async def sending(message: Message) -> None:
                await send(message)
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    self.events.append("answer sent")

            await app(scope, receive, sending)

        return recorded


@pytest.fixture
def timeline() -> Timeline:
    return Timeline()


@pytest.fixture
def client(settings: Settings, timeline: Timeline) -> Iterator[TestClient]:
    app = create_app(settings)
    app.state.send_confirmation = timeline.send_confirmation
    app.state.signup_limiter = generous_limiter()
    with TestClient(timeline.wrap(app)) as c:
        yield c


def sign_up(client: TestClient, route: str, email: str, slug: str) -> Any:
    if route == "json":
        return client.post("/api/subscribe", json={"email": email, "newsletters": [slug]})
    return client.post("/subscribe", data={"email": email, "newsletters": [slug]})


def answer(response: Any) -> tuple[int, bytes, list[tuple[str, str]]]:
    return response.status_code, response.content, sorted(response.headers.items())


@pytest.mark.parametrize("route", ROUTES)
def test_the_answer_is_the_same_for_a_new_a_pending_and_an_active_address(
    client: TestClient, session: Session, timeline: Timeline, route: str
) -> None:
    nl = make_newsletter(session)
    (pending,) = make_subscribers(session, nl, 1, status=SubscriptionStatus.pending)
    (active,) = make_subscribers(session, nl, 1)

    answers = [
        answer(sign_up(client, route, email, nl.slug))
        for email in (unique_email("new"), pending.email, active.email)
    ]

    assert answers[0][0] in (200, 202)
    assert answers[0] == answers[1] == answers[2]
    assert len(timeline.queued) == 2  # new and pending are asked to confirm; active is not


@pytest.mark.parametrize("route", ROUTES)
def test_the_confirmation_is_queued_only_after_the_answer_is_sent(
    client: TestClient, session: Session, timeline: Timeline, route: str
) -> None:
    nl = make_newsletter(session)

    sign_up(client, route, unique_email(), nl.slug)

    assert timeline.events == ["answer sent", "confirmation queued"]


def test_a_broker_that_fails_after_the_answer_changes_nothing_the_client_saw(
    settings: Settings, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    def broker_down(_request: ConfirmationRequest) -> None:
        raise ConnectionError("broker unreachable")

    app = create_app(settings)
    app.state.send_confirmation = broker_down
    app.state.signup_limiter = generous_limiter()
    nl = make_newsletter(session)
    with caplog.at_level(logging.ERROR), TestClient(app) as client:
        response = sign_up(client, "json", unique_email(), nl.slug)

    assert response.status_code == 202
    assert "not queued" in caplog.text
    assert "broker unreachable" in caplog.text


def statements_of(
    engine_url: str, client: TestClient, timeline: Timeline, email: str, slug: str
) -> list[str]:
    """The statements run before the answer is sent (after it, the confirmation is queued and
    its outbox row marked relayed: a new address's only)."""
    seen: list[str] = []
    answered = len([e for e in timeline.events if e == "answer sent"])

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if timeline.events.count("answer sent") == answered:
            seen.append(" ".join(statement.split()[:3]))

    engine = db.get_engine(engine_url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert sign_up(client, "json", email, slug).status_code == 202
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return seen


def test_a_sign_up_runs_as_many_statements_for_a_new_address_as_for_an_active_one(
    client: TestClient, session: Session, settings: Settings, timeline: Timeline
) -> None:
    nl = make_newsletter(session)
    (active,) = make_subscribers(session, nl, 1)

    new = statements_of(settings.database_url, client, timeline, unique_email(), nl.slug)
    known = statements_of(settings.database_url, client, timeline, active.email, nl.slug)

    assert new == known
    assert "INSERT INTO confirmationoutbox" in new  # the outbox row, or nothing, the same way
