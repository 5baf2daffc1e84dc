"""The solvency audit: the Vault holds exactly what the ledger owes, at the block the deposit watcher has applied.

``ledger_liabilities_wei`` is every ledger account except the money sources ``world`` and ``vault``
(:func:`market.ledger.chain.liabilities_wei`: client balances, escrows, provider balances, stake including
unbonding and queued slashes, protocol fees, slashes not yet burned on chain, claimable and not yet claimed, minus
debts left by reorgs). ``contract_balance_wei`` is the Vault's ETH balance at ``checked_at_block``, the deposit
watcher's checkpoint: every confirmed Vault event up to that block, and none after it, is in the ledger, so the
two are equal when the books are right (``balanced``). Events the development faucet credited early (above the
checkpoint, :meth:`market.settlement.deposits.VaultWatcher.apply_receipt`) are taken back out of the ledger side
for the comparison, so an audit at the checkpoint stays exact while they wait for their confirmations.

No ledger money has any other source: ``world`` is closed on a chain-backed ledger (:mod:`market.ledger.chain`),
and the development faucet moves real chain ETH (``Vault.depositFor`` / ``stakeFor`` from a well-known dev key).
So an unbalanced audit means a bug or an unhandled chain event, never "dev money".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from market.ledger import chain as money
from market.settlement.models import WatcherCheckpoint


@dataclass(frozen=True)
class AuditReport:
    """One audit (all wei ``int``).

    Attributes:
        contract_balance_wei: the Vault's ETH balance at ``checked_at_block``.
        ledger_liabilities_wei: what the ledger owes (see the module docstring).
        pending_claims_wei: the part of it made claimable and not yet claimed (``claimable:*``).
        balanced: ``contract_balance_wei == ledger_liabilities_wei``.
        checked_at_block: the block of the watcher's checkpoint (-1: nothing applied yet).
        difference_wei: ``contract_balance_wei - ledger_liabilities_wei``.
        flagged: address -> debt wei of indebted (reorged) addresses.
    """

    contract_balance_wei: int
    ledger_liabilities_wei: int
    pending_claims_wei: int
    balanced: bool
    checked_at_block: int
    difference_wei: int
    flagged: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of ``raymarket audit --json``: wei as decimal strings (exact), ``balanced`` a bool."""
        d = asdict(self)
        for k in ("contract_balance_wei", "ledger_liabilities_wei", "pending_claims_wei", "difference_wei"):
            d[k] = str(d[k])
        d["flagged"] = {a: str(w) for a, w in self.flagged.items()}
        return d


def watcher_name(vault_address: str) -> str:
    """The checkpoint key of the deposit watcher of ``vault_address`` (see :mod:`market.settlement.deposits`)."""
    return f"vault:{vault_address.lower()}"[:64]


def audit(engine: Engine, vault: Any, *, block: int | None = None) -> AuditReport:
    """Compare the Vault's balance with the ledger's liabilities at the deposit watcher's checkpoint.

    Args:
        engine: the ledger database.
        vault: a :class:`contracts.vault.VaultContract` (its chain is read).
        block: audit at this block instead of the checkpoint (only meaningful when the watcher stands there).

    Raises:
        contracts.errors.ChainUnreachable (or the web3 error) when the chain cannot be read.
    """
    with Session(engine) as s:
        cp = s.get(WatcherCheckpoint, watcher_name(vault.address))
        at = block if block is not None else (cp.block_number if cp else -1)
        owed = money.liabilities_wei(s) - _credited_above(s, watcher_name(vault.address), at)
        pending = money.pending_claims_wei(s)
        flagged = money.flagged_accounts(s)
    balance = vault.balance_wei(at) if at >= 0 else 0
    return AuditReport(balance, owed, pending, balance == owed, at, balance - owed, flagged)


def _credited_above(s: Session, watcher: str, block: int) -> int:
    """Net wei the ledger took from the ``vault`` account for events above ``block`` (applied early by the
    development faucet): what the Vault's balance at ``block`` cannot show yet."""
    rows = s.execute(text("SELECT t.debit_account_id, t.credit_account_id, t.amount_wei FROM ledger_transfers t "
                          "JOIN vault_events e ON e.op_id = t.op_id WHERE e.watcher = :w AND e.block_number > :b"),
                     {"w": watcher, "b": block}).all()
    return sum(int(a) if d == money.VAULT_ACCOUNT else -int(a) if c == money.VAULT_ACCOUNT else 0 for d, c, a in rows)
