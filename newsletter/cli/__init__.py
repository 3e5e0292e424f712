"""The ``newsletter`` command (Typer): commands parse arguments and call the domain."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from rich.markup import escape
from sqlalchemy.exc import OperationalError, ProgrammingError

from newsletter.cli.common import err, say_schema_behind, schema_behind
from newsletter.cli.lazy import LazyGroup
from newsletter.config import get_settings
from newsletter.exceptions import NewsletterError, QABlocked, TransportError

__all__ = ["app", "load_all", "main"]

app = typer.Typer(
    cls=LazyGroup, help="Compose newsletter issues and deliver them.", no_args_is_help=True
)


@app.callback()
def _root() -> None:
    """Compose newsletter issues and deliver them."""


def load_all() -> None:
    """Import every command's module now (a process that forks CLI runs imports them once)."""
    LazyGroup.load_all()


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
