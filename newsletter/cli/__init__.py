"""The ``newsletter`` command (Typer): commands parse arguments and call the domain."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from rich.markup import escape
from sqlalchemy.exc import OperationalError, ProgrammingError

from newsletter.cli import (
    admin,
    articles,
    audit,
    bounces,
    database,
    dev,
    dkim,
    issues,
    newsletters,
    relays,
    review,  # noqa: F401  (adds `issues review|approve|send-back|comment|comments`)
    run,
    sections,  # noqa: F401  (adds `issues section add|rename|move|remove|list`)
    segments,
    sending,  # noqa: F401  (adds `issues send` and the other send verbs)
    subscriber_show,  # noqa: F401  (adds `subscribers show`)
    subscribers,
    webhooks,
)
from newsletter.cli.common import err, say_schema_behind, schema_behind
from newsletter.config import get_settings
from newsletter.exceptions import NewsletterError, QABlocked, TransportError

__all__ = ["app", "main"]

app = typer.Typer(help="Compose newsletter issues and deliver them.", no_args_is_help=True)
app.add_typer(database.app, name="db")
app.add_typer(newsletters.app, name="newsletters")
app.add_typer(articles.app, name="articles")
app.add_typer(issues.app, name="issues")
app.add_typer(subscribers.app, name="subscribers")
app.add_typer(segments.app, name="segments")
app.add_typer(admin.app, name="admin")
app.add_typer(bounces.app, name="bounces")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(audit.app, name="audit")
app.add_typer(dkim.app, name="dkim")
app.add_typer(relays.app, name="relays")
for command in (run.seed, run.demo, run.worker, run.serve, dev.dev, dev.sink):
    app.command()(command)


def _configure_logging() -> None:
    """NEWSLETTER_LOG_FORMAT / _LEVEL; invalid settings are reported by the command itself.

    Short commands (and the demo's progress bar) show warnings only, unless NEWSLETTER_LOG_LEVEL
    asks for more; the long-running ``serve``, ``worker``, ``dev`` and ``sink`` log at
    NEWSLETTER_LOG_LEVEL.
    """
    import os

    from pydantic import ValidationError

    from newsletter.logs import configure_logging

    long_running = ("serve", "worker", "dev", "sink")
    service = sys.argv[1:2] in [[c] for c in long_running] or "NEWSLETTER_LOG_LEVEL" in os.environ
    try:
        configure_logging(get_settings(), level=None if service else "WARNING")
    except ValidationError:
        configure_logging(None, level=None if service else "WARNING")


def settings_problems(exc: ValidationError) -> str:
    """A settings ``ValidationError`` in one line: each problem, named by its variable."""
    problems = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = "_".join(str(part) for part in error["loc"]).upper()
        problems.append(f"NEWSLETTER_{loc}: {message}" if loc else message)
    return "; ".join(problems)


def main() -> None:
    """Run the CLI; user mistakes become one red line and exit 1, never a traceback."""
    _configure_logging()
    try:
        app()
    except QABlocked as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    except (NewsletterError, TransportError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")  # a title may hold "[...]"
        sys.exit(1)
    except ValidationError as exc:  # the settings: NEWSLETTER_TRANSPORT without credentials, say
        if exc.title != "Settings":
            raise
        err.print(f"[red]error:[/] invalid settings: {escape(settings_problems(exc))}")
        sys.exit(1)
    except (OperationalError, ProgrammingError) as exc:
        if schema_behind():
            say_schema_behind()
        else:
            first_line = str(exc.orig).splitlines()[0]
            err.print(f"[red]database error:[/] {first_line}", highlight=False)
        sys.exit(1)
