"""Errors of the ledger: one root, :class:`LedgerError`, and narrow subclasses with typed fields.

Every operation in :mod:`market.ledger` validates all its inputs and balances *before* it
writes anything, so when one of these is raised the caller's transaction holds no change
made by the failed operation (it may still be committed or rolled back as a whole).
Messages name the field at fault and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from proving.errors import RaymarketError


class LedgerError(RaymarketError):
    """Root of every error raised by the ledger (a :class:`proving.errors.RaymarketError`, the project root)."""


@dataclass
class InvalidAmount(LedgerError):
    """An amount is not a positive ``int`` of wei (zero, negative, float, bool or other type)."""

    field: str
    value: object

    def __str__(self) -> str:
        return (f"{self.field} must be a positive int number of wei, got {self.value!r} "
                f"({type(self.value).__name__}); pass an int > 0 (never a float)")


@dataclass
class InvalidArgument(LedgerError):
    """A non-amount argument is malformed (empty id, bad basis points, same debit and credit...)."""

    field: str
    value: object
    fix: str

    def __str__(self) -> str:
        return f"invalid {self.field}={self.value!r}: {self.fix}"


@dataclass
class WorldClosed(LedgerError):
    """A transfer from or to ``world`` on a chain-backed ledger: ``world`` is not a source of funds there.

    Money enters a chain-backed ledger only by a confirmed Vault event (a chain credit of
    :mod:`market.ledger.chain`: ``credit_deposit``, ``credit_stake``) and leaves only by one (``claimed``,
    ``stake_withdrawn``, a burning ``slash_onchain``); on a development exchange, the dev faucet sends real Vault
    transactions (``depositFor`` / ``stakeFor``) from a well-known dev key.
    """

    op_id: str
    account_id: str

    def __str__(self) -> str:
        return (f"{self.op_id}: refused to move money between 'world' and {self.account_id!r}: this ledger is "
                f"backed by the Vault contract, where money enters only by a confirmed on-chain deposit or stake "
                f"(market.ledger.chain.credit_deposit / credit_stake via the deposit watcher; development: the "
                f"dev faucet's real Vault.depositFor / stakeFor)")


@dataclass
class UnknownAccount(LedgerError):
    """The account does not exist; open it first with ``open_account`` (or ``open_client``/``open_provider``)."""

    account_id: str

    def __str__(self) -> str:
        return (f"unknown account {self.account_id!r}: open it first with open_account() "
                f"(or open_client()/open_provider())")


@dataclass
class AccountKindConflict(LedgerError):
    """``open_account`` was called for an existing id with a different kind or ``allow_negative``."""

    account_id: str
    existing_kind: str
    requested_kind: str

    def __str__(self) -> str:
        return (f"account {self.account_id!r} already exists with kind {self.existing_kind!r}, "
                f"not {self.requested_kind!r}: use another id or the existing kind")


@dataclass
class InsufficientFunds(LedgerError):
    """Debiting ``amount_wei`` would take ``account_id`` below zero (it holds ``available_wei``)."""

    account_id: str
    amount_wei: int
    available_wei: int
    transfer_id: str = ""

    def __str__(self) -> str:
        return (f"insufficient funds in {self.account_id!r} for transfer {self.transfer_id!r}: "
                f"needs {self.amount_wei} wei, has {self.available_wei} wei; deposit more or lower the amount")


@dataclass
class IdempotencyConflict(LedgerError):
    """The transfer id was already used for an operation with different inputs (or another kind)."""

    transfer_id: str
    stored_kind: str
    requested_kind: str

    def __str__(self) -> str:
        return (f"transfer id {self.transfer_id!r} was already used by a {self.stored_kind!r} operation "
                f"with different inputs (now: {self.requested_kind!r}); a retry must repeat the exact "
                f"inputs, a new operation needs a new id")


@dataclass
class PendingNotFound(LedgerError):
    """No pending transfer (escrow or collateral lock) matches ``what``."""

    what: str

    def __str__(self) -> str:
        return f"no pending transfer for {self.what}: escrow the job / lock the collateral first"


@dataclass
class PendingExists(LedgerError):
    """An open pending of the same kind already exists for this job and party."""

    pending_id: str
    kind: str
    job_id: str

    def __str__(self) -> str:
        return (f"an open {self.kind} pending {self.pending_id!r} already exists for job {self.job_id!r}: "
                f"resolve it (post/void) before opening another")


@dataclass
class PendingAlreadyResolved(LedgerError):
    """The pending transfer was already posted, voided or expired; it can be resolved only once."""

    pending_id: str
    status: str

    def __str__(self) -> str:
        return (f"pending transfer {self.pending_id!r} is already {self.status}: "
                f"a reservation is resolved exactly once; retry with the original transfer id to get its result")


@dataclass
class PriceExceedsEscrow(LedgerError):
    """The price to release is larger than what the job's escrow holds."""

    job_id: str
    price_wei: int
    escrowed_wei: int

    def __str__(self) -> str:
        return (f"price_wei={self.price_wei} exceeds the {self.escrowed_wei} wei escrowed for job "
                f"{self.job_id!r}: release at most the escrowed amount")


@dataclass
class UnbondingNotMatured(LedgerError):
    """No unbond request of ``provider`` has matured yet (the earliest matures at ``matures_at_s``)."""

    provider: str
    matures_at_s: float | None
    now_s: float

    def __str__(self) -> str:
        if self.matures_at_s is None:
            return f"provider {self.provider!r} has no pending unbond request: call request_unbond first"
        return (f"unbonding of provider {self.provider!r} matures at {self.matures_at_s} s, now is "
                f"{self.now_s} s: wait {self.matures_at_s - self.now_s:.0f} s more")


@dataclass
class SlashExceedsBond(LedgerError):
    """The slash asks for more than the provider has at stake (job collateral + free bond)."""

    provider: str
    amount_wei: int
    slashable_wei: int

    def __str__(self) -> str:
        return (f"slash of {self.amount_wei} wei exceeds the {self.slashable_wei} wei provider "
                f"{self.provider!r} has at stake (job collateral + free bond): slash at most that")


@dataclass
class SlashNotFound(LedgerError):
    """No slash with this id exists."""

    slash_id: str

    def __str__(self) -> str:
        return f"no slash with id {self.slash_id!r}: use the transfer id that opened the slash"


@dataclass
class SlashAlreadyResolved(LedgerError):
    """The slash was already cancelled or finalized."""

    slash_id: str
    status: str

    def __str__(self) -> str:
        return f"slash {self.slash_id!r} is already {self.status}: a slash is cancelled or finalized once"


@dataclass
class SlashWindowOpen(LedgerError):
    """``finalize_slash`` was called before the cancellation window closed."""

    slash_id: str
    final_after_s: float
    now_s: float

    def __str__(self) -> str:
        return (f"slash {self.slash_id!r} is in its cancellation window until {self.final_after_s} s "
                f"(now {self.now_s} s): finalize after the window")


@dataclass
class SlashWindowClosed(LedgerError):
    """``cancel_slash`` was called after the cancellation window closed."""

    slash_id: str
    final_after_s: float
    now_s: float

    def __str__(self) -> str:
        return (f"slash {self.slash_id!r} cancellation window closed at {self.final_after_s} s "
                f"(now {self.now_s} s): it can only be finalized")
