"""Editor accounts of the web UI: passwords (Argon2id), sign-in sessions and their CSRF tokens.

Passwords are hashed with argon2-cffi's ``PasswordHasher`` (Argon2id, RFC 9106's low-memory
profile); a hash made with weaker parameters is replaced at the next successful sign-in.
Signing in with an unknown address still runs one verification against a fixed hash, so the
answer takes as long as for a known address with a wrong password.

A session is a random token; the browser gets it (signed, in ``newsletter.api.admin.auth``) and
the table keeps only its SHA-256, with the session's CSRF token and expiry. Signing out deletes
the row, so a copied cookie is dead from then on.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, delete, select

from newsletter.access.roles import Role, parse_role
from newsletter.addresses import normalise_email
from newsletter.exceptions import InvalidInput, InvalidState, NotFound
from newsletter.models import EditorSession, EditorUser, utcnow

MIN_PASSWORD = 10
SESSION_LIFETIME = timedelta(hours=12)


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return hasher().hash(secrets.token_urlsafe(16))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InvalidInput("a password has at most 1024 characters")


def create_user(
    session: Session, *, email: str, password: str, name: str = "", role: str | None = None
) -> EditorUser:
    """A new editor account. ``role`` (writer, editor, audience, admin) may be left out only for
    the first account, which is an admin: someone has to be able to add the others."""
    address = normalise_email(email).lower()  # sign-in compares addresses case-insensitively
    _check_password(password)
    if session.exec(select(EditorUser).where(EditorUser.email == address)).first():
        raise InvalidState(f"an editor {address} already exists")
    if role is None:
        if session.exec(select(EditorUser)).first() is not None:
            raise InvalidInput("give the new account a role: writer, editor, audience or admin")
        role = Role.admin
    user = EditorUser(
        email=address,
        name=name.strip(),
        password_hash=hasher().hash(password),
        role=parse_role(role).value,
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, email: str) -> EditorUser:
    user = session.exec(select(EditorUser).where(EditorUser.email == email.strip().lower())).first()
    if user is None:
        raise NotFound(f"no editor {email!r}")
    return user


def get_user_by_id(session: Session, user_id: int) -> EditorUser | None:
    """The enabled account with this id (None when it is gone or disabled)."""
    user = session.get(EditorUser, user_id)
    return user if user is not None and user.disabled_at is None else None


def set_password(session: Session, *, email: str, password: str) -> EditorUser:
    """New password; every session of the user ends (a password change locks out old cookies)."""
    _check_password(password)
    user = get_user(session, email)
    user.password_hash = hasher().hash(password)
    session.add(user)
    session.exec(delete(EditorSession).where(col(EditorSession.user_id) == user.id))
    session.flush()
    return user


def set_disabled(session: Session, *, email: str, disabled: bool) -> EditorUser:
    user = get_user(session, email)
    user.disabled_at = utcnow() if disabled else None
    session.add(user)
    if disabled:
        session.exec(delete(EditorSession).where(col(EditorSession.user_id) == user.id))
    session.flush()
    return user


def list_users(session: Session) -> list[EditorUser]:
    return list(session.exec(select(EditorUser).order_by(col(EditorUser.email))).all())


def authenticate(session: Session, *, email: str, password: str) -> EditorUser | None:
    """The user when the address and password match an enabled account, else None."""
    user = session.exec(select(EditorUser).where(EditorUser.email == email.strip().lower())).first()
    stored = user.password_hash if user is not None else _decoy_hash()
    try:
        hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled_at is not None:
        return None
    if hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hasher().hash(password)
    user.last_login_at = utcnow()
    session.add(user)
    session.flush()
    return user


# ---------------------------------------------------------------- sessions


@dataclass(frozen=True)
class SignedIn:
    """Who is behind a request, and the CSRF token their forms must carry."""

    user_id: int
    email: str
    name: str
    csrf_token: str
    two_factor: bool = False
    role: str = "admin"

    @property
    def label(self) -> str:
        return self.name or self.email


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(session: Session, user: EditorUser, *, now: datetime | None = None) -> str:
    """A new session for ``user``; returns the token for the cookie (stored only as a hash)."""
    assert user.id is not None
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        EditorSession(
            id=_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    # expired sessions of anyone go with each sign-in; nothing else needs to sweep them
    session.exec(delete(EditorSession).where(col(EditorSession.expires_at) < now))
    session.flush()
    return token


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def resolve(session: Session, token: str, *, now: datetime | None = None) -> SignedIn | None:
    """The signed-in editor for a session token, or None (unknown, expired, user disabled)."""
    row = session.get(EditorSession, _digest(token))
    if row is None or _aware(row.expires_at) <= (now or utcnow()):
        return None
    user = session.get(EditorUser, row.user_id)
    if user is None or user.disabled_at is not None or user.id is None:
        return None
    return SignedIn(
        user.id,
        user.email,
        user.name,
        row.csrf_token,
        user.totp_enabled_at is not None,
        user.role,
    )


def end_session(session: Session, token: str) -> None:
    found = session.get(EditorSession, _digest(token))
    if found is not None:
        session.delete(found)
        session.flush()
