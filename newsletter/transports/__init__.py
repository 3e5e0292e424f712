"""Transports hand finished messages to a mail server; the sender only sees this protocol."""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    def send(self, envelope_from: str, to: str, data: bytes) -> str:
        """Hand one message over; return the server's reply, or raise TransportError."""

    def close(self) -> None: ...
