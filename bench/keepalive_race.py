"""The kept-alive connection that the server closes as the client reuses it (issue 17's dropped
one-click POSTs): uvicorn closes a connection idle for ``timeout_keep_alive`` seconds; a client
that sends its next request at about that moment gets the connection closed with no answer
(httpx: ``ReadError``/``RemoteProtocolError``), and an HTTP client does not retry a POST by itself.

Each of ``--connections`` connections (``bench/_one_click.py``'s client, which tells such a drop
apart) is answered once, stays idle for its own gap, spread evenly over ``--around`` plus or
minus ``--spread`` seconds, and is used again; for uvicorn's default (5 s) and for the
``newsletter serve`` options (``newsletter.cli.run.server_options``). The app is a plain ASGI
one that answers 200: the race is the server's, not the route's.

    python bench/keepalive_race.py [--connections 200] [--around 5.0] [--spread 0.05]

Last line: one JSON object (drops for each configuration; the serve one must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

from bench._one_click import Dropped, Line  # noqa: E402
from newsletter.cli.run import server_options  # noqa: E402
from newsletter.transports.sink import free_port  # noqa: E402


async def ok_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def serve(options: dict[str, Any]) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(ok_app, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread


async def one(port: int, gap: float) -> str:
    """'' when both requests were answered; else what happened to the second one."""
    line = Line("127.0.0.1", port, timeout=10)
    try:
        await line.post_form("/", b"List-Unsubscribe=One-Click")
        await asyncio.sleep(gap)
        answer = await line.post_form("/", b"List-Unsubscribe=One-Click")
        return answer.retried_after  # set: dropped unanswered, then answered on a new connection
    except (Dropped, OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        line.close()


async def race(port: int, gaps: list[float]) -> list[str]:
    return await asyncio.gather(*(one(port, gap) for gap in gaps))


def measure(name: str, options: dict[str, Any], gaps: list[float]) -> dict[str, Any]:
    server, thread = serve(options)
    try:
        outcomes = asyncio.run(race(options["port"], gaps))
    finally:
        server.should_exit = True
        thread.join(10)
    timeout = options.get("timeout_keep_alive", 5)
    dropped = [gap for gap, what in zip(gaps, outcomes, strict=True) if what]
    early = [gap for gap in dropped if gap < timeout]  # a client with a 5 s expiry reuses these
    print(
        f"{name}: timeout_keep_alive {timeout} s, {len(dropped)} of {len(gaps)} second requests "
        f"dropped unanswered, {len(early)} of them after an idle gap shorter than the timeout"
        + (f" (from {min(early):.3f} s)" if early else ""),
        flush=True,
    )
    kinds = sorted({what.split(":")[0] for what in outcomes if what})
    return {
        "timeout_keep_alive": timeout,
        "dropped": len(dropped),
        "dropped_before_timeout": len(early),
        "errors": kinds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--around", type=float, default=5.0, help="idle gap, seconds")
    parser.add_argument("--spread", type=float, default=0.05, help="gaps within +- this")
    args = parser.parse_args(argv)
    n = args.connections
    gaps = [args.around - args.spread + 2 * args.spread * i / max(1, n - 1) for i in range(n)]
    quiet = {"log_config": None, "log_level": "warning"}
    default = {"host": "127.0.0.1", "port": free_port(), **quiet}
    ours = {**server_options(host="127.0.0.1", port=free_port(), proxies=None), **quiet}
    result = {
        "connections": n,
        "gaps_s": [round(gaps[0], 3), round(gaps[-1], 3)],
        "uvicorn_default": measure("uvicorn's default", default, gaps),
        "newsletter_serve": measure("newsletter serve", ours, gaps),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
