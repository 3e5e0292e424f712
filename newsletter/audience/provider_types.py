"""What every provider webhook reader shares: the request, the events it yields, its refusals.

A reader (``provider_sns`` for Amazon SES, ``provider_formats`` for Postmark, SendGrid, Mailgun
and our generic form) takes one ``WebhookRequest``, verifies it (a refusal is
``SignatureMissing``, 401, or ``SignatureRefused``, 403, and nothing is applied), and turns its
payload into ``ProviderEvent``s: a hard or soft bounce or a complaint about one address,
with the provider's event id as its key and our Message-ID when the provider reports it.
A malformed payload is an ``InvalidInput`` (422). ``provider_events`` applies them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from newsletter.audience.bounce_parsing import Kind
from newsletter.exceptions import Forbidden, InvalidInput, InvalidToken

__all__ = [
    "Batch",
    "Fetcher",
    "NotConfigured",
    "ProviderEvent",
    "SignatureMissing",
    "SignatureRefused",
    "WebhookRequest",
    "json_body",
    "validated",
]

M = TypeVar("M", bound=BaseModel)

#: GETs a URL through the outbound guard and returns the body (``newsletter.outbound.fetch``)
Fetcher = Callable[[str], bytes]


class SignatureMissing(InvalidToken):
    """The request carries no signature (or credentials) at all: 401."""


class SignatureRefused(Forbidden):
    """The signature (or credentials) does not verify: 403."""


class NotConfigured(Forbidden):
    """The webhook of this provider has no key set, so nothing it sends can be trusted: 403."""


@dataclass(frozen=True)
class WebhookRequest:
    """One POST: header names lower-case, the raw body, the query parameters."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderEvent:
    key: str  # unique per provider event: a replay finds it taken
    kind: Kind  # hard | soft | complaint
    email: str
    message_id: str | None = None  # the original's Message-ID, when the provider reports it
    status: str | None = None  # the DSN status or the provider's own bounce type
    detail: dict[str, Any] = field(default_factory=dict)
    also: tuple[str, ...] = ()  # more keys that make it a replay (Mailgun's one-time token)


@dataclass
class Batch:
    """What one request carried: the events to apply, and what was skipped and why."""

    events: list[ProviderEvent] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    note: str = ""


def json_body(body: bytes, provider: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(f"the {provider} webhook body is not JSON") from None


def validated(model: type[M], data: Any, provider: str) -> M:
    """``data`` as ``model``; a payload of the wrong shape is one InvalidInput naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(f"not a {provider} webhook payload: {where}: {first['msg']}") from None
