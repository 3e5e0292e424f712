"""The local stack of ``newsletter dev``: the web app, a Celery worker, the beat and an SMTP sink,
all in this one process (threads), started in that order and stopped in the reverse one.

The worker and the beat are real Celery (``worker.embedded``) on the configured broker: the
file-system one by default, so no server is needed. The web app is ``newsletter serve``'s
(``create_app`` with the Celery ports), run by uvicorn in a thread, so that this module's own
handlers of SIGINT and SIGTERM decide the shutdown: the web server stops taking requests, the
beat stops, the worker finishes the tasks in hand, the sink closes, and the command returns.
Every SMTP setting is replaced by the sink's address: the stack never mails the world.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from newsletter import schema_snapshot
from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.sending.start import check_signing
from newsletter.transports.sink import SMTPSink

if TYPE_CHECKING:
    import uvicorn

#: how long the web server may take to start listening
START_SECONDS = 30.0


@dataclass(frozen=True)
class Stack:
    """Where the running stack's parts are, for the command to print."""

    settings: Settings
    ui_url: str
    outbox: Path
    smtp_host: str
    smtp_port: int


def url_host(host: str) -> str:
    """The host to print in a URL for an address the server listens on."""
    if host in ("127.0.0.1", "0.0.0.0", "::", "::1", "localhost", ""):  # noqa: S104 - a name only
        return "localhost"
    return f"[{host}]" if ":" in host else host


def dev_settings(
    settings: Settings, *, host: str, port: int, smtp_port: int, outbox: Path | None
) -> Settings:
    """The settings the stack runs with: SMTP to the sink, the outbox folder, and (unless
    NEWSLETTER_BASE_URL is set) links in emails pointing at this server."""
    update: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_username": None,
        "smtp_password": None,
        "smtp_starttls": False,
        "outbox_dir": (outbox or settings.outbox_dir).resolve(),
    }
    if "base_url" not in settings.model_fields_set:
        update["base_url"] = f"http://{url_host(host)}:{port}"
    return settings.model_copy(update=update)


def ensure_free(host: str, port: int, what: str) -> None:
    """A port another program holds stops the stack before any part starts, in one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InvalidInput(
                f"cannot listen on {host}:{port} for {what}: {exc.strerror}"
            ) from None


@contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """An event SIGINT (Ctrl-C) and SIGTERM set, instead of interrupting whatever runs."""
    stop = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_stack(
    settings: Settings,
    *,
    host: str,
    port: int,
    concurrency: int,
    on_ready: Callable[[Stack], None],
    on_stopping: Callable[[], None] = lambda: None,
) -> None:
    """Migrate, start the sink, the worker, the beat and the web app; run until a stop signal."""
    import uvicorn

    from newsletter.api.app import create_app
    from newsletter.cli.run import server_config
    from worker.celery_app import configure
    from worker.dispatch import celery_dispatch, celery_send_confirmation, celery_start_import
    from worker.embedded import celery_beat, celery_worker

    ensure_free(host, port, "the web app (--port)")
    ensure_free(settings.smtp_host, settings.smtp_port, "the SMTP sink (--smtp-port)")
    check_signing(settings)  # a DKIM key that cannot sign stops here, in one line
    schema_snapshot.upgrade(settings.database_url)
    _quiet_routine_logs()
    with (
        stop_signals() as stop,
        SMTPSink(host=settings.smtp_host, port=settings.smtp_port, folder=settings.outbox_dir),
    ):
        celery = configure(settings)
        with celery_worker(celery, concurrency=concurrency), celery_beat(celery):
            app = create_app(
                settings,
                dispatch=celery_dispatch,
                send_confirmation=celery_send_confirmation,
                start_import=celery_start_import,
            )
            server = uvicorn.Server(server_config(app, host=host, port=port, proxies=None))
            web = threading.Thread(target=server.run, name="web", daemon=True)
            web.start()
            try:
                _wait_started(server, web, stop)
                if server.started:
                    on_ready(
                        Stack(
                            settings=settings,
                            ui_url=f"http://{url_host(host)}:{port}/admin/",
                            outbox=settings.outbox_dir,
                            smtp_host=settings.smtp_host,
                            smtp_port=settings.smtp_port,
                        )
                    )
                    while web.is_alive() and not stop.wait(0.25):
                        pass
                    on_stopping()
            finally:
                server.should_exit = True
                web.join(START_SECONDS)
    if not stop.is_set() and not server.started:
        raise InvalidInput(f"the web app did not start on {host}:{port} (see the log above)")


def _quiet_routine_logs() -> None:
    """The tick every few seconds and each task's receipt would bury the log; failures stay."""
    # the file-system broker has no host; kombu warns about that on every connection
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _wait_started(server: uvicorn.Server, web: threading.Thread, stop: threading.Event) -> None:
    """Until the web server listens, its thread ended (it could not bind), a stop, or a timeout."""
    deadline = time.monotonic() + START_SECONDS
    while not server.started and web.is_alive() and not stop.is_set():
        if time.monotonic() > deadline:
            return
        stop.wait(0.05)
