"""What every ``raymarket`` sub-app shares: the common options, output helpers and the settings.

Conventions: data goes to stdout (``--json`` wherever data is printed), progress and messages to
stderr; a command that fails calls :func:`fail` (one line, a hint, an :class:`ExitCode`) or lets a
domain error reach the single handler (:mod:`market.cli.errors`). Each command builds its
:class:`~market.settings.Settings` once with :func:`settings` from its flags and passes it down.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from market.cli.exit_codes import ExitCode
from market.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

#: Messages and progress (stderr).
err = Console(stderr=True, highlight=False, soft_wrap=True)
#: Data (stdout); when it is not a terminal (a pipe, a file) tables keep their full width.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)

# ---------------------------------------------------------------------------- the shared options
PasswordFile = Annotated[Optional[Path], typer.Option(
    "--password-file", help="File whose first line is the keystore password (else $RAYMARKET_PASSWORD, "
                            "else a prompt).", show_default=False)]
# The environment (RAYMARKET_*) and <data_dir>/config.toml are read by Settings, not by the options,
# so that every value has one reader and one precedence: flag > environment > config file > default.
DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Keys, results, the config file and the SQLite ledger (env RAYMARKET_HOME; "
                       "default: the user data dir).", show_default=False)]
DatabaseUrl = Annotated[Optional[str], typer.Option(
    "--database-url", help="SQLAlchemy URL (env RAYMARKET_DATABASE_URL; default: <data-dir>/ledger.db).",
    show_default=False)]
RpcUrl = Annotated[Optional[str], typer.Option(
    "--rpc-url", help="Ethereum JSON-RPC node, e.g. anvil (env RAYMARKET_RPC_URL; default: in-process EVM).",
    show_default=False)]
RayAddress = Annotated[Optional[str], typer.Option(
    "--ray-address", help="A Ray cluster to join (env RAYMARKET_RAY_ADDRESS; default: start a local one).",
    show_default=False)]
ExchangeUrl = Annotated[Optional[str], typer.Option(
    "--exchange", help="The exchange service's URL (env RAYMARKET_EXCHANGE_URL; default: from config.toml, "
                       "written by `raymarket dev up`).", show_default=False)]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def settings(**flags: Any) -> Settings:
    """The command's settings: its flags (``None`` = not given) over the environment and the config file.

    Raises:
        market.settings.SettingsError: a value is invalid.
    """
    return Settings.load(**flags)


# ---------------------------------------------------------------------------- output
def progress(msg: str) -> None:
    """One timestamped progress line on stderr."""
    err.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")


def emit(data: Any, as_json: bool, text: str | Table | None = None) -> None:
    """Print ``data`` as JSON (``as_json``) or ``text`` (a string or a rich table; default: ``data``)."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        sys.stdout.flush()
    elif isinstance(text, Table):
        out.print(text)
    else:
        sys.stdout.write(f"{data if text is None else text}\n")


def fail(message: str, code: ExitCode, hint: str = "") -> NoReturn:
    """Print ``error: message`` (and the hint) on stderr and exit with ``code``."""
    err.print(f"[red]error[/red]: {escape(message)}" + (f"\n  hint: {escape(hint)}" if hint else ""))
    raise typer.Exit(int(code))


# ---------------------------------------------------------------------------- parsing
def wei(value: str, name: str, *, allow_zero: bool = False) -> int:
    """Parse an amount of wei given as a decimal integer string.

    Raises:
        typer.BadParameter: not an integer, or not positive (zero allowed with ``allow_zero``).
    """
    try:
        amount = int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an integer number of wei (e.g. 1000000000)",
                                 param_hint=name) from None
    if amount < 0 or (amount == 0 and not allow_zero):
        raise typer.BadParameter(f"must be a {'non-negative' if allow_zero else 'positive'} integer number "
                                 f"of wei, got {amount}", param_hint=name)
    if amount >= 2**256:
        raise typer.BadParameter("must be below 2^256 wei (a uint256)", param_hint=name)
    return amount


# ---------------------------------------------------------------------------- the database (operator tools)
def engine(s: Settings, *, migrate: bool = True) -> Engine:
    """An engine on the settings' database, migrated to the latest schema first unless ``migrate=False``."""
    # deferred: SQLAlchemy + alembic cost every command ~0.7 s at start-up, and only operator tools use them
    from market.db.base import make_engine  # noqa: PLC0415
    from market.db.migrate import upgrade  # noqa: PLC0415

    url = s.resolved_database_url
    if migrate:
        upgrade(url)
    return make_engine(url)
