"""Read-only views of the chain-backed accounts (claimable, debt, liabilities) for epochs, the audit and intake.
Split from :mod:`market.ledger.chain`."""

from __future__ import annotations


from sqlalchemy import text
from sqlalchemy.orm import Session


#: The Vault contract seen from the ledger: money comes from it (confirmed deposits and stake) and goes back to
#: it (confirmed claims, stake withdrawals, burns). Its balance is minus the wei the Vault holds for the ledger.
from market.ledger.chain import (  # noqa: F401
    SLASH_POOL_ACCOUNT, SOURCE_ACCOUNTS, VAULT_ACCOUNT, AccountInDebt, claimable_account, debt_account, parked_stake_account,
)


def cumulative_claimable(s: Session) -> dict[str, int]:
    """Address -> CUMULATIVE claimable wei (the epoch tree's leaves): everything that entered
    ``claimable:<address>`` from an account other than the vault, minus what left it other than to the vault
    (reorg reversals of claims come from the vault and do not count). Addresses with 0 are left out."""
    out: dict[str, int] = {}
    rows = s.execute(text("SELECT debit_account_id, credit_account_id, amount_wei FROM ledger_transfers "
                          "WHERE credit_account_id LIKE 'claimable:%' OR debit_account_id LIKE 'claimable:%'")).all()
    for debit, credit, amount in rows:
        if credit.startswith("claimable:") and debit != VAULT_ACCOUNT:
            a = credit.split(":", 1)[1]
            out[a] = out.get(a, 0) + int(amount)
        if debit.startswith("claimable:") and credit != VAULT_ACCOUNT:
            a = debit.split(":", 1)[1]
            out[a] = out.get(a, 0) - int(amount)
    return {a: w for a, w in out.items() if w > 0}


def liabilities_wei(s: Session) -> int:
    """What the ledger owes (wei): the sum of every account except the sources ``world`` and ``vault``: client
    balances, escrows, provider balances, stake (bond, collateral, unbonding, slashing, parked), protocol fees,
    not-yet-burned slashes, claimable, minus debts. Summed in Python (exact)."""
    rows = s.execute(text("SELECT id, balance_wei FROM ledger_accounts")).all()
    return sum(int(b) for i, b in rows if i not in SOURCE_ACCOUNTS)


def pending_claims_wei(s: Session) -> int:
    """Wei made claimable and not yet claimed (sum of ``claimable:*``)."""
    rows = s.execute(text("SELECT balance_wei FROM ledger_accounts WHERE id LIKE 'claimable:%'")).all()
    return sum(int(r[0]) for r in rows)


def claimable_wei(s: Session, address: str) -> int:
    """Wei ``address`` may still claim once the next root includes it (``claimable:<address>``)."""
    row = s.execute(text("SELECT balance_wei FROM ledger_accounts WHERE id = :id"),
                    {"id": claimable_account(address)}).first()
    return int(row[0]) if row else 0


def debt_wei(s: Session, address: str) -> int:
    """What ``address`` owes after reorgs (>= 0)."""
    row = s.execute(text("SELECT balance_wei FROM ledger_accounts WHERE id = :id"),
                    {"id": debt_account(address)}).first()
    return max(-int(row[0]), 0) if row else 0


def flagged_accounts(s: Session) -> dict[str, int]:
    """Address -> debt wei of every flagged (indebted) address."""
    rows = s.execute(text("SELECT id, balance_wei FROM ledger_accounts WHERE id LIKE 'debt:%'")).all()
    return {i.split(":", 1)[1]: -int(b) for i, b in rows if int(b) < 0}


def require_no_debt(s: Session, address: str) -> None:
    """Raise :class:`AccountInDebt` when ``address`` is flagged (the exchange calls this before a new job)."""
    owed = debt_wei(s, address)
    if owed:
        raise AccountInDebt(address, owed)
