"""``raymarket``: the command line of the market (typer), composed here from the CLI layer's sub-apps.

Data goes to stdout (``--json`` wherever data is printed), progress and logs to stderr. Every
error goes through one handler (:mod:`market.cli.errors`): one line naming the problem, a hint,
and an exit code from the one table (:class:`market.cli.exit_codes.ExitCode`); never a traceback.
Settings (:class:`market.settings.Settings`: flags > ``RAYMARKET_*`` > ``<data_dir>/config.toml``)
are built once per command from its flags and passed down.

Every sub-app is mounted explicitly: a sub-app that fails to import is a bug and fails loudly.
The provider commands live here, not in ``market/cli``, because ``market`` must not import
``providers`` (import-linter's top-level layers).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Optional

import typer

import proving.cli
from market.cli import db, ledger, local, pipeline, settlement
from market.cli.common import DatabaseUrl, DataDir, JsonOut, emit, progress, settings, wei
from market.cli.errors import HandledGroup
from market.pipeline.replay import use_worker as use_replay_worker
from providers.agent import start_provider
from providers.prover_worker import ProverWorker


def _version() -> str:
    try:
        return version("raymarket")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"raymarket {_version()}")
        raise typer.Exit()


app = typer.Typer(name="raymarket", help="A Ray-based marketplace for verifiable compute.", no_args_is_help=True,
                  cls=HandledGroup, pretty_exceptions_enable=False, add_completion=False,
                  rich_markup_mode=None)  # plain usage errors: one greppable line, not a wrapped box
provider_app = typer.Typer(help="Run and manage a provider.", no_args_is_help=True)


@app.callback()
def _root(version_: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                                 callback=_print_version, is_eager=True)] = False) -> None:
    """A Ray-based marketplace for verifiable compute."""


# ---------------------------------------------------------------------------- provider
@provider_app.command("start")
def provider_start(
    ray_address: Annotated[str, typer.Option("--ray-address", help="The market's Ray cluster (head GCS address "
                                                                   "host:port; env RAYMARKET_RAY_ADDRESS).")],
    price: Annotated[str, typer.Option("--price", help="Ask in wei per CPU-second.")],
    bond: Annotated[str, typer.Option("--bond", help="Stake to bond, wei.")],
    name: Annotated[Optional[str], typer.Option(help="Provider name (default: the host name).")] = None,
    key_file: Annotated[Optional[Path], typer.Option(help="Signing key file (created if absent).")] = None,
    join: Annotated[bool, typer.Option(help="Run `ray start` to join this machine as a node first.")] = True,
    cpus: Annotated[Optional[int], typer.Option(help="CPUs to offer (default: all detected).")] = None,
    database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Join this machine to the market's Ray cluster, bond stake and post an offer."""
    s = settings(database_url=database_url, ray_address=ray_address, data_dir=data_dir)
    info = start_provider(ray_address=ray_address, price_per_cpu_s_wei=wei(price, "--price"),
                          bond_wei=wei(bond, "--bond"), name=name, key_file=key_file, join=join,
                          cpus=cpus, settings=s, progress=progress)
    emit(info, as_json)


# ---------------------------------------------------------------------------- composition
local.register(app)
app.add_typer(provider_app, name="provider")
app.add_typer(db.db_app, name="db")
ledger.register(app, provider_app)
app.add_typer(settlement.settlement_app, name="settlement")
app.command("watch")(settlement.watch)
app.add_typer(pipeline.pipeline_app, name="pipeline")
use_replay_worker(ProverWorker)  # replays re-prove with the providers' worker (market does not import providers)
app.registered_commands.extend(proving.cli.app.registered_commands)


def main() -> None:
    """Entry point (``raymarket``): run the app; errors become one line and an exit code (see module doc)."""
    app()


if __name__ == "__main__":
    main()
