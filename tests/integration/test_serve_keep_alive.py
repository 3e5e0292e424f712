"""``newsletter serve`` keeps an idle connection open past uvicorn's 5 s default.

At 5 s a server closing an idle connection races a client reusing it: the request is lost with
no answer (issue 17's dropped one-click POSTs; ``bench/keepalive_race.py``). Here a real
uvicorn server, configured as ``serve`` configures it, answers a request, then the same
connection is used again after 5.5 s idle: it must still be answered.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from newsletter.cli.run import KEEP_ALIVE_SECONDS, server_options
from newsletter.transports.sink import free_port

IDLE = 5.5  # past uvicorn's default timeout_keep_alive (5 s)
REQUEST = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 26\r\n\r\nList-Unsubscribe=One-Click"


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def _answer(conn: socket.socket) -> bytes:
    """Everything up to the 2-byte body; b"" when the server closed the connection instead."""
    got = b""
    while not (b"\r\n\r\n" in got and got.endswith(b"ok")):
        chunk = conn.recv(4096)
        if not chunk:
            return got
        got += chunk
    return got


def test_a_connection_idle_past_five_seconds_is_still_answered() -> None:
    assert KEEP_ALIVE_SECONDS > IDLE
    options = {**server_options(host="127.0.0.1", port=free_port(), proxies=None)}
    server = uvicorn.Server(uvicorn.Config(_ok, **{**options, "log_level": "warning"}))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", options["port"]), timeout=5) as conn:
            conn.sendall(REQUEST)
            assert _answer(conn).startswith(b"HTTP/1.1 200")
            time.sleep(IDLE)
            conn.sendall(REQUEST)
            assert _answer(conn).startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(10)
