"""The ledger: the only code that moves money. Double-entry, idempotent, two-phase.

Model (TigerBeetle's, realised as Formance does; see :mod:`market.ledger.models`):
  * accounts have caller-given string ids and int wei balances; only ``allow_negative``
    accounts (the external :data:`WORLD_ACCOUNT`) may go below zero;
  * every balance change is an immutable journal row (debit account, credit account, amount);
  * every operation carries a caller-given ``transfer_id``: a retry with the same id and the same
    inputs returns the original result and changes nothing; the same id with other inputs raises
    :class:`IdempotencyConflict` (a SHA-256 of the canonical inputs is stored). Time arguments
    (``now_s``) are context, not inputs: a retry at a later time replays;
  * a reservation (job escrow, per-job collateral lock, unbonding, queued slash) moves the money
    into a holding account by a journal transfer; a side row tracks what is held. Posting, voiding
    or expiring it moves the money out again, exactly once (:class:`PendingAlreadyResolved`).

Conventional accounts (one per job for escrow, so concurrent jobs never contend on one row):
``client:<c>``, ``escrow:<job>``, ``provider:<p>`` (earnings, free balance), ``bond:<p>`` (free
stake), ``collateral:<p>`` (stake locked for jobs), ``unbonding:<p>``, ``slashing:<p>`` (queued
slashes), and the system accounts :data:`WORLD_ACCOUNT`, :data:`PROTOCOL_FEE_ACCOUNT`,
:data:`BURN_ACCOUNT`.

Modules (one concept each; this package is the facade, import ``from market import ledger``):
:mod:`~market.ledger.accounts` (ids, opening, balances, history), :mod:`~market.ledger.transfers`
(plain transfers, batches), :mod:`~market.ledger.reservations` (escrow and collateral: post / void /
expire), :mod:`~market.ledger.stake` (bond, unbond), :mod:`~market.ledger.slashes`,
:mod:`~market.ledger.invariants` (journal replay checks); the shared write path (locks,
idempotency, the commit helper) is the internal :mod:`market.ledger._ops`; tables in
:mod:`~market.ledger.models`, errors in :mod:`~market.ledger.errors`.

Transactions: every function takes a SQLAlchemy ``Session`` first and runs inside the caller's
transaction (``with Session(engine) as s, s.begin(): ...``); nothing here commits. Each
operation (1) locks the side rows it resolves, (2) locks all accounts it touches with one
``SELECT ... ORDER BY id FOR UPDATE`` (READ COMMITTED + row locks in id order: no lost update,
no deadlock between ledger operations), (3) checks idempotency, (4) validates everything, and
only then (5) writes. So a raised :class:`LedgerError` leaves the transaction unchanged by the
failed operation. On SQLite ``FOR UPDATE`` is omitted (the database file lock serialises
writers). Amounts and balances span ``-(2**256 - 1) .. 2**256 - 1`` wei on both backends (SQLite stores
them as exact decimal text: :class:`market.db.base.WeiType`).

All amounts are Python ``int`` wei (never floats); times are float seconds (unix time).
"""

from market.ledger.accounts import (
    BURN_ACCOUNT,
    PROTOCOL_FEE_ACCOUNT,
    SYSTEM_ACCOUNTS,
    WORLD_ACCOUNT,
    AccountInfo,
    HistoryEntry,
    account,
    balance,
    balances,
    bond_account,
    client_account,
    collateral_account,
    escrow_account,
    history,
    open_account,
    open_client,
    open_provider,
    open_system_accounts,
    provider_account,
    slashing_account,
    unbonding_account,
    world_closed,
)
from market.ledger.errors import (
    AccountKindConflict,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidArgument,
    LedgerError,
    PendingAlreadyResolved,
    PendingExists,
    PendingNotFound,
    PriceExceedsEscrow,
    SlashAlreadyResolved,
    SlashExceedsBond,
    SlashNotFound,
    SlashWindowClosed,
    SlashWindowOpen,
    UnbondingNotMatured,
    UnknownAccount,
    WorldClosed,
)
from market.ledger.invariants import check_invariants
from market.ledger.reservations import (
    Pending,
    Resolution,
    Settlement,
    escrow_job,
    expire_pending,
    lock_collateral,
    pending_for_job,
    refund_job,
    release_payment,
    unlock_collateral,
    void_escrow,
)
from market.ledger.slashes import Slash, cancel_slash, finalize_slash, get_slash, slash
from market.ledger.stake import (Unbond, UnbondCompletion, bond, complete_unbond, request_unbond,
                                  slashable_unbonding_wei, unbonds)
from market.ledger.transfers import BatchResult, Receipt, TransferSpec, deposit, post_batch, transfer, withdraw

__all__ = [
    # accounts
    "WORLD_ACCOUNT", "PROTOCOL_FEE_ACCOUNT", "BURN_ACCOUNT", "SYSTEM_ACCOUNTS",
    "client_account", "escrow_account", "provider_account", "bond_account", "collateral_account",
    "unbonding_account", "slashing_account", "AccountInfo", "HistoryEntry",
    "open_account", "open_system_accounts", "open_client", "open_provider",
    "account", "balance", "balances", "history", "world_closed",
    # transfers
    "TransferSpec", "Receipt", "BatchResult", "transfer", "deposit", "withdraw", "post_batch",
    # reservations
    "Pending", "Settlement", "Resolution", "escrow_job", "lock_collateral", "release_payment", "void_escrow",
    "refund_job", "unlock_collateral", "expire_pending", "pending_for_job",
    # stake
    "Unbond", "UnbondCompletion", "bond", "request_unbond", "complete_unbond", "unbonds", "slashable_unbonding_wei",
    # slashes
    "Slash", "slash", "cancel_slash", "finalize_slash", "get_slash",
    # invariants
    "check_invariants",
    # errors
    "LedgerError", "AccountKindConflict", "IdempotencyConflict", "InsufficientFunds", "InvalidAmount",
    "InvalidArgument", "PendingAlreadyResolved", "PendingExists", "PendingNotFound", "PriceExceedsEscrow",
    "SlashAlreadyResolved", "SlashExceedsBond", "SlashNotFound", "SlashWindowClosed", "SlashWindowOpen",
    "UnbondingNotMatured", "UnknownAccount", "WorldClosed",
]
