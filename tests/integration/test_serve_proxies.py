"""``newsletter serve`` trusts no forwarded header unless told which proxies send it.

The app ``serve`` would run is driven through uvicorn's own configuration (``Config.load()`` adds
uvicorn's proxy-headers middleware when it is on), with requests from 127.0.0.1 carrying a
forged ``X-Forwarded-For``. What the sign-up sees as the client IP is what the limiter counts and
what the consent record keeps.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from newsletter import cli
from newsletter.api.app import create_app
from newsletter.audience import abuse
from newsletter.config import Settings
from newsletter.models import Subscriber, SubscriberEvent
from tests.conftest import make_newsletter
from tests.integration.public_support import Outbox, unique_email

LOOPBACK = ("127.0.0.1", 50000)
FORGED = {"X-Forwarded-For": "1.2.3.4"}


@dataclass
class RecordingLimiter(abuse.SignupLimiter):
    """Far above any limit; remembers the client IPs it was asked about."""

    window: abuse.Window = field(default_factory=abuse.MemoryWindow)
    per_ip: int = 1000
    per_address: int = 1000
    seconds: int = 3600
    ips: list[str | None] = field(default_factory=list)

    def check_ip(self, ip: str | None) -> None:
        self.ips.append(ip)
        super().check_ip(ip)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[uvicorn.Config]]:
    configs: list[uvicorn.Config] = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda server, *a, **k: configs.append(server.config)
    )
    yield configs
    gc.unfreeze()  # ``serve`` froze this test process's objects (its server start does)


def sign_up_through_serve(
    served: list[uvicorn.Config], session: Session, *options: str
) -> tuple[RecordingLimiter, str | None]:
    """(the limiter, the consent record's IP) of one forged sign-up through ``serve``'s app."""
    slug = make_newsletter(session).slug
    result = CliRunner().invoke(cli.app, ["serve", *options])
    assert result.exit_code == 0, result.output
    (config,) = served
    limiter = RecordingLimiter()
    config.app.state.signup_limiter = limiter
    config.app.state.send_confirmation = Outbox()
    config.load()
    email = unique_email()
    with TestClient(config.loaded_app, client=LOOPBACK) as client:
        response = client.post(
            "/api/subscribe", json={"email": email, "newsletters": [slug]}, headers=FORGED
        )
    assert response.status_code == 202, response.text
    session.expire_all()
    event = session.exec(
        select(SubscriberEvent).join(Subscriber).where(Subscriber.email == email)
    ).one()
    return limiter, event.ip


def test_by_default_a_forwarded_header_from_localhost_is_not_believed(
    settings: Settings, session: Session, served: list[uvicorn.Config]
) -> None:
    limiter, consent_ip = sign_up_through_serve(served, session)

    assert limiter.ips == ["127.0.0.1"]
    assert consent_ip == "127.0.0.1"
    assert served[0].proxy_headers is False


def test_with_the_proxy_named_its_forwarded_header_gives_the_client_ip(
    settings: Settings, session: Session, served: list[uvicorn.Config]
) -> None:
    limiter, consent_ip = sign_up_through_serve(
        served, session, "--forwarded-allow-ips", "127.0.0.1"
    )

    assert limiter.ips == ["1.2.3.4"]
    assert consent_ip == "1.2.3.4"


def test_a_forwarded_header_from_another_address_than_the_proxy_named_is_not_believed(
    settings: Settings, session: Session, served: list[uvicorn.Config]
) -> None:
    limiter, consent_ip = sign_up_through_serve(
        served, session, "--forwarded-allow-ips", "10.0.0.7"
    )

    assert limiter.ips == ["127.0.0.1"]
    assert consent_ip == "127.0.0.1"


def test_serve_freezes_what_it_loaded_and_an_app_alone_does_not(
    settings: Settings, served: list[uvicorn.Config]
) -> None:
    """The server process moves what it loaded out of the collector's sight once, at its start
    (``gc.freeze``: the p99 of every route); an app built and started elsewhere (a test, the
    dev stack) leaves its process's collector alone."""
    gc.unfreeze()
    with TestClient(create_app(settings)) as client:  # the app's lifespan runs
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == 0

    result = CliRunner().invoke(cli.app, ["serve"])

    assert result.exit_code == 0, result.output
    assert served and gc.get_freeze_count() > 0
