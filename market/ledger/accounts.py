"""Ledger accounts: conventional ids, opening, and reads (balances, one account's journal history).

Conventional accounts (one per job for escrow, so concurrent jobs never contend on one row):
``client:<c>``, ``escrow:<job>``, ``provider:<p>`` (earnings, free balance), ``bond:<p>`` (free
stake), ``collateral:<p>`` (stake locked for jobs), ``unbonding:<p>``, ``slashing:<p>`` (queued
slashes), and the system accounts :data:`WORLD_ACCOUNT`, :data:`PROTOCOL_FEE_ACCOUNT`,
:data:`BURN_ACCOUNT`. Balances are int wei.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from market.ledger._checks import check_id
from market.ledger.errors import AccountKindConflict, InvalidArgument, UnknownAccount
from market.ledger.models import ACCOUNT_KINDS

#: The outside world of a standalone ledger: deposits come from it, withdrawals go to it (negative allowed:
#: minus the net external deposits). Closed on a chain-backed ledger (:func:`world_closed`).
WORLD_ACCOUNT = "world"
#: The Vault contract seen from the ledger (kind ``world``, negative allowed; see :mod:`market.ledger.chain`).
#: Its presence makes a ledger chain-backed: :data:`WORLD_ACCOUNT` is then closed (:func:`world_closed`).
VAULT_ACCOUNT = "vault"
#: Collects the protocol fee of every released payment.
PROTOCOL_FEE_ACCOUNT = "protocol:fees"
#: Burned slashes (money removed from circulation inside the ledger, kept for audit).
BURN_ACCOUNT = "burn"
#: id -> (kind, allow_negative) of the accounts every ledger has (seeded by migration 0001).
SYSTEM_ACCOUNTS: dict[str, tuple[str, bool]] = {
    WORLD_ACCOUNT: ("world", True),
    PROTOCOL_FEE_ACCOUNT: ("protocol", False),
    BURN_ACCOUNT: ("burn", False),
}

def client_account(client: str) -> str:
    """Account id of a client's free balance: ``client:<client>``."""
    return f"client:{client}"


def escrow_account(job_id: str) -> str:
    """Holding account of one job's escrowed budget: ``escrow:<job_id>``."""
    return f"escrow:{job_id}"


def provider_account(provider: str) -> str:
    """Account id of a provider's free balance (earnings, completed unbonds): ``provider:<provider>``."""
    return f"provider:{provider}"


def bond_account(provider: str) -> str:
    """A provider's free (bonded, unlocked) stake: ``bond:<provider>``."""
    return f"bond:{provider}"


def collateral_account(provider: str) -> str:
    """A provider's stake locked as per-job collateral: ``collateral:<provider>``."""
    return f"collateral:{provider}"


def unbonding_account(provider: str) -> str:
    """A provider's stake waiting out the unbonding period: ``unbonding:<provider>``."""
    return f"unbonding:{provider}"


def slashing_account(provider: str) -> str:
    """A provider's stake held by queued (not yet final) slashes: ``slashing:<provider>``."""
    return f"slashing:{provider}"


@dataclass(frozen=True)
class HistoryEntry:
    """One journal row seen from an account: ``delta_wei`` > 0 credits it, < 0 debits it."""

    seq: int
    op_id: str
    leg: int
    kind: str
    counterparty: str
    delta_wei: int
    job_id: str | None


@dataclass(frozen=True)
class AccountInfo:
    """An account's id, kind, whether it may go negative, and balance in wei."""

    account_id: str
    kind: str
    allow_negative: bool
    balance_wei: int


_OPEN_ACCOUNT = text("INSERT INTO ledger_accounts (id, kind, allow_negative, balance_wei) "
                     "VALUES (:id, :kind, :neg, 0) ON CONFLICT (id) DO NOTHING")
_GET_ACCOUNT = text("SELECT id, kind, allow_negative, balance_wei FROM ledger_accounts WHERE id = :id")


def open_account(s: Session, account_id: str, kind: str, *, allow_negative: bool = False) -> AccountInfo:
    """Open account ``account_id`` of ``kind`` (one of :data:`market.ledger.models.ACCOUNT_KINDS`); idempotent.

    Returns:
        the account (an existing one when it was already open with the same kind and flag).

    Raises:
        InvalidArgument: bad id or kind. AccountKindConflict: it exists with another kind or flag.
    """
    check_id("account_id", account_id)
    if kind not in ACCOUNT_KINDS:
        raise InvalidArgument("kind", kind, f"use one of {', '.join(ACCOUNT_KINDS)}")
    s.execute(_OPEN_ACCOUNT, {"id": account_id, "kind": kind, "neg": bool(allow_negative)})
    row = s.execute(_GET_ACCOUNT, {"id": account_id}).one()
    if row[1] != kind or bool(row[2]) != bool(allow_negative):
        raise AccountKindConflict(account_id, f"{row[1]}{' (negative allowed)' if row[2] else ''}", kind)
    return AccountInfo(row[0], row[1], bool(row[2]), int(row[3]))


def open_system_accounts(s: Session) -> None:
    """Open :data:`SYSTEM_ACCOUNTS` (world, protocol fees, burn) if missing; idempotent."""
    for account_id, (kind, neg) in SYSTEM_ACCOUNTS.items():
        s.execute(_OPEN_ACCOUNT, {"id": account_id, "kind": kind, "neg": neg})


def world_closed(s: Session) -> bool:
    """True when the ledger is chain-backed (the :data:`VAULT_ACCOUNT` exists: the exchange service opens it at
    start): then ``world`` is no source (nor sink) of money and :func:`market.ledger.transfer` /
    ``deposit`` / ``withdraw`` / ``post_batch`` touching it raise :class:`~market.ledger.errors.WorldClosed`.
    A standalone ledger (no Vault: the ledger's own tests and tools) keeps ``world`` as its external account."""
    return s.execute(text("SELECT 1 FROM ledger_accounts WHERE id = :id"), {"id": VAULT_ACCOUNT}).first() is not None


def open_client(s: Session, client: str) -> AccountInfo:
    """Open ``client:<client>``; idempotent."""
    return open_account(s, client_account(check_id("client", client)), "client")


def open_provider(s: Session, provider: str) -> AccountInfo:
    """Open a provider's accounts (``provider:``, ``bond:``, ``collateral:``, ``unbonding:``, ``slashing:``); idempotent.

    Returns:
        the ``provider:<provider>`` account.
    """
    check_id("provider", provider)
    for fn, kind in ((bond_account, "bond"), (collateral_account, "collateral"),
                     (unbonding_account, "unbonding"), (slashing_account, "slashing")):
        open_account(s, fn(provider), kind)
    return open_account(s, provider_account(provider), "provider")


def account(s: Session, account_id: str) -> AccountInfo:
    """The account ``account_id``. Raises: UnknownAccount."""
    row = s.execute(_GET_ACCOUNT, {"id": account_id}).first()
    if row is None:
        raise UnknownAccount(account_id)
    return AccountInfo(row[0], row[1], bool(row[2]), int(row[3]))


def balance(s: Session, account_id: str) -> int:
    """Balance of ``account_id`` in wei. Raises: UnknownAccount."""
    return account(s, account_id).balance_wei


def balances(s: Session) -> dict[str, int]:
    """Every account's balance in wei, by id."""
    return {r[0]: int(r[1]) for r in s.execute(text("SELECT id, balance_wei FROM ledger_accounts")).all()}


def history(s: Session, account_id: str, *, limit: int | None = None) -> list[HistoryEntry]:
    """Journal rows touching ``account_id``, oldest first (the last ``limit`` when given).

    Raises:
        UnknownAccount.
    """
    account(s, account_id)
    sql = ("SELECT seq, op_id, leg, kind, debit_account_id, credit_account_id, amount_wei, job_id "
           "FROM ledger_transfers WHERE debit_account_id = :a OR credit_account_id = :a ORDER BY seq DESC")
    params: dict[str, Any] = {"a": account_id}
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = int(limit)
    out = []
    for seq, op_id, leg, kind, debit, credit, amount, job in s.execute(text(sql), params).all():
        credited = credit == account_id
        out.append(HistoryEntry(int(seq), op_id, int(leg), kind, debit if credited else credit,
                                int(amount) if credited else -int(amount), job))
    return out[::-1]

