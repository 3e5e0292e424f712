"""The per-recipient part of the tracking links: ``<issue>.<subscriber>.<mac>``.

One token per message, the same in every link and in the open pixel; it is filled into the
compiled email like the other personal values (``rendering.PLACEHOLDERS["track_token"]``). The
MAC (HMAC-SHA256 of the issue and subscriber under a key derived from the secret key, 96 bits,
base64url) makes it unforgeable; a short token keeps the ~40 links of a digest small (the size
check counts them). Subscriber 0 is nobody: the archive's, the preview's and the test sends'
links carry it, redirect as usual and record nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

NOBODY = 0  # the archive's, the web view's, the previews' token: redirects, records nothing
_SHAPE = re.compile(r"(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,9})\.([A-Za-z0-9_-]{16})")
MAX_ID = 2_147_483_647


@dataclass(frozen=True)
class TrackToken:
    issue_id: int
    subscriber_id: int


@lru_cache(maxsize=8)
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"newsletter.track", hashlib.sha256).digest()


def _mac(secret: str, issue_id: int, subscriber_id: int) -> str:
    digest = hmac.new(_key(secret), f"{issue_id}.{subscriber_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:12]).decode("ascii")


def make_token(secret: str, issue_id: int, subscriber_id: int) -> str:
    return f"{issue_id}.{subscriber_id}.{_mac(secret, issue_id, subscriber_id)}"


def read_token(secret: str, token: str) -> TrackToken | None:
    """The token's issue and subscriber, or None for anything forged, altered or malformed."""
    match = _SHAPE.fullmatch(token)
    if match is None:
        return None
    issue_id, subscriber_id = int(match[1]), int(match[2])
    if issue_id > MAX_ID or subscriber_id > MAX_ID:
        return None
    if not hmac.compare_digest(match[3], _mac(secret, issue_id, subscriber_id)):
        return None
    return TrackToken(issue_id, subscriber_id)
