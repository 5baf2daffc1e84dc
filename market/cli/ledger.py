"""Ledger commands: ``raymarket ledger balance|balances|history|check`` (read-only operator tools).

Data goes to stdout (``--json`` for machines), messages to stderr. Ledger errors propagate to the
root CLI's single handler (:mod:`market.cli.errors`), which maps them to an exit code and a hint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from sqlalchemy.orm import Session

from market import ledger
from market.cli.common import DatabaseUrl, DataDir, JsonOut, emit, engine, settings
from market.cli.exit_codes import ExitCode

ledger_app = typer.Typer(help="Balances, history and invariants of the double-entry ledger.", no_args_is_help=True)

Provider = Annotated[str, typer.Option("--provider", "-p", help="Provider name (its accounts are provider:<name>, ...).")]
TransferId = Annotated[Optional[str], typer.Option("--transfer-id", help="Idempotency key; reuse it to retry safely "
                                                                        "(default: a fresh random id).")]


def _session(database_url: str | None, data_dir: Path | None) -> Session:
    """A session on the migrated database (``with _session(url) as s, s.begin():``)."""
    return Session(engine(settings(database_url=database_url, data_dir=data_dir)))


@ledger_app.command("balance")
def balance_cmd(account: Annotated[str, typer.Argument(help="Account id, e.g. client:alice, provider:p1, bond:p1.")],
                as_json: JsonOut = False, database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Print the balance of ACCOUNT in wei."""
    with _session(database_url, data_dir) as s:
        info = ledger.account(s, account)
    emit({"account": info.account_id, "kind": info.kind, "balance_wei": str(info.balance_wei)}, as_json,
          f"{info.account_id}\t{info.balance_wei} wei")


@ledger_app.command("balances")
def balances_cmd(as_json: JsonOut = False, database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Print every account's balance in wei."""
    with _session(database_url, data_dir) as s:
        rows = sorted(ledger.balances(s).items())
    emit({k: str(v) for k, v in rows}, as_json, "\n".join(f"{k}\t{v}" for k, v in rows))


@ledger_app.command("history")
def history_cmd(account: Annotated[str, typer.Argument(help="Account id, e.g. client:alice.")],
                limit: Annotated[Optional[int], typer.Option(min=1, help="Only the last N entries.")] = None,
                as_json: JsonOut = False, database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Print the journal entries of ACCOUNT, oldest first (delta > 0 credits it)."""
    with _session(database_url, data_dir) as s:
        rows = ledger.history(s, account, limit=limit)
    data = [{"seq": r.seq, "transfer_id": r.op_id, "leg": r.leg, "kind": r.kind, "counterparty": r.counterparty,
             "delta_wei": str(r.delta_wei), "job_id": r.job_id} for r in rows]
    text = "\n".join(f"{r.seq}\t{r.op_id}\t{r.kind}\t{r.delta_wei:+d}\t{r.counterparty}\t{r.job_id or ''}"
                     for r in rows)
    emit(data, as_json, text or f"no entries for {account}")


@ledger_app.command("check")
def check_cmd(as_json: JsonOut = False, database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Check the ledger's invariants; exit 1 when one is violated."""
    with _session(database_url, data_dir) as s:
        problems = ledger.check_invariants(s)
    emit({"ok": not problems, "violations": problems}, as_json, "\n".join(problems) or "ledger OK")
    if problems:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))


def register(app: typer.Typer, provider_app: typer.Typer | None = None) -> None:
    """Mount ``ledger_app`` as ``raymarket ledger`` (read-only operator tools).

    There is no ``provider bond|unbond`` any more: stake exists only as an on-chain Vault stake
    (``raymarket stake|unstake``, credited by the exchange's deposit watcher), never written into the
    database by a command (``provider_app`` is accepted for the old call shape and unused).
    """
    app.add_typer(ledger_app, name="ledger")
