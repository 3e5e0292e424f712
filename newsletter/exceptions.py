"""Errors raised by the domain. User mistakes are all ``UserError``, shown as one line.

NewsletterError
├── UserError                 a mistake the user can fix (shown as one line, exit 1 / HTTP 4xx)
│   ├── NotFound              an id, slug or file that does not exist
│   ├── InvalidInput          a malformed file, field or argument
│   │   └── InvalidLink       a forged, altered, expired or wrong-purpose personal link (400)
│   ├── InvalidState          the action does not fit the object's status (e.g. edit a sent issue)
│   ├── QABlocked             the QA report has blocking findings
│   ├── InvalidToken          a missing or unknown admin API token (HTTP 401)
│   ├── RevokedToken          an admin API token that was revoked (HTTP 403)
│   └── RateLimited           too many sign-ups from one IP or for one address (HTTP 429)
├── RenderError               a template failed to render or MJML failed to compile
└── DatabaseUnavailable       the database stayed unreachable (a restart that took too long):
                              the task is retried

TransportError                a message could not be handed over (``newsletter.transports``,
├── TemporaryFailure          which imports nothing of the domain: re-exported here)
└── PermanentFailure
"""

from __future__ import annotations

from newsletter.transports import PermanentFailure, TemporaryFailure, TransportError

__all__ = [
    "DatabaseUnavailable",
    "InvalidInput",
    "InvalidLink",
    "InvalidState",
    "InvalidToken",
    "NewsletterError",
    "NotFound",
    "PermanentFailure",
    "QABlocked",
    "RateLimited",
    "RenderError",
    "RevokedToken",
    "TemporaryFailure",
    "TransportError",
    "UserError",
]


class NewsletterError(Exception):
    """Base of every error the domain raises on purpose."""


class UserError(NewsletterError):
    """A mistake the user can fix."""


class NotFound(UserError):
    pass


class InvalidInput(UserError):
    pass


class InvalidLink(InvalidInput):
    """A personal link whose token does not verify: forged, altered, expired, wrong purpose."""


class InvalidState(UserError):
    pass


class QABlocked(UserError):
    def __init__(self, findings: list[str]) -> None:
        super().__init__("QA blocks sending: " + "; ".join(findings))
        self.findings = findings


class Forbidden(UserError):
    """Someone signed in (or holding a token) whose role does not allow this action."""


class InvalidToken(UserError):
    """No admin API token, or one that matches none stored."""


class RevokedToken(UserError):
    """An admin API token that exists but was revoked."""


class RateLimited(UserError):
    """Too many attempts; ``retry_after`` is the seconds until the next one is accepted."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RenderError(NewsletterError):
    pass


class DatabaseUnavailable(NewsletterError):
    """The database went away and did not come back in time (a restart, a failover): the work
    is retried later, nothing of it is lost."""
