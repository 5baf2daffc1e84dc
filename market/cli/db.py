"""``raymarket db upgrade|downgrade|check``: the database schema (alembic), for the operator."""

from __future__ import annotations

from typing import Annotated

import typer

from market.cli.common import DatabaseUrl, DataDir, err, settings
from market.db import migrate

db_app = typer.Typer(help="Database schema (alembic).", no_args_is_help=True)


def _shown(url: str) -> str:
    """``url`` without its credentials."""
    return url.split("@")[-1]


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None, data_dir: DataDir = None,
               revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or migrate the schema to REVISION (default: head)."""
    url = settings(database_url=database_url, data_dir=data_dir).resolved_database_url
    migrate.upgrade(url, revision)
    err.print(f"database at {revision}: {_shown(url)}")


@db_app.command("downgrade")
def db_downgrade(revision: str, database_url: DatabaseUrl = None, data_dir: DataDir = None,
                 yes: Annotated[bool, typer.Option("--yes", help="Confirm: a downgrade drops tables and their "
                                                   "rows (``base``: the whole ledger).")] = False) -> None:
    """Migrate the schema down to REVISION (``base`` drops everything; needs --yes)."""
    if not yes:
        raise typer.BadParameter(f"downgrading to {revision!r} deletes data (base: the whole ledger); "
                                 "back the database up, then rerun with --yes", param_hint="--yes")
    url = settings(database_url=database_url, data_dir=data_dir).resolved_database_url
    migrate.downgrade(url, revision)
    err.print(f"database at {revision}: {_shown(url)}")


@db_app.command("check")
def db_check(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Fail when the models and the migrations differ (``alembic check``)."""
    migrate.check(settings(database_url=database_url, data_dir=data_dir).resolved_database_url)
    err.print("models and migrations agree")
