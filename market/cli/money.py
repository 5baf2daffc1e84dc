"""Money commands over the Vault (issue 12), a thin layer over :class:`market.client.wallet.Wallet`:
``raymarket deposit AMOUNT``, ``stake AMOUNT``, ``unstake AMOUNT``, ``withdraw-stake``, ``withdraw AMOUNT``,
``claim``, ``wallet`` (balances at the exchange and in the Vault) and ``audit [--json]``.

AMOUNT is ``NUMBER[wei|gwei|eth]`` parsed exactly (:func:`market.core.units.parse_amount`; ``wei`` when no unit);
amounts print in ETH with the exact wei beside. Deposits, stake, unstake and claims are Vault transactions signed
with your own key (the exchange only observes them); ``withdraw`` asks the exchange to make part of your free
balance claimable from the next epoch root, then ``claim`` takes it out of the Vault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from market.cli.accounts import KeyOpt, PasswordFile, load_account
from market.cli.common import DataDir, ExchangeUrl, JsonOut, emit, fail, settings
from market.cli.exit_codes import ExitCode
from market.client import Client
from market.client.wallet import Wallet
from market.core.units import AmountError, format_eth, parse_amount

Amount = Annotated[str, typer.Argument(help="Amount: NUMBER[wei|gwei|eth], e.g. 1.5eth, 20gwei, 1000 (wei).")]
RpcOpt = Annotated[Optional[str], typer.Option("--rpc-url", help="The chain's JSON-RPC node (default: the "
                                                                 "exchange's; its dev relay for an in-process EVM).")]


def _amount(text: str) -> int:
    try:
        value = parse_amount(text)
    except AmountError as exc:
        raise typer.BadParameter(str(exc), param_hint="AMOUNT") from None
    if value <= 0:
        raise typer.BadParameter("the amount must be positive", param_hint="AMOUNT")
    return value


def wallet(exchange: str | None, key: str | None, password_file: Path | None, data_dir: Path | None,
           rpc_url: str | None) -> Wallet:
    """The command's wallet: exchange URL from the settings, key from the keystore."""
    s = settings(exchange_url=exchange, data_dir=data_dir)
    return Wallet(s.exchange_url, load_account(key, password_file, s), rpc_url=rpc_url or s.rpc_url)


def _tx(what: str, amount: int | None, tx: dict[str, Any], as_json: bool) -> None:
    data = {"action": what, **({"amount_wei": str(amount)} if amount is not None else {}), **tx}
    emit(data, as_json, f"{what}{' ' + format_eth(amount) if amount is not None else ''}: tx {tx['tx_hash']} "
                        f"(block {tx['block_number']}, {tx['gas_used']} gas)")


def deposit(amount: Amount, exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
            data_dir: DataDir = None, rpc_url: RpcOpt = None, as_json: JsonOut = False) -> None:
    """Deposit AMOUNT into the Vault: spendable at the exchange once confirmed."""
    value = _amount(amount)
    _tx("deposit", value, wallet(exchange, key, password_file, data_dir, rpc_url).deposit(value), as_json)


def stake(amount: Amount, exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
          data_dir: DataDir = None, rpc_url: RpcOpt = None, as_json: JsonOut = False) -> None:
    """Stake AMOUNT in the Vault as provider bond (credited to your registered provider once confirmed)."""
    value = _amount(amount)
    _tx("stake", value, wallet(exchange, key, password_file, data_dir, rpc_url).stake(value), as_json)


def unstake(amount: Amount, exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
            data_dir: DataDir = None, rpc_url: RpcOpt = None, as_json: JsonOut = False) -> None:
    """Start unbonding AMOUNT of stake (slashable until it matures; then `raymarket withdraw-stake`)."""
    value = _amount(amount)
    _tx("unstake", value, wallet(exchange, key, password_file, data_dir, rpc_url).unstake(value), as_json)


def withdraw_stake(exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
                   data_dir: DataDir = None, rpc_url: RpcOpt = None, as_json: JsonOut = False) -> None:
    """Take matured unbonding stake out of the Vault (refused before the unbonding period ends)."""
    _tx("withdraw-stake", None, wallet(exchange, key, password_file, data_dir, rpc_url).withdraw_stake(), as_json)


def withdraw(amount: Amount, exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
             data_dir: DataDir = None, rpc_url: RpcOpt = None, as_json: JsonOut = False) -> None:
    """Make AMOUNT of your free balance claimable (from the next epoch root; then `raymarket claim`)."""
    value = _amount(amount)
    out = wallet(exchange, key, password_file, data_dir, rpc_url).withdraw(value)
    emit(out, as_json, f"{format_eth(value)} claimable from the next epoch root; then `raymarket claim`")


def claim(exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
          data_dir: DataDir = None, rpc_url: RpcOpt = None, as_json: JsonOut = False) -> None:
    """Claim from the Vault what the current epoch root allows beyond what you claimed."""
    out = wallet(exchange, key, password_file, data_dir, rpc_url).claim()
    if out is None:
        emit({"claimed": False}, as_json, "nothing to claim yet (withdraw first, or wait for the next epoch root)")
        return
    _tx("claim", int(out["amount_wei"]), out, as_json)


def wallet_cmd(exchange: ExchangeUrl = None, key: KeyOpt = None, password_file: PasswordFile = None,
               data_dir: DataDir = None, rpc_url: RpcOpt = None, as_json: JsonOut = False) -> None:
    """Your money: free and escrowed at the exchange, claimable, claimed, and any debt (ETH with exact wei)."""
    b = wallet(exchange, key, password_file, data_dir, rpc_url).balance()
    lines = [f"{b['address']}"] + [f"  {label}: {format_eth(int(b[k]))}" for label, k in (
        ("free", "balance_wei"), ("escrowed", "escrowed_wei"), ("claimable (next root)", "claimable_wei"),
        ("cumulative in root", "cumulative_wei"), ("claimed", "claimed_wei"), ("debt", "debt_wei"))]
    emit(b, as_json, "\n".join(lines))


def audit(exchange: ExchangeUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """The exchange's solvency audit: the Vault's balance against what the ledger owes (exit 1 if unbalanced)."""
    s = settings(exchange_url=exchange, data_dir=data_dir)
    report = Client(s.exchange_url, None).t.get("/v1/audit")
    emit(report, as_json, "\n".join([
        f"audit at block {report['checked_at_block']}: {'balanced' if report['balanced'] else 'UNBALANCED'}",
        f"  Vault balance:     {format_eth(int(report['contract_balance_wei']))}",
        f"  ledger owes:       {format_eth(int(report['ledger_liabilities_wei']))}",
        f"  pending claims:    {format_eth(int(report['pending_claims_wei']))}"]
        + [f"  in debt: {a} owes {format_eth(int(w))}" for a, w in report.get("flagged", {}).items()]))
    if not report["balanced"]:
        fail("the Vault does not hold what the ledger owes", ExitCode.CHECK_FAILED,
             "every ledger wei comes from a confirmed Vault event (the dev faucet too): see the exchange log")


def register(app: typer.Typer) -> None:
    """Mount the money commands on the root app."""
    for name, fn in (("deposit", deposit), ("stake", stake), ("unstake", unstake), ("withdraw-stake", withdraw_stake),
                     ("withdraw", withdraw), ("claim", claim), ("wallet", wallet_cmd), ("audit", audit)):
        app.command(name)(fn)
