"""Chain-backed money: the ledger side of the Vault contract (deposits, stake, unstakes, claims, on-chain slashes).

Money enters the ledger only from :data:`VAULT_ACCOUNT` (kind ``world``, may go negative: minus what the Vault
received and still holds for the market) when the deposit watcher (:mod:`market.settlement.deposits`) applies a
confirmed Vault event, and leaves only back to it when a confirmed ``Claimed`` / ``StakeWithdrawn`` / burning
``Slashed`` event says the ETH left the Vault. There is no other source: once the ``vault`` account exists the
ledger is chain-backed and ``world`` is closed (:func:`market.ledger.accounts.world_closed`; a transfer touching it
raises :class:`market.ledger.errors.WorldClosed`). The development faucet of a dev exchange moves real chain ETH
(``Vault.depositFor`` / ``stakeFor`` from a well-known dev key), credited through this same path.

Accounts (all opened on demand; kinds from :data:`market.ledger.models.ACCOUNT_KINDS`, no schema change):
  * ``vault`` (:data:`VAULT_ACCOUNT`, kind ``world``, negative allowed);
  * ``claimable:<address>`` (kind ``other``): wei the address may claim on chain and has not yet claimed. What
    enters it from any account other than ``vault`` is that address's CUMULATIVE claimable amount, the leaf of the
    epoch root (:func:`cumulative_claimable`); it never decreases (only a claim takes money out of it);
  * ``debt:<address>`` (kind ``other``, negative allowed): what a reorg (or an on-chain outflow the ledger had not
    backed) took that the address's accounts no longer held. **Debt rule**: an address whose ``debt:`` account is
    below zero is *flagged*: the exchange refuses its new jobs (:func:`require_no_debt`), and every later deposit or
    stake of that address first covers the debt (``vault -> debt:``), only the rest reaches its balance;
  * ``stake:<address>`` (kind ``other``): stake of an address that has not registered a provider name yet; moved
    into ``bond:<name>`` by :func:`assign_parked_stake` once it has one;
  * :data:`SLASH_POOL_ACCOUNT`: the unburned part of an on-chain slash the exchange did not decide (anyone may
    call ``Vault.slashChallenged``); owed by the protocol, kept as a liability.

Every function takes the caller's session (no commit) and an idempotency id (``op_id``), like the rest of the
ledger; all amounts are ``int`` wei. Errors: :class:`market.ledger.errors.LedgerError` subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from market.ledger._checks import check_id, op_digest
from market.ledger._ops import Acct, Ctx, check_amount, commit, ctx, legs_of, lock_accounts, op_row, replay
from market.ledger.accounts import VAULT_ACCOUNT as _VAULT_ACCOUNT
from market.ledger.accounts import (WORLD_ACCOUNT, bond_account, client_account, open_account,
                                    open_client, open_system_accounts, provider_account)
from market.ledger.errors import LedgerError

#: The Vault contract seen from the ledger (:data:`market.ledger.accounts.VAULT_ACCOUNT`): money comes from it
#: (confirmed deposits and stake) and goes back to it (confirmed claims, stake withdrawals, burns). Its balance is
#: minus the wei the Vault holds for the ledger.
VAULT_ACCOUNT = _VAULT_ACCOUNT
#: The unburned part of on-chain slashes the exchange did not decide (owed by the protocol).
SLASH_POOL_ACCOUNT = "protocol:slash-pool"
#: Accounts outside the market's liabilities (sources of money, not money owed).
SOURCE_ACCOUNTS = (WORLD_ACCOUNT, VAULT_ACCOUNT)


@dataclass
class AccountInDebt(LedgerError):
    """``address`` owes ``debt_wei`` after a reorg took back money it had spent: no new jobs until a deposit
    covers it (the debt rule of :mod:`market.ledger.chain`)."""

    address: str
    debt_wei: int

    def __str__(self) -> str:
        return (f"account {self.address} owes {self.debt_wei} wei (a chain reorg removed a deposit it had already "
                f"spent); deposit at least that much to cover it")


def claimable_account(address: str) -> str:
    """``claimable:<address>``: wei the address may claim from the Vault and has not claimed yet."""
    return f"claimable:{address}"


def debt_account(address: str) -> str:
    """``debt:<address>`` (negative allowed): minus what the address owes after a reorg."""
    return f"debt:{address}"


def parked_stake_account(address: str) -> str:
    """``stake:<address>``: on-chain stake of an address that has no provider name yet."""
    return f"stake:{address}"


@dataclass(frozen=True)
class ChainMove:
    """Result of one chain-backed operation.

    Attributes:
        op_id: the idempotency id; event: what it applied (``deposit``, ``stake``, ``claim``, ...);
        address: the address concerned; amount_wei: the event's amount;
        moved: ``[(debit account, credit account, wei)]`` as journaled;
        shortfall_wei: the part no account held (taken from ``debt:<address>``, or not moved for
            :func:`request_unstake`).
    """

    op_id: str
    event: str
    address: str
    amount_wei: int
    moved: list[list] = field(default_factory=list)
    shortfall_wei: int = 0


def open_chain_accounts(s: Session, address: str | None = None) -> None:
    """Open the system accounts, ``vault``, the slash pool and, given ``address``, its client / claimable / debt
    accounts; idempotent."""
    open_system_accounts(s)
    open_account(s, VAULT_ACCOUNT, "world", allow_negative=True)
    open_account(s, SLASH_POOL_ACCOUNT, "protocol")
    if address is not None:
        check_id("address", address)
        open_client(s, address)
        open_account(s, claimable_account(address), "other")
        open_account(s, debt_account(address), "other", allow_negative=True)


# ------------------------------------------------------------------------------------------------ internals
def _take(accts: dict[str, Acct], sources: Iterable[str], amount: int, dest: str, kind: str,
          debt: str | None) -> tuple[list[tuple[str, str, int, str]], int]:
    """Moves taking ``amount`` for ``dest`` from ``sources`` in order (as much as each holds), the rest from
    ``debt`` (negative allowed) when given. Returns (moves, shortfall). Balances in ``accts`` are not changed."""
    moves, left = [], amount
    seen: dict[str, int] = {}
    for src in sources:
        if left == 0:
            break
        have = accts[src].balance - seen.get(src, 0) if src in accts else 0
        part = min(left, max(have, 0))
        if part:
            moves.append((src, dest, part, kind))
            seen[src] = seen.get(src, 0) + part
            left -= part
    if left and debt is not None:
        moves.append((debt, dest, left, kind))
    return moves, left


def _credit(accts: dict[str, Acct], address: str, amount: int, dest: str, kind: str) -> list[tuple[str, str, int, str]]:
    """Moves crediting ``amount`` from the vault: first covering ``debt:<address>``, the rest to ``dest``."""
    owed = max(-accts[debt_account(address)].balance, 0)
    cover = min(owed, amount)
    return [(VAULT_ACCOUNT, debt_account(address), cover, "debt_cover"), (VAULT_ACCOUNT, dest, amount - cover, kind)]


def _run(c: Ctx, op_id: str, event: str, address: str, amount: int, accounts: Iterable[str], digest: str,
         build) -> ChainMove:
    """Lock ``accounts``, replay ``op_id`` or build its moves (``build(accts) -> (moves, shortfall)``) and commit."""
    accts = lock_accounts(c, list(accounts))
    if (done := replay(c, op_id, event, digest)) is not None:
        return ChainMove(**done)
    moves, shortfall = build(accts)
    legs = legs_of(op_id, moves)
    result = ChainMove(op_id, event, address, amount, [[g.debit, g.credit, g.amount] for g in legs], shortfall)
    commit(c, accts, legs, [op_row(op_id, event, digest, result)])
    return result


def _replayed(c: Ctx, op_id: str, event: str, digest: str) -> ChainMove | None:
    done = replay(c, op_id, event, digest)
    return None if done is None else ChainMove(**done)


# ------------------------------------------------------------------------------------------------ money in
def credit_deposit(s: Session, op_id: str, address: str, amount_wei: int) -> ChainMove:
    """A confirmed ``Deposited(address, amount)``: ``vault -> client:<address>`` (debt covered first).

    Raises:
        InvalidAmount, InvalidArgument, IdempotencyConflict.
    """
    c = ctx(s)
    check_id("op_id", op_id), check_amount(c, "amount_wei", amount_wei)
    digest = op_digest("chain_deposit", address, amount_wei)
    if (done := _replayed(c, op_id, "chain_deposit", digest)) is not None:
        return done
    open_chain_accounts(s, address)
    dest = client_account(address)
    return _run(c, op_id, "chain_deposit", address, amount_wei, (VAULT_ACCOUNT, dest, debt_account(address)), digest,
                lambda a: (_credit(a, address, amount_wei, dest, "chain_deposit"), 0))


def mark_withdrawable(s: Session, op_id: str, address: str, amount_wei: int) -> ChainMove:
    """A client asks to withdraw: ``client:<address> -> claimable:<address>``; claimable on chain from the next
    epoch root.

    Raises:
        InvalidAmount, InsufficientFunds (free balance too small), IdempotencyConflict.
    """
    c = ctx(s)
    check_id("op_id", op_id), check_amount(c, "amount_wei", amount_wei)
    digest = op_digest("withdrawable", address, amount_wei)
    if (done := _replayed(c, op_id, "withdrawable", digest)) is not None:
        return done
    open_chain_accounts(s, address)
    src, dest = client_account(address), claimable_account(address)
    return _run(c, op_id, "withdrawable", address, amount_wei, (src, dest), digest,
                lambda a: ([(src, dest, amount_wei, "withdrawable")], 0))


def sweep_earnings(s: Session, op_id: str, provider: str, address: str) -> ChainMove | None:
    """Make ``provider:<provider>``'s whole balance (earnings, rescuer shares) claimable by its ``address``;
    None when it is zero.

    Raises:
        IdempotencyConflict.
    """
    c = ctx(s)
    src, dest = provider_account(provider), claimable_account(address)
    row = s.execute(text("SELECT balance_wei FROM ledger_accounts WHERE id = :id"), {"id": src}).first()
    if row is None or int(row[0]) <= 0:
        return None
    amount = int(row[0])
    digest = op_digest("earnings_out", provider, address, amount)
    open_chain_accounts(s, address)
    return _run(c, op_id, "earnings_out", address, amount, (src, dest), digest,
                lambda a: ([(src, dest, amount, "earnings_out")], 0))


def claimed(s: Session, op_id: str, address: str, amount_wei: int) -> ChainMove:
    """A confirmed ``Claimed(address, amount, ...)``: ``claimable:<address> -> vault`` (any part the ledger did not
    hold as claimable, which a correct root never allows, from ``debt:<address>``).

    Raises:
        InvalidAmount, IdempotencyConflict.
    """
    c = ctx(s)
    check_id("op_id", op_id), check_amount(c, "amount_wei", amount_wei)
    digest = op_digest("chain_claim", address, amount_wei)
    if (done := _replayed(c, op_id, "chain_claim", digest)) is not None:
        return done
    open_chain_accounts(s, address)
    src = claimable_account(address)
    return _run(c, op_id, "chain_claim", address, amount_wei, (src, VAULT_ACCOUNT, debt_account(address)), digest,
                lambda a: _take(a, [src], amount_wei, VAULT_ACCOUNT, "chain_claim", debt_account(address)))


# ------------------------------------------------------------------------------------------------ slashes
def reverse(s: Session, op_id: str, original_op_id: str, address: str) -> ChainMove:
    """Undo chain operation ``original_op_id`` (its event left the canonical chain): each journal leg
    ``debit -> credit`` is moved back ``credit -> debit``, newest leg first; what ``credit`` no longer holds is
    taken from ``debt:<address>`` (the account becomes flagged: see the debt rule). Unbond rows the original
    created stop pending; money it took out of an unbonding account returns to the bond.

    Raises:
        IdempotencyConflict.
    """
    c = ctx(s)
    check_id("op_id", op_id), check_id("original_op_id", original_op_id)
    digest = op_digest("chain_reorg", original_op_id, address)
    if (done := _replayed(c, op_id, "chain_reorg", digest)) is not None:
        return done
    open_chain_accounts(s, address)
    legs = s.execute(text("SELECT debit_account_id, credit_account_id, amount_wei FROM ledger_transfers "
                          "WHERE op_id = :op ORDER BY leg DESC"), {"op": original_op_id}).all()
    kinds = dict(s.execute(text("SELECT id, kind FROM ledger_accounts WHERE id IN (SELECT debit_account_id FROM "
                                "ledger_transfers WHERE op_id = :op)"), {"op": original_op_id}).all())
    targets = []
    for debit, credit, amount in legs:
        back = debit
        if kinds.get(debit) == "unbonding":
            back = bond_account(debit.split(":", 1)[1])
        targets.append((credit, back, int(amount)))
    involved = {a for t in targets for a in t[:2]} | {debt_account(address)}
    accts = lock_accounts(c, involved)
    total = sum(t[2] for t in targets)

    def build(a: dict[str, Acct]):
        moves, short = [], 0
        view = {k: Acct(v.balance, v.allow_negative) for k, v in a.items()}
        for src, dest, amount in targets:
            if view[src].allow_negative:
                m, sh = [(src, dest, amount, "reorg")], 0
            else:
                m, sh = _take(view, [src], amount, dest, "reorg", debt_account(address))
            for d, cr, amt, _ in m:
                view[d].balance -= amt
                view[cr].balance += amt
            moves += m
            short += sh
        return moves, short

    moves, shortfall = build(accts)
    out = legs_of(op_id, moves)
    result = ChainMove(op_id, "chain_reorg", address, total, [[g.debit, g.credit, g.amount] for g in out], shortfall)
    writes = [(text("UPDATE ledger_unbonds SET status = 'completed', completed_by = :by "
                    "WHERE id = :id AND status = 'pending'"), {"by": op_id, "id": original_op_id})]
    commit(c, accts, out, [op_row(op_id, "chain_reorg", digest, result)], writes)
    return result


# ------------------------------------------------------------------------------------------------ reads
# The stake side and the read-only views live in their own modules; re-exported so callers keep one import.
from market.ledger.chain_views import (  # noqa: E402,F401
    cumulative_claimable,
    liabilities_wei,
    pending_claims_wei,
    claimable_wei,
    debt_wei,
    flagged_accounts,
    require_no_debt,
)
from market.ledger.chain_stake import (  # noqa: E402,F401
    slash_onchain,
    credit_stake,
    assign_parked_stake,
    request_unstake,
    stake_withdrawn,
    reach_unbonding,
)
