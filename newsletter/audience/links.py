"""Signed tokens for personal links, bound to a subscriber and a purpose.

Two payload shapes share one scheme (itsdangerous, the purpose as the salt, so a token made for
one purpose never verifies for another):

- ``make_token``/``read_token``: one subscriber and one newsletter (or None: all of them); the
  unsubscribe and preferences links of every issue. An issue's unsubscribe link also names the
  issue, so that the unsubscribe is counted against it (its report); links made before that
  carry two values and still verify.
- ``make_confirm_token``/``read_confirm_token``: a double opt-in confirmation for one subscriber
  and several newsletters, with the sign-up's source and consent text version, so that the
  confirmation records what the person agreed to; it expires (``max_age``) and its issue time
  tells a fresh sign-up from an old link.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    Signer,
    TimestampSigner,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_encode, int_to_bytes, want_bytes

from newsletter.exceptions import InvalidLink


class Purpose(StrEnum):
    unsubscribe = "unsubscribe"
    preferences = "preferences"
    confirm = "confirm"


@dataclass(frozen=True)
class TokenData:
    subscriber_id: int
    newsletter_id: int | None
    issue_id: int | None = None  # the issue whose message carried the link


@dataclass(frozen=True)
class ConfirmData:
    subscriber_id: int
    newsletter_ids: tuple[int, ...]
    source: str
    consent_text_version: str
    issued_at: datetime


#: a JSON payload shorter than this is not offered to zlib
_NOT_WORTH_COMPRESSING = 64


class _Signer(TimestampSigner):
    """itsdangerous's, its key derived once (a hash per token otherwise)."""

    _derived: bytes | None = None

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is not None:  # verifying against each of several keys
            return super().derive_key(secret_key)
        if self._derived is None:
            self._derived = super().derive_key()
        return self._derived


class _Serializer(URLSafeTimedSerializer):
    """itsdangerous's, with its signer made once, and without trying zlib on a short payload.
    The try cost about 50 us (zlib's set-up) for every token, two a message on the send path,
    and a payload of a few ids such as ``[48213,3,17]`` never comes out shorter; only a very
    repetitive one (``[1111111,1111111]``) would, and its token is then a few characters longer.
    An uncompressed payload is the library's own format: any ``URLSafeTimedSerializer`` with the
    key reads these tokens."""

    default_signer = _Signer
    _signer: Signer | None = None

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        if salt is not None and salt != self.salt:
            return super().make_signer(salt)
        if self._signer is None:  # no state of a token's in it: the time is read per sign
            self._signer = super().make_signer()
        return self._signer

    def dump_payload(self, obj: Any) -> bytes:
        json = self.serializer.dumps(obj, **self.serializer_kwargs).encode("utf-8")
        if len(json) >= _NOT_WORTH_COMPRESSING:
            return super().dump_payload(obj)
        return base64_encode(json)


@lru_cache(maxsize=32)  # built per recipient otherwise, twice per message on the send path
def _serializer(secret: str, purpose: Purpose) -> URLSafeTimedSerializer:
    return _Serializer(secret, salt=f"newsletter.{purpose}")


@lru_cache(maxsize=32)
def _signing(secret: str, purpose: Purpose) -> tuple[TimestampSigner, hmac.HMAC, bytes]:
    """The serializer's signer, an HMAC keyed as it keys its own, and its separator."""
    signer = _serializer(secret, purpose).make_signer()
    assert isinstance(signer, TimestampSigner)
    mac = hmac.new(signer.derive_key(), digestmod=signer.digest_method)
    return signer, mac, want_bytes(signer.sep)


def make_token(
    secret: str,
    purpose: Purpose,
    subscriber_id: int,
    newsletter_id: int | None,
    issue_id: int | None = None,
) -> str:
    """The serializer's token for ``[subscriber, newsletter(, issue)]``, written directly: the
    same bytes as ``_serializer(...).dumps`` (a test compares them), in about a fifth of the
    time; it is made twice for every message of a send. Anything but plain ints goes through
    the serializer."""
    payload = [subscriber_id, newsletter_id] + ([] if issue_id is None else [issue_id])
    if not all(type(value) is int or value is None for value in payload):
        return str(_serializer(secret, purpose).dumps(payload))
    json = "[" + ",".join("null" if value is None else str(value) for value in payload) + "]"
    signer, mac, sep = _signing(secret, purpose)
    stamp = base64_encode(int_to_bytes(signer.get_timestamp()))
    value = base64_encode(json.encode("ascii")) + sep + stamp
    signed = mac.copy()
    signed.update(value)
    return (value + sep + base64_encode(signed.digest())).decode("ascii")


def _loads(secret: str, purpose: Purpose, token: str, max_age: int | None) -> tuple[Any, datetime]:
    try:
        payload, issued = _serializer(secret, purpose).loads(
            token, max_age=max_age, return_timestamp=True
        )
    except SignatureExpired as exc:
        raise InvalidLink("this link has expired") from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidLink("this link is not valid") from exc
    return payload, issued.astimezone(UTC)


def read_token(
    secret: str, purpose: Purpose, token: str, *, max_age: int | None = None
) -> TokenData:
    """Verify a token; raise InvalidLink for a forged, altered, expired or wrong-purpose one."""
    payload, _issued = _loads(secret, purpose, token, max_age)
    try:
        sub, nl, *issue = payload
        if len(issue) > 1:
            raise ValueError("too many values")
        return TokenData(
            subscriber_id=int(sub),
            newsletter_id=None if nl is None else int(nl),
            issue_id=int(issue[0]) if issue else None,
        )
    except (ValueError, TypeError) as exc:
        raise InvalidLink("this link is not valid") from exc


def make_confirm_token(
    secret: str,
    *,
    subscriber_id: int,
    newsletter_ids: Iterable[int],
    source: str,
    consent_text_version: str,
) -> str:
    payload = [subscriber_id, sorted(set(newsletter_ids)), source, consent_text_version]
    return str(_serializer(secret, Purpose.confirm).dumps(payload))


def read_confirm_token(secret: str, token: str, *, max_age: int) -> ConfirmData:
    """Verify a confirmation token; InvalidLink when forged, altered, expired or not one."""
    payload, issued = _loads(secret, Purpose.confirm, token, max_age)
    try:
        sub, ids, source, version = payload
        return ConfirmData(
            subscriber_id=int(sub),
            newsletter_ids=tuple(int(i) for i in ids),
            source=str(source),
            consent_text_version=str(version),
            issued_at=issued,
        )
    except (ValueError, TypeError) as exc:
        raise InvalidLink("this link is not valid") from exc
