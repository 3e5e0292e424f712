"""Two-factor sign-in for editor accounts: TOTP (RFC 6238, pyotp) and one-time recovery codes.

Enrolling is two steps: ``begin`` stores a new secret, not yet in force, and returns what the
authenticator app needs (the ``otpauth://`` URI, shown as a QR code, and the secret itself);
``confirm`` puts it in force once the editor typed a code it produced, and returns ten recovery
codes, shown once. From then on a password alone starts no session: ``verify`` must accept a
current code, or one unused recovery code, first.

- The secret is kept encrypted (Fernet, a key derived from the app's secret key with HKDF), so
  a copy of the database alone does not give the second factor away. Changing
  ``NEWSLETTER_SECRET_KEY`` therefore ends every enrolment: ``newsletter admin reset-2fa``.
- A code is accepted once: the 30-second step it belongs to is remembered, so a code read over
  a shoulder, or replayed, does not work a second time. One step either side is allowed for
  clock drift.
- Recovery codes are 10 random characters (50 bits), stored as SHA-256 hashes; each works once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import or_, update
from sqlmodel import Session, col, delete, select

from newsletter.access import editors
from newsletter.exceptions import InvalidInput, InvalidState
from newsletter.models import EditorRecoveryCode, EditorUser, utcnow

ISSUER = "Newsletter"
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper
_STEP = 30


@dataclass(frozen=True)
class Enrolment:
    """What the authenticator app needs: the URI (shown as a QR code) and the secret itself."""

    secret: str
    uri: str


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"newsletter.editor.totp"
    ).derive(secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(derived))


def _seal(secret: str, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode("ascii")).decode("ascii")


def _open(sealed: str, secret_key: str) -> str:
    try:
        return _fernet(secret_key).decrypt(sealed.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise InvalidState(
            "the second factor cannot be read (the secret key changed?): "
            "`newsletter admin reset-2fa EMAIL`, then enrol again"
        ) from exc


def enabled(user: EditorUser) -> bool:
    return user.totp_enabled_at is not None


def begin(session: Session, user: EditorUser, *, secret_key: str) -> Enrolment:
    """A new secret for ``user``, stored but not in force until ``confirm``."""
    if enabled(user):
        raise InvalidState("two-factor sign-in is already on; turn it off first")
    secret = pyotp.random_base32()
    user.totp_secret = _seal(secret, secret_key)
    session.add(user)
    session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrolment(secret, uri)


def pending(user: EditorUser, *, secret_key: str) -> Enrolment | None:
    """The enrolment begun and not confirmed yet, to show again (None when there is none)."""
    if enabled(user) or not user.totp_secret:
        return None
    secret = _open(user.totp_secret, secret_key)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrolment(secret, uri)


def confirm(session: Session, user: EditorUser, code: str, *, secret_key: str) -> list[str]:
    """Put the begun enrolment in force with a code from the app; returns the recovery codes."""
    if enabled(user):
        raise InvalidState("two-factor sign-in is already on")
    if not user.totp_secret:
        raise InvalidState("start the set-up first")
    step = _matching_step(_open(user.totp_secret, secret_key), code, after=None)
    if step is None:
        raise InvalidInput("that code does not match: type the 6 digits your app shows now")
    user.totp_enabled_at = utcnow()
    user.totp_last_step = step
    session.add(user)
    return _new_recovery_codes(session, user)


def verify(session: Session, user: EditorUser, code: str, *, secret_key: str) -> bool:
    """Whether ``code`` is a current TOTP code not used before, or an unused recovery code
    (which is then used up)."""
    if not enabled(user) or not user.totp_secret:
        return False
    cleaned = "".join(code.split())
    if cleaned.isdigit():
        step = _matching_step(
            _open(user.totp_secret, secret_key), cleaned, after=user.totp_last_step
        )
        return step is not None and _claim_step(session, user, step)
    return _use_recovery_code(session, user, cleaned.lower().replace("-", ""))


def disable(session: Session, user: EditorUser) -> None:
    """Turn two-factor sign-in off for ``user`` (their own choice, or an admin's reset)."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.add(user)
    session.exec(delete(EditorRecoveryCode).where(col(EditorRecoveryCode.user_id) == user.id))
    session.flush()


def turn_off_own(
    session: Session, user: EditorUser, *, password: str, code: str, secret_key: str
) -> None:
    """An editor turning their own second factor off: their password and a current code (or a
    recovery code) first, so a session left open on a shared computer cannot do it."""
    if not enabled(user):
        raise InvalidState("two-factor sign-in is not on")
    if editors.authenticate(session, email=user.email, password=password) is None:
        raise InvalidInput("that password is not right")
    if not verify(session, user, code, secret_key=secret_key):
        raise InvalidInput("that code does not work")
    disable(session, user)


def reset(session: Session, email: str) -> EditorUser:
    """An operator turning an editor's second factor off (a lost phone and lost codes)."""
    user = editors.get_user(session, email)
    disable(session, user)
    return user


def recovery_codes_left(session: Session, user: EditorUser) -> int:
    rows = session.exec(
        select(EditorRecoveryCode).where(
            EditorRecoveryCode.user_id == user.id, col(EditorRecoveryCode.used_at).is_(None)
        )
    ).all()
    return len(rows)


def _matching_step(secret: str, code: str, *, after: int | None) -> int | None:
    """The time step (now, or one either side) whose code is ``code``, if later than ``after``."""
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // _STEP
    for step in (now, now - 1, now + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.at(step * _STEP), code):
            return step
    return None


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def _new_recovery_codes(session: Session, user: EditorUser) -> list[str]:
    session.exec(delete(EditorRecoveryCode).where(col(EditorRecoveryCode.user_id) == user.id))
    assert user.id is not None
    codes = [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        for _ in range(RECOVERY_CODES)
    ]
    for code in codes:
        session.add(EditorRecoveryCode(user_id=user.id, code_hash=_digest(code)))
    session.flush()
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def _use_recovery_code(session: Session, user: EditorUser, code: str) -> bool:
    if not code or len(code) > 20:
        return False
    used = session.execute(  # one guarded UPDATE: two sign-ins cannot both spend the code
        update(EditorRecoveryCode)
        .where(
            col(EditorRecoveryCode.user_id) == user.id,
            col(EditorRecoveryCode.code_hash) == _digest(code),
            col(EditorRecoveryCode.used_at).is_(None),
        )
        .values(used_at=utcnow())
    )
    return bool(used.rowcount)  # type: ignore[attr-defined]


def _claim_step(session: Session, user: EditorUser, step: int) -> bool:
    """Remember ``step`` as used, unless it (or a later one) already was: one guarded UPDATE,
    so the same code sent twice at once starts one session, not two."""
    claimed = session.execute(
        update(EditorUser)
        .where(
            col(EditorUser.id) == user.id,
            or_(col(EditorUser.totp_last_step).is_(None), col(EditorUser.totp_last_step) < step),
        )
        .values(totp_last_step=step)
    )
    won = bool(claimed.rowcount)  # type: ignore[attr-defined]
    if won:
        session.refresh(user)
    return won
