"""Signed tokens for personal links, bound to a subscriber and a purpose."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from newsletter.exceptions import InvalidInput


class Purpose(StrEnum):
    unsubscribe = "unsubscribe"
    preferences = "preferences"
    confirm = "confirm"


@dataclass(frozen=True)
class TokenData:
    subscriber_id: int
    newsletter_id: int | None


@lru_cache(maxsize=32)  # built per recipient otherwise, twice per message on the send path
def _serializer(secret: str, purpose: Purpose) -> URLSafeTimedSerializer:
    # the purpose is the salt, so a token made for one purpose never verifies for another
    return URLSafeTimedSerializer(secret, salt=f"newsletter.{purpose}")


def make_token(secret: str, purpose: Purpose, subscriber_id: int, newsletter_id: int | None) -> str:
    return str(_serializer(secret, purpose).dumps([subscriber_id, newsletter_id]))


def read_token(
    secret: str, purpose: Purpose, token: str, *, max_age: int | None = None
) -> TokenData:
    """Verify a token; raise InvalidInput for a forged, altered, expired or wrong-purpose one."""
    try:
        sub, nl = _serializer(secret, purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise InvalidInput("this link has expired") from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidInput("this link is not valid") from exc
    return TokenData(subscriber_id=int(sub), newsletter_id=None if nl is None else int(nl))
