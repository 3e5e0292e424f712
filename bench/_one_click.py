"""A lean HTTP/1.1 keep-alive client for RFC 8058 one-click POSTs (the storm's mailbox provider).

httpx's AsyncClient costs about as much CPU a request as the server's route on this machine's
two cores, which the server then lacks: this client writes the request in one piece and reads
the status line, the headers and a ``Content-Length`` (or chunked) body from a stream, nothing
more. One ``Line`` is one connection, opened when needed and kept open between POSTs.

Retrying: a request written on a connection that had already served one (a kept-alive one),
which then ends before any byte of an answer, may have met the server closing it as idle; an
HTTP client may send such a request again when it is idempotent (RFC 9112, 9.3.1), and a
one-click POST is (RFC 8058: providers retry it). The request is sent once more on a new
connection, and the first failure is returned with the answer, so that the bench counts it.
Nothing else is retried: an error on a new connection, or after part of an answer, is the
POST's outcome.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


class Dropped(ConnectionError):
    """The connection ended before any byte of the answer."""


@dataclass
class Answer:
    status: int
    body: bytes
    retried_after: str = ""  # the failure on a kept-alive connection that led to a retry


class Line:
    def __init__(self, host: str, port: int, *, timeout: float = 60.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.served = 0  # answers read on the current connection

    async def post_form(self, path: str, form: bytes) -> Answer:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "User-Agent: storm-one-click\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(form)}\r\n\r\n"
        ).encode("ascii")
        request = head + form
        reused = self.writer is not None and self.served > 0
        try:
            return await asyncio.wait_for(self._exchange(request), self.timeout)
        except Dropped as exc:
            self.close()
            if not reused:
                raise
            answer = await asyncio.wait_for(self._exchange(request), self.timeout)
            answer.retried_after = f"{type(exc).__name__}: {exc}"
            return answer
        except BaseException:
            self.close()
            raise

    async def _exchange(self, request: bytes) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.served = 0
        assert self.reader is not None
        try:
            self.writer.write(request)
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ConnectionError(f"answer cut after {len(exc.partial)} bytes") from exc
            raise Dropped("connection closed before any answer") from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise Dropped(f"{type(exc).__name__} before any answer") from exc
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = await self._chunked()
        else:
            body = await self.reader.read()  # ends with the connection
            headers["connection"] = "close"
        self.served += 1
        if headers.get("connection") == "close":
            self.close()
        return Answer(status, body)

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append((await self.reader.readexactly(size + 2))[:size])
            if size == 0:
                return b"".join(parts)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
