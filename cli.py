"""``raymarket``: the command line of the market (typer), composed here from the CLI layer's sub-apps.

Data goes to stdout (``--json`` wherever data is printed), progress and logs to stderr. Every
error goes through one handler (:mod:`market.cli.errors`): one line naming the problem, a hint,
and an exit code from the one table (:class:`market.cli.exit_codes.ExitCode`); never a traceback.
Settings (:class:`market.settings.Settings`: flags > ``RAYMARKET_*`` > ``<data_dir>/config.toml``)
are built once per command from its flags and passed down.

Every sub-app is mounted explicitly: a sub-app that fails to import is a bug and fails loudly. A command
imports only the sub-app it runs (:data:`COMMANDS` maps each top-level command to its mount), so that
``raymarket prove`` does not pay for FastAPI, web3 and eth-account at start-up (``--help`` and an unknown
command mount everything). ``cli.app`` is the complete app (tests, docs).
The provider commands live here, not in ``market/cli``, because ``market`` must not import
``providers`` (import-linter's top-level layers).
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Optional

import typer

import sys
from collections.abc import Callable, Iterable
from importlib import import_module

from market.cli.common import DataDir, ExchangeUrl, JsonOut, PasswordFile, emit, progress, settings, wei
from market.cli.errors import HandledGroup
from market.core.embeddings import EMBEDDING_BACKENDS


def _version() -> str:
    try:
        return version("raymarket")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"raymarket {_version()}")
        raise typer.Exit()


provider_app = typer.Typer(help="Run and manage a provider.", no_args_is_help=True)


def _root(version_: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                                 callback=_print_version, is_eager=True)] = False) -> None:
    """A Ray-based marketplace for verifiable compute."""


# ---------------------------------------------------------------------------- provider
ProviderDir = Annotated[Optional[Path], typer.Option(
    "--provider-dir", help="The agent's own directory: cluster token, pidfile, drain file "
                           "(default: <data-dir>/provider).", show_default=False)]


def _embedding_backend(name: str) -> str:
    """``name`` when it is an embedding backend (``market.core.embeddings.EMBEDDING_BACKENDS``), else a usage error."""
    if name not in EMBEDDING_BACKENDS:
        raise typer.BadParameter(f"unknown backend {name!r}; use one of {', '.join(EMBEDDING_BACKENDS)}",
                                 param_hint="--embedding-backend")
    return name


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
    queue_depth: Annotated[int, typer.Option("--queue-depth", min=1, max=64, help=(
        "Leases held per CPU: above 1, short jobs start without waiting for an auction round."))] = 1,
    embedding_backend: Annotated[str, typer.Option("--embedding-backend", help=(
        "How inference jobs embed: torch (sentence-transformers), onnx or onnx-int8 (ONNX Runtime, exported "
        "locally from the packaged weights on first use)."))] = "torch",
    inference_batch_sentences: Annotated[Optional[int], typer.Option("--inference-batch-sentences", min=0, help=(
        "Inference leases of one poll run in one model call on one worker, up to this many sentences per batch "
        "(0: one call per job; default 256)."))] = None,
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
                      dev_bond_wei=wei(dev_bond, "--dev-bond", allow_zero=True), queue_depth=queue_depth,
                      embedding_backend=_embedding_backend(embedding_backend),
                      **({} if inference_batch_sentences is None else
                         {"inference_batch_sentences": inference_batch_sentences}))

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
# Imports inside the mount functions are the point: each command imports only its own sub-app.
def _mount_account(a: typer.Typer) -> None:
    a.add_typer(import_module("market.cli.accounts").account_app, name="account")


def _mount_jobs(a: typer.Typer) -> None:
    import_module("market.cli.jobs").register(a, provider_app)


def _mount_provider(a: typer.Typer) -> None:
    if "submit" not in _names(a):  # `provider list` lives with the job commands
        _mount_jobs(a)
    a.add_typer(provider_app, name="provider")


def _mount_exchange(a: typer.Typer) -> None:
    a.add_typer(import_module("market.cli.exchange").exchange_app, name="exchange")


def _mount_dev(a: typer.Typer) -> None:
    dev = import_module("market.cli.dev")
    a.add_typer(dev.dev_app, name="dev")
    a.command("demo")(dev.demo_cmd)


def _mount_circuit(a: typer.Typer) -> None:
    a.add_typer(import_module("market.cli.circuit").circuit_app, name="circuit")


def _mount_replay(a: typer.Typer) -> None:
    # replays re-prove with the providers' worker (market does not import providers)
    import_module("market.pipeline.replay").use_worker(import_module("providers.prover_worker").ProverWorker)
    a.command("replay")(import_module("market.cli.replay").replay)


def _mount_db(a: typer.Typer) -> None:
    a.add_typer(import_module("market.cli.db").db_app, name="db")


def _mount_ledger(a: typer.Typer) -> None:
    import_module("market.cli.ledger").register(a, provider_app)


def _mount_money(a: typer.Typer) -> None:  # deposit, stake, unstake, withdraw-stake, withdraw, claim, wallet, audit
    import_module("market.cli.money").register(a)


def _mount_settlement(a: typer.Typer) -> None:
    settlement = import_module("market.cli.settlement")
    a.add_typer(settlement.settlement_app, name="settlement")
    a.command("watch")(settlement.watch)


def _mount_pipeline(a: typer.Typer) -> None:
    a.add_typer(import_module("market.cli.pipeline").pipeline_app, name="pipeline")


def _mount_prove(a: typer.Typer) -> None:
    a.registered_commands.extend(import_module("market.cli.prove").app.registered_commands)


#: every mount, in the order ``--help`` lists them
MOUNTS: dict[str, Callable[[typer.Typer], None]] = {
    "account": _mount_account, "jobs": _mount_jobs, "provider": _mount_provider, "exchange": _mount_exchange,
    "dev": _mount_dev, "circuit": _mount_circuit, "replay": _mount_replay, "db": _mount_db,
    "ledger": _mount_ledger, "money": _mount_money, "settlement": _mount_settlement, "pipeline": _mount_pipeline,
    "prove": _mount_prove}
#: top-level command -> its mount (tests/cli/test_lazy_cli.py checks this against what each mount registers)
COMMANDS: dict[str, str] = {
    "account": "account", "provider": "provider", "exchange": "exchange", "dev": "dev", "demo": "dev",
    "circuit": "circuit", "replay": "replay", "db": "db", "ledger": "ledger", "settlement": "settlement",
    "watch": "settlement", "pipeline": "pipeline", "prove": "prove", "verify": "prove", "export-verifier": "prove",
    **dict.fromkeys(("submit", "status", "cancel", "result", "logs", "quote", "balance"), "jobs"),
    **dict.fromkeys(("deposit", "stake", "unstake", "withdraw-stake", "withdraw", "claim", "wallet", "audit"),
                    "money")}


def _names(a: typer.Typer) -> set[str]:
    return ({c.name or (c.callback.__name__ if c.callback else "") for c in a.registered_commands}
            | {g.name or "" for g in a.registered_groups})


def build_app(mounts: Iterable[str] = MOUNTS) -> typer.Typer:
    """The root app with the given mounts (names of :data:`MOUNTS`); all of them by default."""
    root = typer.Typer(name="raymarket", help="A Ray-based marketplace for verifiable compute.", no_args_is_help=True,
                       cls=HandledGroup, pretty_exceptions_enable=False, add_completion=False,
                       rich_markup_mode=None)  # plain usage errors: one greppable line, not a wrapped box
    root.callback()(_root)
    provider_app.registered_commands[:] = [c for c in provider_app.registered_commands if c.name in _OWN_PROVIDER]
    wanted = set(mounts)
    for name, mount in MOUNTS.items():
        if name in wanted:
            mount(root)
    return root


def mounts_for(argv: list[str]) -> Iterable[str]:
    """The mounts a command line needs: the first word's own; every mount for ``--help``, ``--version``, no
    command or an unknown one (so that the usage error lists the real commands)."""
    first = next((w for w in argv if not w.startswith("-")), None)
    if first is None or first not in COMMANDS:
        return MOUNTS
    return (COMMANDS[first],)


_OWN_PROVIDER = {"start", "drain", "stop"}


def __getattr__(name: str) -> typer.Typer:  # PEP 562: ``cli.app`` is the complete app, built on first use
    if name == "app":
        globals()["app"] = full = build_app()
        return full
    raise AttributeError(name)


def main() -> None:
    """Entry point (``raymarket``): run the app; errors become one line and an exit code (see module doc)."""
    build_app(mounts_for(sys.argv[1:]))()


if __name__ == "__main__":
    main()
