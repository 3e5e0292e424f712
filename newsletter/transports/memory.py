"""An in-memory transport: keeps what it is given, answers failures scripted per recipient.

The twin of ``smtp.SMTPTransport`` for tests and dry runs (a send that goes nowhere), with the
same protocol and the same errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from newsletter.transports import TransportError

ACCEPTED = "250 2.0.0 OK queued"


@dataclass(frozen=True)
class Sent:
    envelope_from: str
    to: str
    data: bytes


class MemoryTransport:
    """Accepts every message except those whose recipient has a scripted failure."""

    def __init__(self, failures: Mapping[str, TransportError] | None = None) -> None:
        self.failures = dict(failures or {})
        self.sent: list[Sent] = []
        self.tried: list[str] = []  # every recipient handed over, failed ones too
        self.closed = False

    def send(self, envelope_from: str, to: str, data: bytes) -> str:
        self.tried.append(to)
        failure = self.failures.get(to)
        if failure is not None:
            raise failure
        self.sent.append(Sent(envelope_from, to, data))
        return ACCEPTED

    def close(self) -> None:
        self.closed = True
