"""CLI of settlement: ``raymarket watch`` and ``raymarket settlement verify JOB``.

``cli.py`` mounts them. Data goes to stdout (``--json``: one JSON object per line for ``watch``),
progress to stderr; exit codes from :class:`~market.cli.exit_codes.ExitCode` (``verify``:
1 = a check failed, 4 = no such settled job, 3 = the database has no settlement tables,
5 = the chain or the database cannot be reached).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Annotated, Any, Optional

import typer
from eth_utils import is_address
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from contracts.bindings import SettlementContract
from contracts.chain import Chain, connect
from contracts.errors import ContractsError
from market.cli.common import DatabaseUrl, DataDir, JsonOut, RpcUrl, engine, err, fail, settings
from market.cli.exit_codes import ExitCode
from market.settlement.batching import UnknownJob, find_leaf
from market.settlement.verify import verify_report
from market.settlement.watcher import Watcher, WatcherConfig, WatcherHooks

settlement_app = typer.Typer(help="Settlement: inclusion proofs of settled jobs.", no_args_is_help=True)

#: The watcher hooks registered by default: the exchange marks jobs settled / unsettled and slashes on challenges.
DEFAULT_HOOKS = "market.exchange:register_settlement_hooks"


def _load_hook(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    if not attr:
        raise typer.BadParameter(f"{spec!r}: expected module:function, e.g. {DEFAULT_HOOKS}", param_hint="--hooks")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise typer.BadParameter(f"{spec!r}: {exc}", param_hint="--hooks") from None


def _connect(rpc_url: str) -> Chain:
    try:
        return connect(rpc_url)
    except ContractsError as exc:
        fail(str(exc), ExitCode.UNREACHABLE)


def _settlement_engine(database_url: str | None, data_dir: Any) -> Engine:
    """An engine on a database that has the settlement tables (else exit with the fix)."""
    eng = engine(settings(database_url=database_url, data_dir=data_dir), migrate=False)
    try:
        ready = inspect(eng).has_table("settlement_leaves")
    except SQLAlchemyError as exc:
        fail(f"cannot open the database: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
             ExitCode.UNREACHABLE, "check --database-url / RAYMARKET_DATABASE_URL")
    if not ready:
        fail("the database has no settlement tables", ExitCode.BAD_INPUT, "run `raymarket db upgrade` first")
    return eng


def watch(
    contract: Annotated[Optional[str], typer.Option(
        "--contract", help="Settlement contract address (default: `contract` in config.toml).")] = None,
    rpc_url: RpcUrl = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    from_block: Annotated[int, typer.Option("--from-block", min=0, help="First block to scan.")] = 0,
    confirmations: Annotated[int, typer.Option("--confirmations", min=0, help="Blocks below head before applying.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event on stdout.")] = False,
    once: Annotated[bool, typer.Option("--once", help="Catch up to the confirmed head, then exit.")] = False,
    hooks: Annotated[Optional[list[str]], typer.Option(
        "--hooks", help="module:function called with (WatcherHooks, engine) to register hooks; repeatable.")] = None,
    max_blocks_per_poll: Annotated[int, typer.Option("--max-blocks-per-poll", min=1)] = 1000,
    poll_interval_s: Annotated[float, typer.Option("--poll-interval-s", min=0.0)] = 1.0,
) -> None:
    """Follow the Settlement contract's events into the database (reorg-safe, resumable, exactly once)."""
    s = settings(rpc_url=rpc_url, contract=contract, database_url=database_url, data_dir=data_dir)
    if s.rpc_url is None:
        raise typer.BadParameter("watch needs a node (or $RAYMARKET_RPC_URL): the in-process chain lives only "
                                 "inside the process that started it", param_hint="--rpc-url")
    if s.contract is None or not is_address(s.contract):
        raise typer.BadParameter(f"{s.contract!r} is not an address (0x + 40 hex digits)", param_hint="--contract")
    eng = _settlement_engine(database_url, data_dir)
    chain = _connect(s.rpc_url)
    watch_hooks = WatcherHooks()
    for spec in hooks or [DEFAULT_HOOKS]:
        _load_hook(spec)(watch_hooks, eng)

    def emit(event: Any) -> None:
        if as_json:
            sys.stdout.write(json.dumps(event.to_json()) + "\n")
            sys.stdout.flush()
        else:
            typer.echo(f"{event.action:8} {event.event:15} block {event.block_number} batch {event.batch_id}")

    config = WatcherConfig(from_block=from_block, confirmations=confirmations,
                           max_blocks_per_poll=max_blocks_per_poll, poll_interval_s=poll_interval_s)
    watcher = Watcher(SettlementContract(chain, s.contract), eng, config, watch_hooks, emit)
    err.print(f"watching {s.contract} from block {from_block} ({confirmations} confirmations)")
    try:
        watcher.run(max_polls=1 if once else None)
    except KeyboardInterrupt:
        pass


_TEXT_KEYS = ("job", "job_id", "batch_id", "leaf_index", "leaf_hash", "provider", "price_wei", "kind", "verification",
              "root", "onchain_root", "batch_status", "tx_hash")


@settlement_app.command("verify")
def verify(
    job: Annotated[str, typer.Argument(help="The exchange's job id or the attestation's 0x bytes32 job id.")],
    rpc_url: RpcUrl = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Print a job's leaf, inclusion proof and on-chain root, and check them (exit 1 when a check fails)."""
    s = settings(rpc_url=rpc_url, database_url=database_url, data_dir=data_dir)
    eng = _settlement_engine(database_url, data_dir)
    with Session(eng) as session:
        try:
            contract = find_leaf(session, job).contract
            settlement = SettlementContract(_connect(s.rpc_url), contract) if s.rpc_url else None
            report = verify_report(session, job, settlement)
        except UnknownJob as exc:
            fail(str(exc), ExitCode.NOT_FOUND, "is the job settled? see `raymarket status JOB`")
    if s.rpc_url is None:
        err.print("no --rpc-url: on-chain root not checked")
    if as_json:
        typer.echo(json.dumps(report, indent=1))
    else:
        for key in _TEXT_KEYS:
            typer.echo(f"{key:18} {report[key]}")
        typer.echo("proof              " + (" ".join(report["proof"]) or "(single-leaf batch)"))
        for name, ok in report["checks"].items():
            typer.echo(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if not report["ok"]:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


def main() -> None:
    """``python -m market.cli.settlement watch ...`` / ``settlement verify ...`` (without ``cli.py``)."""
    app = typer.Typer(no_args_is_help=True)
    app.command("watch")(watch)
    app.add_typer(settlement_app, name="settlement")
    app()


if __name__ == "__main__":
    main()
