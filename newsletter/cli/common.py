"""What every command shares: the consoles, settings, a session, progress bars, file input."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from newsletter import db
from newsletter.config import Settings, get_settings
from newsletter.exceptions import InvalidInput

console = Console()
err = Console(stderr=True)


def settings() -> Settings:
    return get_settings()


@contextmanager
def session() -> Iterator[Session]:
    with db.session_scope(settings().database_url) as s:
        yield s


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc


@contextmanager
def progress_bar(label: str) -> Iterator[tuple[Progress, TaskID]]:
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
        console=console,
        transient=False,
    )
    with bar:
        yield bar, bar.add_task(label, total=None, rate="", eta="")


@contextmanager
def open_binary(path: Path) -> Iterator[BinaryIO]:
    if str(path) == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        yield handle


def say_schema_behind(colour: str = "red") -> None:
    err.print(f"[{colour}]{db.SCHEMA_BEHIND}[/]", highlight=False)


def schema_behind() -> bool:
    """Whether the database answers and is behind the code (False when it does not answer)."""
    try:
        return not db.schema_at_head(settings().database_url)
    except SQLAlchemyError:
        return False


def audited(
    s: Session,
    action: str,
    *,
    target_type: str = "",
    target_id: int | None = None,
    newsletter_id: int | None = None,
    detail: str = "",
) -> None:
    """The audit entry of a command that changed something, in the command's transaction
    (the CLI acts as the operator at the machine: ``permissions.cli_actor``)."""
    from newsletter.access import audit, permissions

    audit.record(
        s,
        permissions.cli_actor(),
        action,
        target_type=target_type,
        target_id=target_id,
        newsletter_id=newsletter_id,
        detail=detail,
    )
