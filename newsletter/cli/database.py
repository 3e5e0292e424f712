"""``newsletter db``: apply and revert the migrations."""

from __future__ import annotations

import typer

from newsletter import db, schema_snapshot
from newsletter.cli.common import (
    console,
    settings,
)

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    schema_snapshot.upgrade(settings().database_url, revision)
    console.print(f"database at {revision}")


@app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' for an empty database)."""
    db.downgrade(settings().database_url, revision)
    console.print(f"database at {revision}")
