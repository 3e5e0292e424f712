"""Transports hand finished messages to a mail server; the sender only sees this protocol.

This package imports nothing of ``newsletter``: a transport takes plain values (an envelope
sender, a recipient, the message's bytes) and raises its own errors, which the domain reads:

TransportError            a message could not be handed over
├── TemporaryFailure      4xx, timeouts, dropped connections: retry later
└── PermanentFailure      5xx (``code`` set), or refused on our side before the server answered
                          (``code`` None: a non-ASCII address the relay cannot take, say)

``code`` is an SMTP reply code; the HTTP API transports give the SMTP code that means the same
(451 rate-limited, 554 refused, 550 dead address; see ``http``), their reply text the HTTP status.

- ``smtp``    SMTP over one reused connection (``SMTPConfig``, ``SMTPTransport``)
- ``pool``    several connections with a thread each, one message in flight per connection
- ``memory``  an in-memory twin that records what it is given, for tests and dry runs
- ``sink``    a local SMTP server (aiosmtpd) for the demo, development and tests
- ``ses``, ``postmark``, ``mailgun``, ``sendgrid``  the providers' HTTP APIs (``http`` their
  shared client and reply sorting, ``sigv4`` AWS's request signing), ``factory`` the
  configured one
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["CleanMessage", "PermanentFailure", "TemporaryFailure", "Transport", "TransportError"]


class TransportError(Exception):
    """``connecting``: the failure came while opening a connection (connect, greeting, EHLO,
    STARTTLS, login) for a message nothing was written of yet: another relay may take it.
    ``retry_at``: when a try is next worth it (every relay out until then), if known."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        response: str = "",
        connecting: bool = False,
        retry_at: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.response = response
        self.connecting = connecting
        self.retry_at = retry_at


class TemporaryFailure(TransportError):
    pass


class PermanentFailure(TransportError):
    pass


class CleanMessage(bytes):
    """A message's bytes, vouched for by their maker: every line ends in CRLF and none starts
    with a dot (``mail.message.MessageTemplate`` builds them so: headers checked for line breaks,
    quoted-printable parts that write a leading dot as ``=2E``).

    SMTP then sends them as they are, without scanning the whole message for a line to
    dot-stuff (about 45 us for 70 KB, a tenth of a worker's CPU for a message), and the DKIM
    signer skips its line-end check. Plain ``bytes`` are always checked.
    """

    __slots__ = ()


class Transport(Protocol):
    def send(self, envelope_from: str, to: str, data: bytes) -> str:
        """Hand one message over; return the server's reply, or raise TransportError."""

    def close(self) -> None: ...


@runtime_checkable
class Announcing(Protocol):
    """A transport that can open the next message's transaction with this one's end (SMTP
    PIPELINING: the next MAIL, RCPT and DATA after this message's dot, one round trip a
    message). Nothing of the next message's content leaves before its own ``send``."""

    def send_then(
        self,
        envelope_from: str,
        to: str,
        data: bytes,
        then: str | None,
        meanwhile: Callable[[], None] | None = None,
    ) -> str:
        """``send``, announcing ``then`` (the next recipient, same sender) where it can;
        ``meanwhile`` (which must not raise) runs once the message is written, before its reply
        is read, or not at all when the message was refused before it was written."""

    def abandon(self) -> None:
        """The announced recipient will not be sent: undo the announcement (its connection
        goes)."""
