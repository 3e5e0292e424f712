"""The root commands that run something: ``seed``, ``demo``, ``worker``, ``serve``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from newsletter import db, schema_snapshot, seeding
from newsletter.cli.common import (
    console,
    progress_bar,
    say_schema_behind,
    schema_behind,
    session,
    settings,
)
from newsletter.mail.dkim import signer_from_settings
from newsletter.sending import progress

if TYPE_CHECKING:
    import uvicorn


def seed() -> None:
    """Load the sample newsletter, articles and subscribers (safe to run again)."""
    schema_snapshot.upgrade(settings().database_url)
    with session() as s:
        result = seeding.seed(s)
    console.print(
        f"seeded {result.newsletter.name!r}: {result.articles} articles, "
        f"{result.subscribers} subscribers"
    )


def demo() -> None:
    """Seed, draft a Belarus Weekly issue and send it through an in-process worker to ./outbox/."""
    from newsletter.cli.demo import run_demo

    with progress_bar("sending") as (bar, task):

        def show(state: progress.Progress) -> None:
            bar.update(task, total=state.total or None, completed=state.done)

        result = run_demo(settings(), on_progress=show)
    console.print(f"[bold]Belarus Weekly issue #{result.issue_number}[/] (id {result.issue_id})")
    console.print(f"delivered: {result.delivered}")
    console.print(f"skipped (unsubscribed): {result.skipped}")
    if result.failed:
        console.print(f"[red]failed: {result.failed}[/]")
    console.print(f"outbox: {result.outbox} ({result.received} messages)")
    console.print(f"preview: {result.preview}")


def worker(
    concurrency: Annotated[int, typer.Option(help="worker processes")] = 2,
    beat: Annotated[
        bool, typer.Option(help="also run the periodic tick (one worker only)")
    ] = False,
    loglevel: Annotated[str | None, typer.Option(help="default: NEWSLETTER_LOG_LEVEL")] = None,
) -> None:
    """Run a Celery worker on the configured broker (not on a database behind the code)."""
    from worker.celery_app import app as celery_app

    if not db.schema_at_head(settings().database_url):
        say_schema_behind()
        raise typer.Exit(1)
    signer_from_settings(settings())  # a bad DKIM configuration stops here, in one line
    level = loglevel or settings().log_level
    argv = ["worker", f"--concurrency={concurrency}", f"--loglevel={level}"]
    if beat:
        argv.append("--beat")
    celery_app.worker_main(argv)


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="proxies whose X-Forwarded-For gives the client IP (comma-separated, or *); "
            "sign-up limits and consent records use that IP. Default: none, no forwarded "
            "header is trusted"
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="web processes sharing the port (uvicorn's supervisor restarts one that dies); "
            "each records its tracking events itself",
        ),
    ] = 1,
) -> None:
    """Run the HTTP app: admin API under /api (token from `newsletter admin create-token`),
    public sign-up, confirm, unsubscribe and preference pages; OpenAPI at /docs."""
    import uvicorn

    _warn_if_schema_behind()
    if workers == 1:
        app = production_app()
        uvicorn.Server(server_config(app, host=host, port=port, proxies=forwarded_allow_ips)).run()
        return
    # each worker process builds its own app (pool, tracking buffer) from this import string
    uvicorn.run(
        f"{__name__}:worker_app",
        factory=True,
        workers=workers,
        **server_options(host=host, port=port, proxies=forwarded_allow_ips),
    )


def production_app() -> Any:
    """The app as ``serve`` runs it: the Celery ports to the workers (in each web process)."""
    from newsletter.api.app import create_app
    from worker.dispatch import celery_dispatch, celery_send_confirmation, celery_start_import

    app = create_app(
        settings(),
        dispatch=celery_dispatch,
        send_confirmation=celery_send_confirmation,
        start_import=celery_start_import,
    )
    freeze_loaded()
    return app


def freeze_loaded() -> None:
    """What the server process has loaded (modules, templates, routes) is moved out of the
    garbage collector's sight (``gc.freeze``): a full collection then walks only what requests
    made, not the whole app, so it no longer stalls every request in flight for a tenth of a
    second (p99 of every route 250-490 ms -> 20-30 ms, ``bench/redirect.py``). Done once per
    server process, here, not in the app's lifespan: an app built in a test or another
    process's stack must not freeze what that process holds."""
    import gc

    gc.collect()
    gc.freeze()


def worker_app() -> Any:
    """``production_app`` in a process of ``serve --workers N`` (spawned: no CLI set-up yet)."""
    from newsletter.cli import _configure_logging

    _configure_logging()
    return production_app()


def server_config(app: Any, *, host: str, port: int, proxies: str | None) -> uvicorn.Config:
    """uvicorn's configuration of one process serving ``app`` (``server_options``)."""
    import uvicorn

    return uvicorn.Config(app, **server_options(host=host, port=port, proxies=proxies))


#: seconds an idle kept-alive connection stays open (uvicorn's default: 5). A server that closes
#: an idle connection races a client that reuses it at that moment: the request is lost with
#: no answer, and an HTTP client does not send a POST again by itself (``bench/keepalive_race.py``:
#: at 5 s, 17 to 25 of 200 requests sent after 4.93-5.01 s idle were dropped, from 4.99 s on,
#: besides those sent after 5 s). Longer than the idle timeouts of clients and proxies (httpx
#: 5 s, AWS load balancers 60 s), the client closes first, knowing it: nginx's default, 75 s.
KEEP_ALIVE_SECONDS = 75


def server_options(*, host: str, port: int, proxies: str | None) -> dict[str, Any]:
    """X-Forwarded-For/-Proto are read only from ``proxies`` (None: from nobody; uvicorn's own
    default would trust 127.0.0.1, so any local process, or a proxy on the same machine passing
    the header through, could choose the client IP). Idle connections: ``KEEP_ALIVE_SECONDS``."""
    return {
        "host": host,
        "port": port,
        "proxy_headers": proxies is not None,
        "forwarded_allow_ips": proxies,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "log_config": None,  # uvicorn's records go to the root handler main() set up
    }


def _warn_if_schema_behind() -> None:
    """``serve`` starts anyway (``/readyz`` says 503 until the upgrade), with this one line."""
    if schema_behind():
        say_schema_behind("yellow")
