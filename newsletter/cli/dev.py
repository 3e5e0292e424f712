"""``newsletter dev`` (the whole local stack in one command) and ``newsletter sink`` (only the
local SMTP sink); Ctrl-C stops either, with everything it started."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from newsletter.cli.common import console, session, settings
from newsletter.cli.stack import Stack, dev_settings, ensure_free, run_stack, stop_signals
from newsletter.transports.sink import Received, SMTPSink

Host = Annotated[str, typer.Option(help="address the web app listens on")]
Port = Annotated[int, typer.Option(help="port the web app listens on")]
SmtpPort = Annotated[
    int | None, typer.Option(help="port of the SMTP sink (default: NEWSLETTER_SMTP_PORT, 8025)")
]
Outbox = Annotated[
    Path | None,
    typer.Option(help="folder the sink writes to (default: NEWSLETTER_OUTBOX_DIR, ./outbox)"),
]


def dev(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    smtp_port: SmtpPort = None,
    outbox: Outbox = None,
    concurrency: Annotated[int, typer.Option(help="worker threads")] = 2,
) -> None:
    """Run the local stack in one process: the web app, a Celery worker, the beat and an SMTP
    sink writing to ./outbox/ (migrates the database first). Ctrl-C stops it all."""
    base = settings()
    stack_settings = dev_settings(
        base, host=host, port=port, smtp_port=smtp_port or base.smtp_port, outbox=outbox
    )
    run_stack(
        stack_settings,
        host=host,
        port=port,
        concurrency=concurrency,
        on_ready=_ready,
        on_stopping=lambda: console.print("stopping (the worker finishes what it holds)..."),
    )
    console.print("stopped: web app, worker, beat and SMTP sink")


def _ready(stack: Stack) -> None:
    s = stack.settings
    origin = stack.ui_url.removesuffix("/admin/")
    database = make_url(s.database_url).render_as_string(hide_password=True)
    console.print("[bold]newsletter dev[/]: everything runs in this process; Ctrl-C stops it all")
    console.print(f"  editor UI   {stack.ui_url}", highlight=False)
    console.print(f"  outbox      {stack.outbox}  (browse: {origin}/dev/outbox)", highlight=False)
    console.print(
        f"  SMTP sink   {stack.smtp_host}:{stack.smtp_port}  (all mail goes here, none leaves)",
        highlight=False,
    )
    console.print(f"  database    {database}  (migrated)", highlight=False)
    console.print(f"  worker      Celery on {s.broker_url}, with the beat", highlight=False)
    if s.environment != "development":
        console.print(
            f"[yellow]NEWSLETTER_ENVIRONMENT is {s.environment!r}: /dev/outbox exists only in "
            "development[/]",
            highlight=False,
        )
    from newsletter.access import editors

    with session() as db_session:
        if not editors.list_users(db_session):
            console.print("no editor account yet: run", highlight=False)
            console.print("  newsletter admin create-user you@example.org", highlight=False)
            console.print("  newsletter seed        (sample newsletter, articles, readers)")


def sink(
    host: Annotated[str, typer.Option(help="address the sink listens on")] = "127.0.0.1",
    port: SmtpPort = None,
    outbox: Outbox = None,
) -> None:
    """Run only the local SMTP sink: every message it receives becomes a .eml file in the outbox
    folder. Ctrl-C stops it."""
    base = settings()
    port = port or base.smtp_port
    folder = (outbox or base.outbox_dir).resolve()
    ensure_free(host, port, "the SMTP sink (--port)")

    def show(received: Received) -> None:
        message = received.parse()
        console.print(
            f"received: to {message.get('To', '')}, {message.get('Subject', '')!r}",
            highlight=False,
            markup=False,
        )

    with stop_signals() as stop, SMTPSink(host=host, port=port, folder=folder, on_message=show):
        console.print(
            f"SMTP sink on {host}:{port}, writing to {folder}; Ctrl-C stops it", highlight=False
        )
        while not stop.wait(0.25):
            pass
    console.print("stopped: SMTP sink")
