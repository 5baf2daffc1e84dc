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

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Optional

import typer

from market.cli import circuit, db, dev, exchange, jobs, ledger, pipeline, prove, replay, settlement
from market.cli import money as money_cli
from market.cli.accounts import PasswordFile, account_app
from market.cli.common import DataDir, ExchangeUrl, JsonOut, emit, progress, settings, wei
from market.cli.errors import HandledGroup
from market.pipeline.replay import use_worker as use_replay_worker
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
ProviderDir = Annotated[Optional[Path], typer.Option(
    "--provider-dir", help="The agent's own directory: cluster token, pidfile, drain file "
                           "(default: <data-dir>/provider).", show_default=False)]


def _provider_dir(provider_dir: Path | None, data_dir: Path | None) -> Path:
    return provider_dir or settings(data_dir=data_dir).data_dir / "provider"


@provider_app.command("start")
def provider_start(
    key: Annotated[Path, typer.Option("--key", help="The provider's v3 keystore (`raymarket account new`).")],
    exchange: ExchangeUrl = None,
    password_file: PasswordFile = None,
    name: Annotated[Optional[str], typer.Option(help="Provider name (default: the host name).")] = None,
    ray_address: Annotated[Optional[str], typer.Option(
        "--ray-address", help="Attach to your own fleet's Ray head (default: start a single-node cluster).")] = None,
    ray_token_file: Annotated[Optional[Path], typer.Option(
        "--ray-token-file", help="That head's auth token (default: $RAY_AUTH_TOKEN or the provider dir's).")] = None,
    price: Annotated[str, typer.Option("--price", help="Ask in wei per CPU-second.")] = str(25 * 10**9),
    cpus: Annotated[Optional[int], typer.Option(min=1, help="CPUs offered (default: all detected).")] = None,
    trusted_fleet: Annotated[bool, typer.Option(
        "--trusted-fleet", help="Allow a Ray cluster without token auth: ONLY for one operator who owns every "
                                "node (Ray is not a boundary between parties).")] = False,
    dev_bond: Annotated[str, typer.Option("--dev-bond", help="On a development exchange: bond this much (wei) "
                                                             "from the DEV faucet.")] = "0",
    benchmark_runs: Annotated[int, typer.Option("--benchmark-runs", min=1, help="Benchmark repetitions.")] = 5,
    poll_wait_s: Annotated[float, typer.Option("--poll-wait-s", min=0.0, max=25.0, help="Long-poll wait.")] = 10.0,
    provider_dir: ProviderDir = None, data_dir: DataDir = None, as_json: JsonOut = False,
) -> None:
    """Run the provider agent on this machine: its own Ray cluster (token auth), hardware benchmark,
    signed registration, heartbeats, leases pulled from the exchange; until SIGTERM/Ctrl-C."""
    from providers.agent import AgentConfig, run_agent  # noqa: PLC0415 - defers ray for every other command

    s = settings(exchange_url=exchange, data_dir=data_dir)
    cfg = AgentConfig(exchange_url=s.exchange_url, keystore=key, data_dir=_provider_dir(provider_dir, data_dir),
                      name=name, password_file=password_file, ray_address=ray_address, ray_token_file=ray_token_file,
                      price_per_cpu_s_wei=wei(price, "--price"), cpus=cpus, trusted_fleet=trusted_fleet,
                      poll_wait_s=poll_wait_s, heartbeat_s=None, benchmark_runs=benchmark_runs,
                      dev_bond_wei=wei(dev_bond, "--dev-bond", allow_zero=True))
    def started(info: dict) -> None:  # one line: `dev up` and scripts read it while the agent keeps running
        typer.echo(json.dumps(info, default=str) if as_json else _started_text(info))

    summary = run_agent(cfg, progress=progress, on_started=started)
    progress(f"provider {summary['provider']}: stopped ({summary.get('stats')})")


def _started_text(info: dict) -> str:
    return (f"provider {info.get('provider')} ({info.get('address')}) registered at {info.get('exchange_url')}; "
            f"ray {info.get('ray_address')}")


@provider_app.command("drain")
def provider_drain(provider_dir: ProviderDir = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Let the running agent finish its current leases and take no new ones (it stays registered)."""
    from providers.agent import drain_agent  # noqa: PLC0415 - defers ray

    res = drain_agent(_provider_dir(provider_dir, data_dir))
    emit(res, as_json, f"provider {res.get('name')} (pid {res.get('pid')}): draining")


@provider_app.command("stop")
def provider_stop(provider_dir: ProviderDir = None, data_dir: DataDir = None,
                  timeout_s: Annotated[float, typer.Option("--timeout-s", min=1.0, help="Wait this long for running "
                                                           "leases, then kill.")] = 60.0,
                  as_json: JsonOut = False) -> None:
    """Stop the running agent (running leases finish or are given back) and its own Ray cluster, by PID."""
    from providers.agent import stop_agent  # noqa: PLC0415 - defers ray

    res = stop_agent(_provider_dir(provider_dir, data_dir), timeout_s=timeout_s)
    emit(res, as_json, f"provider {res.get('name')} (pid {res.get('pid')}): stopped"
                       + (" (killed)" if res.get("killed") else ""))


# ---------------------------------------------------------------------------- composition
app.add_typer(account_app, name="account")
jobs.register(app, provider_app)
app.add_typer(provider_app, name="provider")
app.add_typer(exchange.exchange_app, name="exchange")
app.add_typer(dev.dev_app, name="dev")
app.add_typer(circuit.circuit_app, name="circuit")
app.command("demo")(dev.demo_cmd)
app.command("replay")(replay.replay)
app.add_typer(db.db_app, name="db")
ledger.register(app, provider_app)
money_cli.register(app)  # deposit, stake, unstake, withdraw-stake, withdraw, claim, wallet, audit (issue 12)
app.add_typer(settlement.settlement_app, name="settlement")
app.command("watch")(settlement.watch)
app.add_typer(pipeline.pipeline_app, name="pipeline")
use_replay_worker(ProverWorker)  # replays re-prove with the providers' worker (market does not import providers)
app.registered_commands.extend(prove.app.registered_commands)


def main() -> None:
    """Entry point (``raymarket``): run the app; errors become one line and an exit code (see module doc)."""
    app()


if __name__ == "__main__":
    main()
