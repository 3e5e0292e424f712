"""Bearer tokens of the admin API: create, revoke, list, authenticate.

A token is ``nl_`` followed by 32 random bytes (``secrets.token_urlsafe``); the prefix makes a
leaked token recognisable to secret scanners and to people. Only the SHA-256 hex of the whole
token is stored, so a copy of the database does not hand out working tokens, and the plaintext is
shown once, when the token is created.

Authentication looks the token up by its hash (an indexed equality match) instead of comparing
the presented token with stored ones, so ``hmac.compare_digest`` has nothing to protect: whatever
the lookup's timing reveals is about the SHA-256 of the presented token, and learning a prefix of
a hash does not help to guess a 256-bit random token whose hash has that prefix.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from newsletter.access.roles import parse_role
from newsletter.exceptions import InvalidInput, InvalidToken, NotFound, RevokedToken
from newsletter.models import ApiToken, utcnow

PREFIX = "nl_"
NAME_MAX = 100  # the column's length
#: last_used_at is written at most this often per token, not on every request
TOUCH_INTERVAL = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(session: Session, name: str, *, role: str = "admin") -> str:
    """Store a new token under ``name`` and return its plaintext (the only time it exists);
    ``role`` is what requests with it may do (``access.roles``)."""
    name = name.strip()
    if not name:
        raise InvalidInput("a token needs a name")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"a token name has at most {NAME_MAX} characters")
    if _by_name(session, name) is not None:
        raise InvalidInput(f"a token named {name!r} already exists (revoked ones keep their name)")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=hash_token(token), role=parse_role(role).value))
    session.flush()
    return token


def revoke(session: Session, name: str) -> ApiToken:
    """Revoke the token named ``name``; revoking it again keeps the first revocation time."""
    token = _by_name(session, name.strip())
    if token is None:
        raise NotFound(f"no token named {name!r}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        session.flush()
    return token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(col(ApiToken.created_at), col(ApiToken.id))))


def authenticate(session: Session, token: str, *, now: datetime | None = None) -> ApiToken:
    """The stored token matching ``token``; InvalidToken if none, RevokedToken if revoked."""
    if not token.startswith(PREFIX):
        raise InvalidToken("unknown API token")
    found = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if found is None:
        raise InvalidToken("unknown API token")
    if found.revoked_at is not None:
        raise RevokedToken(f"API token {found.name!r} was revoked")
    now = now or utcnow()
    last = _aware(found.last_used_at)
    if last is None or now - last >= TOUCH_INTERVAL:
        found.last_used_at = now
        session.add(found)
        session.flush()
    return found


def _by_name(session: Session, name: str) -> ApiToken | None:
    return session.exec(select(ApiToken).where(ApiToken.name == name)).first()


def _aware(value: datetime | None) -> datetime | None:
    """Timestamps are stored as UTC; a driver that drops the zone gets it back here."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
