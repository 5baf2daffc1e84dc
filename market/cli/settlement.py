"""CLI of settlement: the ``watch`` command and the ``settlement`` sub-app (``verify JOB``).

``cli.py`` mounts them: ``app.command("watch")(watch)`` and ``app.add_typer(settlement_app, name="settlement")``.
Data goes to stdout (``--json``: one JSON object per line for ``watch``), progress to stderr.
Exit codes: 0 ok, 1 a check failed (``verify``), 2 bad input / unreachable chain or database.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Annotated, Any, Optional

import typer

settlement_app = typer.Typer(help="Settlement: inclusion proofs of settled jobs.", no_args_is_help=True)

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2

RpcUrl = Annotated[Optional[str], typer.Option("--rpc-url", envvar="RAYMARKET_RPC_URL",
                                               help="Ethereum JSON-RPC node, e.g. http://127.0.0.1:8545.")]
DatabaseUrl = Annotated[Optional[str], typer.Option("--database-url", envvar="RAYMARKET_DATABASE_URL",
                                                    help="SQLAlchemy URL; default the SQLite file.")]


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _load_hook(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    if not attr:
        raise _fail(f"--hooks {spec!r}: expected module:function, e.g. market.exchange:register_settlement_hooks")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise _fail(f"--hooks {spec!r}: {exc}") from None


def _connect(rpc_url: str) -> Any:
    from contracts.chain import connect
    from contracts.errors import ContractsError

    try:
        return connect(rpc_url)
    except ContractsError as exc:
        raise _fail(str(exc)) from None


def _engine(database_url: str | None) -> Any:
    """An engine on a database that has the settlement tables (else exit 2 with the fix)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from market.db.base import make_engine

    engine = make_engine(database_url)
    try:
        ready = inspect(engine).has_table("settlement_leaves")
    except SQLAlchemyError as exc:
        raise _fail(f"cannot open the database: {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from None
    if not ready:
        raise _fail("the database has no settlement tables; run `raymarket db upgrade` first")
    return engine


def watch(
    contract: Annotated[str, typer.Option("--contract", help="Settlement contract address.")],
    rpc_url: RpcUrl = None,
    database_url: DatabaseUrl = None,
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
    from eth_utils import is_address

    from contracts.bindings import SettlementContract
    from market.settlement.watcher import Watcher, WatcherConfig, WatcherHooks

    if rpc_url is None:
        raise _fail("watch needs --rpc-url (or $RAYMARKET_RPC_URL): the in-process chain lives only inside "
                    "the process that started it")
    if not is_address(contract):
        raise _fail(f"--contract {contract!r} is not an address (0x + 40 hex digits)")
    engine = _engine(database_url)
    chain = _connect(rpc_url)
    watch_hooks = WatcherHooks()
    # Default: the exchange's hooks (jobs marked settled / unsettled, providers slashed on challenges).
    for spec in hooks or ["market.exchange:register_settlement_hooks"]:
        _load_hook(spec)(watch_hooks, engine)

    def emit(event: Any) -> None:
        if as_json:
            sys.stdout.write(json.dumps(event.to_json()) + "\n")
            sys.stdout.flush()
        else:
            typer.echo(f"{event.action:8} {event.event:15} block {event.block_number} batch {event.batch_id}")

    config = WatcherConfig(from_block=from_block, confirmations=confirmations,
                           max_blocks_per_poll=max_blocks_per_poll, poll_interval_s=poll_interval_s)
    watcher = Watcher(SettlementContract(chain, contract), engine, config, watch_hooks, emit)
    typer.echo(f"watching {contract} from block {from_block} ({confirmations} confirmations)", err=True)
    try:
        watcher.run(max_polls=1 if once else None)
    except KeyboardInterrupt:
        pass


def verify_report(session: Any, job: str, settlement: Any | None) -> dict[str, Any]:
    """The inclusion report of ``job`` (see ``verify``): leaf, proof, roots and the checks done.

    Raises:
        market.settlement.batching.UnknownJob
    """
    from contracts.attestation import recover_signer
    from contracts.merkle import verify_inclusion
    from market.settlement.batching import inclusion, leaf_from_record, unhex

    inc = inclusion(session, job)
    leaf = leaf_from_record(inc.leaf)
    att = leaf.signed.attestation
    checks: dict[str, bool] = {
        "leaf_hash_matches": leaf.hash == unhex(inc.leaf.leaf_hash),
        "signer_is_provider": recover_signer(att, leaf.signed.signature, leaf.signed.domain) == att.provider,
        "proof_verifies_to_root": verify_inclusion(inc.root, leaf.hash, inc.proof),
        "root_matches_batch_record": inc.root == unhex(inc.batch.root),
    }
    report: dict[str, Any] = {
        "job": job, "job_id": inc.leaf.job_id, "batch_id": inc.batch.batch_id, "leaf_index": inc.leaf.leaf_index,
        "leaf_hash": inc.leaf.leaf_hash, "provider": att.provider, "price_wei": att.price_wei,
        "kind": att.kind.name.lower(), "proof": ["0x" + p.hex() for p in inc.proof], "root": "0x" + inc.root.hex(),
        "batch_status": inc.batch.status, "tx_hash": inc.batch.tx_hash, "contract": inc.leaf.contract,
        "challenge_reason": inc.leaf.challenge_reason, "onchain_root": None,
    }
    if settlement is not None:
        onchain = settlement.get_batch(unhex(inc.batch.batch_id))
        report["onchain_root"] = "0x" + onchain.root.hex() if onchain.exists else None
        checks["onchain_root_matches"] = onchain.root == inc.root
        checks["contract_verifies_attestation"] = settlement.verify_attestation(unhex(inc.batch.batch_id), leaf, inc.proof)
    report["checks"] = checks
    report["ok"] = all(checks.values())
    return report


@settlement_app.command("verify")
def verify(
    job: Annotated[str, typer.Argument(help="The exchange's job id or the attestation's 0x bytes32 job id.")],
    rpc_url: RpcUrl = None,
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Print a job's leaf, inclusion proof and on-chain root, and check them (exit 1 when a check fails)."""
    from sqlalchemy.orm import Session

    from contracts.bindings import SettlementContract
    from market.settlement.batching import UnknownJob, find_leaf

    engine = _engine(database_url)
    with Session(engine) as s:
        try:
            contract = find_leaf(s, job).contract
            settlement = SettlementContract(_connect(rpc_url), contract) if rpc_url else None
            report = verify_report(s, job, settlement)
        except UnknownJob as exc:
            raise _fail(str(exc)) from None
    if rpc_url is None:
        typer.echo("no --rpc-url: on-chain root not checked", err=True)
    if as_json:
        typer.echo(json.dumps(report, indent=1))
    else:
        for key in ("job", "job_id", "batch_id", "leaf_index", "leaf_hash", "provider", "price_wei", "kind", "root",
                    "onchain_root", "batch_status", "tx_hash"):
            typer.echo(f"{key:18} {report[key]}")
        typer.echo("proof              " + (" ".join(report["proof"]) or "(single-leaf batch)"))
        for name, ok in report["checks"].items():
            typer.echo(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if not report["ok"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


def main() -> None:
    """``python -m market.cli.settlement watch ...`` / ``verify ...`` (for use without ``cli.py``)."""
    app = typer.Typer(no_args_is_help=True)
    app.command("watch")(watch)
    app.add_typer(settlement_app, name="settlement")
    app.command("verify")(verify)
    app()


if __name__ == "__main__":
    main()
