"""Ledger commands: ``raymarket ledger balance|balances|history|check`` and ``raymarket provider bond|unbond``.

Data goes to stdout (``--json`` for machines), messages to stderr. Ledger errors propagate to the
root CLI's single handler (:mod:`market.cli.errors`), which maps them to an exit code and a hint.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Annotated, Optional

import typer
from sqlalchemy.orm import Session

from market import ledger
from market.core import ids
from market.cli.common import DatabaseUrl, DataDir, JsonOut, emit, engine, settings, wei
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


def bond(amount_wei: Annotated[str, typer.Argument(help="Stake to bond, in wei.")], provider: Provider,
         deposit: Annotated[bool, typer.Option("--deposit", help="Deposit the amount first (from outside the "
                                                                  "ledger) instead of using the free balance.")] = False,
         transfer_id: TransferId = None, as_json: JsonOut = False, database_url: DatabaseUrl = None,
         data_dir: DataDir = None) -> None:
    """Bond AMOUNT_WEI of stake for PROVIDER (from its free balance, or deposited with --deposit)."""
    amount = wei(amount_wei, "AMOUNT_WEI")
    tid = transfer_id or ids.operator_id("bond", provider, uuid.uuid4().hex)
    with _session(database_url, data_dir) as s, s.begin():
        ledger.open_provider(s, provider)
        if deposit:
            ledger.deposit(s, f"{tid}:deposit", ledger.provider_account(provider), amount)
        ledger.bond(s, tid, provider, amount)
        bonded = ledger.balance(s, ledger.bond_account(provider))
    emit({"transfer_id": tid, "provider": provider, "amount_wei": str(amount), "bond_wei": str(bonded)}, as_json,
          f"bonded {amount} wei for {provider} (free bond now {bonded} wei, transfer {tid})")


def unbond(amount_wei: Annotated[Optional[str], typer.Argument(help="Stake to unbond, in wei (omit with --complete).")] = None,
           provider: Provider = "",
           complete: Annotated[bool, typer.Option("--complete", help="Pay out the matured unbond requests.")] = False,
           transfer_id: TransferId = None, as_json: JsonOut = False, database_url: DatabaseUrl = None,
           data_dir: DataDir = None) -> None:
    """Request unbonding of AMOUNT_WEI for PROVIDER (paid out after the unbonding period), or --complete it."""
    if not provider:
        raise typer.BadParameter("give the provider name", param_hint="--provider")
    now = time.time()
    with _session(database_url, data_dir) as s, s.begin():
        if complete:
            tid = transfer_id or ids.operator_id("complete-unbond", provider, uuid.uuid4().hex)
            done = ledger.complete_unbond(s, tid, provider, now)
            data = {"transfer_id": tid, "provider": provider, "amount_wei": str(done.amount_wei),
                    "unbond_ids": done.unbond_ids}
            text = f"paid out {done.amount_wei} wei of matured unbonding to provider:{provider}"
        else:
            if amount_wei is None:
                raise typer.BadParameter("give the amount to unbond (or --complete)", param_hint="AMOUNT_WEI")
            tid = transfer_id or ids.operator_id("unbond", provider, uuid.uuid4().hex)
            req = ledger.request_unbond(s, tid, provider, wei(amount_wei, "AMOUNT_WEI"), now)
            data = {"transfer_id": tid, "provider": provider, "amount_wei": str(req.amount_wei),
                    "matures_at_s": req.matures_at_s}
            text = (f"unbonding {req.amount_wei} wei for {provider}; complete it after "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(req.matures_at_s))}")
    emit(data, as_json, text)


def register(app: typer.Typer, provider_app: typer.Typer) -> None:
    """Mount ``ledger_app`` as ``raymarket ledger`` and ``bond``/``unbond`` under ``raymarket provider``."""
    app.add_typer(ledger_app, name="ledger")
    provider_app.command("bond")(bond)
    provider_app.command("unbond")(unbond)
