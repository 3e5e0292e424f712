"""Helpers for the public-route tests: an app whose confirmation emails are recorded, links."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from newsletter.api import create_app
from newsletter.audience import abuse
from newsletter.audience.lifecycle import ConfirmationRequest
from newsletter.config import Settings

CONFIRM_LINK = re.compile(r"https?://[^\s<>\"]+/confirm/[A-Za-z0-9_.\-]+")


@dataclass
class Outbox:
    """Stands in for the Celery task: remembers each confirmation the app asked for."""

    requests: list[ConfirmationRequest] = field(default_factory=list)

    def __call__(self, request: ConfirmationRequest) -> None:
        self.requests.append(request)


def generous_limiter() -> abuse.SignupLimiter:
    """In process and far above what a test does: limits are tested on their own."""
    return abuse.SignupLimiter(abuse.MemoryWindow(), per_ip=1000, per_address=1000, seconds=3600)


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def client(settings: Settings, outbox: Outbox) -> Iterator[TestClient]:
    app = create_app(settings)
    app.state.send_confirmation = outbox
    app.state.signup_limiter = generous_limiter()
    with TestClient(app) as c:
        yield c


def path_of(url: str) -> str:
    """The path of an absolute link from an email, for the TestClient."""
    return urlsplit(url).path


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def confirm_link(message: EmailMessage) -> str:
    match = CONFIRM_LINK.search(text_of(message))
    assert match, text_of(message)
    return match.group(0)


def form_action(html: str) -> str | None:
    """The first form's action ("" for a form that posts to its own URL)."""
    match = re.search(r"<form method=\"post\"(?: action=\"([^\"]*)\")?", html)
    return None if match is None else (match.group(1) or "")


def unique_email(label: str = "reader") -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.org"
