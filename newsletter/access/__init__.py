"""Who may use the service: editor accounts and their sessions, and the admin API's tokens.

- ``editors``     editor accounts (Argon2id passwords) and their signed-in sessions (editor UI)
- ``api_tokens``  bearer tokens of the admin API (only their SHA-256 is stored)
"""

from __future__ import annotations

from newsletter.access import api_tokens
from newsletter.access.editors import (
    SignedIn,
    authenticate,
    create_user,
    end_session,
    list_users,
    resolve,
    set_disabled,
    set_password,
    start_session,
)

__all__ = [
    "SignedIn",
    "api_tokens",
    "authenticate",
    "create_user",
    "end_session",
    "list_users",
    "resolve",
    "set_disabled",
    "set_password",
    "start_session",
]
